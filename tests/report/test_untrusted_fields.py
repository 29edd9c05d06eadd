"""Fields that come from files in OUT (a qc.json anyone could edit) reach the report and qc.csv inert."""

import csv

from wsi_deblur.report.batch_csv import write_batch_csv
from wsi_deblur.report.html import render_report

TAMPERED = {"slide": "a#b?c%d.svs", "stem": "a#b?c%d", "status": "ok",
            "verdict": '"><script>alert(1)</script>', "blurred_fraction_of_tissue": 0.1, "error": ""}


def test_a_tampered_verdict_cannot_inject_markup_into_the_report():
    page = render_report([TAMPERED])
    assert "<script>alert(1)" not in page
    assert 'data-verdict="failed"' in page  # not one of ours: shown as failed
    assert 'src="a%23b%3Fc%25d.blurmap.png"' in page  # the image link URL-encoded


def test_cells_a_spreadsheet_would_evaluate_are_quoted(tmp_path):
    path = tmp_path / "qc.csv"
    write_batch_csv(path, [{"slide": "=1+2", "stem": "@SUM(A1)", "status": "failed", "error": "-bad", "mpp": -0.5},
                           {"slide": "ok.svs", "stem": "ok", "status": "ok", "mpp": 0.5}])
    rows = list(csv.DictReader(open(path, newline="")))
    assert [rows[0][k] for k in ("slide", "stem", "error", "mpp")] == ["'=1+2", "'@SUM(A1)", "'-bad", "-0.5"]
    assert rows[1]["slide"] == "ok.svs"
