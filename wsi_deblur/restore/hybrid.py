"""``hybrid``: each blur by what restores it best on real images: defocus by optics, motion by the networks.

Held against the classical restorer told the same estimate, on the real
focus pair (40x, FocusPath) DL_defocus gains +0.060 SSIM where Wiener told
BlurNet's width as a geometric disc gains +0.108, within 0.01 of the best
linear filter fitted to the real optics (``python benchmarks/defocus_model.py``,
``python -m pipelines.evaluate_real``): so defocused windows go through
:class:`~wsi_deblur.restore.wiener.WienerRestorer` (disc PSF), and motion and
mixed blur, where the networks beat Richardson-Lucy told the true PSF
(docs/models.md), through ``fast``'s DL_motion and DL_mixed.

On our simulator's defocus the networks are ahead (40x crops of a held-out
field: ``fast`` 0.760, this 0.687, from 0.581): the simulated blur is not the
real one, and the real one decides (``docs/real-defocus.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.restore.base import Restorer
from wsi_deblur.restore.wiener import WienerRestorer

#: Wiener's balance for defocus. On the real pair 0.05 gives 0.587 and 0.1 0.583; on noisier simulated 40x
#: defocus (2000 photons) 0.1 is ahead by 0.02: 0.1, not tuned to the one real pair.
DEFOCUS_BALANCE = 0.1


@dataclass
class HybridRestorer:
    """Defocused windows through ``defocus`` (Wiener, disc PSF), every other blurred one through ``networks``.

    Parameters
    ----------
    networks : Restorer
        What restores motion and mixed blur (``fast``'s networks).
    defocus : Restorer
        What restores defocus.

    The networks send windows BlurNet is unsure of to Wiener themselves
    (:attr:`~wsi_deblur.restore.neural.NeuralRestorer.min_confidence`).

    Examples
    --------
    >>> from wsi_deblur.blur.estimate import BlurEstimate
    >>> class Marker:
    ...     name = "marker"
    ...     def restore(self, windows, estimates):
    ...         return windows + 1
    >>> windows = np.zeros((2, 8, 8, 3), np.uint8)
    >>> out = HybridRestorer(Marker()).restore(windows, [BlurEstimate("motion", motion_length_px=5.0),
    ...                                                  BlurEstimate("in_focus")])
    >>> int(out[0].max()), int(out[1].max())       # motion by the networks; in focus untouched
    (1, 0)
    """

    networks: Restorer
    defocus: Restorer = field(default_factory=lambda: WienerRestorer(balance=DEFOCUS_BALANCE))
    name: str = "hybrid"

    def preload(self) -> None:
        """Load the networks now (a worker does it once, at start)."""
        if hasattr(self.networks, "preload"):
            self.networks.preload()

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows, each by the restorer of its estimate's blur type."""
        out = windows.copy()
        labels = np.array([e.label for e in estimates])
        for sel, restorer in ((labels == "defocus", self.defocus),
                              (np.isin(labels, ("motion", "mixed")), self.networks)):
            idx = np.flatnonzero(sel)
            if idx.size:
                out[idx] = restorer.restore(windows[idx], [estimates[i] for i in idx])
        return out
