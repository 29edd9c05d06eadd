"""Adaptation to unseen tissue and to real defocus: shipped weights against weights adapted on the blurred slide itself.

    python benchmarks/adapt.py [--steps 300] [--max-tiles 128] [--out out/bench-adapt] [--skip-real]
    python benchmarks/adapt.py --timing-size 32768     # only: how long adapt takes on a 1.07 Gpx slide

1. **Unseen tissue.** A slide (0.5 um/px, JPEG-tiled OME-TIFF) built from the
   eight held-out fields of ``../shared/data`` (H&E, IHC and Pap; never used
   to train the shipped networks), laid out on glass, with known regions
   blurred by the simulator (pupil-function defocus of 2-3 um at NA 0.75,
   and linear motion) and scanner noise everywhere; 256-px tiles. ``wsi-deblur adapt`` runs on the blurred slide
   itself (no sharp twin given); then ``run`` with the shipped and with the
   adapted weights. Reported: SSIM to the sharp twin inside the blurred
   regions (as scanned, shipped, adapted) and the tiles' blurred-or-not
   accuracy and false alarms (tiles wholly inside or wholly outside a blurred
   region; tissue tiles only).
2. **Real defocus.** ``adapt`` on the out-of-focus plane of
   ``../shared/data/real-defocus`` alone (0.25 um/px), then ``restore`` with
   each weights folder: SSIM to the in-focus plane (20-px border left out, as
   ``pipelines.evaluate_real``).

3. **Time** (``--timing-size N``, instead of the above): ``adapt`` with its
   default options on the benchmarks' synthetic N x N slide (JPEG tiles,
   0.5 um/px, blurred patches; 32768 is 1.07 Gpx), the seconds of each stage.

Prints one JSON document; ``docs/adaptation.md`` quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.blur_data import TEST_IMAGES, load_field  # noqa: E402
from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.adaptation.job import adapt  # noqa: E402
from wsi_deblur.adaptation.options import AdaptOptions  # noqa: E402
from wsi_deblur.blur.fit import ssim_inner  # noqa: E402
from wsi_deblur.blur.psf import motion_psf  # noqa: E402
from wsi_deblur.blur.simulate import Optics, add_sensor_noise, convolve_rgb, defocus_psf_optics  # noqa: E402

#: Tile edge of the runs and of adaptation (the slide is small: 256-px tiles give it enough of them).
TILE = 256
GLASS = 242
#: Width of the slide the fields are laid out on (px).
ROW_WIDTH = 4096
DEFOCUS_UM = (2.0, 2.5, 3.0)
MOTION = (21.0, 30.0)


def region_psf(kind: str, defocus_um: float) -> np.ndarray:
    kernels = defocus_psf_optics(defocus_um if kind == "defocus" else 0.0, Optics(numerical_aperture=0.75, mpp=0.5))
    if kind == "motion":
        from scipy.signal import fftconvolve

        line = motion_psf(*MOTION)
        kernels = np.stack([fftconvolve(k, line, mode="full") for k in kernels])
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    return kernels


def layout(shapes: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Tile-aligned top-left corners of fields laid out in rows, tallest first, and the slide's shape."""
    order = sorted(range(len(shapes)), key=lambda k: -shapes[k][0])
    corners: list[tuple[int, int]] = [(0, 0)] * len(shapes)
    y = x = row_h = 0
    for k in order:
        h, w = (-(-s // TILE) * TILE for s in shapes[k])
        if x and x + w > ROW_WIDTH:
            y, x, row_h = y + row_h, 0, 0
        corners[k] = (y, x)
        x, row_h = x + w, max(row_h, h)
    return corners, (y + row_h, ROW_WIDTH)


def field_regions(k: int, shape: tuple[int, int]) -> list[tuple[int, int, int, int, str, float]]:
    """Blurred rectangles of field ``k`` (relative to it, whole tiles inside it): kind and defocus alternate."""
    h, w = shape[0] // TILE, shape[1] // TILE
    kind = "motion" if k % 3 == 2 else "defocus"
    size = 2 if min(h, w) >= 3 else 1
    out = [(0, 0, size, size, kind, DEFOCUS_UM[k % 3])]
    if min(h, w) >= 4:  # the large fields: a second, differently defocused block
        out.append((h - 2, w - 2, 2, 2, "defocus", DEFOCUS_UM[(k + 1) % 3]))
    return out


def build_slide(root: Path, folder: Path) -> tuple[Path, np.ndarray, list[tuple[int, int, int, int]]]:
    """The blurred slide, its sharp twin and the blurred rectangles (level-0 y0, x0, y1, x1)."""
    fields = [load_field(str(root / f)) for f in TEST_IMAGES]
    corners, shape = layout([f.shape[:2] for f in fields])
    sharp = np.full((*shape, 3), GLASS, np.uint8)
    for f, (y0, x0) in zip(fields, corners):
        sharp[y0:y0 + f.shape[0], x0:x0 + f.shape[1]] = f
    blurred = sharp.astype(np.float64)
    rects = []
    pad = 64
    padded = np.pad(sharp, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    for k, (f, (fy, fx)) in enumerate(zip(fields, corners)):
        for i, j, hi, wj, kind, z in field_regions(k, f.shape[:2]):
            y0, x0 = fy + i * TILE, fx + j * TILE
            y1, x1 = y0 + hi * TILE, x0 + wj * TILE
            src = padded[y0:y1 + 2 * pad, x0:x1 + 2 * pad]
            blurred[y0:y1, x0:x1] = convolve_rgb(src, region_psf(kind, z))[pad:-pad, pad:-pad]
            rects.append((int(y0), int(x0), int(y1), int(x1)))
    blurred = add_sensor_noise(blurred, np.random.default_rng(0), photons=5000.0, read_noise=1.0)
    blurred = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    path = folder / "unseen-tissue.ome.tif"
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, blurred, tile=(512, 512), photometric="rgb", compression="jpeg",
                     compressionargs={"level": 92}, resolution=(2e4, 2e4), resolutionunit="CENTIMETER",
                     metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}, ome=True)
    return path, sharp, rects


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def restored_level0(zarr_path: Path) -> np.ndarray:
    from wsi_deblur.write.ome_zarr import levels_of

    return np.moveaxis(np.asarray(levels_of(zarr_path)[0][:]), 0, -1)


def tile_truth(blurmap, rects) -> tuple[np.ndarray, np.ndarray]:
    """Per tissue tile wholly inside (True) or wholly outside (False) every blurred rectangle, and which are which."""
    truth, known = np.zeros(blurmap.grid.grid_shape, bool), np.zeros(blurmap.grid.grid_shape, bool)
    for i, j in np.argwhere(blurmap.is_tissue):
        ty0, tx0, ty1, tx1 = blurmap.grid.tile_bounds(int(i), int(j))
        overlap = [max(0, min(ty1, y1) - max(ty0, y0)) * max(0, min(tx1, x1) - max(tx0, x0))
                   for y0, x0, y1, x1 in rects]
        area = (ty1 - ty0) * (tx1 - tx0)
        if max(overlap) == area:
            truth[i, j], known[i, j] = True, True
        elif sum(overlap) == 0:
            known[i, j] = True
    return truth, known


def slide_scores(result, out: Path, sharp: np.ndarray, rects) -> dict:
    image = restored_level0(out / f"{result.stem}.ome.zarr")
    truth, known = tile_truth(result.blurmap, rects)
    called = result.blurmap.label > 1
    return {"ssim_in_blurred_regions": round(float(np.mean([ssim_inner(image[y0:y1, x0:x1], sharp[y0:y1, x0:x1],
                                                                     border=0) for y0, x0, y1, x1 in rects])), 4),
            "blurred_or_not_accuracy": round(float(np.mean(called[known] == truth[known])), 4),
            "false_alarms": int((called & known & ~truth).sum()), "sharp_tiles": int((known & ~truth).sum()),
            "missed": int((~called & truth).sum()), "blurred_tiles": int(truth.sum()),
            "restored_tiles": result.summary["restored_tiles"]}


def unseen_tissue(root: Path, folder: Path, options: AdaptOptions) -> dict:
    from wsi_deblur import RunOptions, process_slide
    from wsi_deblur.io import open_slide

    path, sharp, rects = build_slide(root, folder)
    scanned = open_slide(path).read_region(0, 0, *sharp.shape[:2])
    out = {"slide": {"fields": list(TEST_IMAGES), "shape": list(sharp.shape[:2]), "regions": len(rects),
                     "defocus_um": list(DEFOCUS_UM), "motion_length_px_angle_deg": list(MOTION)},
           "ssim_as_scanned": round(float(np.mean([ssim_inner(scanned[y0:y1, x0:x1], sharp[y0:y1, x0:x1], border=0)
                                                   for y0, x0, y1, x1 in rects])), 4)}
    run = {"tile_size": TILE, "tiff": False}
    shipped = process_slide(path, folder / "shipped", RunOptions(**run))
    out["shipped"] = slide_scores(shipped, folder / "shipped", sharp, rects)
    t0 = time.perf_counter()
    adapted_report = adapt([path], folder / "weights", replace(options, tile_size=TILE), on_progress=_to_stderr)
    out["adapt_seconds"] = round(time.perf_counter() - t0, 1)
    out["kept"] = {k: v["kept"] for k, v in adapted_report.report["networks"].items()}
    adapted = process_slide(path, folder / "adapted", RunOptions(**run, weights=str(folder / "weights")))
    out["adapted"] = slide_scores(adapted, folder / "adapted", sharp, rects)
    return out


#: Tile edge (working pixels) adaptation uses on the real pair: its 1024 x 512 px at 0.25 um/px are 8 such tiles.
REAL_TILE = 128


def real_defocus(root: Path, folder: Path, options: AdaptOptions) -> dict:
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.image import restore_image

    pair = root / "real-defocus"
    blurred_path = pair / "focuspath-left-out-of-focus.png"
    sharp = load_field(str(pair / "focuspath-left-in-focus.png"))
    blurred = load_field(str(blurred_path))
    out = {"ssim_as_scanned": round(ssim_inner(blurred, sharp), 4)}
    t0 = time.perf_counter()
    report = adapt([blurred_path], folder / "weights-real", replace(options, mpp=0.25, tile_size=REAL_TILE),
                   on_progress=_to_stderr).report
    out["adapt_seconds"] = round(time.perf_counter() - t0, 1)
    out["kept"] = {k: v["kept"] for k, v in report["networks"].items()}
    out["defocus_iterations"] = report["networks"]["defocus"].get("iterations")
    for name, weights in (("shipped", None), ("adapted", str(folder / "weights-real"))):
        restorer = make_restorer("fast", threads=2, weights_dir=weights)
        classifier = make_classifier("neural", threads=2, weights_dir=weights)
        result = restore_image(blurred_path, folder / f"real-{name}", restorer, classifier=classifier, mpp=0.25)
        restored = load_field(result["output"])
        out[name] = {"class": result["class"], "ssim": round(ssim_inner(restored, sharp), 4)}
    return out


def timing(size: int, folder: Path, options: AdaptOptions) -> dict:
    from common import benchmark_slide

    slide = benchmark_slide(size, folder / "slides")
    stages, t0 = [], time.perf_counter()

    def say(line: str) -> None:
        if "step " not in line or line.split("step ")[1].startswith(f"{options.steps}/"):
            stages.append({"at_s": round(time.perf_counter() - t0, 1), "line": line})
            print(line, file=sys.stderr, flush=True)

    adapt([slide], folder / f"weights-{size}", options, on_progress=say)
    return {"slide_px": size * size, "seconds": round(time.perf_counter() - t0, 1), "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=AdaptOptions.steps)
    parser.add_argument("--max-tiles", type=int, default=AdaptOptions.max_tiles)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out/bench-adapt"))
    parser.add_argument("--skip-real", action="store_true", help="only the unseen-tissue slide")
    parser.add_argument("--timing-size", type=int, help="only time adapt on a synthetic slide of this edge (px)")
    args = parser.parse_args()
    if args.timing_size:
        options = AdaptOptions(steps=args.steps, max_tiles=args.max_tiles, seed=args.seed)
        print(json.dumps({"timing": timing(args.timing_size, args.out, options)}, indent=2))
        return
    root = find_shared_data()
    if root is None:
        raise SystemExit("../shared/data not found beside the checkout; set WSI_DEBLUR_SHARED_DATA")
    options = AdaptOptions(steps=args.steps, max_tiles=args.max_tiles, seed=args.seed)
    result = {"options": {"steps": args.steps, "max_tiles": args.max_tiles, "seed": args.seed},
              "unseen_tissue": unseen_tissue(root, args.out, options)}
    if not args.skip_real:
        result["real_defocus"] = real_defocus(root, args.out, options)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
