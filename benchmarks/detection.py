"""Blur detection on held-out tissue: ``wsi-deblur qc`` against a calibrated variance-of-Laplacian, per severity.

    python benchmarks/detection.py [--grid 14] [--out out/bench]

Builds, per scale (40x at 0.25 um/px, 20x at 0.5 um/px), two synthetic slides
of 512-px tiles, each tile a crop of a real in-focus field (flipped, rotated,
lightly re-stained) either left sharp or blurred by one of the blurs a scanner
makes, then camera noise and JPEG at one of two levels:

- **test slide**: crops of the fields held out of every training set
  (:data:`pipelines.blur_data.TEST_IMAGES`; 40x: ``OS-2``, the one held-out
  40x field; 20x: all of them at 0.5 um/px);
- **calibration slide**: the same recipe on *training* fields (40x: ``OS-1``),
  so a threshold chosen on it is not chosen on the test tissue.

Blur bands (wave-optics pupil defocus at NA 0.75 is named by its geometric blur
radius ``r``: a focal offset of ``r / tan(asin NA)``, 0.88 um for ``r`` = 1 um,
about one depth of field): pupil ``r`` 1, 1.5, 2.5 um, a drift band of 1-3 um,
a geometric disc of 1 um, motion 3 and 6 um, mixed (pupil 1 um + motion 5 um).
Half the tiles stay sharp; a third of those are made pale (absorbance halved:
fat, mucin, pale IHC): low texture must not raise false alarms.

Scored per tissue tile (as the pipeline's tissue mask finds it): recall per
band, precision, false alarms on sharp tiles, ROC-AUC, and for mixed blur the
share called mixed (or motion). Rows:

- ``wsi-deblur qc`` as shipped (no threshold given);
- ``wsi-deblur qc`` with ``--blur-threshold`` chosen on the calibration slide
  (the lowest P(blurred) with at most 1% false alarms there);
- variance of the Laplacian at the slide's own pixels, its threshold chosen on
  the calibration slide (best balanced accuracy): what a site does by hand.

Prints a Markdown table and writes ``detection.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.blur_data import TEST_IMAGES, source_images  # noqa: E402
from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.blur.classes import LABEL_VALUES  # noqa: E402
from wsi_deblur.blur.psf import disc_psf, motion_psf  # noqa: E402
from wsi_deblur.blur.simulate import (  # noqa: E402
    Optics,
    add_sensor_noise,
    convolve_rgb,
    defocus_psf_optics,
    jpeg_roundtrip,
)
from wsi_deblur.io import open_slide  # noqa: E402

TILE = 512
NA = 0.75
#: Band name -> (defocus geometric radius um (pupil), disc radius um, motion length um), or a drift band.
BANDS: dict[str, tuple[str, float, float]] = {
    "pupil 1 um (one depth of field)": ("pupil", 1.0, 0.0),
    "pupil 1.5 um": ("pupil", 1.5, 0.0),
    "pupil 2.5 um": ("pupil", 2.5, 0.0),
    "pupil drift 1-3 um": ("drift", 0.0, 0.0),
    "disc 1 um": ("disc", 1.0, 0.0),
    "motion 3 um": ("motion", 0.0, 3.0),
    "motion 6 um": ("motion", 0.0, 6.0),
    "mixed (pupil 1 um + motion 5 um)": ("pupil", 1.0, 5.0),
}
#: Camera noise and JPEG: (photons at full scale, JPEG quality).
NOISE_LEVELS = ((5000.0, 90), (1500.0, 75))


def focal_offset_um(radius_um: float, na: float = NA) -> float:
    """The focal offset whose geometric blur disc has ``radius_um`` (in air)."""
    return radius_um / np.tan(np.arcsin(na))


def field_at(path: Path, mpp: float) -> np.ndarray:
    """A whole field resampled to ``mpp`` (fields without a pixel size are taken as 0.5 um/px)."""
    from PIL import Image

    slide = open_slide(path)
    img = slide.read_region(0, 0, *slide.shape)
    factor = (slide.mpp or 0.5) / mpp
    if abs(factor - 1) < 0.02:
        return img
    size = (max(1, round(img.shape[1] * factor)), max(1, round(img.shape[0] * factor)))
    return np.asarray(Image.fromarray(img).resize(size, Image.LANCZOS))


def sharp_tile(img: np.ndarray, rng: np.random.Generator, pale: bool) -> np.ndarray:
    """A 512-px crop of ``img`` (mirrored out where it is smaller), flipped, rotated, re-stained."""
    pad = [(0, max(0, TILE - img.shape[0])), (0, max(0, TILE - img.shape[1])), (0, 0)]
    img = np.pad(img, pad, mode="symmetric") if any(p[1] for p in pad[:2]) else img
    y, x = (int(rng.integers(0, s - TILE + 1)) for s in img.shape[:2])
    tile = np.rot90(img[y:y + TILE, x:x + TILE], int(rng.integers(4)))
    tile = tile[:, ::-1] if rng.random() < 0.5 else tile
    od = -np.log(np.clip(tile.astype(np.float64), 1, 255) / 255.0) * rng.uniform(0.85, 1.15, 3)
    if pale:
        od *= 0.5
    return 255.0 * np.exp(-od)


def band_psf(band: str, mpp: float, rng: np.random.Generator) -> np.ndarray:
    """The per-channel PSF ``(3, k, k)`` of ``band`` at ``mpp``."""
    model, radius_um, motion_um = BANDS[band]
    if model == "drift":
        model, radius_um = "pupil", float(rng.uniform(1.0, 3.0))
    if model == "pupil" and radius_um > 0:
        psf = defocus_psf_optics(focal_offset_um(radius_um), Optics(numerical_aperture=NA, mpp=mpp))
    elif model == "disc":
        psf = np.stack([disc_psf(radius_um / mpp)] * 3)
    else:
        psf = np.ones((3, 1, 1))
    if motion_um > 0:
        from scipy.signal import fftconvolve

        line = motion_psf(motion_um / mpp, float(rng.uniform(0, 180)))
        psf = np.stack([fftconvolve(p, line) for p in psf])
    return psf / psf.sum(axis=(1, 2), keepdims=True)


def build_slide(fields: list[np.ndarray], mpp: float, grid: int, seed: int, path: Path) -> list[dict]:
    """Write a ``grid`` x ``grid`` tile slide to ``path``; return each tile's truth (row-major)."""
    import tifffile

    rng = np.random.default_rng(seed)
    names = list(BANDS)
    image = np.empty((grid * TILE, grid * TILE, 3), np.uint8)
    truth = []
    for i in range(grid):
        for j in range(grid):
            blurred = rng.random() < 0.5
            band = names[int(rng.integers(len(names)))] if blurred else "sharp"
            pale = not blurred and rng.random() < 1 / 3
            field = int(rng.integers(len(fields)))
            tile = sharp_tile(fields[field], rng, pale)
            if blurred:
                psf = band_psf(band, mpp, rng)
                tile = convolve_rgb(tile, psf)
            photons, quality = NOISE_LEVELS[int(rng.integers(len(NOISE_LEVELS)))]
            tile = add_sensor_noise(np.clip(tile, 0, 255), rng, photons=photons)
            tile = jpeg_roundtrip(tile, quality)
            image[i * TILE:(i + 1) * TILE, j * TILE:(j + 1) * TILE] = np.clip(np.rint(tile), 0, 255)
            truth.append({"band": band, "pale": pale, "field": field, "noise": f"{photons:g} photons, JPEG {quality}"})
    tifffile.imwrite(path, image, tile=(TILE, TILE), photometric="rgb", compression="jpeg",
                     compressionargs={"level": 95}, resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    return truth


def qc_scores(path: Path, weights: str | None = None,
              both_scales: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per tile (row-major): tissue?, P(blurred), label, and the seconds ``qc``'s classification took."""
    from wsi_deblur.pipeline.options import RunOptions
    from wsi_deblur.pipeline.scheduler import use_scheduler
    from wsi_deblur.pipeline.slide_job import compute_blurmap

    t0 = time.perf_counter()
    with use_scheduler("threads"):  # as `wsi-deblur qc` runs: one task per core
        qc = compute_blurmap(open_slide(path), RunOptions(weights=weights, both_scales=both_scales))
    seconds = time.perf_counter() - t0
    bm = qc.blurmap
    names = np.array(list(LABEL_VALUES))[bm.label.ravel()]
    return bm.is_tissue.ravel(), bm.blur_probability.ravel(), names, seconds


def laplacian_variance(path: Path) -> np.ndarray:
    """Variance of the Laplacian of each tile's grey image at the slide's own pixels (row-major)."""
    from scipy import ndimage as ndi

    slide = open_slide(path)
    h, w = slide.shape
    out = []
    for y in range(0, h, TILE):
        for x in range(0, w, TILE):
            grey = slide.read_region(y, x, TILE, TILE).astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            out.append(float(ndi.laplace(grey).var()))
    return np.array(out)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (higher = more likely positive), ties counted half."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def threshold_for_false_alarms(scores: np.ndarray, positive: np.ndarray, rate: float = 0.01) -> float:
    """The lowest threshold (``score >= t`` called positive) with at most ``rate`` of the negatives above it."""
    negatives = np.sort(scores[~positive])[::-1]
    allowed = int(np.floor(rate * negatives.size))
    return float(np.nextafter(negatives[allowed], np.inf)) if allowed < negatives.size else float(scores.min())


def threshold_balanced(scores: np.ndarray, positive: np.ndarray) -> float:
    """The threshold (``score >= t`` called positive) with the best balanced accuracy."""
    best, best_t = -1.0, float(np.median(scores))
    for t in np.unique(scores):
        called = scores >= t
        acc = 0.5 * (called[positive].mean() + (~called[~positive]).mean())
        if acc > best:
            best, best_t = acc, float(t)
    return best_t


def score(called: np.ndarray, ranking: np.ndarray, truth: list[dict], tissue: np.ndarray,
          labels: np.ndarray | None = None) -> dict:
    """Recall per band, precision, false alarms and ROC-AUC over the tissue tiles."""
    bands = np.array([t["band"] for t in truth])[tissue]
    pale = np.array([t["pale"] for t in truth])[tissue]
    called, ranking = called[tissue], ranking[tissue]
    positive = bands != "sharp"
    out = {"recall": round(float(called[positive].mean()), 3),
           "precision": round(float(positive[called].mean()) if called.any() else float("nan"), 3),
           "false alarms": f"{int(called[~positive].sum())} of {int((~positive).sum())}",
           "false alarms, pale": f"{int(called[~positive & pale].sum())} of {int((~positive & pale).sum())}",
           "ROC-AUC": round(roc_auc(ranking, positive), 4),
           "false alarms by field": {int(f): int(n) for f, n in zip(*np.unique(
               np.array([t["field"] for t in truth])[tissue][called & ~positive], return_counts=True))},
           "per band": {b: f"{int(called[bands == b].sum())} of {int((bands == b).sum())}" for b in BANDS}}
    if labels is not None:
        mixed = bands == "mixed (pupil 1 um + motion 5 um)"
        kinds = labels[tissue][mixed]
        out["mixed called mixed / motion"] = (f"{int((kinds == 'mixed').sum())} / {int((kinds == 'motion').sum())}"
                                              f" of {int(mixed.sum())}")
    return out


def self_calibrated(slide: Path, site: Path, weights: str | None, *, both_scales: bool = False):
    """`wsi-deblur calibrate` on ``slide`` itself (no ground truth used) into ``site`` (a copy of ``weights``),
    then ``qc`` with it: (threshold, P(blurred) per tile, labels per tile).
    """
    import shutil

    from wsi_deblur.adaptation.calibration import CalibrateOptions, calibrate

    if weights:
        shutil.copytree(weights, site)
    calibration = calibrate([str(slide)], site, CalibrateOptions(both_scales=both_scales))
    _, p, labels, _ = qc_scores(slide, weights=str(site), both_scales=both_scales)
    return calibration.threshold, p, labels


def run_scale(name: str, mpp: float, test_fields: list[np.ndarray], calib_fields: list[np.ndarray], grid: int,
              folder: Path, weights: str | None = None) -> dict:
    truths = {"calibration": build_slide(calib_fields, mpp, grid, 1, folder / f"{name}-calibration.tif"),
              "test": build_slide(test_fields, mpp, grid, 2, folder / f"{name}-test.tif")}
    found = {k: qc_scores(folder / f"{name}-{k}.tif", weights=weights) for k in truths}
    test = folder / f"{name}-test.tif"
    threshold, p_site, labels_site = self_calibrated(test, folder / f"{name}-site", weights)
    lap = {k: laplacian_variance(folder / f"{name}-{k}.tif") for k in truths}
    tissue_c, p_c, _, _ = found["calibration"]
    positive_c = np.array([t["band"] != "sharp" for t in truths["calibration"]])
    qc_t = threshold_for_false_alarms(p_c[tissue_c], positive_c[tissue_c])
    lap_t = threshold_balanced(-lap["calibration"][tissue_c], positive_c[tissue_c])
    tissue, p, labels, seconds = found["test"]
    truth = truths["test"]
    rows = {"wsi-deblur qc (default)": score(labels != "in_focus", p, truth, tissue, labels)}
    if mpp < 0.35:  # finer than the working pixel size: --both-scales has a second scale to judge
        _, p_b, labels_b, _ = qc_scores(test, weights=weights, both_scales=True)
        rows["wsi-deblur qc --both-scales"] = score(labels_b != "in_focus", p_b, truth, tissue, labels_b)
        threshold_b, p_cb, labels_cb = self_calibrated(test, folder / f"{name}-site-both", weights, both_scales=True)
        rows[f"wsi-deblur qc --both-scales after `calibrate --both-scales` on the slide itself (P(blurred) >= "
             f"{threshold_b:.3f})"] = score(labels_cb != "in_focus", p_cb, truth, tissue, labels_cb)
    rows |= {f"wsi-deblur qc after `wsi-deblur calibrate` on the slide itself (P(blurred) >= "
             f"{threshold:.3f})": score(labels_site != "in_focus", p_site, truth, tissue, labels_site),
             f"wsi-deblur qc, P(blurred) >= {qc_t:.3f} from the calibration slide":
                 score(p >= qc_t, p, truth, tissue),
             f"variance of the Laplacian <= {-lap_t:.1f} from the calibration slide":
                 score(-lap["test"] >= lap_t, -lap["test"], truth, tissue)}
    return {"mpp": mpp, "tissue tiles": int(tissue.sum()), "qc seconds": round(seconds, 1), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=14, help="tiles per side of each slide (default 14)")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    parser.add_argument("--scales", nargs="+", choices=("40x", "20x"), default=["40x", "20x"])
    parser.add_argument("--weights", help="a weights folder (BlurNet) to run instead of the shipped one")
    args = parser.parse_args()
    root = find_shared_data()
    if root is None:
        sys.exit("needs ../shared/data (or $WSI_DEBLUR_SHARED_DATA)")
    train = source_images(root)["train"]
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "40x" in args.scales:
            x40_test = [field_at(root / "fields/ihc/OS-2-ndpi.ome.tif", 0.25)]
            x40_calib = [field_at(root / "fields/he/OS-1-detail.ome.tif", 0.25)]
            result["40x"] = run_scale("x40", 0.25, x40_test, x40_calib, args.grid, folder, args.weights)
            print("40x", json.dumps(result["40x"]), flush=True)
        if "20x" in args.scales:
            result["20x"] = run_scale("x20", 0.5, [field_at(root / p, 0.5) for p in TEST_IMAGES],
                                      [field_at(root / p, 0.5) for p in train], args.grid, folder, args.weights)
            print("20x", json.dumps(result["20x"]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detection.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| tool | " + " | ".join(result) + " |")
    print("|---" * (len(result) + 1) + "|")
    for k in range(4):
        name = list(next(iter(result.values()))["rows"])[k]
        cells = []
        for scale in result.values():
            r = list(scale["rows"].values())[k]
            cells.append(f"{r['recall']:.3f} / {r['precision']:.3f} / {r['false alarms']} / {r['ROC-AUC']:.3f}")
        print(f"| {name.split(' from')[0]} | " + " | ".join(cells) + " |")
    for scale, res in result.items():
        print(f"\n{scale} per band (qc default): " + ", ".join(
            f"{b}: {v}" for b, v in res["rows"]["wsi-deblur qc (default)"]["per band"].items()))


if __name__ == "__main__":
    main()
