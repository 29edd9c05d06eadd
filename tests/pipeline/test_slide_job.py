import json
from dataclasses import replace

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models import open_ome_zarr

from wsi_deblur.blurmap import LABEL_VALUES
from wsi_deblur.errors import SlideError
from wsi_deblur.io import open_slide
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.slide_job import process_slide, tile_grid

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff_compression="deflate")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, small_slide):
    out = tmp_path_factory.mktemp("run")
    return out, process_slide(small_slide, out, SMALL)


def test_run_writes_every_output_under_its_final_name(small_run):
    out, result = small_run
    assert sorted(p.name for p in out.iterdir()) == ["small.blurmap.csv", "small.blurmap.geojson", "small.blurmap.png",
                                                     "small.focus.png", "small.ome.tif", "small.ome.zarr",
                                                     "small.qc.json", "small.review"]
    assert sorted(p.name for p in result.outputs) == sorted(p.name for p in out.iterdir())
    assert result.outputs[-1].name == "small.qc.json"  # the commit point moves in last


def test_blurred_areas_are_found_and_restored(small_run, small_slide):
    out, result = small_run
    labels = result.blurmap.label
    assert labels[1, 1] == labels[1, 2] == LABEL_VALUES["defocus"]
    assert labels[2, 3] == LABEL_VALUES["motion"]
    assert (labels[0] == LABEL_VALUES["in_focus"]).all()
    level0 = zarr.open_group(str(out / "small.ome.zarr"), mode="r")["0"][:].transpose(1, 2, 0)
    original = open_slide(small_slide).read_region(0, 0, 1100, 1300)
    restored = result.blurmap.restore_mask()
    for i, j in np.ndindex(restored.shape):
        y0, x0 = i * 256, j * 256
        same = np.array_equal(level0[y0:y0 + 256, x0:x0 + 256], original[y0:y0 + 256, x0:x0 + 256])
        # in-focus tiles come through bit for bit (those not next to a restored tile's ramp)
        assert same != bool(restored[i, j]), (i, j)


def test_outputs_validate_and_agree(small_run):
    out, _ = small_run
    group = zarr.open_group(str(out / "small.ome.zarr"), mode="r")
    open_ome_zarr(group)
    labels = group["labels/blur/0"][0]
    with tifffile.TiffFile(out / "small.ome.tif") as tif:
        levels = tif.series[0].levels
        assert len(levels) == len([k for k in group.array_keys()])
        np.testing.assert_array_equal(levels[0].asarray(), group["0"][:].transpose(1, 2, 0))
    qc = json.loads((out / "small.qc.json").read_text())
    assert qc["width_px"] == 1300 and qc["height_px"] == 1100 and qc["mpp"] == 0.5 and qc["tile_size_px"] == 256
    assert qc["tissue_tiles"] == int((labels > 0).sum())
    assert sum(qc["blur_fractions_of_tissue"].values()) == pytest.approx(1.0)
    area = tile_grid(open_slide(out / "small.ome.zarr"), SMALL).area_share()  # shares of tissue area, not of tiles
    defocus = area[labels == LABEL_VALUES["defocus"]].sum() / area[labels > 0].sum()
    assert (labels == LABEL_VALUES["defocus"]).sum() == 2
    assert qc["blur_fractions_of_tissue"]["defocus"] == pytest.approx(defocus, abs=1e-5)
    assert {"settings", "versions", "timings_s"} <= qc.keys()


