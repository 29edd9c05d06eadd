"""The focus surface: a known tilt is found through wrong tiles, and every output says it."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from wsi_deblur.blur.classes import LABEL_VALUES
from wsi_deblur.blur.estimated_psf import sigma_px_for_defocus
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.report.focus_surface import fit_focus_surface, tile_defocus_um, write_focus_png
from wsi_deblur.tiling.grid import TileGrid

MPP = 0.25


def tilted(rows=8, cols=10, tilt_um_per_mm=1.5):
    """Every tile defocused by 1 um plus ``tilt`` um per mm of x (tiles of 512 px at 0.25 um: 0.128 mm)."""
    grid = TileGrid((rows * 512, cols * 512), tile_size=512, halo=0)
    bm = BlurMap(grid, np.ones(grid.grid_shape, np.float32), np.ones(grid.grid_shape, bool))
    x_mm = (np.arange(cols) + 0.5) * 0.128
    truth = np.broadcast_to(1.0 + tilt_um_per_mm * x_mm, grid.grid_shape)
    bm.label[:] = LABEL_VALUES["defocus"]
    bm.defocus_sigma_px[:] = np.vectorize(lambda z: sigma_px_for_defocus(z, MPP))(truth)
    return bm, truth


def test_a_tilted_slide_gives_its_tilt_and_worst_side_through_wrong_tiles():
    bm, truth = tilted()
    bm.defocus_sigma_px[2, 3] = bm.defocus_sigma_px[5, 7] = 40.0  # two wildly wrong tiles
    bm.label[0, 0] = LABEL_VALUES["motion"]  # says nothing of focus
    s = fit_focus_surface(bm, MPP)
    summary = s.summary()
    assert summary["model"] == "quadratic" and summary["tiles"] == truth.size - 1
    assert summary["tilt_um_per_mm"] == pytest.approx(1.5, rel=0.1)
    assert summary["tilt_direction_deg"] == pytest.approx(0.0, abs=5.0)  # growing towards +x
    assert summary["worst_tile"][1] == truth.shape[1] - 1
    assert np.nanmax(np.abs(s.per_tile_um - truth)) < 0.25  # the wrong tiles do not pull it


def test_few_tiles_get_a_plane_or_a_constant_and_no_focus_tile_gets_none():
    bm, _ = tilted(rows=1, cols=5)
    assert fit_focus_surface(bm, MPP).model == "plane"
    bm.is_tissue[:, 2:] = False
    assert fit_focus_surface(bm, MPP).model == "constant"
    bm.label[:] = LABEL_VALUES["motion"]
    assert fit_focus_surface(bm, MPP) is None
    assert np.isnan(tile_defocus_um(bm, MPP)).all()


def test_the_map_png_has_a_cell_per_tile(tmp_path):
    bm, _ = tilted(rows=3, cols=40)
    write_focus_png(tmp_path / "f.png", fit_focus_surface(bm, MPP), cell=8)
    image = np.asarray(Image.open(tmp_path / "f.png"))
    assert image.shape == (3 * 8 + 20, 40 * 8, 3)  # a title row above
    assert image[20 + 4, 4, 1] > image[20 + 4, 40 * 8 - 4, 1]  # redder where the defocus is worse


def test_a_run_reports_the_surface_in_qc_json_the_csv_and_the_report(tmp_path, small_slide):
    from wsi_deblur.pipeline.batch import process_batch
    from wsi_deblur.pipeline.options import RunOptions

    options = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False, restore=False)
    process_batch([small_slide], tmp_path, options)
    summary = json.loads((tmp_path / "small.qc.json").read_text())
    surface = summary["focus_surface"]
    assert surface["tiles"] > 0 and surface["range_um"][1] >= surface["range_um"][0] >= 0
    assert "small.focus.png" in summary["outputs"] and (tmp_path / "small.focus.png").is_file()
    with open(tmp_path / "small.blurmap.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["focus_surface_um"] != "" for r in rows)
    with open(tmp_path / "qc.csv") as f:
        assert float(next(csv.DictReader(f))["focus_worst_um"]) == surface["worst_um"]
    assert "focus map" in (tmp_path / "report.html").read_text()
