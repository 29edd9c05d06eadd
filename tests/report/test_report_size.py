"""report.html stays openable with tens of thousands of slides: the gallery and its inline crops are capped."""

import re

from wsi_deblur.report.html import GALLERY_SLIDES, INLINE_CROP_SLIDES, render_report


def rows(n):
    return [{"slide": f"/s/{i}.svs", "stem": f"s{i}", "status": "ok", "verdict": "review",
             "blurred_fraction_of_tissue": i / n, "tissue_tiles": 100,
             "review_crops": [f"s{i}.review/tile-r0-c{k}.png" for k in range(4)]} for i in range(n)]


def test_the_worst_slides_get_the_gallery_and_every_slide_its_table_row():
    n = GALLERY_SLIDES + 300
    page = render_report(rows(n))
    figures = re.findall(r'<figure id="figure-(s\d+)"', page)
    assert len(figures) == GALLERY_SLIDES and figures[0] == f"s{n - 1}"  # the most blurred first
    assert page.count('<tr data-verdict="review"') == n  # the table keeps every slide
    assert page.count('class="crop"') == 4 * INLINE_CROP_SLIDES  # later figures link to their crops
    assert f"the blur maps of the other {n - GALLERY_SLIDES} are linked from the table" in page


def test_a_small_batch_shows_everything():
    page = render_report(rows(3))
    assert page.count("<figure") == 3 and page.count('class="crop"') == 12 and "linked from the table" not in page


def test_what_qc_json_lists_is_linked_without_looking_on_disk(tmp_path):
    (tmp_path / "b.ome.zarr").mkdir()
    listed = {"slide": "/s/a.svs", "stem": "a", "status": "ok", "verdict": "pass", "blurred_fraction_of_tissue": 0,
              "tissue_tiles": 50, "outputs": ["a.qc.json", "a.ome.zarr"]}
    unlisted = {**listed, "slide": "/s/b.svs", "stem": "b"}
    del unlisted["outputs"]
    page = render_report([listed, unlisted], folder=tmp_path)
    assert 'href="a.ome.zarr"' in page and 'href="a.qc.json"' in page and 'href="a.blurmap.csv"' not in page
    assert 'href="b.ome.zarr"' in page and 'href="b.qc.json"' not in page  # the row without a list: the folder says
