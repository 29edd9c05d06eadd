"""Restore the windows of a set of tiles: the unit of work of a restore task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.io.slide import Slide
from wsi_deblur.restore.at_working_scale import at_working_scale
from wsi_deblur.restore.base import Restorer
from wsi_deblur.restore.guard import GuardedRestorer
from wsi_deblur.tiling.grid import TileGrid


class RestoredWindows(dict):
    """Restored windows by tile ``(i, j)``; ``reports`` holds the guard's
    :class:`~wsi_deblur.restore.guard.GuardReport` of each (empty without the guard).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reports: dict = {}


def restore_windows(slide: Slide, grid: TileGrid, tiles: Sequence[tuple[int, int]],
                    estimates: Sequence[BlurEstimate], restorer: Restorer, *,
                    batch_size: int = 8, guard: bool = True,
                    reference: np.ndarray | None = None) -> RestoredWindows:
    """Read the window of each tile, restore it, and return them by tile.

    ``restorer`` works at the working pixel size (about 0.5 um/px): on a finer
    scan, defocused windows and those whose blur is wider than the networks learned are restored
    block-averaged and the correction upsampled
    (:func:`~wsi_deblur.restore.at_working_scale.at_working_scale`). With
    ``guard`` (the default) every restored window is checked against the optics
    at level 0 and pulled back toward its input where it contradicts
    them (:mod:`wsi_deblur.restore.guard`; ``reference``: the slide's in-focus
    amplitude spectrum, :func:`~wsi_deblur.restore.guard.band_amplitude`).

    Returns
    -------
    RestoredWindows
        dict of (i, j) to ndarray, shape (window, window, 3), uint8; its
        ``reports`` the guard's decision per tile.
    """
    scaled = at_working_scale(restorer, slide.mpp)
    checked = GuardedRestorer(scaled, mpp=slide.mpp, reference=reference) if guard else None
    out = RestoredWindows()
    for start in range(0, len(tiles), batch_size):
        batch = list(tiles[start:start + batch_size])
        pixels = np.stack([slide.read_window(*grid.window_bounds(i, j)) for i, j in batch])
        batch_estimates = list(estimates[start:start + batch_size])
        if checked is not None:
            restored, reports = checked.restore_checked(pixels, batch_estimates)
            out.reports.update(zip(batch, reports))
        else:
            restored = scaled.restore(pixels, batch_estimates)
        if restored.shape != pixels.shape or restored.dtype != np.uint8:
            raise TypeError(f"{restorer.name} returned {restored.shape} {restored.dtype}, "
                            f"expected {pixels.shape} uint8")
        out.update(zip(batch, restored))
    return out
