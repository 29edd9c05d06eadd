"""The QC report in a real browser: headless Chromium driven by Playwright."""

from dataclasses import replace
import shutil

import pytest

from wsi_deblur.pipeline import RunOptions, process_batch
from wsi_deblur.report.html import COLUMNS
from wsi_deblur.synthetic import BlurRegion, SyntheticSlide

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium is not installed: apt-get install chromium (as .ci/run does)")

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    slides = []
    for name, blurred_cols in (("sharp", 0), ("some", 1), ("most", 3)):
        regions = [BlurRegion(0, 0, 512, 256 * blurred_cols, "defocus", defocus_sigma_px=3.5)] if blurred_cols else []
        slides.append(SyntheticSlide((512, 1024), regions, tissue=False, seed=2).write(
            folder / f"{name}.ome.tif", compression="deflate", tile=256))
    (folder / "broken.svs").write_text("not a slide")
    out = folder / "out"
    outcome = process_batch([*slides, folder / "broken.svs"], out, replace(SMALL, restore=False))
    assert len(outcome.results) == 3 and len(outcome.failures) == 1
    return out / "report.html"


def test_report_sorts_filters_and_shows_blur_maps(report, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        stems = lambda: page.eval_on_selector_all("#slides tbody tr:not([hidden])",  # noqa: E731
                                                  "rows => rows.map(r => r.dataset.stem)")
        assert stems() == ["most", "some", "broken.svs", "sharp"]  # worst first: rescan, failed, pass
        assert page.inner_text("#summary") == "4 slides: 2 rescan, 1 failed, 1 pass."
        why = page.eval_on_selector_all("#slides tbody tr",  # the column after the figures'
                                        f"rows => rows.map(r => r.cells[{len(COLUMNS)}].textContent)")
        assert why[0] == "75% of tissue blurred; rescan from 20%"
        assert why[2].startswith("failed: ") and why[3] == "0% of tissue blurred; review from 5%"
        links = page.eval_on_selector_all("#slides tbody tr:first-child a", "as => as.map(a => a.textContent)")
        assert links == ["qc.json", "tiles CSV", "GeoJSON", "blur map", "focus map"]  # qc: no pyramid was written
        with page.expect_navigation():
            page.click("#slides tbody tr:first-child a:has-text('qc.json')")
        assert page.url.endswith("/most.qc.json")
        page.go_back()

        page.click("th:has-text('Blurred % of tissue')")
        assert stems()[:3] == ["most", "some", "sharp"]  # descending; the failed slide (no value) last
        page.click("th:has-text('Blurred % of tissue')")
        assert stems()[:3] == ["sharp", "some", "most"]

        page.select_option("#verdict-filter", "rescan")
        assert stems() == ["some", "most"]  # 25% and 75% of tissue blurred, still sorted ascending
        assert page.is_hidden("#figure-sharp")
        page.select_option("#verdict-filter", "failed")
        assert stems() == ["broken.svs"]
        page.select_option("#verdict-filter", "all")

        widths = page.eval_on_selector_all("#figures img", "imgs => imgs.map(i => i.naturalWidth)")
        assert len(widths) == 3 and min(widths) > 0  # every blur map image loaded
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 10_000
    assert all(u.startswith("file:") for u in requests)  # no network resources


def test_a_large_batch_is_paged_and_sorted_across_pages(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    from wsi_deblur.report.html import PAGE_ROWS, write_report

    n = 2 * PAGE_ROWS + 200
    rows = [{"slide": f"/s/{i}.svs", "stem": f"s{i}", "status": "ok", "verdict": "review" if i % 2 else "pass",
             "blurred_fraction_of_tissue": (i * 7919 % n) / n, "tissue_tiles": 100} for i in range(n)]
    write_report(tmp_path / "report.html", rows)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto((tmp_path / "report.html").as_uri())
        visible = lambda: page.eval_on_selector_all("#slides tbody tr:not([hidden])",  # noqa: E731
                                                    "rows => rows.map(r => r.dataset.stem)")
        seen = []
        for expected in (PAGE_ROWS, PAGE_ROWS, 200):
            assert len(visible()) == expected
            seen += visible()
            if expected == 200:
                assert page.is_disabled("#next-page")
            else:
                page.click("#next-page")
        assert len(set(seen)) == n  # every slide on exactly one page
        assert page.inner_text("#page-rows") == f"rows {2 * PAGE_ROWS + 1}-{n} of {n}"
        page.click("th:has-text('Blurred % of tissue')")  # descending, over all pages, back to the first
        first = visible()
        assert len(first) == PAGE_ROWS and first[0] == max(rows, key=lambda r: r["blurred_fraction_of_tissue"])["stem"]
        page.select_option("#verdict-filter", "review")
        assert len(visible()) == PAGE_ROWS and page.inner_text("#shown") == str(n // 2)
        assert all(int(s[1:]) % 2 for s in visible())
        static = browser.new_page(java_script_enabled=False)  # without the script: the whole table
        static.goto((tmp_path / "report.html").as_uri())
        laid_out = static.eval_on_selector_all("#slides tbody tr", "rows => rows.filter(r => r.offsetHeight).length")
        assert laid_out == n
        browser.close()
