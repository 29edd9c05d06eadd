"""How much mild defocus BlurNet finds on fields it never saw, and how often it flags sharp ones.

    python benchmarks/mild_defocus.py [--crops 40] [--weights W]

256-px crops of the held-out fields of ``../shared/data`` (at 0.5 um/px, as the
pipeline gives BlurNet its tiles), blurred by a uniform disc of 0.5, 1 and
2 um radius (the simple geometric defocus model users test with; a 1 um disc
is a defocus of about 0.9 um at NA 0.75) with scanner noise (5000 photons,
read noise 1, JPEG 90), and the same crops with noise and JPEG only. Prints,
per disc radius, the share of crops called blurred (any blurred class, and
P(blurred) >= the pipeline's ``--min-confidence``), and the share called
defocus.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.blur_data import load_field, source_images  # noqa: E402
from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.blur.degrade import random_crop  # noqa: E402
from wsi_deblur.blur.simulate import add_sensor_noise, convolve_rgb, jpeg_roundtrip  # noqa: E402
from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE  # noqa: E402
from wsi_deblur.classify.neural import NeuralBlurClassifier  # noqa: E402

MPP = 0.5
RADII_UM = (0.0, 0.5, 1.0, 2.0)


def disc_psf(radius_px: float) -> np.ndarray:
    """A uniform disc of ``radius_px`` (area-weighted at its edge by 8x8 sub-pixel sampling)."""
    if radius_px <= 0:
        return np.ones((1, 1))
    r = int(np.ceil(radius_px))
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    ax = np.arange(-r, r + 1)
    yy = (ax[:, None, None, None] + sub[None, None, :, None]) ** 2
    xx = (ax[None, :, None, None] + sub[None, None, None, :]) ** 2
    k = ((yy + xx) <= radius_px ** 2).mean(axis=(2, 3))
    return k / k.sum()


def held_out_crops(n: int, seed: int = 0) -> np.ndarray:
    root = find_shared_data()
    if root is None:
        sys.exit("needs ../shared/data (or $WSI_DEBLUR_SHARED_DATA)")
    rng = np.random.default_rng(seed)
    paths = [str(root / p) for p in source_images(root)["test"]]
    fields = [f for f in (load_field(p) for p in paths) if min(f.shape[:2]) >= 288]  # room for a crop and margin
    crops, attempt = [], 0
    while len(crops) < n and attempt < 50 * n:
        crop = random_crop(fields[attempt % len(fields)], 256 + 32, rng)
        attempt += 1
        if crop is not None:
            crops.append(np.ascontiguousarray(crop))
    return np.stack(crops)


def degraded(crops: np.ndarray, radius_um: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for crop in crops:
        blurred = convolve_rgb(crop, disc_psf(radius_um / MPP))
        noisy = add_sensor_noise(blurred, rng, photons=5000.0, read_noise=1.0)
        out.append(jpeg_roundtrip(noisy, 90)[16:-16, 16:-16])
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=40)
    parser.add_argument("--weights", help="BlurNet safetensors (default: the shipped weights)")
    args = parser.parse_args()
    classifier = NeuralBlurClassifier(weights=args.weights, threads=2)
    crops = held_out_crops(args.crops)
    rows = []
    for radius in RADII_UM:
        estimates = classifier.classify(degraded(crops, radius))
        rows.append({"disc_radius_um": radius, "n": len(estimates),
                     "called_blurred": round(float(np.mean([e.is_blurred for e in estimates])), 3),
                     "p_blurred_at_least_min_confidence": round(float(np.mean(
                         [e.blur_probability >= DEFAULT_MIN_CONFIDENCE for e in estimates])), 3),
                     "called_defocus": round(float(np.mean([e.label == "defocus" for e in estimates])), 3)})
        print(json.dumps(rows[-1]), flush=True)
    print("\n| disc radius (um) | n | called blurred | P(blurred) >= 0.8 | called defocus |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['disc_radius_um']} | {r['n']} | {r['called_blurred']:.1%} | "
              f"{r['p_blurred_at_least_min_confidence']:.1%} | {r['called_defocus']:.1%} |")


if __name__ == "__main__":
    main()
