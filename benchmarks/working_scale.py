"""Restoring a 40x scan: at its own pixels, or at the working pixel size with the correction upsampled.

    python benchmarks/working_scale.py [--crops 16]

On a real 40x field that no network was trained on (``fields/ihc/OS-2-ndpi.ome.tif``
of ``../shared/data``, 0.227 um/px), 512-px crops are degraded by the blur
simulator *at that pixel size* (defocus from the optics at NA 0.75, motion in
level-0 pixels, camera noise, JPEG 85) and restored by ``fast`` routed by the
true type and direction, three ways: the networks on the level-0 pixels;
every window block-averaged by 2 to about 0.45 um/px, restored, the
correction upsampled; and as the pipeline does
(:class:`~wsi_deblur.restore.at_working_scale.WorkingScaleRestorer`: the second
way only for blur wider than the networks learned), told the true width, and
told BlurNet's estimate of it (as in a run).
Prints mean SSIM against the sharp crop, the sharp crops forced through each
network (SSIM of output to input: the no-artefact check) and the time per
level-0 megapixel.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import textured_crops  # noqa: E402

from pipelines.evaluate_restorers import score  # noqa: E402
from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.blur.estimate import BlurEstimate  # noqa: E402
from wsi_deblur.blur.simulate import BlurParams, Optics, gaussian_sigma_px, simulate  # noqa: E402
from wsi_deblur.classify.neural import NeuralBlurClassifier  # noqa: E402
from wsi_deblur.restore.at_working_scale import WorkingScaleRestorer  # noqa: E402
from wsi_deblur.restore.neural import NeuralRestorer  # noqa: E402
from wsi_deblur.working_scale import downsample_tiles, severity_scaled, working_downsample  # noqa: E402

FIELD = "fields/ihc/OS-2-ndpi.ome.tif"
CROP = 512
#: (label, defocus um, motion length in level-0 px) of each degradation.
DEGRADATIONS = [("defocus", 1.5, 0.0), ("defocus", 3.0, 0.0), ("defocus", 5.0, 0.0),
                ("motion", 0.0, 12.0), ("motion", 0.0, 30.0), ("motion", 0.0, 60.0),
                ("mixed", 2.0, 30.0), ("mixed", 3.0, 50.0)]


def sharp_crops(n: int) -> tuple[np.ndarray, float]:
    """Up to ``n`` textured ``CROP``-px crops of the field on a regular grid, and its pixel size."""
    root = find_shared_data()
    if root is None:
        sys.exit("needs ../shared/data (or $WSI_DEBLUR_SHARED_DATA)")
    return textured_crops(root / FIELD, n, CROP)


def timed_restore(restore, windows: np.ndarray, estimates: list[BlurEstimate]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = restore(windows, estimates)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=16)
    args = parser.parse_args()
    sharp, mpp = sharp_crops(args.crops)
    factor = working_downsample(mpp)
    native = NeuralRestorer("fast", threads=2)
    native.preload()
    scaled = WorkingScaleRestorer(native, factor)
    ways = {"level-0 pixels": native.restore, f"working scale (1/{factor})": scaled.restore_downsampled,
            "shipped, true width": scaled.restore, "shipped, BlurNet's width": scaled.restore}
    blurnet = NeuralBlurClassifier(threads=2)
    optics = Optics(numerical_aperture=0.75, mpp=mpp)
    rng = np.random.default_rng(0)
    mpx = sharp.shape[0] * CROP * CROP / 1e6
    seconds = dict.fromkeys(ways, 0.0)

    print(f"{FIELD}: {len(sharp)} crops of {CROP} px at {mpp:.3f} um/px; `fast`, true type and direction\n")
    print("| blur (level-0 px) | blurred | " + " | ".join(ways) + " |\n|---|---|" + "---|" * len(ways))
    for label, defocus_um, length in DEGRADATIONS:
        angles = rng.uniform(0, 180, len(sharp))
        blurred = np.stack([simulate(s, BlurParams(label, defocus_um, length, float(a), photons=5000.0,
                                                   jpeg_quality=85, optics=optics), rng)
                            for s, a in zip(sharp, angles)])
        sigma = gaussian_sigma_px(defocus_um, optics) if defocus_um else 0.0
        estimates = [BlurEstimate(label, defocus_sigma_px=sigma, motion_length_px=length, motion_angle_deg=float(a))
                     for a in angles]
        found = [severity_scaled(e, factor) for e in blurnet.classify(downsample_tiles(blurred, factor))]
        estimated = [replace(e, defocus_sigma_px=f.defocus_sigma_px, motion_length_px=f.motion_length_px)
                     for e, f in zip(estimates, found)]
        row = [f"{score(blurred, sharp)[0].mean():.3f}"]
        for name, restore in ways.items():
            out, t = timed_restore(restore, blurred, estimated if "BlurNet" in name else estimates)
            seconds[name] += t
            row.append(f"{score(out, sharp)[0].mean():.3f}")
        what = []
        if defocus_um:
            what.append(f"defocus {defocus_um:g} um (std {gaussian_sigma_px(defocus_um, optics):.1f} px)")
        if length:
            what.append(f"motion {length:g} px")
        print(f"| {label}: {', '.join(what)} | " + " | ".join(row) + " |", flush=True)

    print("\nSharp crops forced through each network, SSIM of output to input (mean, min; given no width, "
          "the shipped restorer works at level 0):\n")
    print("| network | " + " | ".join(list(ways)[:2]) + " |\n|---|---|---|")
    for blur in ("defocus", "motion", "mixed"):
        estimates = [BlurEstimate(blur, motion_angle_deg=float(a)) for a in rng.uniform(0, 180, len(sharp))]
        cells = []
        for restore in list(ways.values())[:2]:
            kept = score(restore(sharp, estimates), sharp)[0]
            cells.append(f"{kept.mean():.3f} ({kept.min():.3f})")
        print(f"| DL_{blur} | " + " | ".join(cells) + " |")

    n_runs = len(DEGRADATIONS)
    print("\nRestoring, Mpx/s of level-0 pixels (2 threads): "
          + ", ".join(f"{name} {n_runs * mpx / s:.2f}" for name, s in seconds.items()))


if __name__ == "__main__":
    main()
