"""Score every restorer and route on real focus pairs, and fit the simulator to them.

    python -m pipelines.evaluate_real --out out/eval-real
    python -m pipelines.evaluate_real --fast-weights out/candidate --out out/eval-real-candidate
    python -m pipelines.evaluate_real --bcr-weights out/bcr --out out/eval-real-bcr     # a bcr candidate

A real pair is one field scanned at the in-focus position and out of focus:
``<name>-in-focus.png`` and ``<name>-out-of-focus.png`` in
``../shared/data/real-defocus/`` (or ``$WSI_DEBLUR_SHARED_DATA/real-defocus``);
every such pair there is picked up. Its pixel size is ``<name>.json``'s
``mpp`` when that file exists, else ``--mpp`` (0.25, FocusPath's).

For each pair:

- **the forward model, fitted**: the blur's transfer per ring of frequency
  (:func:`wsi_deblur.blur.fit.transfer_profile`: its first zero and the
  contrast inversion past it), the best Gaussian and the best pupil defocus
  (NA, distance) with the SSIM of the in-focus plane so degraded against the
  real out-of-focus one, the noise of both planes, and the spectral distance
  to the real plane of the plain simulator and of the simulator with another
  plane's detail (a thick section, :func:`wsi_deblur.blur.simulate.add_out_of_plane`);
- **BlurNet** on each plane at its true pixel size (class and probabilities);
- **every restorer and route** as ``wsi-deblur restore --mpp`` runs it
  (blur type detected, and forced to defocus), with and without the
  consistency guard: SSIM and PSNR to the in-focus plane (a 20-px border left
  out), and a no-reference sharpness (mean gradient magnitude) beside the
  in-focus plane's; Richardson-Lucy with a guessed Gaussian (std 6 px, 10
  iterations) as the classical reference;
- **the references every restorer is read against**: the linear limit (the
  best isotropic linear filter, 64 rings per channel, fitted on the other
  half of the pair and applied to this one) and Wiener told the pupil PSF
  fitted to the pair, restoring to the in-focus optics;
- **without a pixel size**: every restorer as ``wsi-deblur restore`` runs it
  without ``--mpp`` (the networks give way to Wiener then: never below the
  input).

Writes ``real.json`` and ``real.md`` (the tables ``docs/benchmarks.md`` quotes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio

from pipelines.shared_data import find_shared_data
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.fit import (
    apply_ring_filter,
    fit_defocus,
    gradient_sharpness,
    linear_filter_profile,
    noise_sigma,
    spectral_distance,
    ssim_inner,
    transfer_profile,
)
from wsi_deblur.blur.psf import defocus_psf, disc_psf
from wsi_deblur.blur.simulate import Optics, add_out_of_plane, convolve_rgb, defocus_psf_optics
from wsi_deblur.io import open_slide
from wsi_deblur.restore.wiener import wiener_to_in_focus

BORDER = 20
#: The thick-section simulator's settings, at the pair's pixels (fitted: see the module doc of
#: wsi_deblur.blur.simulate): another plane's detail finer than 2 um at 0.3 of its contrast, 2 grey levels of noise.
OUT_OF_PLANE = {"strength": 0.3, "detail_um": 2.0, "noise": 2.0}


def find_pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    """``(name, in-focus path, out-of-focus path)`` of every pair in ``folder``, sorted by name."""
    pairs = []
    for sharp in sorted(folder.glob("*-in-focus.png")):
        name = sharp.name[: -len("-in-focus.png")]
        blurred = folder / f"{name}-out-of-focus.png"
        if blurred.is_file():
            pairs.append((name, sharp, blurred))
    return pairs


def pair_mpp(folder: Path, name: str, default: float) -> float:
    sidecar = folder / f"{name}.json"
    return float(json.loads(sidecar.read_text())["mpp"]) if sidecar.is_file() else default


def sharpness(image: np.ndarray) -> float:
    """Mean gradient magnitude of the grey image (grey levels per pixel), border left out."""
    return gradient_sharpness(image, border=BORDER)


def scores(image: np.ndarray, sharp: np.ndarray) -> dict[str, float]:
    inner = np.s_[BORDER:-BORDER, BORDER:-BORDER]
    return {"ssim": round(ssim_inner(image, sharp, border=BORDER), 4),
            "psnr": round(float(peak_signal_noise_ratio(sharp[inner], image[inner], data_range=255)), 2),
            "sharpness": round(sharpness(image), 3)}


def fit_forward_model(sharp: np.ndarray, blurred: np.ndarray, mpp: float, rng: np.random.Generator) -> dict:
    """The blur between the planes, and how close each simulator comes to the real out-of-focus plane."""
    transfer = transfer_profile(sharp, blurred)
    green = transfer[1]
    negative = np.flatnonzero(green < 0)
    gaussians = {s: ssim_inner(convolve_rgb(sharp, defocus_psf(s)), blurred) for s in (3, 4, 5, 5.5, 6, 7, 8)}
    best_sigma = max(gaussians, key=gaussians.get)
    fit = fit_defocus(sharp, blurred, mpp)
    discs = {r: ssim_inner(convolve_rgb(sharp, disc_psf(r / mpp)), blurred) for r in np.arange(1.5, 3.76, 0.125)}
    best_disc = max(discs, key=discs.get)
    pupil = convolve_rgb(sharp, defocus_psf_optics(fit.defocus_um, Optics(numerical_aperture=fit.numerical_aperture,
                                                                          mpp=mpp)))
    other = sharp[::-1, ::-1]  # another plane's detail: the same tissue, not the same pixels
    thick = add_out_of_plane(pupil, other, OUT_OF_PLANE["strength"], detail_sigma_px=OUT_OF_PLANE["detail_um"] / mpp)
    thick = thick + rng.normal(0.0, OUT_OF_PLANE["noise"], thick.shape)
    return {
        "transfer_green": [round(float(v), 3) for v in green],
        "transfer_rings_cycles_per_px": 0.5 / len(green),
        "first_negative_cycles_per_px": round(float(negative[0] * 0.5 / len(green)), 3) if negative.size else None,
        "most_negative_transfer": round(float(green.min()), 3),
        "gaussian": {"sigma_px": best_sigma, "ssim": round(gaussians[best_sigma], 4)},
        "pupil": {"numerical_aperture": fit.numerical_aperture, "defocus_um": fit.defocus_um,
                  "ssim": round(fit.ssim, 4)},
        "disc": {"radius_um": round(float(best_disc), 3), "ssim": round(discs[best_disc], 4)},
        "noise_sigma": {"in_focus": round(noise_sigma(sharp), 2), "out_of_focus": round(noise_sigma(blurred), 2)},
        "spectral_distance": {
            "gaussian": round(spectral_distance(convolve_rgb(sharp, defocus_psf(best_sigma)), blurred), 3),
            "pupil": round(spectral_distance(pupil, blurred), 3),
            "pupil_with_other_plane_and_noise": round(spectral_distance(thick, blurred), 3)},
        "ssim_pupil_with_other_plane_and_noise": round(ssim_inner(thick, blurred), 4),
    }


def restorers(fast_weights: str | None, bcr_weights: str | None = None) -> dict:
    from wsi_deblur.restore.hybrid import HybridRestorer
    from wsi_deblur.restore.neural import NeuralRestorer
    from wsi_deblur.restore.wiener import WienerRestorer

    fast = NeuralRestorer("fast", weights_dir=fast_weights, threads=2)
    return {"hybrid": HybridRestorer(fast), "fast": fast, "dbmid": NeuralRestorer("dbmid", threads=2),
            "bcr": NeuralRestorer("bcr", weights_dir=bcr_weights, threads=2), "wiener": WienerRestorer(),
            "wiener (pupil PSF)": WienerRestorer(psf_model="pupil")}


def richardson_lucy_gaussian(image: np.ndarray, sigma: float = 6.0, iterations: int = 10) -> np.ndarray:
    from skimage.restoration import richardson_lucy

    out = np.stack([richardson_lucy(image[:, :, c] / 255.0, defocus_psf(sigma), num_iter=iterations, clip=False)
                    for c in range(3)], axis=2)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def linear_limit(sharp: np.ndarray, blurred: np.ndarray) -> np.ndarray:
    """Each half (top, bottom) of ``blurred`` restored by the best isotropic linear filter fitted on the other half.

    64 rings per channel, least squares (:func:`wsi_deblur.blur.fit.linear_filter_profile`): what a linear
    deconvolution that knew the real optics (measured on other pixels of the same scan) reaches.
    """
    h = sharp.shape[0] // 2
    top, bottom = np.s_[:h], np.s_[h:]
    out = np.empty_like(blurred)
    out[top] = apply_ring_filter(blurred[top], linear_filter_profile(sharp[bottom], blurred[bottom]))
    out[bottom] = apply_ring_filter(blurred[bottom], linear_filter_profile(sharp[top], blurred[top]))
    return out


def reference_rows(sharp: np.ndarray, blurred: np.ndarray, mpp: float) -> list[dict]:
    """The figures every restorer is read against: the linear limit, and Wiener told the fitted pupil defocus."""
    fit = fit_defocus(sharp, blurred, mpp)
    optics = Optics(numerical_aperture=fit.numerical_aperture, mpp=mpp)
    wiener = wiener_to_in_focus(blurred, fit.defocus_um, optics, balance=0.1)
    return [{"method": "linear limit: best isotropic linear filter fitted on the other half (64 rings)",
             **scores(linear_limit(sharp, blurred), sharp)},
            {"method": f"Wiener to the in-focus optics, pupil PSF fitted to the pair (NA {fit.numerical_aperture}, "
                       f"{fit.defocus_um} um), balance 0.1", **scores(wiener, sharp)}]


def other_pixel_size_rows(sharp: np.ndarray, blurred_path: Path, blurnet_weights: str | None,
                          fast_weights: str | None, bcr_weights: str | None,
                          given_mpp: float | None = None) -> list[dict]:
    """Every restorer as ``wsi-deblur restore`` runs it on the pair without ``--mpp``, or with a wrong one
    (``given_mpp``): detected route, guard on.
    """
    from wsi_deblur.classify.image import classify_image
    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.restore.image import restore_slide_region, restorer_for_pixel_size

    slide = open_slide(blurred_path, mpp=given_mpp)
    told = "no --mpp" if given_mpp is None else f"wrong --mpp {given_mpp:g}"
    sev = (found := classify_image(slide, NeuralBlurClassifier(weights=blurnet_weights, threads=2)))["severity"]
    estimate = BlurEstimate(found["class"], dict(found["probabilities"]), defocus_sigma_px=sev["defocus_sigma_px"],
                            motion_length_px=sev["motion_length_px"], motion_angle_deg=sev["motion_angle_deg"],
                            defocus_um=sev["defocus_um"])
    rows = []
    for rname, restorer in restorers(fast_weights, bcr_weights).items():
        ran = restorer_for_pixel_size(restorer, slide.mpp_source)
        out = restore_slide_region(slide, estimate, ran, guard=True)
        rows.append({"method": rname, "route": f"{told} ({estimate.label}; {ran.name} ran)", **scores(out, sharp)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def evaluate_pair(name: str, sharp_path: Path, blurred_path: Path, mpp: float, fast_weights: str | None,
                  blurnet_weights: str | None = None, bcr_weights: str | None = None) -> dict:
    from wsi_deblur.classify.image import classify_image
    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.restore.image import restore_slide_region

    sharp_slide, blurred_slide = open_slide(sharp_path, mpp=mpp), open_slide(blurred_path, mpp=mpp)
    sharp = sharp_slide.read_region(0, 0, *sharp_slide.shape)
    blurred = blurred_slide.read_region(0, 0, *blurred_slide.shape)
    classifier = NeuralBlurClassifier(weights=blurnet_weights, threads=2)
    found = {plane: classify_image(slide, classifier)
             for plane, slide in (("in_focus", sharp_slide), ("out_of_focus", blurred_slide))}
    sev = found["out_of_focus"]["severity"]
    detected = BlurEstimate(found["out_of_focus"]["class"], dict(found["out_of_focus"]["probabilities"]),
                            defocus_sigma_px=sev["defocus_sigma_px"], motion_length_px=sev["motion_length_px"],
                            motion_angle_deg=sev["motion_angle_deg"], defocus_um=sev["defocus_um"])
    forced = BlurEstimate("defocus", {"in_focus": 0.0, "defocus": 1.0}, defocus_sigma_px=sev["defocus_sigma_px"],
                          defocus_um=sev["defocus_um"])
    rows = [{"method": "as scanned", **scores(blurred, sharp)},
            {"method": "Richardson-Lucy, Gaussian std 6 px, 10 iterations",
             **scores(richardson_lucy_gaussian(blurred), sharp)}]
    rows += reference_rows(sharp, blurred, mpp)
    for rname, restorer in restorers(fast_weights, bcr_weights).items():
        for route, estimate in (("detected", detected), ("defocus", forced)):
            for guard in (True, False):
                t0 = time.perf_counter()
                out, reports = restore_slide_region(blurred_slide, estimate, restorer, guard=guard,
                                                    return_reports=True)
                actions = sorted({r.action for r in reports.values()})
                rows.append({"method": rname, "route": f"{route} ({estimate.label})", "guard": guard,
                             "guard_actions": actions if guard else None,
                             "consistency": (round(max(r.consistency for r in reports.values()), 3)
                                           if guard and reports else None),
                             "seconds": round(time.perf_counter() - t0, 2), **scores(out, sharp)})
                print(json.dumps({"pair": name, **rows[-1]}), flush=True)
    for wrong in (None, 2 * mpp, mpp / 2):
        rows += other_pixel_size_rows(sharp, blurred_path, blurnet_weights, fast_weights, bcr_weights, wrong)
    return {"pair": name, "mpp": mpp, "shape": list(sharp.shape[:2]),
            "in_focus_sharpness": round(sharpness(sharp), 3),
            "blurnet": found, "forward_model": fit_forward_model(sharp, blurred, mpp, np.random.default_rng(0)),
            "restorations": rows}


def told_disc_um(result: dict) -> float:
    """The disc radius (um) BlurNet's estimate of the out-of-focus plane implies."""
    return 2 * result["blurnet"]["out_of_focus"]["severity"]["defocus_sigma_px"] * result["mpp"]


