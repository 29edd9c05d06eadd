"""Throughput of each stage of `run`, measured one stage at a time on the same slide.

    python benchmarks/stages.py [--size 8192] [--restorer fast] [--work out/bench]

Stages, in the order of the data flow, each on Dask's threaded scheduler with
all cores and the default settings (512-px tiles, 2048-px chunks):

- read: every 2048-px region of level 0 (our reader);
- tissue: thumbnail, tissue mask and per-tile tissue share;
- classify: BlurNet on every tissue tile (reading its pixels included);
- restore: the restore tasks alone (reading their windows included);
- blend: the blend tasks given the restored windows (reading the chunk
  included, as in the pipeline);
- write level 0: the restored image (already computed, in memory here only
  for the measurement) into the OME-Zarr store;
- pyramid: every further level from the stored one above;
- OME-TIFF: the whole pyramid from the store;

then `run` end to end (`process_slide`) for comparison. The networks are
loaded before the first timing, as each worker does when it starts. Prints a Markdown
table and writes out/bench/stages.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
from common import benchmark_slide  # noqa: E402
from dask.delayed import Delayed  # noqa: E402

from wsi_deblur.blurmap import BlurMap  # noqa: E402
from wsi_deblur.classify.by_name import make_classifier  # noqa: E402
from wsi_deblur.io import open_slide  # noqa: E402
from wsi_deblur.pipeline.graph import blurmap_tasks, restored_level0  # noqa: E402
from wsi_deblur.pipeline.options import RunOptions  # noqa: E402
from wsi_deblur.pipeline.preload import preload  # noqa: E402
from wsi_deblur.pipeline.scheduler import use_scheduler  # noqa: E402
from wsi_deblur.pipeline.slide_job import process_slide, tile_grid  # noqa: E402
from wsi_deblur.restore.by_name import make_restorer
from wsi_deblur.tissue import tile_tissue_fraction, tissue_mask  # noqa: E402
from wsi_deblur.write import ome_tiff, ome_zarr  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def measure(path: Path, work: Path, restorer: str) -> dict:
    options = RunOptions(restorer=restorer)
    slide = open_slide(path)
    h, w = slide.shape
    mpx = h * w / 1e6
    rows = {}

    level0 = slide.to_dask(chunks=options.chunk)
    _, t = timed(lambda: level0.map_blocks(lambda b: np.zeros((1, 1, 1), np.uint8), chunks=(1, 1, 1)).compute())
    rows["read"] = {"seconds": t, "mpx": mpx}

    grid = tile_grid(slide, options)

    def tissue():
        thumb, downsample = slide.thumbnail(max_size=1024)
        return tile_tissue_fraction(tissue_mask(thumb), downsample, grid.grid_shape, grid.tile_size)

    fraction, t = timed(tissue)
    rows["tissue"] = {"seconds": t, "mpx": mpx}

    preload(options.classifier, restorer)  # networks loaded before timing, as a worker's plugin does
    blurmap = BlurMap(grid, fraction, fraction >= options.min_tissue)
    tasks = blurmap_tasks(slide, grid, blurmap.is_tissue, make_classifier(options.classifier), chunk=options.chunk)
    results, t = timed(lambda: dask.compute(*tasks))
    for ij, estimate in (pair for chunk in results for pair in chunk):
        blurmap.set_estimate(ij, estimate)
    tissue_tiles = int(blurmap.is_tissue.sum())
    rows["classify"] = {"seconds": t, "tiles": tissue_tiles, "mpx": tissue_tiles * options.tile_size ** 2 / 1e6}

    image = restored_level0(slide, blurmap, make_restorer(restorer), chunk=options.chunk,
                            min_confidence=options.min_confidence)
    graph = dict(image.__dask_graph__())
    restore_keys = [k for k in graph if str(k[0]).startswith("restore-windows")]
    values, t = timed(lambda: dask.compute(*[Delayed(k, graph) for k in restore_keys]))
    n_restored = int(blurmap.restore_mask(min_confidence=options.min_confidence).sum())
    window = options.tile_size + 2 * grid.halo
    rows["restore"] = {"seconds": t, "tiles": n_restored, "mpx": n_restored * window ** 2 / 1e6}

    graph.update(zip(restore_keys, values))  # the restored windows, as the blend tasks receive them
    blend_keys = [k for k in graph if str(k[0]).startswith("blend-")]
    blocks, t = timed(lambda: dask.compute(*[Delayed(k, graph) for k in blend_keys]))
    rows["blend"] = {"seconds": t, "mpx": mpx}

    by_key = dict(zip(blend_keys, blocks))
    restored = da.from_array(np.concatenate([np.concatenate([by_key[(image.name, i, j, 0)]
                                                             for j in range(image.numblocks[1])], axis=1)
                                             for i in range(image.numblocks[0])]), chunks=(options.chunk,) * 2 + (3,))
    shutil.rmtree(work / "stages", ignore_errors=True)
    levels = ome_zarr.create_ome_zarr(work / "stages" / "s.ome.zarr", shape=slide.shape, mpp=slide.mpp, name="s")
    _, t = timed(lambda: ome_zarr.store_level0(restored, levels[0]))
    rows["write level 0"] = {"seconds": t, "mpx": mpx}

    def pyramid():
        for a, b in zip(levels[:-1], levels[1:]):
            ome_zarr.downsample_level(a, b, chunk=options.chunk)

    _, t = timed(pyramid)
    rows["pyramid"] = {"seconds": t, "mpx": mpx}
    _, t = timed(lambda: ome_tiff.write_ome_tiff(work / "stages" / "s.ome.tif", levels, mpp=slide.mpp, name="s"))
    rows["OME-TIFF"] = {"seconds": t, "mpx": mpx}

    shutil.rmtree(work / "stages-run", ignore_errors=True)
    result, t = timed(lambda: process_slide(path, work / "stages-run", options))
    rows["run end to end"] = {"seconds": t, "mpx": mpx, "timings_s": result.summary["timings_s"]}
    for row in rows.values():
        row["mpx_per_s"] = row["mpx"] / row["seconds"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--restorer", default="fast", choices=("fast", "dbmid", "wiener"))
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    path = benchmark_slide(args.size, args.work / "slides")
    with use_scheduler(None):
        rows = measure(path, args.work, args.restorer)
    print(f"synthetic {args.size}^2 slide, restorer {args.restorer}, threaded scheduler\n")
    print("| stage | seconds | Mpx/s | of what |")
    print("|---|---|---|---|")
    notes = {"read": "level 0", "tissue": "level 0 (from the thumbnail)", "classify": "tissue tiles",
             "restore": "restored windows", "blend": "level 0 (reading included)", "write level 0": "level 0",
             "pyramid": "level 0", "OME-TIFF": "level 0", "run end to end": "level 0"}
    for name, row in rows.items():
        extra = f" ({row['tiles']} tiles, {row['tiles'] / row['seconds']:.1f}/s)" if "tiles" in row else ""
        print(f"| {name} | {row['seconds']:.2f} | {row['mpx_per_s']:.1f} | {notes[name]}{extra} |")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "stages.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
