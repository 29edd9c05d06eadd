"""``OUT/report.html``: one static page for QC staff to decide what to rescan.

The batch's counts per verdict and the thresholds in force; a table of
slides, worst first (rescan, review, failed, pass; the most blurred first),
sortable by any column and filterable by verdict, a page of 500 rows at a
time (the whole table without JavaScript), each with the reason for its
verdict in words and links to its outputs; and each slide's thumbnail
with the blur overlay and legend, full size on a click. No network
resources: styles and script are inline, images and links are the files
beside the page.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wsi_deblur.report.verdict import VERDICTS, VerdictThresholds
from wsi_deblur.write.location import output_path, write_text_atomic
from wsi_deblur.write.outputs import SlideOutputs

#: The order of the table when the page opens: what needs action first.
WORST_FIRST = {"rescan": 0, "review": 1, "failed": 2, "pass": 3}
#: A slide's outputs the table links to (those that exist beside the page).


#: Slides (worst first) whose blur maps the page shows, and of those, whose before/after crops it shows as
#: images (later ones link to them); every slide's blur map is linked from the table. Tens of thousands of
#: images in one page take Chromium half a minute to open, even loaded lazily.
GALLERY_SLIDES, INLINE_CROP_SLIDES = 2000, 500
#: Table rows per page (all of them without JavaScript).
PAGE_ROWS = 500

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
figure img.crop{width:256px;margin:2px}
.crops{max-width:530px;font-size:90%;margin-top:4px}
"""

