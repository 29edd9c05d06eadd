"""Wiener (disc PSF, as `hybrid` restores defocus) with and without the blind width search, on three sets.

    python benchmarks/width_search.py [--pairs 150]

`WienerRestorer(width_search=True)` refines BlurNet's defocus width per window
(:mod:`wsi_deblur.restore.width_search`: the factor whose restoration has the
sparsest gradients). Scored by SSIM to the sharp truth, BlurNet's estimates as
a run makes them, through `restore_slide_region` (the real pair and the 40x
crops) or the consistency guard (the 20x pairs):

- the real FocusPath pair (40x, `../shared/data/real-defocus`);
- 9 crops of the held-out 40x field of `benchmarks/defocus_model.py`, blurred
  by pupil defocus (NA 0.75, 2.5 um) and by a 2.5-um disc, 2000 photons;
- the defocus pairs among the first ``--pairs`` held-out 20x pairs of
  `pipelines.restore_data` (`out/data/restore-eval.npz`; NA 0.5-0.95, JPEG on
  70%), and the in-focus ones BlurNet calls defocused.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import defocus_model as dm  # noqa: E402

from pipelines.shared_data import find_shared_data  # noqa: E402
from wsi_deblur.blur.estimate import BLUR_CLASSES  # noqa: E402
from wsi_deblur.blur.fit import ssim_inner  # noqa: E402
from wsi_deblur.classify.neural import NeuralBlurClassifier  # noqa: E402
from wsi_deblur.io import open_slide  # noqa: E402
from wsi_deblur.restore.guard import GuardedRestorer  # noqa: E402
from wsi_deblur.restore.image import restore_slide_region  # noqa: E402
from wsi_deblur.restore.wiener import WienerRestorer  # noqa: E402

RESTORERS = {"Wiener, disc, BlurNet's width": WienerRestorer(),
             "Wiener, disc, width searched": WienerRestorer(width_search=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=150)
    parser.add_argument("--data", type=Path, default=Path("out/data/restore-eval.npz"))
    args = parser.parse_args()
    root = find_shared_data()
    if root is None:
        sys.exit("needs ../shared/data (or $WSI_DEBLUR_SHARED_DATA)")
    clf = NeuralBlurClassifier(threads=2)
    rows: dict[str, dict[str, float]] = {}
    sharp_slide = open_slide(root / "real-defocus/focuspath-left-in-focus.png", mpp=0.25)
    blurred_slide = open_slide(root / "real-defocus/focuspath-left-out-of-focus.png", mpp=0.25)
    sharp = sharp_slide.read_region(0, 0, *sharp_slide.shape)
    estimate = dm.estimate_of(blurred_slide, clf)
    rows["real pair (40x)"] = {name: ssim_inner(restore_slide_region(blurred_slide, estimate, r), sharp)
                               for name, r in RESTORERS.items()}
    for name, (_, pairs) in dm.simulated_40x_sets(root, 9).items():
        scores: dict[str, list[float]] = {n: [] for n in RESTORERS}
        for sharp_crop, blurred, mpp in pairs:
            slide = dm.as_slide(blurred, mpp, Path(tempfile.mkdtemp()))
            est = dm.estimate_of(slide, clf)
            for n, r in RESTORERS.items():
                scores[n].append(ssim_inner(restore_slide_region(slide, est, r), sharp_crop))
        rows[name] = {n: float(np.mean(v)) for n, v in scores.items()}
    if args.data.exists():
        data = np.load(args.data)
        blurred, truth = data["test_blurred"][:args.pairs], data["test_sharp"][:args.pairs]
        kinds = data["test_kind"][:args.pairs]
        detected = clf.classify(blurred)
        for kind in ("defocus", "in_focus"):
            sel = [i for i in np.flatnonzero(kinds == BLUR_CLASSES.index(kind)) if detected[i].label == "defocus"]
            rows[f"20x held-out {kind} pairs called defocus ({len(sel)})"] = {
                n: float(np.mean([ssim_inner(o, truth[i], border=16) for o, i in zip(
                    GuardedRestorer(r, mpp=0.5).restore(blurred[sel], [detected[i] for i in sel]), sel)]))
                for n, r in RESTORERS.items()}
    print("| set | " + " | ".join(RESTORERS) + " |\n|---|" + "---|" * len(RESTORERS))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row.values()) + " |")


if __name__ == "__main__":
    main()
