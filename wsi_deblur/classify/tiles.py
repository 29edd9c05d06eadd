"""Classify the tiles of one region of a slide: the unit of work of a QC task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.io.slide import Slide
from wsi_deblur.tiling.grid import TileGrid

#: Classifiers judge tiles at about this pixel size (micrometres), as a 20x scan.
WORKING_MPP = 0.5


def working_downsample(mpp: float | None, working_mpp: float = WORKING_MPP) -> int:
    """Integer factor that brings ``mpp`` close to ``working_mpp`` (1 if coarser or unknown).

    Blur widths in pixels depend on the scan's magnification: a sharp 40x
    scan spreads a point over twice the pixels of a 20x scan. Judging every
    slide at one pixel size keeps the classifier's decisions the same.
    """
    if not mpp or mpp <= 0:
        return 1
    return max(1, int(round(working_mpp / mpp)))


def downsample_tiles(tiles: np.ndarray, factor: int) -> np.ndarray:
    """Block-average ``(n, y, x, 3)`` uint8 tiles by ``factor`` (a partial last block is dropped)."""
    if factor == 1:
        return tiles
    n, h, w, c = tiles.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = tiles[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor, c)
    return np.rint(blocks.mean(axis=(2, 4))).astype(np.uint8)


def _to_level0(est: BlurEstimate, factor: int) -> BlurEstimate:
    if factor == 1:
        return est
    return replace(est, defocus_sigma_px=est.defocus_sigma_px * factor,
                   motion_length_px=est.motion_length_px * factor)


def classify_tiles(slide: Slide, grid: TileGrid, tiles: Sequence[tuple[int, int]],
                   classifier: BlurClassifier, *, downsample: int = 1,
                   batch_size: int = 16) -> list[tuple[tuple[int, int], BlurEstimate]]:
    """Read and classify ``tiles`` of ``slide`` in batches.

    Tiles at the slide's edge are completed by mirroring to a full
    ``tile_size`` square, so every batch has one shape. With ``downsample``
    > 1 tiles are block-averaged by that factor first (see
    :func:`working_downsample`); severities come back in level-0 pixels.
    """
    out: list[tuple[tuple[int, int], BlurEstimate]] = []
    t = grid.tile_size
    for start in range(0, len(tiles), batch_size):
        batch = tiles[start:start + batch_size]
        pixels = np.stack([slide.read_window(i * t, j * t, (i + 1) * t, (j + 1) * t) for i, j in batch])
        estimates = classifier.classify(downsample_tiles(pixels, downsample))
        out.extend((ij, _to_level0(est, downsample)) for ij, est in zip(batch, estimates))
    return out
