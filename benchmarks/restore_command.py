"""`wsi-deblur restore` on four 1024 x 1024 fields, from the command, against a DBMID-size fp32 forward pass.

    python benchmarks/restore_command.py [--work out/bench/restore-command] [--runs 3]

The fields are 0.5 um/px and the command is told so (``--mpp 0.5``): without a
pixel size `restore` gives the networks' windows to Wiener. Besides the #23
figure it prints the #32 one: restoration end to end in a warm process as a
share of its networks alone (`fast`'s DL networks on the same windows, in their
CPU precision, nothing else), for `fast` and for the default `hybrid`.

The #23 target: `restore` end to end from the command (a fresh process:
imports, loading the networks, reading, detection, restoration with the
consistency guard, blending, PNGs) on four 1024 x 1024 blurred fields
(defocus, motion, defocus, mixed; synthetic tissue through the simulator,
JPEG 90) >= 20x the `dbmid` network's fp32 forward pass with PyTorch's
defaults on the same pixels, in the same run. Also reports the same work
in one warm process (`restore_image` after a warm-up), which is what a long
batch sees, and where its time goes (cProfile, the ten largest cumulative
entries of wsi_deblur).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: The four fields: the simulator's parameters (motion length in pixels at 0.5 um/px).
FIELDS = (("defocus", dict(label="defocus", defocus_um=2.5)),
          ("motion", dict(label="motion", motion_length_px=17, motion_angle_deg=30.0)),
          ("defocus-strong", dict(label="defocus", defocus_um=3.5)),
          ("mixed", dict(label="mixed", defocus_um=2.0, motion_length_px=13, motion_angle_deg=100.0)))
#: The fields' pixel size (micrometres), as the simulator made them.
MPP = 0.5


def fields(folder: Path, size: int = 1024) -> list[Path]:
    """The four blurred fields as PNGs (made once)."""
    from PIL import Image

    from wsi_deblur.blur.simulate import BlurParams, Optics, simulate
    from wsi_deblur.synthetic import SyntheticSlide

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (name, blur) in enumerate(FIELDS):
        path = folder / f"{name}-{size}.png"
        if not path.exists():
            sharp = SyntheticSlide((size, size), tissue=False, seed=20 + k).render(0, 0, size, size)
            params = BlurParams(**blur, jpeg_quality=90, optics=Optics(0.75, mpp=0.5))
            Image.fromarray(simulate(sharp, params, np.random.default_rng(k))).save(path)
        paths.append(path)
    return paths


def dbmid_forward_seconds(images: list[np.ndarray]) -> float:
    """The `dbmid` DL_defocus network in fp32 with PyTorch's defaults on the fields (both cores), best of 2."""
    import torch

    from wsi_deblur.nets.runtime import network_from_weights
    from wsi_deblur.restore.neural import default_weights

    net, _ = network_from_weights(default_weights("dbmid", "defocus"))
    torch.set_num_threads(os.cpu_count() or 1)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(2):
            t0 = time.perf_counter()
            for image in images:
                net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0)
            best = min(best, time.perf_counter() - t0)
    return best


def networks_alone_seconds(images: list[np.ndarray]) -> float:
    """`fast`'s networks alone on the fields (one window each, the route of its blur), warm; best of 2."""
    from wsi_deblur.blur.estimate import BlurEstimate
    from wsi_deblur.restore.neural import NeuralRestorer

    restorer = NeuralRestorer("fast", threads=os.cpu_count() or 1)
    estimates = [BlurEstimate(blur["label"], {blur["label"]: 1.0}, defocus_um=blur.get("defocus_um", 0.0),
                              motion_length_px=blur.get("motion_length_px", 0.0),
                              motion_angle_deg=blur.get("motion_angle_deg", 0.0)) for _, blur in FIELDS]
    best = float("inf")
    for _ in range(3):  # the first loads the networks
        t0 = time.perf_counter()
        for image, estimate in zip(images, estimates):
            restorer.restore(image[None], [estimate])
        best = min(best, time.perf_counter() - t0)
    return best


def in_process(paths: list[Path], restorer_name: str = "fast") -> tuple[float, str]:
    """Seconds to restore the fields in one warm process, and its profile (top of wsi_deblur by cumulative time)."""
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.image import restore_image

    classifier = make_classifier("neural", threads=os.cpu_count() or 1)
    restorer = make_restorer(restorer_name, threads=os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:  # warm-up: loads the networks, measures their CPU paths once
            restore_image(path, tmp, restorer, classifier=classifier, mpp=MPP)
        t0 = time.perf_counter()
        for path in paths:
            restore_image(path, tmp, restorer, classifier=classifier, mpp=MPP)
        seconds = time.perf_counter() - t0
        profile = cProfile.Profile()
        profile.enable()
        for path in paths:
            restore_image(path, tmp, restorer, classifier=classifier, mpp=MPP)
        profile.disable()
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats("wsi_deblur", 14)
    return seconds, text.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("out/bench/restore-command"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from PIL import Image

    paths = fields(args.work / "fields")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    mpx = sum(i.shape[0] * i.shape[1] for i in images) / 1e6
    command = [sys.executable, "-m", "wsi_deblur.cli", "restore", *map(str, paths), "-o", str(args.work / "out"),
               "--mpp", str(MPP)]
    walls = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    wall = float(np.median(walls))
    dbmid = dbmid_forward_seconds(images)
    alone = networks_alone_seconds(images)
    warm, profile = in_process(paths)
    warm_hybrid, _ = in_process(paths, "hybrid")
    print("| | seconds | Mpx/s | x the dbmid network's fp32 forward |\n|---|---|---|---|")
    print(f"| dbmid DL_defocus fp32 forward, PyTorch defaults | {dbmid:.2f} | {mpx / dbmid:.2f} | 1 |")
    print(f"| `wsi-deblur restore`, from the command (median of {args.runs}) | {wall:.2f} | {mpx / wall:.2f} | "
          f"{dbmid / wall:.1f}x |")
    print(f"| the same in a warm process, `fast` | {warm:.2f} | {mpx / warm:.2f} | {dbmid / warm:.1f}x |")
    print(f"| the same in a warm process, `hybrid` (default) | {warm_hybrid:.2f} | {mpx / warm_hybrid:.2f} | "
          f"{dbmid / warm_hybrid:.1f}x |")
    print(f"\n`fast`'s networks alone on the same windows: {alone:.2f} s, {mpx / alone:.2f} Mpx/s; warm `restore` "
          f"runs at {alone / warm:.0%} of that with `fast`, {alone / warm_hybrid:.0%} with `hybrid`")
    print("\nwhere the warm process's time goes:\n" + "\n".join(profile.splitlines()[:40]))


if __name__ == "__main__":
    main()
