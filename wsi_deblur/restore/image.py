"""Restore whole images (camera fields, tiles): the ``restore`` command.

The image goes through the same engine as a slide: overlapping windows
(:class:`~wsi_deblur.tiling.grid.TileGrid`), restored in batches, blended with
partition-of-unity weights, so a large field shows no seams.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
from scipy import fft as sfft

from wsi_deblur._shared.cpus import usable_cpus
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.classify.image import MAX_PIXELS, classify_image, refuse_fluorescence
from wsi_deblur.errors import SlideError
from wsi_deblur.io import open_slide
from wsi_deblur.io.slide import Slide, slide_stem
from wsi_deblur.restore.base import Restorer
from wsi_deblur.restore.wiener import WienerRestorer
from wsi_deblur.restore.windows import restore_windows
from wsi_deblur.tiling.blend import blend_region
from wsi_deblur.working_scale import WORKING_MPP, working_grid
from wsi_deblur.write.staging import StagedOutputs

logger = logging.getLogger(__name__)


def restore_slide_region(slide: Slide, estimate: BlurEstimate, restorer: Restorer, *, tile_size: int = 1024,
                         halo: int = 64, guard: bool = True, return_reports: bool = False):
    """Restore all of ``slide``'s level 0 as blur ``estimate`` (for images that fit in memory).

    Parameters
    ----------
    tile_size, halo : int
        Window layout, as for slides: each ``tile_size`` tile (level-0
        pixels) is restored with ``halo`` pixels of context on every side and
        windows are blended over their ``2 * halo`` overlap. The halo counts
        pixels of the working pixel size (about 0.5 um), as the restorer
        sees them: a 40x image gets twice as many level-0 pixels, and its
        defocus (or blur wider than the networks learned) is restored at half
        its resolution, the correction upsampled
        (:mod:`wsi_deblur.restore.at_working_scale`).
    guard : bool
        Check every restored window against the optics and pull it back toward
        its input where it contradicts them (:mod:`wsi_deblur.restore.guard`).
    return_reports : bool
        Also return the guard's report of each tile.

    Returns
    -------
    ndarray, shape (y, x, 3), uint8
        The restored image; with ``return_reports``, also a dict of tile to
        :class:`~wsi_deblur.restore.guard.GuardReport` (empty when the
        estimate is in focus or without the guard).
    """
    h, w = slide.shape
    original = slide.read_region(0, 0, h, w)
    refuse_fluorescence(original, slide)  # a brightfield restorer on a fluorescence image: refused, as qc does
    if not estimate.is_blurred:
        return (original, {}) if return_reports else original
    grid = working_grid((h, w), slide.mpp, tile_size=tile_size, halo=halo)
    tiles = [(i, j) for i in range(grid.grid_shape[0]) for j in range(grid.grid_shape[1])]
    windows = restore_windows(slide, grid, tiles, [estimate] * len(tiles), restorer, guard=guard)
    out = blend_region(original, (0, 0, h, w), grid, np.ones(grid.grid_shape, bool), windows)
    return (out, windows.reports) if return_reports else out


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG of a ``(y, x, 3)`` uint8 image, encoded for speed.

    libpng at zlib level 1 with every row predicted from the row above (the
    ``UP`` filter) instead of libpng's per-row choice of filter: a third less
    time on a restored 2048-px field for a file 3% larger (7.71 against
    7.51 MB; ``benchmarks/png_encode.py``).
    """
    return imagecodecs.png_encode(image, level=1, filter=imagecodecs.PNG.FILTER.UP)


def guard_counts(reports: dict) -> dict[str, Any] | None:
    """What the guard did over an image's windows: counts by action, and the largest consistency ratio."""
    if not reports:
        return None
    values = list(reports.values())
    return {"restorer": sum(r.action in ("restorer", "none") for r in values),
            "pulled back": sum(r.action == "pulled back" for r in values),
            "max_consistency": round(max(r.consistency for r in values), 4)}