SCRIPT = """
const table = document.getElementById('slides');
const body = table.tBodies[0];
const PAGE_ROWS = Number(table.dataset.pageRows);
let page = 0;
// Rows of the chosen verdict, a page of them at a time (hidden rows cost the browser no layout: 20000
// rows open in about a second this way, in five when all are laid out); figures follow the verdict only.
function show() {
  const want = document.getElementById('verdict-filter').value;
  let matching = 0;
  for (const row of body.rows) {
    const match = want === 'all' || row.dataset.verdict === want;
    row.hidden = !match || matching < page * PAGE_ROWS || matching >= (page + 1) * PAGE_ROWS;
    if (match) matching++;
    const fig = document.getElementById('figure-' + row.dataset.stem);
    if (fig) fig.hidden = !match;
  }
  const pages = Math.max(1, Math.ceil(matching / PAGE_ROWS));
  page = Math.min(page, pages - 1);
  document.getElementById('shown').textContent = matching;
  document.getElementById('pager').hidden = pages === 1;
  document.getElementById('page-rows').textContent =
    `rows ${Math.min(matching, page * PAGE_ROWS + 1)}-${Math.min(matching, (page + 1) * PAGE_ROWS)} of ${matching}`;
  document.getElementById('previous-page').disabled = page === 0;
  document.getElementById('next-page').disabled = page >= pages - 1;
}
function applyFilter() { page = 0; show(); }
document.getElementById('previous-page').addEventListener('click', () => { page--; show(); });
document.getElementById('next-page').addEventListener('click', () => { page++; show(); });
function sortBy(th) {
  const col = th.cellIndex, numeric = th.dataset.type === 'number';
  const desc = !th.classList.contains('sorted-desc');
  for (const h of table.tHead.rows[0].cells) h.classList.remove('sorted-asc', 'sorted-desc');
  th.classList.add(desc ? 'sorted-desc' : 'sorted-asc');
  const keyed = [...body.rows].map(r => {  // each key read once, not once per comparison
    const v = r.cells[col].dataset.value;
    return [numeric ? parseFloat(v) : v, r];
  });
  keyed.sort(([x], [y]) => {
    if (numeric && isNaN(x) !== isNaN(y)) return isNaN(x) ? 1 : -1;
    return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1);
  });
  const sorted = document.createDocumentFragment();
  for (const [, r] of keyed) sorted.appendChild(r);
  body.appendChild(sorted);
  page = 0;
  show();
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
    ("Restored tiles", "restored_tiles", "number", "{}"),
    ("Worst defocus sigma (um)", "max_defocus_sigma_um", "number", "{:.2f}"),
    ("Longest motion (um)", "max_motion_length_um", "number", "{:.1f}"),
    ("Focus: worst (um from focus)", "focus_worst_um", "number", "{:.1f}"),
    ("Focus tilt (um per mm)", "focus_tilt_um_per_mm", "number", "{:.2f}"),
)


def reason(row: dict[str, Any], thresholds: VerdictThresholds = VerdictThresholds()) -> str:
    """Why the row has its verdict, in words.

    Examples
    --------
    >>> reason({"verdict": "review", "blurred_fraction_of_tissue": 0.125, "tissue_tiles": 40})
    '12.5% of tissue blurred; review from 5%, rescan from 20%'
    >>> reason({"verdict": "rescan", "blurred_fraction_of_tissue": 0.75, "tissue_tiles": 40})
    '75% of tissue blurred; rescan from 20%'
    >>> reason({"status": "failed", "error": "not a slide"})
    'failed: not a slide'
    """
    verdict = _verdict(row)
    if verdict == "failed":
        return f"failed: {row.get('error', '')}"
    tiles = row.get("tissue_tiles")
    if tiles not in ("", None) and int(tiles) < thresholds.min_tissue_tiles:
        return f"{int(tiles)} tissue tiles: too little tissue to judge"
    share = float(row.get("blurred_fraction_of_tissue") or 0.0)
    review, rescan = f"review from {thresholds.review_fraction:.0%}", f"rescan from {thresholds.rescan_fraction:.0%}"
    limits = {"rescan": rescan, "review": f"{review}, {rescan}", "pass": review}[verdict]
    return f"{_percent(share)} of tissue blurred; {limits}"


def _percent(share: float) -> str:
    """A share as a percentage with as many decimals as it needs to be told from a threshold (12.5%, not 12%)."""
    text = f"{share:.1%}"
    return text.replace(".0%", "%")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


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


def _worst_first(row: dict[str, Any]) -> tuple:
    share = row.get("blurred_fraction_of_tissue")
    return WORST_FIRST[_verdict(row)], -(float(share) if share not in ("", None) else 0.0)


def _present(row: dict[str, Any], name: str, folder: Any) -> bool:
    """Whether output ``name`` (``<stem>.review/x.png``: under an output folder) of the row's slide is there.

    From the outputs its qc.json lists, when the row has them (no file system call: the report is written
    again after every slide of a batch); else by looking in ``folder`` (all of them when there is none).
    """
    listed = row.get("outputs")
    if isinstance(listed, (list, tuple)):
        return name.split("/", 1)[0] in listed
    return folder is None or (folder / name).exists()


def _links(row: dict[str, Any], folder: Any) -> str:
    """Links to the row's outputs that exist in ``folder`` (all of them when no folder is given)."""
    stem = str(row.get("stem") or "")
    if row.get("status") != "ok" or not stem:
        return ""
    names = SlideOutputs(stem).report_links()
    return " ".join(f'<a href="{html.escape(quote(name))}">{html.escape(label)}</a>' for label, name in names
                    if _present(row, name, folder))


def _review_crops(row: dict[str, Any], folder: Any, *, inline: bool = True) -> str:
    """The row's before/after crops (:mod:`wsi_deblur.report.review`) that exist, each linked full size;
    shown as images when ``inline``, else as links only.
    """
    crops = [str(c) for c in row.get("review_crops") or []
             if isinstance(c, str) and ".." not in c and _present(row, c, folder)]
    if not crops:
        return ""
    if not inline:
        links = " ".join(f'<a href="{html.escape(quote(c))}">{k}</a>' for k, c in enumerate(crops, start=1))
        return f'<div class="crops">Most blurred restored tiles, as scanned | restored: {links}</div>'
    images = "".join(f'<a href="{html.escape(quote(c))}"><img class="crop" loading="lazy" '
                     f'src="{html.escape(quote(c))}" alt="before and after restoration: {html.escape(c)}"></a>'
                     for c in crops)
    return (f'<div class="crops">Most blurred restored tiles, as scanned | restored (click for full size):<br>'
            f'{images}</div>')


def _table_row(row: dict[str, Any], stem: str, why: str, where, *, hidden: bool) -> str:
    """One slide's row of the table (a later page's rows hidden: the page's script shows them)."""
    cells = "".join(_cell(row, key, kind, fmt) for _, key, kind, fmt in COLUMNS)
    return (f'<tr data-verdict="{_verdict(row)}" data-stem="{stem}"{" hidden" if hidden else ""}>{cells}'
            f'<td class="name" data-value="{why}">{why}</td>'
            f'<td class="name" data-value="">{_links(row, where)}</td></tr>')


