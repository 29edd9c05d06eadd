"""Routes for mixed blur: which chain of ``fast`` networks restores held-out mixed pairs best.

    python benchmarks/mixed_routes.py [--data out/data/restore-128.npz] [--fast-weights DIR]

On the mixed test pairs of ``pipelines.restore_data`` (fields never used in
training), each route is given the true motion direction; prints the mean
SSIM against the sharp field of the input and of each route (DBMID's is
DL_motion then DL_defocus; ``fast`` ships DL_mixed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.evaluate_restorers import score, true_estimate  # noqa: E402
from wsi_deblur.blur.estimate import BLUR_CLASSES  # noqa: E402
from wsi_deblur.nets.runtime import run_network
from wsi_deblur.restore.neural import NeuralRestorer  # noqa: E402

ROUTES = [("motion", "defocus"), ("defocus", "motion"), ("motion",), ("defocus",), ("mixed",)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("out/data/restore-128.npz"))
    parser.add_argument("--fast-weights", type=str, default=None,
                        help="folder of candidate fast weights (default: those shipped in the package)")
    args = parser.parse_args()
    data = np.load(args.data)
    mixed = np.flatnonzero(data["test_kind"] == BLUR_CLASSES.index("mixed"))
    blurred, sharp, params = data["test_blurred"][mixed], data["test_sharp"][mixed], data["test_params"][mixed]
    angles = [true_estimate(BLUR_CLASSES.index("mixed"), p).motion_angle_deg for p in params]
    restorer = NeuralRestorer("fast", weights_dir=args.fast_weights, threads=2)
    print(f"{len(mixed)} held-out mixed pairs, mean SSIM against the sharp field:\n")
    print(f"| route | SSIM |\n|---|---|\n| blurred input | {score(blurred, sharp)[0].mean():.3f} |")
    for route in ROUTES:
        out = blurred
        for blur in route:
            out = run_network(restorer.network(blur), out, angles_deg=angles, threads=2)
        print(f"| {' then '.join(f'DL_{b}' for b in route)} | {score(out, sharp)[0].mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
