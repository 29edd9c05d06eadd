"""Before/after crops of the most blurred restored tiles: the right tiles, the real pixels, shown in the report."""

from dataclasses import replace
import json

import numpy as np
import pytest
import zarr
from PIL import Image

from wsi_deblur.blurmap import LABEL_VALUES
from wsi_deblur.io import open_slide
from wsi_deblur.pipeline import RunOptions, process_batch
from wsi_deblur.report.review import SHOWN_PX, blur_extent_um, review_crop, worst_restored_tiles

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, small_slide):
    out = tmp_path_factory.mktemp("review")
    outcome = process_batch([small_slide], out, SMALL)
    return out, outcome.results[0]


def test_the_crops_are_the_most_blurred_restored_tiles(batch):
    out, result = batch
    blurmap = result.blurmap
    restored = blurmap.restore_mask()
    crops = result.summary["review_crops"]
    assert 0 < len(crops) <= min(4, int(restored.sum()))
    extent = blur_extent_um(blurmap, 0.5)
    chosen = [tuple(c["tile"]) for c in crops]
    assert all(restored[ij] for ij in chosen)
    assert [extent[ij] for ij in chosen] == sorted((extent[ij] for ij in chosen), reverse=True)
    left_out = [extent[tuple(ij)] for ij in np.argwhere(restored) if tuple(ij) not in chosen]
    assert not left_out or min(extent[ij] for ij in chosen) >= max(left_out)
    assert {LABEL_VALUES["defocus"], LABEL_VALUES["motion"]} >= {int(blurmap.label[ij]) for ij in chosen}


def test_each_crop_shows_the_scan_and_the_restored_pyramid_side_by_side(batch, small_slide):
    out, result = batch
    slide = open_slide(small_slide)
    level0 = zarr.open_group(str(out / "small.ome.zarr"), mode="r")["0"]
    for crop in result.summary["review_crops"]:
        i, j = crop["tile"]
        png = np.asarray(Image.open(out / crop["file"]).convert("RGB"))
        head = png.shape[0] - SHOWN_PX
        before = slide.read_region(i * 256, j * 256, 256, 256)  # 128 um at 0.5 um/px: the whole 256-px tile
        after = np.moveaxis(level0[:, i * 256:(i + 1) * 256, j * 256:(j + 1) * 256], 0, -1)
        np.testing.assert_array_equal(png[head:, :SHOWN_PX], before)
        np.testing.assert_array_equal(png[head:, -SHOWN_PX:], after)
        assert not np.array_equal(before, after)  # it was restored
        assert crop["caption"].startswith(f"tile (row {i}, col {j}): ")


def test_qc_json_lists_the_crops_and_the_report_shows_them(batch):
    out, result = batch
    qc = json.loads((out / "small.qc.json").read_text())
    assert qc["review_crops"] == result.summary["review_crops"] and "small.review" in qc["outputs"]
    page = (out / "report.html").read_text()
    for crop in qc["review_crops"]:
        assert f'src="{crop["file"]}"' in page
    assert "review_crops" not in (out / "qc.csv").read_text()  # the table keeps its columns


def test_a_qc_run_writes_no_crops(tmp_path, small_slide):
    outcome = process_batch([small_slide], tmp_path, replace(SMALL, restore=False))
    assert outcome.results[0].summary["review_crops"] == [] and not (tmp_path / "small.review").exists()


def test_an_edge_crop_keeps_its_shape():
    before = np.zeros((100, 256, 3), np.uint8)
    image = review_crop(before, before + 255, "edge tile")
    head = image.size[1] - SHOWN_PX
    assert image.size[0] == 2 * SHOWN_PX + 6 and head > 0
    pixels = np.asarray(image)
    assert (pixels[head:head + 100, :SHOWN_PX] == 0).all()  # not stretched: 100 rows of the scan, white below
    assert (pixels[head + 101:, :SHOWN_PX] == 255).all()


def test_no_restored_tiles_no_crops():
    from wsi_deblur.blurmap import BlurMap
    from wsi_deblur.tiling.grid import TileGrid

    bm = BlurMap(TileGrid((512, 512), tile_size=256, halo=0), np.ones((2, 2), np.float32), np.ones((2, 2), bool))
    assert worst_restored_tiles(bm, np.zeros((2, 2), bool), mpp=0.5) == []


def test_the_crops_load_in_chromium(batch, tmp_path):
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed: apt-get install chromium (as .ci/run does)")
    playwright = pytest.importorskip("playwright.sync_api")
    out, result = batch
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto((out / "report.html").as_uri())
        page.eval_on_selector_all("img.crop", "imgs => imgs.forEach(i => i.scrollIntoView())")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        widths = page.eval_on_selector_all("img.crop", "imgs => imgs.map(i => i.naturalWidth)")
        assert widths == [2 * SHOWN_PX + 6] * len(result.summary["review_crops"])
        page.screenshot(path=str(tmp_path / "report-with-crops.png"), full_page=True)
        browser.close()
