"""``<stem>.blurmap.csv``: one row per tissue tile, for spreadsheets and pandas.

``restoration`` says what was done with the tile: ``not restored``,
``restorer`` (the network's output agreed with the optics and was kept),
``pulled back`` (it did not; the output is the input plus the share of the correction that does) or
``not recorded`` (restored by an interrupted earlier run); ``guard_consistency``
is the consistency guard's measure for it (at most 1: the restoration, blurred
again, explains the tile as well as the tile explains itself;
:mod:`wsi_deblur.restore.guard`); ``focus_surface_um`` the slide's focus
surface there (um from focus; :mod:`wsi_deblur.report.focus_surface`).
"""

from __future__ import annotations

import csv
import os

import numpy as np

from wsi_deblur.blurmap import GUARD_ACTIONS, BlurMap
from wsi_deblur.write.location import output_path

COLUMNS = ("row", "col", "x_px", "y_px", "width_px", "height_px", "tissue_fraction", "class", "confidence",
           "blur_probability", "defocus_sigma_px", "motion_length_px", "motion_angle_deg", "restoration",
           "guard_consistency", "focus_surface_um")


def write_tiles_csv(path: str | os.PathLike, blurmap: BlurMap, focus_um: np.ndarray | None = None) -> None:
    """Write the tissue tiles of ``blurmap`` (level-0 pixel coordinates).

    ``focus_um``: the slide's focus surface per tile (:mod:`wsi_deblur.report.focus_surface`), if fitted.
    """
    grid = blurmap.grid
    with output_path(path).open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        rows, cols = grid.grid_shape
        for i in range(rows):
            for j in range(cols):
                if not blurmap.is_tissue[i, j]:
                    continue
                y0, x0, y1, x1 = grid.tile_bounds(i, j)
                est = blurmap.estimate((i, j))
                out.writerow([i, j, x0, y0, x1 - x0, y1 - y0, f"{blurmap.tissue_fraction[i, j]:.3f}", est.label,
                              f"{est.confidence:.4f}", f"{est.blur_probability:.4f}", f"{est.defocus_sigma_px:.3f}",
                              f"{est.motion_length_px:.3f}", f"{est.motion_angle_deg:.1f}",
                              GUARD_ACTIONS[blurmap.guard_action[i, j]], _consistency(blurmap.guard_consistency[i, j]),
                              "" if focus_um is None else _consistency(focus_um[i, j])])


def _consistency(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.4f}"
