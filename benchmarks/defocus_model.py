"""Which defocus PSF the estimate should imply: the geometric disc or the scalar pupil, on real and simulated blur.

    python benchmarks/defocus_model.py [--crops 9]

Every restorer is told BlurNet's estimate, as in a run (``wsi-deblur restore
--mpp``: the working pixel size, the guard on). Sets:

- **real**: the FocusPath pair of ``../shared/data/real-defocus`` (40x,
  0.25 um/px), SSIM to its in-focus plane (20-px border out);
- **40x pupil / 40x disc**: 512-px crops of a real 40x field no network was
  trained on (``fields/ihc/OS-2-ndpi.ome.tif``, 0.227 um/px) blurred by the
  scalar pupil model (NA 0.75, 2.5 um) or by a geometric disc (radius 2.5 um),
  with camera noise; SSIM to the sharp crop.

Restorers: ``fast`` (the networks), Wiener with the pupil PSF and with the
disc PSF (balance 0.05 and 0.1), ``hybrid`` (defocus by the disc Wiener, motion and
mixed blur by ``fast``'s networks), and Richardson-Lucy told the *true* PSF
(simulated sets only). Also the measured transfer of the real pair against
each model's OTF. Prints a Markdown table, writes out/bench/defocus_model.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import textured_crops  # noqa: E402

from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.blur.estimate import BlurEstimate  # noqa: E402
from wsi_deblur.blur.fit import rings, ssim_inner, transfer_profile  # noqa: E402
from wsi_deblur.blur.psf import disc_psf, psf_to_otf  # noqa: E402
from wsi_deblur.blur.simulate import Optics, add_sensor_noise, convolve_rgb, defocus_psf_optics  # noqa: E402
from wsi_deblur.classify.image import classify_image  # noqa: E402
from wsi_deblur.classify.neural import NeuralBlurClassifier  # noqa: E402
from wsi_deblur.io import open_slide  # noqa: E402
from wsi_deblur.restore.by_name import make_restorer  # noqa: E402
from wsi_deblur.restore.image import restore_slide_region  # noqa: E402
from wsi_deblur.restore.wiener import WienerRestorer  # noqa: E402

FIELD = "fields/ihc/OS-2-ndpi.ome.tif"
CROP = 512


def estimate_of(slide, classifier) -> BlurEstimate:
    """BlurNet's estimate of a whole image, as ``wsi-deblur restore`` makes it."""
    found = classify_image(slide, classifier)
    sev = found["severity"]
    return BlurEstimate(found["class"], dict(found["probabilities"]), defocus_sigma_px=sev["defocus_sigma_px"],
                        motion_length_px=sev["motion_length_px"], motion_angle_deg=sev["motion_angle_deg"],
                        defocus_um=sev["defocus_um"])


def restorers() -> dict:
    return {"fast": make_restorer("fast", threads=2),
            "Wiener, pupil PSF, balance 0.1": WienerRestorer(0.1, psf_model="pupil"),
            "Wiener, disc PSF, balance 0.1": WienerRestorer(0.1, psf_model="disc"),
            "Wiener, disc PSF, balance 0.05": WienerRestorer(0.05, psf_model="disc"),
            "hybrid": make_restorer("hybrid", threads=2)}


def richardson_lucy(image: np.ndarray, psf: np.ndarray, iterations: int = 20) -> np.ndarray:
    from skimage.restoration import richardson_lucy as rl

    kernels = psf if psf.ndim == 3 else np.stack([psf] * 3)
    out = np.stack([rl(image[:, :, c] / 255.0, kernels[c], num_iter=iterations, clip=False) for c in range(3)], 2)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def as_slide(image: np.ndarray, mpp: float, folder: Path):
    """``image`` as a slide of pixel size ``mpp`` (written as a PNG, read back as a run reads it)."""
    from PIL import Image

    path = folder / "field.png"
    Image.fromarray(image).save(path)
    return open_slide(path, mpp=mpp)


def score_set(pairs: list[tuple[np.ndarray, np.ndarray, float]], classifier, true_psf=None) -> dict:
    """Mean SSIM of each restorer over ``(sharp, blurred, mpp)`` pairs (and of RL told ``true_psf``)."""
    import tempfile

    rows: dict[str, list[float]] = {"as scanned": []}
    for sharp, blurred, mpp in pairs:
        slide = as_slide(blurred, mpp, Path(tempfile.mkdtemp()))
        estimate = estimate_of(slide, classifier)
        rows["as scanned"].append(ssim_inner(blurred, sharp))
        for name, restorer in restorers().items():
            rows.setdefault(name, []).append(ssim_inner(restore_slide_region(slide, estimate, restorer), sharp))
        if true_psf is not None:
            rows.setdefault("Richardson-Lucy, true PSF, 20 iterations", []).append(
                ssim_inner(richardson_lucy(blurred, true_psf), sharp))
        rows.setdefault("BlurNet defocus (um)", []).append(estimate.defocus_um)
    return {k: round(float(np.mean(v)), 4) for k, v in rows.items()}


