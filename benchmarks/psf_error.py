"""How `bcr` fares when the PSF it is told is wrong: the told defocus width scaled by 0.7-1.4.

    python benchmarks/psf_error.py [--bcr-weights DIR] [--pairs 60]

BlurNet's estimate is never exact (on the real focus pair it is 12-20% short
of the fitted defocus), and a deconvolution told too narrow a PSF amplifies
frequencies whose sign it has wrong. Two sets:

- the held-out defocused pairs of ``out/data/restore-128-oop.npz`` (the
  first ``--pairs``), told their true width times each factor; SSIM to the
  sharp field;
- the real focus pair of ``../shared/data/real-defocus``, restored as
  ``wsi-deblur restore --mpp 0.25`` does (working pixel size), told
  BlurNet's estimate times each factor; SSIM to the in-focus plane (20-px
  border left out).

Prints a Markdown table and writes out/bench/psf_error.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.evaluate_real import BORDER, find_pairs, pair_mpp  # noqa: E402
from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate  # noqa: E402
from wsi_deblur.blur.fit import ssim_inner  # noqa: E402

FACTORS = (0.7, 0.85, 1.0, 1.2, 1.4)


def synthetic_rows(restorer, data: Path, pairs: int) -> dict[float, float]:
    from skimage.metrics import structural_similarity as ssim

    d = np.load(data)
    keep = np.flatnonzero(d["test_kind"] == BLUR_CLASSES.index("defocus"))[:pairs]
    blurred, sharp, params = d["test_blurred"][keep], d["test_sharp"][keep], d["test_params"][keep]
    out = {"input": float(np.mean([ssim(b, s, channel_axis=2) for b, s in zip(blurred, sharp)]))}
    for f in FACTORS:
        estimates = [BlurEstimate("defocus", defocus_sigma_px=float(p[4]) * f) for p in params]
        restored = restorer.restore(blurred, estimates)
        out[f] = float(np.mean([ssim(r, s, channel_axis=2) for r, s in zip(restored, sharp)]))
    return out


def real_rows(restorer, folder: Path) -> dict[float, float]:
    from wsi_deblur.classify.image import classify_image
    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.io import open_slide
    from wsi_deblur.restore.image import restore_slide_region

    name, sharp_path, blurred_path = find_pairs(folder)[0]
    mpp = pair_mpp(folder, name, 0.25)
    sharp_slide, blurred_slide = open_slide(sharp_path, mpp=mpp), open_slide(blurred_path, mpp=mpp)
    sharp = sharp_slide.read_region(0, 0, *sharp_slide.shape)
    blurred = blurred_slide.read_region(0, 0, *blurred_slide.shape)
    found = classify_image(blurred_slide, NeuralBlurClassifier(threads=2))["severity"]
    estimate = BlurEstimate("defocus", {"in_focus": 0.0, "defocus": 1.0}, defocus_sigma_px=found["defocus_sigma_px"])
    out = {"input": ssim_inner(blurred, sharp, border=BORDER)}
    for f in FACTORS:
        told = replace(estimate, defocus_sigma_px=estimate.defocus_sigma_px * f)
        out[f] = ssim_inner(restore_slide_region(blurred_slide, told, restorer, guard=False), sharp, border=BORDER)
    return out


def main() -> None:
    from wsi_deblur.restore.neural import NeuralRestorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bcr-weights", default=None, help="folder of a candidate deblur_bcr_all.safetensors")
    parser.add_argument("--data", type=Path, default=Path("out/data/restore-128-oop.npz"))
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    restorer = NeuralRestorer("bcr", weights_dir=args.bcr_weights, threads=2)
    results = {}
    if args.data.is_file():
        results["held-out defocus pairs (true width x factor)"] = synthetic_rows(restorer, args.data, args.pairs)
    root = find_shared_data()
    if root is not None and (root / "real-defocus").is_dir():
        results["real focus pair (BlurNet's width x factor)"] = real_rows(restorer, root / "real-defocus")
    print("| set | input | " + " | ".join(f"x{f}" for f in FACTORS) + " |\n|---|---|" + "---|" * len(FACTORS))
    for name, row in results.items():
        print(f"| {name} | {row['input']:.4f} | " + " | ".join(f"{row[f]:.4f}" for f in FACTORS) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "psf_error.json").write_text(json.dumps({k: {str(f): v for f, v in r.items()}
                                                         for k, r in results.items()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
