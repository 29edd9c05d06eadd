"""Restore the windows of a set of tiles: the unit of work of a restore task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.io.slide import Slide
from wsi_deblur.restore.at_working_scale import at_working_scale
from wsi_deblur.restore.base import Restorer
from wsi_deblur.tiling.grid import TileGrid


def restore_windows(slide: Slide, grid: TileGrid, tiles: Sequence[tuple[int, int]],
                    estimates: Sequence[BlurEstimate], restorer: Restorer, *,
                    batch_size: int = 8) -> dict[tuple[int, int], np.ndarray]:
    """Read the window of each tile, restore it, and return them by tile.

    ``restorer`` works at the working pixel size (about 0.5 um/px): on a finer
    scan, windows whose blur is wider than the networks learned are restored
    block-averaged and the correction upsampled
    (:func:`~wsi_deblur.restore.at_working_scale.at_working_scale`).

    Returns
    -------
    dict of (i, j) to ndarray, shape (window, window, 3), uint8
    """
    restorer = at_working_scale(restorer, slide.mpp)
    out: dict[tuple[int, int], np.ndarray] = {}
    for start in range(0, len(tiles), batch_size):
        batch = list(tiles[start:start + batch_size])
        pixels = np.stack([slide.read_window(*grid.window_bounds(i, j)) for i, j in batch])
        restored = restorer.restore(pixels, list(estimates[start:start + batch_size]))
        if restored.shape != pixels.shape or restored.dtype != np.uint8:
            raise TypeError(f"{restorer.name} returned {restored.shape} {restored.dtype}, "
                            f"expected {pixels.shape} uint8")
        out.update(zip(batch, restored))
    return out
