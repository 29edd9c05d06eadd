"""The interface every restorer implements (classical or neural)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate


@runtime_checkable
class Restorer(Protocol):
    """Restores a batch of blurred RGB windows.

    ``restore`` takes ``(n, y, x, 3)`` uint8 windows and one
    :class:`BlurEstimate` per window (type and severity, which a restorer may
    use to pick a model or build a PSF) and returns restored ``(n, y, x, 3)``
    uint8 windows of the same shape. ``name`` identifies it in reports.
    """

    name: str

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray: ...  # pragma: no cover
