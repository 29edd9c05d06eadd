"""Where the networks send blur BlurNet is unsure of: through themselves, or to Wiener with the estimate.

    python benchmarks/network_confidence.py [--data out/data/restore-eval.npz] [--limit 300]

On the held-out pairs of ``pipelines.restore_data`` (fields never trained on;
``python -m pipelines.restore_data --out out/data/restore-eval.npz --n-train 16
--n-test 300`` makes them), each blurred crop is classified by BlurNet as a
run does and restored by ``fast`` (what ``hybrid`` runs for motion and mixed
blur) taking every blurred window (``min_confidence`` 0, as before), and
sending those BlurNet is sure are blurred but not sure how to Wiener
(:data:`~wsi_deblur.restore.neural.NETWORK_CONFIDENCE`). Prints the mean SSIM to the sharp crop per true blur type,
and how many windows changed route. The real pair told a wrong pixel size is
in ``pipelines.evaluate_real``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsi_deblur.blur.estimate import BLUR_CLASSES  # noqa: E402
from wsi_deblur.blur.fit import ssim_inner  # noqa: E402
from wsi_deblur.classify.neural import NeuralBlurClassifier  # noqa: E402
from wsi_deblur.restore.neural import NETWORK_CONFIDENCE, NeuralRestorer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("out/data/restore-eval.npz"))
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    data = np.load(args.data)
    blurred, sharp, kinds = data["test_blurred"][:args.limit], data["test_sharp"][:args.limit], data["test_kind"]
    classifier = NeuralBlurClassifier(threads=2)
    estimates = classifier.classify(blurred)
    restorers = [NeuralRestorer("fast", threads=2, min_confidence=c) for c in (0.0, NETWORK_CONFIDENCE)]
    rows: dict[str, dict[str, list[float]]] = {}
    changed = {k: 0 for k in BLUR_CLASSES}
    for n, (b, s, est) in enumerate(zip(blurred, sharp, estimates)):
        kind = BLUR_CLASSES[int(kinds[n])]
        row = rows.setdefault(kind, {"input": [], "fast, networks for every window": [],
                                     f"fast, networks from confidence {NETWORK_CONFIDENCE}": []})
        row["input"].append(ssim_inner(b, s, border=8))
        for name, restorer in zip(list(row)[1:], restorers):
            row[name].append(ssim_inner(restorer.restore(b[None], [est])[0], s, border=8))
        changed[kind] += int(restorers[1].unsure_of_kind(est))
    names = list(next(iter(rows.values())))
    print("| true blur | n | " + " | ".join(names) + " | windows sent to Wiener instead |")
    print("|---" * (len(names) + 3) + "|")
    for kind, row in rows.items():
        print(f"| {kind} | {len(row['input'])} | " + " | ".join(f"{np.mean(row[k]):.4f}" for k in names)
              + f" | {changed[kind]} |")


if __name__ == "__main__":
    main()
