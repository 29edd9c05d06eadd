"""Would restoring each tile with a slide-wide focus estimate (the focus surface) beat its own estimate?

    python benchmarks/pooled_estimate.py [--crops 16] [--fields 3]

The #30 idea: a scan's defocus varies smoothly, so a surface fitted over the
tiles' estimates could give each tile a better PSF than its own. Its upper
bound, for a field of one focus error, is the median of the tiles' estimates.
For held-out 20x fields blurred by pupil defocus (NA 0.5, 0.75, 0.95; 1.5,
2.5, 3.5 um) with a thick section's other plane (contrast 0.3) and camera
noise, 256-px crops are classified by BlurNet one by one, and each crop is
restored by `hybrid` (Wiener with the disc of the estimate) told:

- its own estimate (what a run does),
- the median over the field's crops (the pooled estimate, what a surface can give at best),
- the true width (the Gaussian-equivalent width the pupil adds at the set's own NA).

Crops BlurNet calls in focus are left alone in every column. Prints, per
setting, the share called defocused, the estimate error of those (median
absolute, and the median's own error) and mean SSIM to the sharp crops over
all crops; writes
out/bench/pooled_estimate.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import textured_crops  # noqa: E402

from pipelines.blur_data import TEST_IMAGES, shared_data_dir  # noqa: E402
from wsi_deblur.blur.estimated_psf import defocus_um_for_sigma  # noqa: E402
from wsi_deblur.blur.fit import ssim_inner  # noqa: E402
from wsi_deblur.blur.simulate import (  # noqa: E402
    Optics,
    add_out_of_plane,
    add_sensor_noise,
    convolve_rgb,
    defocus_psf_optics,
    gaussian_sigma_px,
)

#: Held-out 20x fields of the test split (``pipelines.blur_data.TEST_IMAGES``) large enough for 16 crops.
FIELDS = ("fields/he/template4.png", "fields/he/torchstain-target.png",
          "fields/pap/a3d303b97ddb6fce_imagem_teste_2.png", "tiles/tissue-level0-7352-11762-7864-12274.png")
assert set(FIELDS) <= set(TEST_IMAGES), "a field no network was trained on"
CROP = 256


def blurred_set(crops: np.ndarray, defocus_um: float, na: float, rng: np.random.Generator) -> np.ndarray:
    """The crops defocused at ``na``, each with another crop's fine detail (contrast 0.3) and camera noise."""
    psf = defocus_psf_optics(defocus_um, Optics(numerical_aperture=na, mpp=0.5))
    out = []
    for k, crop in enumerate(crops):
        b = add_out_of_plane(convolve_rgb(crop.astype(np.float64), psf), crops[(k + 1) % len(crops)], 0.3)
        out.append(np.clip(np.rint(add_sensor_noise(np.clip(b, 0, 255), rng, photons=5000.0)), 0, 255))
    return np.stack(out).astype(np.uint8)


def told(estimates: list, sigma: float) -> list:
    """The defocused estimates with their width set to ``sigma`` (px at 0.5 um/px)."""
    return [replace(e, defocus_sigma_px=sigma, defocus_um=defocus_um_for_sigma(sigma, 0.5))
            if e.defocus_sigma_px > 0 else e for e in estimates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=16)
    parser.add_argument("--fields", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    root = shared_data_dir()
    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.guard import GuardedRestorer

    classifier = NeuralBlurClassifier(threads=2)
    restorer = GuardedRestorer(make_restorer("hybrid", threads=2), mpp=0.5)  # as a run: through the guard
    fields = [textured_crops(root / f, args.crops, CROP)[0] for f in FIELDS[:args.fields]]
    rng = np.random.default_rng(0)
    rows = []
    for na in (0.5, 0.75, 0.95):
        for defocus_um in (1.5, 2.5, 3.5):
            true = gaussian_sigma_px(defocus_um, Optics(numerical_aperture=na, mpp=0.5))
            acc: dict[str, list[float]] = {}
            for crops in fields:
                blurred = blurred_set(crops, defocus_um, na, rng)
                estimates = classifier.classify(blurred)
                widths = np.array([e.defocus_sigma_px for e in estimates])
                found = widths[widths > 0]  # the crops called defocused (or mixed); the others are left alone
                acc.setdefault("called defocused", []).extend(widths > 0)
                acc.setdefault("input", []).extend(ssim_inner(b, c) for b, c in zip(blurred, crops))
                pooled = float(np.median(found)) if found.size else 0.0
                if found.size:
                    acc.setdefault("crop error", []).extend(np.abs(found / true - 1))
                    acc.setdefault("pooled error", []).append(abs(pooled / true - 1))
                for name, ests in (("own", estimates), ("pooled", told(estimates, pooled)),
                                   ("true", told(estimates, true))):
                    out, _ = restorer.restore_checked(blurred, ests)
                    acc.setdefault(name, []).extend(ssim_inner(o, c) for o, c in zip(out, crops))
            row = {"NA": na, "defocus_um": defocus_um, "true_sigma_px": round(true, 2),
                   "crops_called_defocused": round(float(np.mean(acc["called defocused"])), 3),
                   "median_crop_error": round(float(np.median(acc.get("crop error", [np.nan]))), 3),
                   "median_pooled_error": round(float(np.median(acc.get("pooled error", [np.nan]))), 3),
                   **{f"ssim_{k}": round(float(np.mean(acc[k])), 4) for k in ("input", "own", "pooled", "true")}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| NA | defocus | crops called defocus | crop width error | pooled width error | input | own "
          "| pooled | true |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['NA']} | {r['defocus_um']} um | {r['crops_called_defocused']:.0%} | {r['median_crop_error']:.0%} "
              f"| {r['median_pooled_error']:.0%} | {r['ssim_input']:.3f} | {r['ssim_own']:.3f} | "
              f"{r['ssim_pooled']:.3f} | {r['ssim_true']:.3f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pooled_estimate.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
