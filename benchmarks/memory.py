"""Peak memory of `qc` and `run` as slides grow: it must not grow with them.

    python benchmarks/memory.py [--sizes 8192 16384 32768] [--work out/bench] [--scheduler local]

Each job runs in a fresh process and reports its own peak resident set size;
with ``--scheduler local`` (a LocalCluster of 2 single-threaded worker
processes) it also reports the largest worker's peak. Prints a Markdown table
and writes out/bench/memory[-local].json.
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
    parser.add_argument("--scheduler", default=None, help="e.g. local: also report worker peaks")
    args = parser.parse_args()
    extra = ["--scheduler", args.scheduler] if args.scheduler else []
    results = {}
    if args.scheduler:
        print("| slide (px) | Gpx | qc client / worker peak RSS (MB) | qc (s) | run client / worker peak RSS (MB) "
              "| run (s) |")
    else:
        print("| slide (px) | Gpx | qc peak RSS (MB) | qc (s) | run peak RSS (MB) | run (s) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        path = benchmark_slide(size, args.work / "slides")
        res = {}
        for mode in ("qc", "run"):
            out = args.work / f"mem-{mode}-{size}"
            shutil.rmtree(out, ignore_errors=True)
            res[mode] = run_child([mode, str(path), str(out), *extra])
            shutil.rmtree(out, ignore_errors=True)
        results[size] = res

        def peak(r: dict) -> str:
            worker = r.get("worker_peak_rss_mb")
            return f"{r['peak_rss_mb']:.0f}" + (f" / {worker:.0f}" if worker else "")

        print(f"| {size} x {size} | {size * size / 1e9:.2f} | {peak(res['qc'])} | {res['qc']['seconds']:.1f} | "
              f"{peak(res['run'])} | {res['run']['seconds']:.1f} |", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    name = f"memory-{args.scheduler}.json" if args.scheduler else "memory.json"
    (args.work / name).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
