"""Evaluate the deblurring models and classical baselines on held-out fields.

    python -m pipelines.evaluate_restorers --data out/data/restore-128.npz --out out/eval
    python -m pipelines.evaluate_restorers --fast-weights out/candidate --out out/eval-candidate  # before shipping
    python -m pipelines.evaluate_restorers --bcr-weights out/bcr --out out/eval-bcr             # a bcr candidate

On the test pairs of :mod:`pipelines.restore_data` (fields never used in
training), per blur type and severity bin, SSIM and PSNR against the sharp
field of:

- the blurred input;
- ``fast``, ``dbmid`` and ``bcr``, each routed by the *true* blur type and
  motion direction (``bcr`` also told the true PSF: the networks' own
  quality) and, for ``fast`` and ``bcr``, also by the type, direction (and
  PSF) BlurNet detects on the crop (the product end to end), and ``fast``
  with mixed blur through DBMID's chain (DL_motion, then DL_defocus) instead
  of its DL_mixed;
- Richardson-Lucy (30 iterations) given the true per-channel PSF;
- unsupervised Wiener (scikit-image's Gibbs-sampled regularisation) given the
  true per-channel PSF.

Both baselines run on the image mirrored by the PSF's size, so they see no
dark or wrapped borders.

Per held-out field, the SSIM gain of ``fast`` (true type) on each blur type:
fields differ far more than the networks do (dense H&E tissue against sparse
cytology on glass), and the headline mean weighs every field alike.

Also the no-artefact check on real sharp scans: every held-out field, untouched
by the simulator, forced through each network (DL_defocus, DL_motion, DL_mixed;
``bcr`` told the PSF BlurNet estimates on the field, as each blur type);
SSIM of output to input.

Writes ``restoration.json`` and ``restoration.md`` (the table in docs/models.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.metrics import structural_similarity as ssim

from pipelines.blur_data import shared_data_dir
from wsi_deblur.blur.classes import DEFOCUSED, MOVING
from wsi_deblur.blur.degrade import psf_of
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.simulate import BlurParams, Optics
from wsi_deblur.io import open_slide
from wsi_deblur.nets.runtime import run_network
from wsi_deblur.restore.neural import NeuralRestorer, psf_conditions

#: Severity bins: added defocus std (px) for defocus, motion length (px) for motion and mixed.
BINS = {"defocus": (1.2, 2.5, 4.0, 6.0), "motion": (5, 15, 25, 40), "mixed": (5, 15, 25, 40)}


def true_psf(kind: str, params: np.ndarray) -> np.ndarray:
    """The ``(3, k, k)`` PSF a test pair was blurred with."""
    defocus, length, angle, na = (float(v) for v in params[:4])
    p = BlurParams(label=kind, defocus_um=defocus, motion_length_px=length if kind in MOVING else 0.0,
                   motion_angle_deg=angle, optics=Optics(numerical_aperture=na, mpp=0.5))
    return psf_of(p)


def true_estimate(kind: int, params: np.ndarray) -> BlurEstimate:
    """What a perfect classifier would say about a test pair: its type, defocus and motion."""
    label = BLUR_CLASSES[kind]
    moving = label in MOVING
    return BlurEstimate(label, defocus_sigma_px=float(params[4]) if label in DEFOCUSED else 0.0,
                        motion_length_px=float(params[1]) if moving else 0.0,
                        motion_angle_deg=float(params[2]) if moving else 0.0, defocus_um=float(params[0]))


def _mirrored(image: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(image.astype(np.float64) / 255.0, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")


def _cropped(padded: np.ndarray, pad: int) -> np.ndarray:
    return np.clip(np.rint(padded[pad:-pad, pad:-pad] * 255), 0, 255).astype(np.uint8)


def richardson_lucy_rgb(image: np.ndarray, psf: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Richardson-Lucy per channel, on the image mirrored by the PSF's size (no dark borders)."""
    from skimage.restoration import richardson_lucy

    pad = psf.shape[-1]
    img = _mirrored(image, pad)
    out = np.stack([richardson_lucy(img[:, :, c], psf[c], num_iter=iterations, clip=True) for c in range(3)], 2)
    return _cropped(out, pad)


