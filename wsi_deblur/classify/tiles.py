"""Classify the tiles of one region of a slide: the unit of work of a QC task."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.io.slide import Slide
from wsi_deblur.tiling.grid import TileGrid


def classify_tiles(slide: Slide, grid: TileGrid, tiles: Sequence[tuple[int, int]],
                   classifier: BlurClassifier, *, batch_size: int = 16) -> list[tuple[tuple[int, int], BlurEstimate]]:
    """Read and classify ``tiles`` of ``slide`` in batches.

    Tiles at the slide's edge are completed by mirroring to a full
    ``tile_size`` square, so every batch has one shape.
    """
    out: list[tuple[tuple[int, int], BlurEstimate]] = []
    t = grid.tile_size
    for start in range(0, len(tiles), batch_size):
        batch = tiles[start:start + batch_size]
        pixels = np.stack([slide.read_window(i * t, j * t, (i + 1) * t, (j + 1) * t) for i, j in batch])
        out.extend(zip(batch, classifier.classify(pixels)))
    return out
