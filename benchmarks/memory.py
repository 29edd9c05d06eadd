"""Peak memory of `qc` and `run` as slides grow: it must not grow with them.

    python benchmarks/memory.py [--sizes 8192 16384 32768] [--work out/bench]

Each job runs in a fresh process (threaded scheduler) and reports its own peak
resident set size. Prints a Markdown table and writes out/bench/memory.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import benchmark_slide, run_child  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384, 32768])
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    results = {}
    print("| slide (px) | Gpx | qc peak RSS (MB) | qc (s) | run peak RSS (MB) | run (s) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        path = benchmark_slide(size, args.work / "slides")
        res = {}
        for mode in ("qc", "run"):
            out = args.work / f"mem-{mode}-{size}"
            shutil.rmtree(out, ignore_errors=True)
            res[mode] = run_child([mode, str(path), str(out)])
            shutil.rmtree(out, ignore_errors=True)
        results[size] = res
        print(f"| {size} x {size} | {size * size / 1e9:.2f} | {res['qc']['peak_rss_mb']:.0f} | "
              f"{res['qc']['seconds']:.1f} | {res['run']['peak_rss_mb']:.0f} | {res['run']['seconds']:.1f} |",
              flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "memory.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
