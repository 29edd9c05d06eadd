"""`wsi-deblur restore` on four 1024 x 1024 fields, from the command, against a DBMID-size fp32 forward pass.

    python benchmarks/restore_command.py [--work out/bench/restore-command] [--runs 3]

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


def in_process(paths: list[Path]) -> tuple[float, str]:
    """Seconds to restore the fields in one warm process, and its profile (top of wsi_deblur by cumulative time)."""
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.image import restore_image

    classifier = make_classifier("neural", threads=os.cpu_count() or 1)
    restorer = make_restorer("fast", threads=os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:  # warm-up: loads the networks, measures their CPU paths once
            restore_image(path, tmp, restorer, classifier=classifier)
        t0 = time.perf_counter()
        for path in paths:
            restore_image(path, tmp, restorer, classifier=classifier)
        seconds = time.perf_counter() - t0
        profile = cProfile.Profile()
        profile.enable()
        for path in paths:
            restore_image(path, tmp, restorer, classifier=classifier)
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
    command = [sys.executable, "-m", "wsi_deblur.cli", "restore", *map(str, paths), "-o", str(args.work / "out")]
    walls = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
    wall = float(np.median(walls))
    dbmid = dbmid_forward_seconds(images)
    warm, profile = in_process(paths)
    print("| | seconds | Mpx/s | x the dbmid network's fp32 forward |\n|---|---|---|---|")
    print(f"| dbmid DL_defocus fp32 forward, PyTorch defaults | {dbmid:.2f} | {mpx / dbmid:.2f} | 1 |")
    print(f"| `wsi-deblur restore`, from the command (median of {args.runs}) | {wall:.2f} | {mpx / wall:.2f} | "
          f"{dbmid / wall:.1f}x |")
    print(f"| the same in a warm process | {warm:.2f} | {mpx / warm:.2f} | {dbmid / warm:.1f}x |")
    print("\nwhere the warm process's time goes:\n" + "\n".join(profile.splitlines()[:40]))


if __name__ == "__main__":
    main()