def restorer_for_pixel_size(restorer: Restorer, mpp_source: str) -> Restorer:
    """``restorer``, or the classical Wiener restorer when the image's pixel size is only assumed.

    A network learned what tissue looks like at about 0.5 um/px; told the
    wrong pixel size, it restores structure of the wrong scale, and the
    guard, which checks against the PSF of the same wrong size, lets it
    through (the real focus pair at 0.25 um/px taken for 0.5: ``fast`` 0.475 ->
    0.409 SSIM, Wiener 0.520). A linear deconvolution with the estimated PSF
    stays above the input there (``python -m pipelines.evaluate_real``).
    """
    if mpp_source != "assumed" or isinstance(restorer, WienerRestorer):
        return restorer
    logger.warning("no pixel size: the classical Wiener restorer runs instead of %s (pass --mpp for the networks)",
                   restorer.name)
    return WienerRestorer()


def uses_classifier(blur_type: str | None) -> bool:
    """Whether restoring with ``blur_type`` (None: detect it) asks a classifier.

    Detection does; so does a forced motion or mixed route, for the motion's direction.
    """
    return blur_type in (None, "motion", "mixed")


def restore_image(path: str | Path, out_dir: str | Path, restorer: Restorer, *,
                  classifier: BlurClassifier | None = None, blur_type: str | None = None,
                  mpp: float | None = None, guard: bool = True) -> dict[str, Any]:
    """Restore one image file into ``out_dir/<stem>.png``.

    Parameters
    ----------
    classifier : BlurClassifier, optional
        Detects the blur type when ``blur_type`` is not given.
    blur_type : {"in_focus", "defocus", "motion", "mixed"}, optional
        Force a route instead of detecting it (``in_focus`` copies the image).
        With a ``classifier``, a forced motion or mixed route still takes the
        detected motion direction (along x when none was detected).
    mpp : float, optional
        Micrometres per pixel, if not in the file's metadata. Detection, the
        working scale and the PSF the guard checks against all depend on it.
    guard : bool
        Check the restoration against the optics (:mod:`wsi_deblur.restore.guard`).

    Returns
    -------
    dict with ``path`` (as given), ``output``, ``class``, ``detected``
    (False when ``blur_type`` forced it), ``restorer``, ``mpp`` and
    ``mpp_source`` (``"file"``, ``"option"`` or ``"assumed"``), and ``guard``
    (how many windows kept the restorer's output and how many were pulled
    back, and the largest consistency ratio; None without the guard or for
    in-focus images).

    Raises
    ------
    SlideError
        Not a readable 8-bit RGB image, or too large (use ``run``).
    """
    if blur_type is not None and blur_type not in BLUR_CLASSES:
        raise ValueError(f"unknown blur type {blur_type!r}; one of {', '.join(BLUR_CLASSES)}")
    slide = open_slide(path, mpp_fallback=mpp)
    h, w = slide.shape
    if h * w > MAX_PIXELS:
        raise SlideError(path, f"{w}x{h} px is a slide, not a field: use `wsi-deblur run` (it works tile by tile)")
    result: dict[str, Any] = {"path": str(path)}
    if blur_type is None and classifier is None:
        raise ValueError("restore_image needs a classifier or a blur_type")
    if classifier is not None and uses_classifier(blur_type):
        found = classify_image(slide, classifier)
        sev = found["severity"]
        estimate = BlurEstimate(blur_type or found["class"], dict(found["probabilities"]),
                                defocus_sigma_px=sev["defocus_sigma_px"], motion_length_px=sev["motion_length_px"],
                                motion_angle_deg=sev["motion_angle_deg"], defocus_um=sev["defocus_um"])
    else:
        estimate = BlurEstimate(blur_type)
    detected = blur_type is None
    ran = restorer_for_pixel_size(restorer, slide.mpp_source)
    with sfft.set_workers(usable_cpus()):  # one image at a time here: the guard's FFTs may use every core
        restored, reports = restore_slide_region(slide, estimate, ran, guard=guard, return_reports=True)
    stem = slide_stem(path)
    with StagedOutputs(out_dir, stem) as staged:  # no half-written PNG under the final name
        staged.path(f"{stem}.png").write_bytes(encode_png(restored))
        out = staged.commit([f"{stem}.png"])[0]
    result.update({"output": str(out), "class": estimate.label, "detected": detected, "restorer": ran.name,
                   "mpp": slide.mpp or WORKING_MPP, "mpp_source": slide.mpp_source, "guard": guard_counts(reports)})
    return result
