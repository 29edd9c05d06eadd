"""``OUT/qc.csv``: one row per slide of a batch, failed slides included."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Any

from wsi_deblur.write.location import write_text_atomic

COLUMNS = ("slide", "stem", "status", "verdict", "blurred_fraction_of_tissue", "in_focus", "defocus", "motion",
           "mixed", "tissue_fraction", "tissue_tiles", "restored_tiles", "mean_defocus_sigma_um",
           "mean_motion_length_um", "max_defocus_sigma_um", "max_motion_length_um", "focus_worst_um",
           "focus_tilt_um_per_mm", "width_px", "height_px", "mpp",
           "seconds", "error")


def summary_row(summary: dict[str, Any]) -> dict[str, Any]:
    """A qc.csv row from a slide's qc.json document."""
    fractions = summary["blur_fractions_of_tissue"]
    severity = summary.get("severity", {})
    defocus = severity.get("defocus_sigma_um") or {}
    motion = severity.get("motion_length_um") or {}
    return {
        "slide": summary["slide"], "stem": summary["stem"], "status": "ok", "verdict": summary["verdict"],
        "blurred_fraction_of_tissue": summary["blurred_fraction_of_tissue"], **fractions,
        "tissue_fraction": summary["tissue_fraction"], "tissue_tiles": summary["tissue_tiles"],
        "restored_tiles": summary["restored_tiles"], "mean_defocus_sigma_um": defocus.get("mean", ""),
        "mean_motion_length_um": motion.get("mean", ""), "max_defocus_sigma_um": defocus.get("max", ""),
        "max_motion_length_um": motion.get("max", ""),
        "focus_worst_um": (summary.get("focus_surface") or {}).get("worst_um", ""),
        "focus_tilt_um_per_mm": (summary.get("focus_surface") or {}).get("tilt_um_per_mm", ""),
        "width_px": summary["width_px"],
        "height_px": summary["height_px"], "mpp": summary["mpp"], "seconds": summary["timings_s"].get("total", ""),
        "error": "",
        # for the report, not columns: what it shows and links without looking on disk
        "review_crops": [c["file"] for c in summary.get("review_crops", [])], "outputs": list(summary["outputs"]),
    }


def failure_row(slide: str, error: str) -> dict[str, Any]:
    return {"slide": slide, "status": "failed", "error": error}


#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    r"""A text cell a spreadsheet would evaluate (``=1+2``, ``@SUM(...)``), quoted with ``'``; others unchanged.

    Examples
    --------
    >>> spreadsheet_safe("=HYPERLINK(\"http://x\")"), spreadsheet_safe("slide-1.svs"), spreadsheet_safe(-0.5)
    ('\'=HYPERLINK("http://x")', 'slide-1.svs', -0.5)
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_batch_csv(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> None:
    """Write ``rows`` atomically (a temporary file renamed into place), text cells made spreadsheet-safe."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=COLUMNS, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in rows)
    write_text_atomic(path, text.getvalue())