def _figure(row: dict[str, Any], stem: str, why: str, where, *, inline: bool) -> str:
    """One slide's blur map in the gallery, with its review crops (as images when ``inline``, else links)."""
    verdict = _verdict(row)
    image = html.escape(quote(SlideOutputs(row.get("stem") or "").blurmap_png))
    crops = _review_crops(row, where, inline=inline)
    return (f'<figure id="figure-{stem}"><a href="{image}"><img loading="lazy" src="{image}" '
            f'alt="blur map of {stem}"></a>{crops}<figcaption>{stem}: '
            f'<span class="verdict {verdict}">{verdict}</span>, {why}</figcaption></figure>')


def _maps_section(figures: list[str], *, shown_maps: int) -> str:
    """The gallery of blur maps, saying how many more are linked from the table."""
    if not figures:
        return ""
    more = (f"<p>The {len(figures)} slides that need action most; the blur maps of the other "
            f"{shown_maps - len(figures)} are linked from the table.</p>\n" if shown_maps > len(figures) else "")
    return f'<h2>Blur maps</h2>\n{more}<div id="figures">{chr(10).join(figures)}</div>'


def render_report(rows: Sequence[dict[str, Any]], *, title: str = "wsi-deblur QC report",
                  thresholds: VerdictThresholds = VerdictThresholds(), folder: str | os.PathLike | None = None) -> str:
    """The report page for qc.csv ``rows`` (see :mod:`wsi_deblur.report.batch_csv`).

    ``thresholds``: those the verdicts were given by; ``folder``: where the
    page and the slides' outputs are (links only to those that exist there).
    """
    where = folder if folder is None or hasattr(folder, "exists") else Path(folder)  # a local or fsspec path
    head = ("".join(f'<th class="{"name" if kind == "text" else ""}" data-type="{kind}">{html.escape(h)}</th>'
                    for h, _, kind, _ in COLUMNS)
            + '<th class="name" data-type="text">Why</th><th class="name" data-type="text">Outputs</th>')
    body, figures = [], []
    for row in sorted(rows, key=_worst_first):
        stem = html.escape(str(row.get("stem") or Path(str(row.get("slide", ""))).name))
        why = html.escape(reason(row, thresholds))
        body.append(_table_row(row, stem, why, where, hidden=len(body) >= PAGE_ROWS))
        if row.get("status") == "ok" and len(figures) < GALLERY_SLIDES:
            figures.append(_figure(row, stem, why, where, inline=len(figures) < INLINE_CROP_SLIDES))
    counts = {v: sum(_verdict(r) == v for r in rows) for v in WORST_FIRST}
    summary = ", ".join(f'<span class="verdict {v}">{n} {v}</span>' for v, n in counts.items() if n)
    options = "".join(f'<option value="{v}">{v}</option>' for v in ("all", "pass", "review", "rescan", "failed"))
    maps = _maps_section(figures, shown_maps=sum(r.get("status") == "ok" for r in rows))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p id="summary">{_plural(len(rows), "slide")}: {summary}.</p>
<p>A slide is sent to review from {thresholds.review_fraction:.0%} of its <em>tissue</em> tiles blurred (defocus,
motion or mixed) and to rescan from {thresholds.rescan_fraction:.0%}. Worst first; click a column to sort.
<label>Show verdict <select id="verdict-filter">{options}</select></label> (<span id="shown">{len(rows)}</span>
matching)</p>
<noscript><style>#slides tbody tr[hidden]{{display:table-row !important}}</style></noscript>
<p id="pager" hidden><button id="previous-page">previous</button> <span id="page-rows"></span>
<button id="next-page">next</button></p>
<table id="slides" data-page-rows="{PAGE_ROWS}"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
{maps}
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(path: str | os.PathLike, rows: Sequence[dict[str, Any]], *,
                 thresholds: VerdictThresholds = VerdictThresholds()) -> None:
    """Write the report atomically (its links checked against the folder it goes in)."""
    write_text_atomic(path, render_report(rows, thresholds=thresholds, folder=output_path(path).parent))
