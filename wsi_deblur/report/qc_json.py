"""``<stem>.qc.json``: what QC staff and scripts read about one slide."""

from __future__ import annotations

import json
import os
import platform
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


def qc_summary(*, slide_path: str, stem: str, shape: tuple[int, int], mpp: float, n_levels: int,
               backend: str, blurmap: BlurMap, tissue_area_fraction: float, restored_tiles: int,
               thresholds: VerdictThresholds, settings: dict[str, Any], timings_s: dict[str, float],
               outputs: list[str], resumed: dict[str, Any] | None = None,
               models: dict[str, dict[str, str]] | None = None,
               review_crops: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The qc.json document of one slide (sizes in pixels, mpp in micrometres).

    ``resumed``: what an interrupted earlier run had finished and was reused
    (``None`` for a run from scratch). ``models``: the weights file each
    network loaded (:func:`wsi_deblur.nets.files.weights_record`: shipped or
    adapted, path, sha256). ``review_crops``: the before/after crops written
    (:func:`wsi_deblur.report.review.write_review_crops`; file relative to the output folder).
    """
    h, w = shape
    grid = blurmap.grid
    return {
        "slide": slide_path,
        "stem": stem,
        "width_px": w,
        "height_px": h,
        "levels_in_slide": n_levels,
        "mpp": mpp,
        "reader": backend,
        "tile_size_px": grid.tile_size,
        "tile_size_um": grid.tile_size * mpp,
        "tiles": int(blurmap.is_tissue.size),
        "tissue_tiles": int(blurmap.is_tissue.sum()),
        "tissue_fraction": round(float(tissue_area_fraction), 6),
        "verdict": verdict(blurmap, thresholds),
        "verdict_thresholds": thresholds.as_dict(),
        "blurred_fraction_of_tissue": round(blurred_fraction(blurmap), 6),
        "blur_fractions_of_tissue": {k: round(v, 6) for k, v in blurmap.class_fractions().items()},
        "severity": severity_statistics(blurmap, mpp),
        "restored_tiles": int(restored_tiles),
        "restoration_guard": blurmap.guard_summary() if restored_tiles else None,
        "settings": settings,
        "models": models or {},
        "timings_s": {k: round(v, 3) for k, v in timings_s.items()},
        "outputs": outputs,
        "review_crops": review_crops or [],
        "resumed": resumed,
        "versions": package_versions(),
    }


def write_qc_json(path: str | os.PathLike, summary: dict[str, Any]) -> None:
    output_path(path).write_text(json.dumps(summary, indent=2) + "\n")
