"""The tiles a site adapts on: in-focus and blurred tissue of its own slides, at the working pixel size.

Each slide is classified as ``qc`` does (:func:`wsi_deblur.pipeline.slide_job.compute_blurmap`,
on whatever Dask scheduler is active); then only the sampled windows are read
(a tile grown by its halo, so that simulated blur has real context), block-
averaged to the working pixel size. Memory is that of the sample, whatever
the slide's size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsi_deblur.adaptation.options import AdaptOptions
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.fit import gradient_sharpness
from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE, LABEL_VALUES
from wsi_deblur.errors import SlideError
from wsi_deblur.nets.provenance import sha256_of
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.slide_job import compute_blurmap, open_for_processing
from wsi_deblur.working_scale import WORKING_MPP, downsample_tiles, severity_scaled, working_downsample

logger = logging.getLogger(__name__)

#: Probability of being in focus a tile needs to serve as a sharp example.
MIN_IN_FOCUS = 0.9


@dataclass
class SiteTiles:
    """Sampled windows of a site's slides, ``(n, s, s, 3)`` uint8 at the working pixel size.

    Attributes
    ----------
    sharp, blurred : ndarray
        In-focus windows and blurred windows.
    estimates : list of BlurEstimate
        BlurNet's estimate of each blurred window, widths in working pixels.
    sharp_slide, blurred_slide : ndarray of int
        Index into ``slides`` of each window.
    slides : list of dict
        Per slide: ``name``, ``path``, ``sha256`` (of the file; ``None`` for a
        folder), ``mpp``, ``tissue_tiles``, ``in_focus_tiles``,
        ``blurred_tiles`` (counts over the whole slide) and ``sampled_sharp``,
        ``sampled_blurred``.
    mpp : float
        Pixel size of the windows (micrometres; about 0.5).
    """

    sharp: np.ndarray
    blurred: np.ndarray
    estimates: list[BlurEstimate]
    sharp_slide: np.ndarray
    blurred_slide: np.ndarray
    slides: list[dict] = field(default_factory=list)
    mpp: float = WORKING_MPP

    def save(self, path: str | Path) -> None:
        """Write to an ``.npz`` (no pickles: estimates as arrays, slides as JSON)."""
        import json

        np.savez(path, sharp=self.sharp, blurred=self.blurred, sharp_slide=self.sharp_slide,
                 blurred_slide=self.blurred_slide, mpp=np.array(self.mpp),
                 estimates=np.array([_estimate_row(e) for e in self.estimates], np.float64).reshape(-1, 7),
                 slides=np.array(json.dumps(self.slides)))

    @classmethod
    def load(cls, path: str | Path) -> SiteTiles:
        import json

        with np.load(path, allow_pickle=False) as f:
            return cls(f["sharp"], f["blurred"], [_estimate_of(r) for r in f["estimates"]], f["sharp_slide"],
                       f["blurred_slide"], json.loads(str(f["slides"])), float(f["mpp"]))


def _estimate_row(e: BlurEstimate) -> list[float]:
    return [BLUR_CLASSES.index(e.label), e.probabilities.get("in_focus", 0.0), e.confidence, e.defocus_sigma_px,
            e.motion_length_px, e.motion_angle_deg, e.defocus_um]


def _estimate_of(row: np.ndarray) -> BlurEstimate:
    label = BLUR_CLASSES[int(row[0])]
    probabilities = {label: float(row[2])}
    if label != "in_focus":
        probabilities["in_focus"] = float(row[1])
    return BlurEstimate(label, probabilities, defocus_sigma_px=float(row[3]), motion_length_px=float(row[4]),
                        motion_angle_deg=float(row[5]), defocus_um=float(row[6]))


def sample_site_tiles(paths: list[str], options: AdaptOptions = AdaptOptions(), *,
                      min_confidence: float = DEFAULT_MIN_CONFIDENCE, progress: bool = False,
                      on_error=None) -> SiteTiles:
    """Up to ``options.max_tiles`` in-focus and as many blurred windows from the slides at ``paths``.

    ``options``: its ``max_tiles``, ``tile_size``, ``mpp``, ``reader`` and ``seed`` are used.

    Tiles are ``tile_size`` pixels at the working pixel size (twice that of a
    40x scan at level 0), windows that plus the run's halo on every side.

    Quotas are shared equally between slides. In-focus candidates are tissue
    tiles BlurNet (the shipped one) calls in focus with probability at least
    :data:`MIN_IN_FOCUS`; twice the quota are read, and those in the top half
    of their slide's gradient sharpness kept. Blurred tiles are those a run
    would restore (blurred with probability at least ``min_confidence``).

    A slide that cannot be read (or has no pixel size: pass ``mpp``) is
    passed to ``on_error(SlideError)`` and left out; without ``on_error`` the
    error is raised. Its entry in ``slides`` then has an ``error``.
    """
    max_tiles, tile_size, mpp, reader = options.max_tiles, options.tile_size, options.mpp, options.reader
    rng = np.random.default_rng(options.seed)
    quota = -(-max_tiles // max(1, len(paths)))
    sharp, blurred, estimates, sharp_slide, blurred_slide, slides = [], [], [], [], [], []
    working_mpp = WORKING_MPP
    halo = RunOptions().halo
    for k, path in enumerate(paths):
        try:
            slide = open_for_processing(path, RunOptions(mpp=mpp, reader=reader))
            factor = working_downsample(slide.mpp)
            level0_tile = tile_size * factor  # every slide's windows the same size at the working pixel size
            options = RunOptions(tile_size=level0_tile, chunk=level0_tile * max(1, 2048 // level0_tile), mpp=mpp,
                                 reader=reader)
            blurmap = compute_blurmap(slide, options, progress=progress).blurmap
        except SlideError as exc:
            if on_error is None:
                raise
            on_error(exc)
            slides.append({"name": Path(path).name, "path": str(path), "error": str(exc)})
            continue
        in_focus = np.argwhere(blurmap.is_tissue & (blurmap.label == LABEL_VALUES["in_focus"])
                               & (1.0 - blurmap.blur_probability >= MIN_IN_FOCUS))
        restore = np.argwhere(blurmap.restore_mask(min_confidence=min_confidence))
        chosen = [tuple(ij) for ij in pick_rows(in_focus, 2 * quota, rng)]
        windows = read_windows(slide, blurmap.grid, chosen, factor)
        if len(windows):
            score = np.array([gradient_sharpness(w) for w in windows])
            keep = np.argsort(-score)[:min(quota, max(1, len(windows) // 2))]
            sharp.append(windows[keep])
            sharp_slide += [k] * len(keep)
        picked = [tuple(ij) for ij in pick_rows(restore, quota, rng)]
        windows = read_windows(slide, blurmap.grid, picked, factor)
        if len(windows):
            blurred.append(windows)
            estimates += [severity_scaled(blurmap.estimate(ij), 1.0 / factor) for ij in picked]
            blurred_slide += [k] * len(picked)
        p = Path(path)
        slides.append({"name": p.name, "path": str(p.resolve()), "sha256": sha256_of(p) if p.is_file() else None,
                       "mpp": slide.mpp, "tissue_tiles": int(blurmap.is_tissue.sum()),
                       "in_focus_tiles": int(len(in_focus)), "blurred_tiles": int(len(restore)),
                       "sampled_sharp": int(sharp_slide.count(k)), "sampled_blurred": int(blurred_slide.count(k))})
        logger.info("%s: %d in-focus and %d blurred tiles sampled", p.name, slides[-1]["sampled_sharp"],
                    slides[-1]["sampled_blurred"])
        working_mpp = slide.mpp * factor
    size = tile_size + 2 * halo
    empty = np.zeros((0, size, size, 3), np.uint8)
    return SiteTiles(np.concatenate(sharp) if sharp else empty, np.concatenate(blurred) if blurred else empty,
                     estimates, np.array(sharp_slide, np.int64), np.array(blurred_slide, np.int64), slides,
                     float(working_mpp))


def pick_rows(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``n`` rows of ``candidates`` at random, in a fixed order."""
    if len(candidates) <= n:
        return candidates
    return candidates[np.sort(rng.choice(len(candidates), n, replace=False))]


def read_windows(slide, grid, tiles: list[tuple[int, int]], factor: int) -> np.ndarray:
    """The windows (tile and halo, mirrored at the slide's edge) of ``tiles``, block-averaged by ``factor``."""
    if not tiles:
        return np.zeros((0, 1, 1, 3), np.uint8)
    return np.stack([downsample_tiles(slide.read_window(*grid.window_bounds(i, j))[None], factor)[0]
                     for i, j in tiles])
