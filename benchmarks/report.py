"""How quickly report.html opens and sorts with thousands of slides, in headless Chromium.

    python benchmarks/report.py [--slides 2000]

Writes a report of ``--slides`` generated qc.csv rows (verdicts and shares at
random, a tenth of them failed; a blur map and four before/after crops for each
slide that worked, all links to one small PNG, so that the page holds every
element and file a real batch's does) to out/bench/report/, opens it in Chromium through Playwright and
prints the milliseconds to the page's load event, to a sort by the blurred
share, and to a verdict filter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsi_deblur.report.html import write_report  # noqa: E402


def rows(n: int, rng: np.random.Generator) -> list[dict]:
    out = []
    for i in range(n):
        if rng.random() < 0.1:
            out.append({"slide": f"/scans/slide-{i:05d}.svs", "status": "failed", "error": "not a slide"})
            continue
        share = float(rng.beta(0.5, 6))
        verdict = "rescan" if share >= 0.2 else "review" if share >= 0.05 else "pass"
        out.append({"slide": f"/scans/slide-{i:05d}.svs", "stem": f"slide-{i:05d}", "status": "ok",
                    "verdict": verdict, "blurred_fraction_of_tissue": share, "in_focus": 1 - share,
                    "defocus": share * 0.7, "motion": share * 0.2, "mixed": share * 0.1,
                    "tissue_fraction": float(rng.uniform(0.2, 0.9)), "tissue_tiles": int(rng.integers(50, 5000)),
                    "restored_tiles": int(rng.integers(0, 200)), "mean_defocus_sigma_um": float(rng.uniform(0.5, 3)),
                    "max_defocus_sigma_um": float(rng.uniform(3, 5)), "mean_motion_length_um": "",
                    "review_crops": [f"slide-{i:05d}.review/tile-r{k}-c0.png" for k in range(4)],
                    "outputs": [f"slide-{i:05d}{suffix}" for suffix in (".qc.json", ".blurmap.csv",
                                                                         ".blurmap.png", ".review")]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("out/bench/report"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    page_path = args.out / "report.html"
    table = rows(args.slides, np.random.default_rng(0))
    crop = args.out / "crop.png"
    Image.new("RGB", (518, 332), "white").save(crop)
    for row in table:
        for name in row.get("review_crops", []) + ([f"{row['stem']}.blurmap.png"] if row.get("stem") else []):
            (args.out / name).parent.mkdir(exist_ok=True)
            if not (args.out / name).exists():
                os.symlink(crop.resolve(), args.out / name)  # a link per crop: hard links run out at 65000
    t0 = time.perf_counter()
    write_report(page_path, table)
    written = time.perf_counter() - t0
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        t0 = time.perf_counter()
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        page.click("th:has-text('Blurred % of tissue')")
        page.evaluate("() => new Promise(requestAnimationFrame)")
        sorted_ms = time.perf_counter() - t0
        t0 = time.perf_counter()
        page.select_option("#verdict-filter", "rescan")
        page.evaluate("() => new Promise(requestAnimationFrame)")
        filtered = time.perf_counter() - t0
        browser.close()
    print(f"| slides | write (s) | load (ms) | sort (ms) | filter (ms) |\n|---|---|---|---|---|\n"
          f"| {args.slides} | {written:.2f} | {loaded * 1e3:.0f} | {sorted_ms * 1e3:.0f} | {filtered * 1e3:.0f} |")


if __name__ == "__main__":
    main()
