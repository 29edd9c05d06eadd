"""``OUT/report.html``: one static page for QC staff to decide what to rescan.

A table of slides (sortable by any column, filterable by verdict) and, for each
slide, its thumbnail with the blur overlay and legend. No network resources:
styles and script are inline, images are the ``<stem>.blurmap.png`` files
beside the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wsi_deblur.report.verdict import VERDICTS
from wsi_deblur.write.location import write_text_atomic

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
[hidden]{display:none !important}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3;cursor:pointer;user-select:none}
th.sorted-asc::after{content:" \\25B2"} th.sorted-desc::after{content:" \\25BC"}
td.name,th.name{text-align:left}
.verdict{font-weight:bold;padding:1px 6px;border-radius:4px}
.pass{background:#d9f2dd}.review{background:#fff0c2}.rescan{background:#f8d0cc}.failed{background:#ddd}
figure{display:inline-block;margin:0 1em 1.5em 0;vertical-align:top}
figure img{max-width:520px;border:1px solid #aaa}
"""

SCRIPT = """
const table = document.getElementById('slides');
const body = table.tBodies[0];
function applyFilter() {
  const want = document.getElementById('verdict-filter').value;
  for (const row of body.rows) {
    const show = want === 'all' || row.dataset.verdict === want;
    row.hidden = !show;
    const fig = document.getElementById('figure-' + row.dataset.stem);
    if (fig) fig.hidden = !show;
  }
  document.getElementById('shown').textContent = [...body.rows].filter(r => !r.hidden).length;
}
function sortBy(th) {
  const col = th.cellIndex, numeric = th.dataset.type === 'number';
  const desc = !th.classList.contains('sorted-desc');
  for (const h of table.tHead.rows[0].cells) h.classList.remove('sorted-asc', 'sorted-desc');
  th.classList.add(desc ? 'sorted-desc' : 'sorted-asc');
  const key = r => { const v = r.cells[col].dataset.value; return numeric ? parseFloat(v) : v; };
  const rows = [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (numeric && isNaN(x) !== isNaN(y)) return isNaN(x) ? 1 : -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
  });
  rows.forEach(r => body.appendChild(r));
}
for (const th of table.tHead.rows[0].cells) th.addEventListener('click', () => sortBy(th));
document.getElementById('verdict-filter').addEventListener('change', applyFilter);
applyFilter();
"""

COLUMNS = (  # header, row key, type, format
    ("Slide", "stem", "text", "{}"),
    ("Verdict", "verdict", "text", "{}"),
    ("Blurred % of tissue", "blurred_fraction_of_tissue", "number", "{:.1%}"),
    ("Defocus %", "defocus", "number", "{:.1%}"),
    ("Motion %", "motion", "number", "{:.1%}"),
    ("Mixed %", "mixed", "number", "{:.1%}"),
    ("Tissue % of slide", "tissue_fraction", "number", "{:.1%}"),
    ("Tissue tiles", "tissue_tiles", "number", "{}"),
    ("Mean defocus sigma (um)", "mean_defocus_sigma_um", "number", "{:.2f}"),
)


def _verdict(row: dict[str, Any]) -> str:
    """The row's verdict if it is one of ours, else ``failed`` (a tampered qc.json cannot inject markup)."""
    value = row.get("verdict")
    return value if value in VERDICTS else "failed"


def _cell(row: dict[str, Any], key: str, kind: str, fmt: str) -> str:
    value = row.get(key, "")
    if key == "stem" and not value:
        value = Path(str(row.get("slide", ""))).name
    if key == "verdict":
        v = _verdict(row)
        return f'<td class="name" data-value="{v}"><span class="verdict {v}">{v}</span></td>'
    if value in ("", None):
        return '<td data-value="NaN"></td>' if kind == "number" else '<td class="name" data-value=""></td>'
    text = fmt.format(value)
    cls = ' class="name"' if kind == "text" else ""
    return f'<td{cls} data-value="{html.escape(str(value))}">{html.escape(text)}</td>'


def render_report(rows: Sequence[dict[str, Any]], *, title: str = "wsi-deblur QC report") -> str:
    """The report page for qc.csv ``rows`` (see :mod:`wsi_deblur.report.batch_csv`)."""
    head = "".join(f'<th class="{"name" if kind == "text" else ""}" data-type="{kind}">{html.escape(h)}</th>'
                   for h, _, kind, _ in COLUMNS) + '<th class="name" data-type="text">Error</th>'
    body, figures = [], []
    for row in rows:
        stem = html.escape(str(row.get("stem") or Path(str(row.get("slide", ""))).name))
        verdict = _verdict(row)
        cells = "".join(_cell(row, key, kind, fmt) for _, key, kind, fmt in COLUMNS)
        error = html.escape(str(row.get("error", "")))
        body.append(f'<tr data-verdict="{verdict}" data-stem="{stem}">{cells}'
                    f'<td class="name" data-value="{error}">{error}</td></tr>')
        if row.get("status") == "ok":
            image = html.escape(quote(f"{row.get('stem') or ''}.blurmap.png"))
            figures.append(f'<figure id="figure-{stem}"><img src="{image}" alt="blur map of {stem}">'
                           f'<figcaption>{stem}: <span class="verdict {verdict}">{verdict}</span>, '
                           f'{row["blurred_fraction_of_tissue"]:.1%} of tissue blurred</figcaption></figure>')
    options = "".join(f'<option value="{v}">{v}</option>' for v in ("all", "pass", "review", "rescan", "failed"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{len(rows)} slides. Blur is measured as a share of <em>tissue</em> tiles. Click a column to sort.
<label>Show verdict <select id="verdict-filter">{options}</select></label> (<span id="shown"></span> shown)</p>
<table id="slides"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
<h2>Blur maps</h2>
<div id="figures">{chr(10).join(figures)}</div>
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> None:
    """Write the report atomically."""
    write_text_atomic(path, render_report(rows))
