"""One measured job in a fresh process: prints JSON with its peak RSS.

python benchmarks/child.py qc|run SLIDE OUT [--scheduler local] [--restorer fast|dbmid|wiener]
python benchmarks/child.py read-fast|read-openslide SLIDE [--region 1024]
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def read_all(path: str, backend: str, tile: int = 512) -> dict:
    from wsi_deblur.io import open_slide

    slide = open_slide(path, backend=backend)
    h, w = slide.shape
    t0 = time.perf_counter()
    checksum = 0
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            checksum += int(slide.read_region(y, x, min(tile, h - y), min(tile, w - x))[0, 0, 0])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "mpx_per_s": h * w / 1e6 / seconds, "checksum": checksum}


def process(mode: str, path: str, out: str, scheduler: str | None, restorer: str = "fast") -> dict:
    from wsi_deblur.pipeline.options import RunOptions
    from wsi_deblur.pipeline.scheduler import use_scheduler
    from wsi_deblur.pipeline.slide_job import process_slide

    t0 = time.perf_counter()
    workers_mb = None
    with use_scheduler(scheduler, n_workers=2) as client:
        result = process_slide(path, out, RunOptions(restorer=restorer, restore=mode == "run"))
        if client is not None:
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            workers_mb = max(peaks.values())
    seconds = time.perf_counter() - t0
    s = result.summary
    mpx = s["width_px"] * s["height_px"] / 1e6
    tissue_tiles = s["tissue_tiles"]
    return {"seconds": seconds, "mpx": mpx, "mpx_per_s": mpx / seconds,
            "tissue_mpx_per_s": tissue_tiles * s["tile_size_px"] ** 2 / 1e6 / seconds,
            "tissue_tiles_per_s": tissue_tiles / seconds, "restored_tiles": s["restored_tiles"],
            "timings_s": s["timings_s"], "worker_peak_rss_mb": workers_mb}


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode.startswith("read-"):
        region = int(sys.argv[sys.argv.index("--region") + 1]) if "--region" in sys.argv else 512
        out = read_all(path, "openslide" if mode == "read-openslide" else "auto", tile=region)
    else:
        scheduler = sys.argv[sys.argv.index("--scheduler") + 1] if "--scheduler" in sys.argv else None
        restorer = sys.argv[sys.argv.index("--restorer") + 1] if "--restorer" in sys.argv else "fast"
        out = process(mode, path, sys.argv[3], scheduler, restorer)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