def model_transfer(psf: np.ndarray, in_focus: np.ndarray | None, n_rings: int = 25, size: int = 512) -> list[float]:
    """Ring means of a PSF's OTF (divided by the in-focus one's where given): comparable to ``transfer_profile``."""
    idx = rings((size, size), n_rings).ravel()
    counts = np.maximum(np.bincount(idx, minlength=n_rings + 1), 1)
    profile = np.bincount(idx, np.real(psf_to_otf(psf, (size, size))).ravel(), minlength=n_rings + 1) / counts
    if in_focus is not None:
        profile /= np.bincount(idx, np.real(psf_to_otf(in_focus, (size, size))).ravel(), minlength=n_rings + 1) / counts
    return [round(float(v), 3) for v in profile[:10]]


def simulated_40x_sets(root: Path, n_crops: int) -> dict[str, tuple[np.ndarray, list]]:
    """The two simulated sets: ``n_crops`` crops of the held-out 40x field blurred by pupil defocus (NA 0.75,
    2.5 um) and by a 2.5-um disc, 2000 photons; per set its PSF and ``(sharp, blurred, mpp)`` pairs.
    """
    crops, mpp = textured_crops(root / FIELD, n_crops, CROP)
    rng = np.random.default_rng(0)
    out = {}
    for name, psf in (("40x pupil (NA 0.75, 2.5 um)", defocus_psf_optics(2.5, Optics(numerical_aperture=0.75,
                                                                                         mpp=mpp))),
                      ("40x disc (radius 2.5 um)", np.stack([disc_psf(2.5 / mpp)] * 3))):
        pairs = []
        for crop in crops:
            noisy = add_sensor_noise(np.clip(convolve_rgb(crop.astype(np.float64), psf), 0, 255), rng, photons=2000.0)
            pairs.append((crop, np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mpp))
        out[name] = (psf, pairs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    root = find_shared_data()
    if root is None:
        sys.exit("needs ../shared/data (or $WSI_DEBLUR_SHARED_DATA)")
    classifier = NeuralBlurClassifier(threads=2)
    result: dict = {}

    sharp_slide = open_slide(root / "real-defocus/focuspath-left-in-focus.png", mpp=0.25)
    blurred_slide = open_slide(root / "real-defocus/focuspath-left-out-of-focus.png", mpp=0.25)
    sharp, blurred = (s.read_region(0, 0, *s.shape) for s in (sharp_slide, blurred_slide))
    result["real"] = score_set([(sharp, blurred, 0.25)], classifier)
    estimate = estimate_of(blurred_slide, classifier)
    sigma = estimate.defocus_sigma_px
    optics = Optics(numerical_aperture=0.75, mpp=0.25)
    result["real transfer (green, rings of 0.02 cycles/px)"] = {
        "measured": [round(float(v), 3) for v in transfer_profile(sharp, blurred)[1][:10]],
        "disc at BlurNet's width": model_transfer(disc_psf(2 * sigma), None),
        "pupil at BlurNet's defocus": model_transfer(defocus_psf_optics(estimate.defocus_um, optics)[1],
                                                     defocus_psf_optics(0.0, optics)[1])}

    for name, (psf, pairs) in simulated_40x_sets(root, args.crops).items():
        result[name] = score_set(pairs, classifier, true_psf=psf)
        print(name, json.dumps(result[name]), flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "defocus_model.json").write_text(json.dumps(result, indent=2) + "\n")
    sets = [k for k in result if "transfer" not in k]
    names = list(dict.fromkeys(n for s in sets for n in result[s]))
    print("| restorer | " + " | ".join(sets) + " |")
    print("|---" * (len(sets) + 1) + "|")
    for n in names:
        print(f"| {n} | " + " | ".join(f"{result[s][n]:.4f}" if n in result[s] else "" for s in sets) + " |")
    for k, v in result["real transfer (green, rings of 0.02 cycles/px)"].items():
        print(f"- {k}: " + ", ".join(f"{x:+.3f}" for x in v))


if __name__ == "__main__":
    main()
