"""The interface every blur classifier implements (classical or neural)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate

#: Rec. 601 luma weights of R, G, B.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB to ``(...)`` float32 luma, in the input's grey levels."""
    return rgb.astype(np.float32) @ LUMA


@runtime_checkable
class BlurClassifier(Protocol):
    """Classifies a batch of RGB tiles.

    ``classify`` takes ``(n, y, x, 3)`` uint8 tiles at full resolution and
    returns one :class:`BlurEstimate` per tile. ``name`` identifies the
    classifier in reports.
    """

    name: str

    def classify(self, tiles: np.ndarray) -> list[BlurEstimate]: ...  # pragma: no cover
