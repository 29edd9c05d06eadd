"""Speed of the deblurring networks and of `restore` / `run` end to end.

    python benchmarks/restorers.py [--window 576] [--field 2048] [--slide 8192] [--work out/bench]
    python benchmarks/restorers.py --networks-only      # part 1 only (a minute)

1. Each network (``fast``, ``dbmid``, ``bcr``) on batches of slide windows (``window`` px,
   the default tile + halo): fp32 with PyTorch defaults (NCHW), fp32
   channels-last, bf16 autocast channels-last; on CUDA (when present) fp32 and
   fp16. Mpx/s of input.
2. `restore` end to end (read, detect the blur type, windows, blend, PNG) on a
   defocused and on a motion-blurred ``field`` px field, for each model
   (``fast``'s DL_motion folds each window by mirroring and transposing it:
   no extra pixels).
3. `run` end to end on the synthetic benchmark slide (restoring its blurred
   patches), for each restorer.

Prints Markdown tables and writes out/bench/restorers.json. The headline ratio
is `restore` with the default model against the ``dbmid`` network alone in fp32
with PyTorch defaults (an upper bound on a dbmid pipeline's speed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import benchmark_slide, run_child  # noqa: E402

from wsi_deblur.nets.registry import RESTORER_ARCHITECTURES as ARCHITECTURES  # noqa: E402
from wsi_deblur.nets.runtime import load_deblur_network, network_conditions
from wsi_deblur.restore.by_name import RESTORERS  # noqa: E402
from wsi_deblur.restore.neural import NeuralRestorer, default_weights  # noqa: E402


def _timed(fn, min_seconds: float = 3.0) -> float:
    fn()  # warm-up (oneDNN primitive creation, CUDA kernels)
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if time.perf_counter() - t0 >= min_seconds:
            return (time.perf_counter() - t0) / n


def network_speed(arch: str, window: int, batch: int) -> dict[str, float]:
    """Mpx/s of the DL_defocus network of ``arch`` (``bcr``: its one network) in each precision and layout."""
    torch.set_num_threads(os.cpu_count() or 1)  # PyTorch's default: all cores
    weights = str(default_weights(arch, NeuralRestorer(arch).networks[0]))
    net = load_deblur_network(weights, "cpu")
    pixels = batch * window * window
    x = torch.rand(batch, 3, window, window)
    extra = network_conditions(net, batch)
    out = {}
    settings = {"cpu fp32, PyTorch defaults": (torch.contiguous_format, False),
                "cpu fp32 channels-last": (torch.channels_last, False),
                "cpu bf16 autocast channels-last": (torch.channels_last, True)}
    for name, (layout, bf16) in settings.items():
        model = net.to(memory_format=layout)
        xin = x.contiguous(memory_format=layout)

        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(xin, *extra)

        out[name] = pixels / _timed(step) / 1e6
    net.to(memory_format=torch.channels_last)
    if torch.cuda.is_available():
        for name, dtype in (("cuda fp32", torch.float32), ("cuda fp16", torch.float16)):
            model = load_deblur_network(weights, "cuda").to(dtype)
            xin = x.to("cuda", dtype)
            extra_cuda = tuple(e.to("cuda") for e in extra)

            def step():
                with torch.inference_mode():
                    model(xin, *extra_cuda)
                torch.cuda.synchronize()

            out[name] = pixels / _timed(step) / 1e6
    return out


#: The blur of each benchmark field.
FIELD_BLURS = {"defocused": {"label": "defocus", "defocus_um": 3.0},
               "motion-blurred": {"label": "motion", "motion_length_px": 21.0, "motion_angle_deg": 30.0}}


def blurred_field(size: int, folder: Path, kind: str) -> Path:
    """A synthetic ``size`` px field with the blur ``FIELD_BLURS[kind]``, noise and JPEG, as a PNG."""
    from PIL import Image

    from wsi_deblur.blur.simulate import BlurParams, Optics, simulate
    from wsi_deblur.synthetic import SyntheticSlide

    path = folder / f"{kind}-field-{size}.png"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        sharp = SyntheticSlide((size, size), tissue=False).render(0, 0, size, size)
        params = BlurParams(**FIELD_BLURS[kind], jpeg_quality=90, optics=Optics(0.75, mpp=0.5))
        Image.fromarray(simulate(sharp, params, np.random.default_rng(0))).save(path)
    return path


def restore_speed(path: Path, size: int) -> dict[str, dict]:
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.image import restore_image

    classifier = make_classifier("neural", threads=os.cpu_count() or 1)  # as the CLI does
    out = {}
    for name in RESTORERS:
        restorer = make_restorer(name, threads=os.cpu_count() or 1)  # as the CLI does
        with tempfile.TemporaryDirectory() as tmp:
            restore_image(path, tmp, restorer, classifier=classifier)  # warm-up: loads the models
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                result = restore_image(path, tmp, restorer, classifier=classifier)
                times.append(time.perf_counter() - t0)
            seconds = float(np.median(times))
        out[name] = {"seconds": seconds, "mpx_per_s": size * size / 1e6 / seconds, "class": result["class"]}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=576)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--field", type=int, default=2048)
    parser.add_argument("--slide", type=int, default=8192)
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    parser.add_argument("--networks-only", action="store_true", help="only the networks' speed (part 1)")
    args = parser.parse_args()
    results: dict = {"threads": torch.get_num_threads(), "networks": {}}

    for arch in ARCHITECTURES:
        results["networks"][arch] = network_speed(arch, args.window, args.batch)
    settings = list(results["networks"]["fast"])
    print(f"Networks, Mpx/s ({args.batch} windows of {args.window} px, {results['threads']} threads):\n")
    print("| model | " + " | ".join(settings) + " |\n|---|" + "---|" * len(settings))
    for arch, row in results["networks"].items():
        print(f"| {arch} | " + " | ".join(f"{row[s]:.2f}" for s in settings) + " |")
    if args.networks_only:
        return

    reference = results["networks"]["dbmid"]["cpu fp32, PyTorch defaults"]
    results["restore"] = {}
    for kind in FIELD_BLURS:
        field = blurred_field(args.field, args.work / "fields", kind)
        results["restore"][kind] = restore_speed(field, args.field)
        print(f"\n`restore` end to end, {args.field}x{args.field} {kind} field:\n")
        print("| model | detected | Mpx/s | x dbmid network fp32 defaults |\n|---|---|---|---|")
        for name, r in results["restore"][kind].items():
            print(f"| {name} | {r['class']} | {r['mpx_per_s']:.2f} | {r['mpx_per_s'] / reference:.1f}x |")

    slide = benchmark_slide(args.slide, args.work / "slides")
    results["run"] = {}
    for name in RESTORERS:
        out = args.work / f"run-{name}-{slide.stem}"
        shutil.rmtree(out, ignore_errors=True)
        results["run"][name] = run_child(["run", str(slide), str(out), "--restorer", name])
    print(f"\n`run` end to end, {args.slide}^2 synthetic slide:\n")
    print("| restorer | Mpx/s of slide | restored tiles | restore + write Zarr (s) | total (s) |\n|---|---|---|---|---|")
    for name, r in results["run"].items():
        print(f"| {name} | {r['mpx_per_s']:.2f} | {r['restored_tiles']} | "
              f"{r['timings_s'].get('restore_write_zarr', float('nan')):.1f} | {r['seconds']:.1f} |")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "restorers.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
