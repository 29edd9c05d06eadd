"""Helpers shared by the benchmark scripts: synthetic slides and a child-process runner."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from wsi_deblur.io import open_slide
from wsi_deblur.synthetic import BlurRegion, SyntheticSlide


def benchmark_slide(size: int, folder: Path, *, mpp: float = 0.5, pyramid: bool = False,
                    blurred_share: float = 0.0) -> Path:
    """A ``size`` x ``size`` px JPEG-tiled slide (``mpp`` um/px) with blurred patches, made once.

    ``pyramid``: with reduced levels 4x apart in SubIFDs, as a scanner writes them (what `qc` reads its
    thumbnail from); without, level 0 alone. ``blurred_share``: blur that share of the slide's area in
    1024-px squares (defocus and motion alternating; a fixed draw); 0, three squares.
    """
    name = f"synthetic-{size}" + (f"-{mpp:g}mpp" if mpp != 0.5 else "") + ("-pyramid" if pyramid else "") \
        + (f"-blurred{blurred_share:g}" if blurred_share else "")
    path = folder / f"{name}.ome.tif"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    if blurred_share:
        cells = [(y, x) for y in range(0, size - 1023, 1024) for x in range(0, size - 1023, 1024)]
        picked = np.random.default_rng(size).permutation(len(cells))[:round(blurred_share * size * size / 1024 ** 2)]
        corners = [cells[i] for i in sorted(picked)]
    else:
        corners = [(int(size * y) // 512 * 512, int(size * x) // 512 * 512) for y, x in [(0.3, 0.3), (0.5, 0.6),
                                                                                         (0.65, 0.35)]]
    regions = [BlurRegion(y0, x0, y0 + 1024, x0 + 1024, ("defocus", "motion")[k % 2] if blurred_share
                          else ("defocus", "motion", "defocus")[k], defocus_sigma_px=3.0, motion_length_px=21)
               for k, (y0, x0) in enumerate(corners)]
    tmp = path.with_suffix(".partial")
    SyntheticSlide((size, size), regions, seed=size).write(tmp, mpp=mpp, tile=512, compression="jpeg",
                                                           pyramid=pyramid)
    tmp.rename(path)
    return path


def run_child(args: list[str]) -> dict:
    """Run ``python benchmarks/child.py ARGS`` and return the JSON it prints last."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("child.py")), *args], capture_output=True,
                          text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t0
    return result


def textured_crops(path: Path, n: int, size: int) -> tuple[np.ndarray, float]:
    """Up to ``n`` textured ``size``-px crops of a field on a regular grid, and its pixel size (0.5 um/px for
    a field without one).
    """
    slide = open_slide(path)
    field = slide.read_region(0, 0, *slide.shape)
    side = int(np.ceil(np.sqrt(n)))
    starts = [np.linspace(0, s - size, side).astype(int) for s in field.shape[:2]]
    crops = [field[y:y + size, x:x + size] for y in starts[0] for x in starts[1]]
    crops = [c for c in crops if c.mean(axis=2).std() > 10][:n]
    return np.stack(crops), float(slide.mpp or 0.5)

