"""Our pyramid writers against libvips' (pyvips) on the same slide.

    python benchmarks/writers.py [--size 16384] [--work out/bench]

Ours, as the pipeline runs them: level 0 into OME-Zarr by regions plus the
pyramid from the store (Dask threads), then the OME-TIFF from the stored
levels (tile iterator, JPEG q90, 512 px). libvips: ``tiffsave`` of the same
input with pyramid, SubIFDs, BigTIFF, JPEG q90, 512-px tiles. Both use both
cores. Prints a Markdown table and writes out/bench/writers.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import dask

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import benchmark_slide  # noqa: E402

from wsi_deblur.io import open_slide  # noqa: E402
from wsi_deblur.write import ome_tiff, ome_zarr  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    source = benchmark_slide(args.size, args.work / "slides")
    out = args.work / "writers"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    slide = open_slide(source)
    mpx = slide.shape[0] * slide.shape[1] / 1e6

    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        levels = ome_zarr.create_ome_zarr(out / "ours.ome.zarr", shape=slide.shape, mpp=slide.mpp, name="x")
        ome_zarr.store_level0(slide.to_dask(chunks=2048), levels[0])
        for a, b in zip(levels[:-1], levels[1:]):
            ome_zarr.downsample_level(a, b)
    t_zarr = time.perf_counter() - t0
    t0 = time.perf_counter()
    ome_tiff.write_ome_tiff(out / "ours.ome.tif", levels, mpp=slide.mpp, name="x", compression="jpeg", quality=90)
    t_tiff = time.perf_counter() - t0

    import pyvips

    t0 = time.perf_counter()
    image = pyvips.Image.new_from_file(str(source), access="sequential")
    image.tiffsave(str(out / "vips.tif"), tile=True, tile_width=512, tile_height=512, pyramid=True, subifd=True,
                   bigtiff=True, compression="jpeg", Q=90)
    t_vips = time.perf_counter() - t0

    rows = {
        "ours: OME-Zarr level 0 + pyramid": t_zarr,
        "ours: OME-TIFF from the stored pyramid": t_tiff,
        "ours: both": t_zarr + t_tiff,
        "libvips tiffsave pyramid (JPEG, SubIFDs)": t_vips,
    }
    print(f"Slide: {source.name}, {mpx:.0f} Mpx\n")
    print("| writer | seconds | Mpx/s |\n|---|---|---|")
    for name, sec in rows.items():
        print(f"| {name} | {sec:.1f} | {mpx / sec:.1f} |")
    print(f"\nOME-TIFF step against libvips: {t_vips / t_tiff:.2f}x its speed")
    (args.work / "writers.json").write_text(json.dumps({"mpx": mpx, "seconds": rows}, indent=2))


if __name__ == "__main__":
    main()
