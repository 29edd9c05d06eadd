"""The PNG encoder `restore` writes with: libpng's own filter choice against the UP filter.

    python benchmarks/png_encode.py [--field 2048] [--work out/bench]

Encodes the restored benchmark field (the defocused field of
``benchmarks/restorers.py`` through the ``fast`` networks) at zlib level 1
with each row filter, checks the PNG decodes to the same pixels, and reports
seconds (best of 5, one thread) and megabytes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restorers import blurred_field  # noqa: E402

from wsi_deblur.blur.estimate import BlurEstimate  # noqa: E402
from wsi_deblur.io import open_slide  # noqa: E402
from wsi_deblur.restore.image import restore_slide_region  # noqa: E402
from wsi_deblur.restore.neural import NeuralRestorer  # noqa: E402

FILTERS = {"libpng's choice per row (default)": None, "UP (what restore writes)": imagecodecs.PNG.FILTER.UP,
           "SUB": imagecodecs.PNG.FILTER.SUB, "PAETH": imagecodecs.PNG.FILTER.PAETH}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--field", type=int, default=2048)
    parser.add_argument("--work", type=Path, default=Path("out/bench"))
    args = parser.parse_args()
    path = blurred_field(args.field, args.work / "fields", "defocused")
    image = restore_slide_region(open_slide(path, mpp=0.5), BlurEstimate("defocus"), NeuralRestorer("fast"))
    print(f"PNG at zlib level 1 of the restored {args.field} x {args.field} field:\n")
    print("| row filter | s (best of 5) | MB |\n|---|---|---|")
    for name, filt in FILTERS.items():
        kwargs = {} if filt is None else {"filter": filt}
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            data = imagecodecs.png_encode(image, level=1, **kwargs)
            best = min(best, time.perf_counter() - t0)
        assert np.array_equal(imagecodecs.png_decode(data), image)
        print(f"| {name} | {best:.3f} | {len(data) / 1e6:.2f} |")


if __name__ == "__main__":
    main()
