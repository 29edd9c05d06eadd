"""Classify the tiles of one region of a slide: the unit of work of a QC task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.io.slide import Slide
from wsi_deblur.tiling.grid import TileGrid
from wsi_deblur.working_scale import downsample_tiles, severity_scaled


def classify_tiles(slide: Slide, grid: TileGrid, tiles: Sequence[tuple[int, int]],
                   classifier: BlurClassifier, *, downsample: int = 1,
                   batch_size: int = 16) -> list[tuple[tuple[int, int], BlurEstimate]]:
    """Read and classify ``tiles`` of ``slide`` in batches.

    Tiles at the slide's edge are completed by mirroring to a full
    ``tile_size`` square, so every batch has one shape; one less than half a
    tile wide (a sliver) is not classified on its own: the full square that
    ends at the slide's edge is read for it (its neighbour's pixels and its own). With ``downsample``
    > 1 tiles are block-averaged by that factor first (see
    :func:`wsi_deblur.working_scale.working_downsample`); severities come
    back in level-0 pixels.
    """
    out: list[tuple[tuple[int, int], BlurEstimate]] = []
    for start in range(0, len(tiles), batch_size):
        batch = tiles[start:start + batch_size]
        pixels = np.stack([slide.read_window(*_square(grid, i, j)) for i, j in batch])
        estimates = classifier.classify(downsample_tiles(pixels, downsample))
        out.extend((ij, severity_scaled(est, downsample)) for ij, est in zip(batch, estimates))
    return out


def _square(grid: TileGrid, i: int, j: int) -> tuple[int, int, int, int]:
    """The ``tile_size`` square read to classify tile ``(i, j)``: its own, shifted back inside the slide for a
    sliver (less than half a tile inside).
    """
    t, (h, w) = grid.tile_size, grid.shape
    y0, x0 = i * t, j * t
    if h - y0 < t // 2:
        y0 = max(0, h - t)
    if w - x0 < t // 2:
        x0 = max(0, w - t)
    return y0, x0, y0 + t, x0 + t