def markdown(results: list[dict]) -> str:
    lines = []
    for r in results:
        fm = r["forward_model"]
        base = next(row for row in r["restorations"] if row["method"] == "as scanned")["ssim"]
        lines += [f"## {r['pair']} ({r['shape'][1]} x {r['shape'][0]} px, {r['mpp']} um/px)", "",
                  "BlurNet (true pixel size): " + "; ".join(
                      f"{plane} plane called **{v['class']}** (P in focus {v['probabilities']['in_focus']:.3f}, "
                      f"defocus {v['probabilities']['defocus']:.3f}, mixed {v['probabilities']['mixed']:.3f}; "
                      f"defocus {v['severity']['defocus_um']} um)" for plane, v in r["blurnet"].items()) + ".", "",
                  "| method | route | guard | SSIM | gain | PSNR (dB) | sharpness |", "|---|---|---|---|---|---|---|"]
        for row in r["restorations"]:
            guard = "" if "guard" not in row else ("on: " + ", ".join(row["guard_actions"])
                                                  + f" (consistency {row['consistency']})" if row["guard"] else "off")
            lines.append(f"| {row['method']} | {row.get('route', '')} | {guard} | {row['ssim']:.4f} | "
                         f"{row['ssim'] - base:+.4f} | {row['psnr']:.2f} | {row['sharpness']:.2f} |")
        lines += ["", f"In-focus plane's sharpness: {r['in_focus_sharpness']:.2f}.", "",
                  "Forward model fitted to the pair:", "",
                  f"- transfer (green) per ring of {fm['transfer_rings_cycles_per_px']} cycles/px: "
                  + ", ".join(f"{v:+.2f}" for v in fm["transfer_green"][:12])
                  + f"; first negative at {fm['first_negative_cycles_per_px']} cycles/px, lowest "
                    f"{fm['most_negative_transfer']:+.3f} (a Gaussian never goes below 0)",
                  f"- best Gaussian: std {fm['gaussian']['sigma_px']} px, SSIM to the real plane "
                  f"{fm['gaussian']['ssim']:.4f}; best pupil defocus: NA {fm['pupil']['numerical_aperture']}, "
                  f"{fm['pupil']['defocus_um']} um, SSIM {fm['pupil']['ssim']:.4f}; best geometric disc: radius "
                  f"{fm['disc']['radius_um']} um, SSIM {fm['disc']['ssim']:.4f}",
                  f"- the disc BlurNet's estimate implies (radius twice its Gaussian-equivalent width, what every "
                  f"restorer is told): {told_disc_um(r):.2f} um, {told_disc_um(r) / fm['disc']['radius_um'] - 1:+.1%} "
                  "from the fitted disc",
                  f"- noise (grey levels): in focus {fm['noise_sigma']['in_focus']}, out of focus "
                  f"{fm['noise_sigma']['out_of_focus']}",
                  "- spectral distance to the real plane (mean |log| amplitude ratio, 0.03-0.37 cycles/px): "
                  + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fm["spectral_distance"].items())
                  + f" (SSIM of the last {fm['ssim_pupil_with_other_plane_and_noise']:.4f}: right kind of "
                    "structure, not the same pixels)", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/eval-real"))
    parser.add_argument("--mpp", type=float, default=0.25, help="pixel size of pairs without a <name>.json")
    parser.add_argument("--fast-weights", type=str, default=None,
                        help="folder of candidate fast weights, to compare before shipping")
    parser.add_argument("--bcr-weights", type=str, default=None,
                        help="folder of a candidate deblur_bcr_all.safetensors, to compare before shipping")
    parser.add_argument("--blurnet-weights", type=str, default=None,
                        help="candidate BlurNet safetensors, to compare before shipping")
    args = parser.parse_args()
    root = find_shared_data()
    if root is None or not (root / "real-defocus").is_dir():
        parser.exit(1, "needs ../shared/data/real-defocus (or $WSI_DEBLUR_SHARED_DATA)\n")
    folder = root / "real-defocus"
    pairs = find_pairs(folder)
    if not pairs:
        parser.exit(1, f"{folder}: no <name>-in-focus.png / <name>-out-of-focus.png pairs\n")
    results = [evaluate_pair(name, s, b, pair_mpp(folder, name, args.mpp), args.fast_weights, args.blurnet_weights,
                             args.bcr_weights) for name, s, b in pairs]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "real.json").write_text(json.dumps({"fast_weights": args.fast_weights or "shipped",
                                                    "bcr_weights": args.bcr_weights or "shipped",
                                                    "blurnet_weights": args.blurnet_weights or "shipped",
                                                    "pairs": results}, indent=2) + "\n")
    (args.out / "real.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