def test_qc_mode_writes_no_image(tmp_path, small_slide):
    process_slide(small_slide, tmp_path, replace(SMALL, restore=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.blurmap.csv", "small.blurmap.geojson",
                                                          "small.blurmap.png", "small.focus.png", "small.qc.json"]


def test_slide_without_blur_is_copied_bit_for_bit(tmp_path):
    from wsi_deblur.synthetic import SyntheticSlide

    path = SyntheticSlide((700, 900), seed=1).write(tmp_path / "sharp.ome.tif", compression="deflate", tile=256)
    result = process_slide(path, tmp_path / "out", SMALL)
    assert result.summary["restored_tiles"] == 0
    level0 = zarr.open_group(str(tmp_path / "out" / "sharp.ome.zarr"), mode="r")["0"][:]
    np.testing.assert_array_equal(level0.transpose(1, 2, 0), open_slide(path).read_region(0, 0, 700, 900))


def test_missing_pixel_size_is_a_clear_error_and_writes_nothing(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(tmp_path / "field.jpg")
    with pytest.raises(SlideError, match=r"field\.jpg: pixel size unknown.*--mpp"):
        process_slide(tmp_path / "field.jpg", tmp_path / "out", SMALL)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("mpp, halo", [(0.5, 64), (0.25, 128), (1.0, 64)])
def test_the_restore_halo_is_counted_in_working_pixels(tmp_path, mpp, halo):
    """The networks need 64 px of context at about 0.5 um/px: a 40x scan gets 128 of its own pixels."""
    tifffile.imwrite(tmp_path / "field.tif", np.full((600, 700, 3), 200, np.uint8), photometric="rgb",
                     resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    grid = tile_grid(open_slide(tmp_path / "field.tif"), RunOptions(halo=64))
    assert grid.halo == halo and grid.tile_size == 512


def test_every_restored_tile_has_the_guards_decision_in_csv_geojson_and_qc_json(small_run):
    import csv

    out, result = small_run
    restored = result.blurmap.restore_mask(min_confidence=SMALL.min_confidence)
    with open(out / "small.blurmap.csv", newline="") as f:
        rows = {(int(r["row"]), int(r["col"])): r for r in csv.DictReader(f)}
    for ij, row in rows.items():
        if restored[ij]:
            assert row["restoration"] in ("restorer", "pulled back")
            assert float(row["guard_consistency"]) >= 0
        else:
            assert row["restoration"] == "not restored" and row["guard_consistency"] == ""
    qc = json.loads((out / "small.qc.json").read_text())
    guard = qc["restoration_guard"]
    assert guard["tiles"]["restorer"] + guard["tiles"]["pulled back"] == qc["restored_tiles"] == int(restored.sum())
    assert guard["tiles"]["not recorded"] == 0 and guard["max_consistency"] is not None
    assert qc["settings"]["guard"] is True
    features = json.loads((out / "small.blurmap.geojson").read_text())["features"]
    assert sum(f["properties"]["measurements"]["restored_tiles"] for f in features) == qc["restored_tiles"]


def test_without_the_guard_the_restorers_output_is_kept(tmp_path, small_slide, small_run):
    from dataclasses import replace

    guarded_out, guarded = small_run
    result = process_slide(small_slide, tmp_path, replace(SMALL, guard=False, tiff=False))
    assert result.summary["restoration_guard"]["tiles"]["pulled back"] == 0
    assert result.summary["restoration_guard"]["max_consistency"] is None  # nothing checked
    assert result.summary["restoration_guard"]["capped_tiles"] == 0
    guard = guarded.summary["restoration_guard"]
    # the small slide's blur is the simulator's: the guard keeps fast's restorations, uncapped ...
    assert guard["tiles"]["pulled back"] == 0 and guard["capped_tiles"] == 0
    a = zarr.open_group(str(tmp_path / "small.ome.zarr"), mode="r")["0"][:]
    b = zarr.open_group(str(guarded_out / "small.ome.zarr"), mode="r")["0"][:]
    np.testing.assert_array_equal(a, b)  # ... and then changes no pixel


def test_a_fluorescence_slide_is_refused_with_one_line_and_no_outputs(tmp_path, small_slide_model):
    stained = small_slide_model.render(0, 0, 512, 768)
    dark = (255 - stained).astype(np.uint8) // 4  # bright nuclei on a black background, as DAPI
    path = tmp_path / "dapi.ome.tif"
    tifffile.imwrite(path, dark, photometric="rgb", tile=(256, 256), metadata={"axes": "YXS", "PhysicalSizeX": 0.5,
                                                                              "PhysicalSizeY": 0.5}, ome=True)
    with pytest.raises(SlideError, match=r"dapi.ome.tif: a dark background \(thumbnail median \d+ of 255\): a "
                                         "fluorescence scan, not brightfield; wsi-deblur reads brightfield slides"):
        process_slide(path, tmp_path / "out", SMALL)
    assert not (tmp_path / "out").exists() or not [p for p in (tmp_path / "out").iterdir()]


def test_a_tiff_whose_tiles_were_never_written_is_refused_as_holding_no_image(tmp_path):
    """A converter that died leaves tiles unwritten; they read as zero: not a fluorescence scan, no image."""
    path = tmp_path / "unwritten.tif"
    with tifffile.TiffWriter(path) as tif:  # the IFD and tile table, no tile data
        tif.write(shape=(1024, 1024, 3), dtype=np.uint8, tile=(256, 256), photometric="rgb",
                  resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    with pytest.raises(SlideError, match=r"unwritten.tif: no image: every pixel of its thumbnail is 0"):
        process_slide(path, tmp_path / "out", SMALL)
    assert not (tmp_path / "out").exists() or not [p for p in (tmp_path / "out").iterdir()]


def test_a_new_run_leaves_no_output_of_an_earlier_run_it_does_not_write(tmp_path, small_slide):
    process_slide(small_slide, tmp_path, replace(SMALL, tiff=True))
    assert (tmp_path / "small.ome.tif").exists() and (tmp_path / "small.review").exists()
    result = process_slide(small_slide, tmp_path, replace(SMALL, restore=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in result.outputs)


def test_a_sharp_field_one_pixel_past_a_tile_passes_slivers_weigh_their_area(tmp_path):
    """1025 x 1025 px at 0.25 um/px: the 1-px edge tiles are neither classified alone nor counted as whole."""
    from wsi_deblur.synthetic import SyntheticSlide

    path = SyntheticSlide((1025, 1025), tissue=False, seed=2).write(tmp_path / "field.ome.tif", mpp=0.25)
    result = process_slide(path, tmp_path / "out", RunOptions(restore=False))
    fractions = result.summary["blur_fractions_of_tissue"]
    assert result.summary["verdict"] == "pass", fractions
    assert fractions["in_focus"] > 0.99


def test_dense_dark_stained_tissue_is_not_taken_for_fluorescence(tmp_path, small_slide_model):
    """A field of dense H&E with no glass in view is dark (median near 50) but stained, not black."""
    from wsi_deblur.tissue import fluorescence_reason

    stained = small_slide_model.render(0, 0, 512, 768).astype(np.float64)
    dark = np.clip(stained * 0.3, 0, 255).astype(np.uint8)
    assert float(np.median(dark.mean(axis=2))) < 60
    assert fluorescence_reason(dark) is None
    dapi = ((255 - stained) // 4).astype(np.uint8)
    assert "fluorescence" in fluorescence_reason(dapi)


def test_mpp_is_for_files_without_one_unless_forced(tmp_path):
    """In a mixed folder `--mpp` must not silently change the pixel size of a file that has one."""
    from PIL import Image

    from wsi_deblur.synthetic import SyntheticSlide

    model = SyntheticSlide((512, 512), tissue=False, seed=4)
    with_mpp = model.write(tmp_path / "with.ome.tif", mpp=0.346)
    Image.fromarray(model.render(0, 0, 512, 512)).save(tmp_path / "without.png")
    options = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, restore=False, mpp=0.5)
    assert process_slide(with_mpp, tmp_path / "a", options).summary["mpp"] == 0.346
    assert process_slide(tmp_path / "without.png", tmp_path / "b", options).summary["mpp"] == 0.5
    assert process_slide(with_mpp, tmp_path / "c", replace(options, force_mpp=True)).summary["mpp"] == 0.5