def unsupervised_wiener_rgb(image: np.ndarray, psf: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-image's unsupervised Wiener per channel, on the mirrored image (its FFT sees no edges)."""
    from skimage.restoration import unsupervised_wiener

    pad = psf.shape[-1]
    img = _mirrored(image, pad)
    rng = np.random.default_rng(seed)
    out = np.stack([unsupervised_wiener(img[:, :, c], psf[c], clip=True, rng=rng)[0] for c in range(3)], 2)
    return _cropped(out, pad)


def severity_bin(kind: str, params: np.ndarray) -> str:
    if kind not in BINS:
        return "all"
    value = float(params[4] if kind == "defocus" else params[1])
    edges = BINS[kind]
    for lo, hi in zip(edges[:-1], edges[1:]):
        if value < hi:
            return f"{lo}-{hi}"
    return f"{edges[-2]}-{edges[-1]}"


def score(images: np.ndarray, sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.array([ssim(a, b, channel_axis=2) for a, b in zip(images, sharp)])
    p = np.array([psnr(b, a) for a, b in zip(images, sharp)])
    return s, p


#: The blur types whose mean SSIM gain the evaluation reports.
RESTORED_KINDS = ("defocus", "motion", "mixed")


def gains_per_field(gain: np.ndarray, kinds: np.ndarray, fields: np.ndarray, sources: list[str]) -> list[dict]:
    """Mean of each pair's SSIM ``gain`` per field and blur type (and the mean over the types).

    ``fields`` indexes ``sources`` for each pair; a field without pairs of a
    type has no entry for it, and its ``mean`` averages the types it has.
    """
    rows = []
    for f, source in enumerate(sources):
        row: dict = {"field": source}
        for kind in RESTORED_KINDS:
            sel = (fields == f) & (kinds == BLUR_CLASSES.index(kind))
            if sel.any():
                row[kind] = {"gain": float(gain[sel].mean()), "n": int(sel.sum())}
        typed = [row[k]["gain"] for k in RESTORED_KINDS if k in row]
        if typed:
            row["mean"] = float(np.mean(typed))
            rows.append(row)
    return rows


def sharp_field_check(root: Path, sources: list[str], restorers: dict[str, NeuralRestorer],
                      crop: int = 1024, classifier=None) -> dict:
    """SSIM(output, input) of real sharp held-out fields forced through each network.

    A network told the PSF (``bcr``) is told what ``classifier`` estimates on the field, as each blur type.
    """
    from dataclasses import replace

    out: dict[str, list[float]] = {}
    for rel in sources:
        slide = open_slide(str(root / rel))
        h, w = slide.shape
        hh, ww = min(h, crop), min(w, crop)
        image = slide.read_region((h - hh) // 2, (w - ww) // 2, hh, ww)
        for name, restorer in restorers.items():
            if restorer.architecture == "bcr":
                found = classifier.classify(image[None])[0]
                for label in RESTORED_KINDS:
                    psf = psf_conditions([replace(found, label=label)])
                    restored = run_network(restorer.network("all"), image[None], psf=psf, threads=restorer.threads)[0]
                    out.setdefault(f"{name} told BlurNet's PSF as {label}", []).append(
                        float(ssim(restored, image, channel_axis=2)))
                continue
            for blur in restorer.networks:
                restored = run_network(restorer.network(blur), image[None], threads=restorer.threads)[0]
                out.setdefault(f"{name} DL_{blur}", []).append(float(ssim(restored, image, channel_axis=2)))
    return {k: {"mean": float(np.mean(v)), "min": float(np.min(v)), "n": len(v),
                "worst": sources[int(np.argmin(v))],
                "second_worst": float(np.sort(v)[1]) if len(v) > 1 else float("nan")} for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("out/data/restore-128.npz"))
    parser.add_argument("--out", type=Path, default=Path("out/eval"))
    parser.add_argument("--limit", type=int, default=None, help="at most this many test pairs")
    parser.add_argument("--fast-weights", type=str, default=None,
                        help="folder of candidate fast weights (deblur_fast_<blur>.safetensors for defocus, motion "
                             "and mixed), to compare before shipping; default: those shipped in the package")
    parser.add_argument("--bcr-weights", type=str, default=None,
                        help="folder of a candidate deblur_bcr_all.safetensors; default: the shipped one")
    parser.add_argument("--baseline-limit", type=int, default=40,
                        help="pairs per blur type for the (slow) classical baselines")
    args = parser.parse_args()
    data = np.load(args.data)
    blurred, sharp, kinds, params = (data[f"test_{k}"] for k in ("blurred", "sharp", "kind", "params"))
    if args.limit:
        blurred, sharp, kinds, params = blurred[:args.limit], sharp[:args.limit], kinds[:args.limit], params[:args.limit]
    restorers = {"fast": NeuralRestorer("fast", weights_dir=args.fast_weights), "dbmid": NeuralRestorer("dbmid"),
                 "bcr": NeuralRestorer("bcr", weights_dir=args.bcr_weights)}
    from wsi_deblur.classify.neural import NeuralBlurClassifier

    classifier = NeuralBlurClassifier()
    methods: dict[str, np.ndarray] = {"blurred input": blurred}
    seconds: dict[str, float] = {}
    for name, restorer in restorers.items():
        t0 = time.perf_counter()
        methods[f"{name} (true type)"] = restorer.restore(blurred, [true_estimate(k, p) for k, p in zip(kinds, params)])
        seconds[name] = time.perf_counter() - t0
    detected = classifier.classify(blurred)
    methods["fast (detected type)"] = restorers["fast"].restore(blurred, detected)
    methods["bcr (detected type)"] = restorers["bcr"].restore(blurred, detected)
    guarded, reports = guard_restorations(blurred, methods["fast (true type)"],
                                          [true_estimate(k, p) for k, p in zip(kinds, params)])
    methods["fast (true type), guarded"] = guarded
    methods["fast, DBMID's mixed chain (true type)"], mixed_speed = mixed_routes(
        blurred, kinds, params, methods["fast (true type)"], weights_dir=args.fast_weights)

    scores = {name: score(images, sharp) for name, images in methods.items()}  # (SSIM, PSNR) of every pair
    rows: list[dict] = []
    for k in np.unique(kinds):
        kind = BLUR_CLASSES[k]
        sel = np.flatnonzero(kinds == k)
        bins = np.array([severity_bin(kind, params[i]) for i in sel])
        base = sel[:args.baseline_limit] if kind != "in_focus" else sel[:0]
        baselines = {}
        for name, fn in (("Richardson-Lucy, true PSF", richardson_lucy_rgb),
                         ("unsupervised Wiener, true PSF", unsupervised_wiener_rgb)):
            baselines[name] = {i: fn(blurred[i], true_psf(kind, params[i])) for i in base}
        for b in sorted(set(bins) - {"all"}, key=lambda v: float(v.split("-")[0])) + ["all"]:
            members = sel if b == "all" else sel[bins == b]
            row = {"kind": kind, "severity": b, "n": int(len(members))}
            for name in methods:
                s, p = scores[name]
                row[name] = {"ssim": float(s[members].mean()), "psnr": float(p[members].mean())}
            for name, done in baselines.items():
                ids = [i for i in members if i in done]
                if ids:
                    s, p = score(np.stack([done[i] for i in ids]), sharp[ids])
                    (si, pi), sf = scores["blurred input"], scores["fast (true type)"][0]
                    row[name] = {"ssim": float(s.mean()), "psnr": float(p.mean()), "n": len(ids),
                                 "input_ssim": float(si[ids].mean()), "input_psnr": float(pi[ids].mean()),
                                 "fast_ssim": float(sf[ids].mean())}
            rows.append(row)
            print(json.dumps(row), flush=True)

    root = shared_data_dir()
    sharp_check = sharp_field_check(root, [str(s) for s in data["test_sources"]], restorers,
                                    classifier=classifier)
    pixels = blurred.shape[1] * blurred.shape[2] * len(blurred)
    fields = {name: gains_per_field(scores[f"{name} (true type)"][0] - scores["blurred input"][0], kinds,
                                    data["test_field"][:len(kinds)], [str(s) for s in data["test_sources"]])
              for name in ("fast", "bcr")} if "test_field" in data else {}
    result = {"fast_weights": args.fast_weights or "shipped", "bcr_weights": args.bcr_weights or "shipped",
              "rows": rows, "sharp_fields": sharp_check, "fields": fields,
              "guard_pulled_back": {BLUR_CLASSES[k]: int(sum(r.action == "pulled back"
                                                          for r, kind in zip(reports, kinds) if kind == k))
                                 for k in np.unique(kinds)},
              "classifier_accuracy_on_pairs": float(np.mean([d.label == BLUR_CLASSES[k]
                                                             for d, k in zip(detected, kinds)])),
              "mpx_per_s_cpu": {k: pixels / v / 1e6 for k, v in seconds.items()},
              "mixed_mpx_per_s_cpu": mixed_speed}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "restoration.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "restoration.md").write_text(markdown_table(result))
    print(markdown_table(result))


def guard_restorations(blurred: np.ndarray, restored: np.ndarray, estimates: list[BlurEstimate]):
    """``restored`` through the consistency guard as a run applies it (pairs at 0.5 um/px), and its reports."""
    from wsi_deblur.restore.guard import GuardedRestorer

    return GuardedRestorer(None, mpp=0.5).check(blurred, restored, estimates)


def mixed_routes(blurred: np.ndarray, kinds: np.ndarray, params: np.ndarray, routed: np.ndarray, *,
                 weights_dir: str | None = None) -> tuple[np.ndarray, dict[str, float]]:
    """``routed`` (``fast`` by the true types) with its mixed pairs put through DBMID's chain instead.

    Also the speed (Mpx/s, this CPU) of the mixed pairs through DL_mixed and through the chain.
    ``weights_dir``: the ``fast`` weights (default: the shipped ones).
    """
    mixed = np.flatnonzero(kinds == BLUR_CLASSES.index("mixed"))
    angles = [true_estimate(k, p).motion_angle_deg for k, p in zip(kinds[mixed], params[mixed])]
    pixels = blurred[mixed].size / 3
    speed, out = {}, routed.copy()
    for name, restorer in (("DL_mixed", NeuralRestorer("fast", weights_dir=weights_dir)),
                           ("DL_motion then DL_defocus", NeuralRestorer("fast", weights_dir=weights_dir,
                                                                        chain_mixed=True))):
        t0 = time.perf_counter()
        restored = restorer.restore_as(blurred[mixed], "mixed", angles)
        speed[name] = pixels / (time.perf_counter() - t0) / 1e6
        if restorer.chain_mixed:
            out[mixed] = restored
    return out, speed


def markdown_table(result: dict) -> str:
    names = ["blurred input", "fast (true type)", "fast (true type), guarded", "fast (detected type)",
             "fast, DBMID's mixed chain (true type)", "dbmid (true type)", "bcr (true type)", "bcr (detected type)"]
    base = ["Richardson-Lucy, true PSF", "unsupervised Wiener, true PSF"]
    head = ("| blur | severity | n | " + " | ".join(names) + " | "
            + " | ".join(f"{b} (its input; fast on its pairs)" for b in base)
            + " |\n|" + "---|" * (3 + len(names) + len(base)) + "\n")
    lines = []
    for r in result["rows"]:
        cells = [f"{r[n]['ssim']:.3f} / {r[n]['psnr']:.1f}" for n in names]
        for b in base:
            cells.append(f"{r[b]['ssim']:.3f} / {r[b]['psnr']:.1f} ({r[b]['input_ssim']:.3f}; fast "
                         f"{r[b]['fast_ssim']:.3f}; n={r[b]['n']})"
                         if b in r else "-")
        sev = r["severity"] + (" px std" if r["kind"] == "defocus" and r["severity"] != "all" else
                               " px long" if r["severity"] not in ("all",) else "")
        lines.append(f"| {r['kind']} | {sev} | {r['n']} | " + " | ".join(cells) + " |")
    checks = "\n".join(f"- {k}: SSIM to input mean {v['mean']:.4f}, min {v['min']:.4f} over {v['n']} fields "
                       f"(on {v['worst']}; next lowest {v['second_worst']:.4f})"
                       for k, v in result["sharp_fields"].items())
    per_field = ""
    for name, fields in (result.get("fields") or {}).items():
        per_field += (f"\n\nSSIM gain of `{name}` (true type) over the blurred input, per held-out field:\n\n"
                      "| field | " + " | ".join(RESTORED_KINDS) + " | mean |\n|" + "---|" * (2 + len(RESTORED_KINDS))
                      + "\n" + "\n".join(f"| {r['field']} | "
                                          + " | ".join(f"{r[k]['gain']:+.3f} (n={r[k]['n']})" if k in r else "-"
                                                       for k in RESTORED_KINDS)
                                          + f" | {r['mean']:+.3f} |" for r in fields))
    return ("SSIM / PSNR (dB) against the sharp field; held-out fields only.\n\n" + head + "\n".join(lines)
            + per_field
            + f"\n\nBlurNet's type on these pairs: {result['classifier_accuracy_on_pairs']:.1%} correct.\n\n"
            + "Pairs whose `fast` restoration the consistency guard pulled back toward the input: "
            + ", ".join(f"{k} {v}" for k, v in result.get("guard_pulled_back", {}).items()) + ".\n\n"
            + "Mixed pairs, `fast`, Mpx/s on this CPU: "
            + ", ".join(f"{k} {v:.2f}" for k, v in result.get("mixed_mpx_per_s_cpu", {}).items()) + ".\n\n"
            + "Real sharp held-out fields forced through each network (no simulated blur):\n\n" + checks + "\n")


if __name__ == "__main__":
    main()
