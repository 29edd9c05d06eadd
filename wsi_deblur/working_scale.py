"""The working pixel size: every slide is classified and restored at about 0.5 um/px.

Blur widths in pixels depend on the scan's magnification: a sharp 40x scan
spreads a point over twice the pixels of a 20x scan, and a defocus of a few
micrometres blurs it over twice as many. BlurNet and the deblurring networks
were trained at about 0.5 um/px (a 20x scan), so finer scans are
block-averaged to that pixel size before a network sees them
(:func:`working_downsample`, :func:`downsample_tiles`); the restorers hand
their correction back at full resolution
(:class:`wsi_deblur.restore.at_working_scale.WorkingScaleRestorer`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wsi_deblur._shared.block_mean import block_mean
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.tiling.grid import TileGrid

#: Pixel size (micrometres) the classifier and the restoration networks were trained at.
WORKING_MPP = 0.5


def working_downsample(mpp: float | None, working_mpp: float = WORKING_MPP) -> int:
    """Integer factor that brings ``mpp`` (micrometres per pixel) close to ``working_mpp``.

    1 for scans as coarse as ``working_mpp`` or coarser, or of unknown pixel
    size; 2 for a 40x scan (0.23-0.25 um/px).
    """
    if not mpp or mpp <= 0:
        return 1
    return max(1, int(round(working_mpp / mpp)))


def working_grid(shape: tuple[int, int], mpp: float | None, *, tile_size: int, halo: int) -> TileGrid:
    """Tiles of ``tile_size`` level-0 pixels with ``halo`` *working* pixels of context around each.

    The halo is the networks' context, so it is counted at the working pixel
    size: 64 pixels of a 20x scan are 128 of a 40x one. ``shape`` is level 0's
    ``(y, x)`` in pixels, ``mpp`` its pixel size in micrometres.
    """
    return TileGrid(shape, tile_size, halo * working_downsample(mpp))


def downsample_tiles(tiles: np.ndarray, factor: int) -> np.ndarray:
    """Block-average ``(n, y, x, 3)`` uint8 tiles by ``factor`` (a partial last block is dropped).

    Means are rounded half up; summed in integers (a few times faster than a floating-point mean).
    """
    return block_mean(tiles, factor, edge="drop")


def severity_scaled(estimate: BlurEstimate, factor: float) -> BlurEstimate:
    """``estimate`` with its widths in pixels (defocus sigma, motion length) times ``factor``.

    ``factor`` = the downsample: from working pixels to level-0 pixels;
    its inverse the other way. Directions and micrometres do not change.
    """
    if factor == 1:
        return estimate
    return replace(estimate, defocus_sigma_px=estimate.defocus_sigma_px * factor,
                   motion_length_px=estimate.motion_length_px * factor)
