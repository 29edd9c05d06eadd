"""``<stem>.blurmap.csv``: one row per tissue tile, read back as a spreadsheet would."""

import csv

import numpy as np

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.report.tiles_csv import COLUMNS, write_tiles_csv
from wsi_deblur.tiling.grid import TileGrid


def test_rows_hold_each_tissue_tile_with_its_class_and_probabilities(tmp_path):
    grid = TileGrid((256, 768), tile_size=256, halo=16)
    is_tissue = np.array([[True, False, True]])
    blurmap = BlurMap(grid, np.where(is_tissue, 0.9, 0.0).astype(np.float32), is_tissue)
    blurmap.set_estimate((0, 0), BlurEstimate("mixed", {"in_focus": 0.02, "defocus": 0.38, "motion": 0.0,
                                                        "mixed": 0.60}, defocus_sigma_px=2.5, motion_length_px=12.0,
                                              motion_angle_deg=30.0))
    blurmap.set_estimate((0, 2), BlurEstimate("in_focus", {"in_focus": 0.97, "defocus": 0.03}))
    write_tiles_csv(tmp_path / "t.csv", blurmap)
    with open(tmp_path / "t.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COLUMNS
    assert [(r["row"], r["col"], r["x_px"], r["class"]) for r in rows] == [("0", "0", "0", "mixed"),
                                                                          ("0", "2", "512", "in_focus")]
    assert float(rows[0]["confidence"]) == 0.6 and float(rows[0]["blur_probability"]) == 0.98
    assert float(rows[1]["blur_probability"]) == 0.03
    assert float(rows[0]["motion_length_px"]) == 12.0 and float(rows[0]["motion_angle_deg"]) == 30.0
