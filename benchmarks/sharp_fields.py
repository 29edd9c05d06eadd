"""Real in-focus fields through every restorer: how much of a sharp image each one changes.

    python benchmarks/sharp_fields.py [--restorers hybrid fast bcr dbmid wiener]

Every field of ``../shared/data/fields`` (H&E, IHC, Pap; all in focus) is restored as
``wsi-deblur restore --mpp 0.5`` does it (files with a pixel size keep theirs), twice:
with BlurNet choosing the route (a sharp field called in focus is copied), and forced
through the defocus route (``--blur-type defocus``: the restorer runs, told BlurNet's
width, and the consistency guard checks it). Prints, per restorer and route, the mean
and lowest SSIM of the output to the input and how many fields fall below 0.98 (the
#30 target: a sharp field keeps SSIM >= 0.98 through any restorer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.shared_data import find_shared_data  # noqa: E402

IMAGE_SUFFIXES = (".png", ".jpg", ".tif")


def field_scores(paths: list[Path], restorer_name: str, blur_type: str | None) -> list[tuple[float, str]]:
    """(SSIM of output to input, field name) for each field restored by ``restorer_name``."""
    from PIL import Image
    from skimage.metrics import structural_similarity as ssim

    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.io import open_slide
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.image import restore_image

    restorer, classifier = make_restorer(restorer_name, threads=2), NeuralBlurClassifier(threads=2)
    out = []
    for path in paths:
        with tempfile.TemporaryDirectory() as folder:
            result = restore_image(path, folder, restorer, classifier=classifier, mpp=0.5, blur_type=blur_type)
            restored = np.asarray(Image.open(result["output"]).convert("RGB"))
        slide = open_slide(path)
        out.append((float(ssim(slide.read_region(0, 0, *slide.shape), restored, channel_axis=2)), path.name))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restorers", nargs="+", default=["hybrid", "fast", "bcr", "dbmid", "wiener"])
    args = parser.parse_args()
    root = find_shared_data()
    if root is None:
        parser.exit(1, "needs ../shared/data (or $WSI_DEBLUR_SHARED_DATA)\n")
    paths = sorted(p for p in (root / "fields").rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    print(f"{len(paths)} in-focus fields of {root / 'fields'}\n")
    print("| restorer | route | mean SSIM to the input | lowest (field) | below 0.98 |")
    print("|---|---|---|---|---|")
    for name in args.restorers:
        for route, blur_type in (("detected", None), ("forced defocus", "defocus")):
            scores = field_scores(paths, name, blur_type)
            values = np.array([s for s, _ in scores])
            low = min(scores)
            print(f"| {name} | {route} | {values.mean():.4f} | {low[0]:.4f} ({low[1]}) | "
                  f"{int((values < 0.98).sum())} of {len(values)} |", flush=True)


if __name__ == "__main__":
    main()
