"""``<stem>.qc.json``: what QC staff and scripts read about one slide."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from wsi_deblur.blurmap import BlurMap
from wsi_deblur.report.verdict import VerdictThresholds, blurred_fraction, severity_statistics, verdict
from wsi_deblur.write.location import output_path

VERSIONED_PACKAGES = ("wsi-deblur", "numpy", "dask", "distributed", "zarr", "tifffile", "openslide-python",
                      "openslide-bin", "torch", "scikit-image")


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the result."""
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True)
class SlideFacts:
    """What qc.json says of the slide file: its path, output stem, size (pixels), pixel size, levels, reader."""

    path: str
    stem: str
    shape: tuple[int, int]
    mpp: float
    n_levels: int
    reader: str


@dataclass(frozen=True)
class RunRecord:
    """What qc.json says of the run of one slide.

    Attributes
    ----------
    tissue_area_fraction : float
    restored_tiles : int
    timings_s : dict
    outputs : list of str
        File names relative to the output folder.
    resumed : dict, optional
        What an interrupted earlier run had finished and was reused (None for a run from scratch).
    models : dict, optional
        The weights file each network loaded (:func:`wsi_deblur.nets.files.weights_record`: shipped or
        adapted, path, sha256).
    review_crops : list of dict, optional
        The before/after crops written (:func:`wsi_deblur.report.review.write_review_crops`; file relative
        to the output folder).
    focus_surface : dict, optional
        The slide's focus surface (:meth:`wsi_deblur.report.focus_surface.FocusSurface.summary`).
    """

    tissue_area_fraction: float
    restored_tiles: int
    timings_s: dict[str, float]
    outputs: list[str]
    resumed: dict[str, Any] | None = None
    models: dict[str, dict[str, str]] | None = None
    review_crops: list[dict[str, Any]] | None = None
    focus_surface: dict[str, Any] | None = None


def qc_summary(slide: SlideFacts, blurmap: BlurMap, run: RunRecord, *, thresholds: VerdictThresholds,
               settings: dict[str, Any]) -> dict[str, Any]:
    """The qc.json document of one slide (sizes in pixels, mpp in micrometres)."""
    (h, w), mpp, grid = slide.shape, slide.mpp, blurmap.grid
    restored_tiles = run.restored_tiles
    return {
        "slide": slide.path,
        "stem": slide.stem,
        "width_px": w,
        "height_px": h,
        "levels_in_slide": slide.n_levels,
        "mpp": mpp,
        "reader": slide.reader,
        "tile_size_px": grid.tile_size,
        "tile_size_um": grid.tile_size * mpp,
        "tiles": int(blurmap.is_tissue.size),
        "tissue_tiles": int(blurmap.is_tissue.sum()),
        "tissue_fraction": round(float(run.tissue_area_fraction), 6),
        "verdict": verdict(blurmap, thresholds),
        "verdict_thresholds": thresholds.as_dict(),
        "blurred_fraction_of_tissue": round(blurred_fraction(blurmap), 6),
        "blur_fractions_of_tissue": {k: round(v, 6) for k, v in blurmap.class_fractions().items()},
        "severity": severity_statistics(blurmap, mpp),
        "restored_tiles": int(restored_tiles),
        "restoration_guard": blurmap.guard_summary() if restored_tiles else None,
        "settings": settings,
        "models": run.models or {},
        "timings_s": {k: round(v, 3) for k, v in run.timings_s.items()},
        "outputs": run.outputs,
        "review_crops": run.review_crops or [],
        "focus_surface": run.focus_surface,
        "resumed": run.resumed,
        "versions": package_versions(),
    }


def write_qc_json(path: str | os.PathLike, summary: dict[str, Any]) -> None:
    output_path(path).write_text(json.dumps(summary, indent=2) + "\n")
