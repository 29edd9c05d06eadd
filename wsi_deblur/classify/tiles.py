"""Classify the tiles of one region of a slide: the unit of work of a QC task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.estimated_psf import defocus_um_for_sigma
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
    back in level-0 pixels. A classifier with ``both_scales`` also judges
    such tiles at their own pixels (:func:`both_scales`).
    """
    out: list[tuple[tuple[int, int], BlurEstimate]] = []
    for start in range(0, len(tiles), batch_size):
        batch = tiles[start:start + batch_size]
        pixels = np.stack([slide.read_window(*_square(grid, i, j)) for i, j in batch])
        out.extend(zip(batch, classify_pixels(classifier, pixels, downsample, slide.mpp)))
    return out


def classify_pixels(classifier: BlurClassifier, pixels: np.ndarray, downsample: int,
                    mpp: float | None) -> list[BlurEstimate]:
    """Estimates of ``(n, s, s, 3)`` level-0 tiles (pixel size ``mpp``): block-averaged by ``downsample``
    and classified, severities back in level-0 pixels; by a classifier with ``both_scales``, also
    judged as scanned (:func:`both_scales`). What ``qc`` does to a tile, for tiles of any source.
    """
    estimates = [severity_scaled(est, downsample)
                 for est in classifier.classify(downsample_tiles(pixels, downsample))]
    if downsample > 1 and getattr(classifier, "both_scales", False):
        estimates = [both_scales(w, n, classifier.decide, mpp) for w, n in zip(estimates, classifier.classify(pixels))]
    return estimates


def both_scales(working: BlurEstimate, native: BlurEstimate, decide: Callable[[np.ndarray], str],
                mpp: float | None) -> BlurEstimate:
    """One tile of a finer scan judged at the working pixel size (``working``, severities in level-0 pixels)
    and at its own pixels (``native``, as BlurNet read them: level-0 pixels taken for working ones).

    At its own pixels a 40x tile shows one depth of field of defocus twice as wide as at the working size,
    where BlurNet misses a third of it (``benchmarks/detection.py``); alone, it also calls soft in-focus 40x
    tissue blurred. The decision is on the mean of the two scales' probabilities; the severity is the
    working scale's where that saw the blur, else the native one's (its defocus in micrometres recomputed
    for the slide's pixel size).

    Examples
    --------
    >>> w = BlurEstimate("in_focus", {"in_focus": 0.7, "defocus": 0.3, "motion": 0.0, "mixed": 0.0})
    >>> n = BlurEstimate("defocus", {"in_focus": 0.1, "defocus": 0.9, "motion": 0.0, "mixed": 0.0},
    ...                  defocus_sigma_px=2.0)
    >>> est = both_scales(w, n, lambda p: ("in_focus", "defocus", "motion", "mixed")[int(np.argmax(p))], 0.25)
    >>> est.label, round(est.probabilities["defocus"], 2), est.defocus_sigma_px
    ('defocus', 0.6, 2.0)
    """
    probs = np.array([(working.probabilities.get(c, 0.0) + native.probabilities.get(c, 0.0)) / 2
                      for c in BLUR_CLASSES])
    label = decide(probs)
    source = working if working.label != "in_focus" else native
    defocus_um = source.defocus_um
    if source is native and native.defocus_sigma_px > 0:
        defocus_um = defocus_um_for_sigma(native.defocus_sigma_px, mpp or 0.25)
    return replace(source, label=label, probabilities=dict(zip(BLUR_CLASSES, map(float, probs))),
                   defocus_um=defocus_um)


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

