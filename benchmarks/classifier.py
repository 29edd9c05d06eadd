"""Blur classifiers compared on the held-out synthetic split: accuracy, severity, speed.

    python benchmarks/classifier.py [--data out/data/blur-128.npz out/data/blur-256.npz] [--n 2000] [--weights W]

Accuracy and confusion of BlurNet (shipped weights) and of the classical
baseline on test crops from fields never used in training (128-px crops, and
256-px crops as the pipeline gives it; per held-out field where the data
records it), and CPU time per 256-px crop (one thread) of BlurNet (fp32,
bf16), the classical baseline, and VGG16's convolutional stack (DBMID's
classifier; speed only, random weights).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.train_classifier import accuracy_per_field, confusion_matrix  # noqa: E402
from wsi_deblur.blur.degrade import unambiguous  # noqa: E402
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE
from wsi_deblur.classify.classical import ClassicalBlurClassifier
from wsi_deblur.classify.neural import NeuralBlurClassifier


def vgg16_features() -> nn.Module:
    layers, c = [], 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers).eval()


def predict(classifier, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class indices, class probabilities and probabilities of being blurred for ``(n, y, x, 3)`` crops."""
    estimates = [e for i in range(0, len(images), batch) for e in classifier.classify(images[i:i + batch])]
    return (np.array([BLUR_CLASSES.index(e.label) for e in estimates]),
            np.array([e.confidence for e in estimates]), np.array([e.blur_probability for e in estimates]))


def confident_figures(pred: np.ndarray, confidence: np.ndarray, blur_probability: np.ndarray, labels: np.ndarray,
                      threshold: float = DEFAULT_MIN_CONFIDENCE) -> dict[str, float]:
    """What the pipeline's ``--min-confidence`` does with these predictions.

    ``blurred_or_not_accuracy``: crops called blurred (any type) exactly
    when they are. ``share`` and ``accuracy``: crops whose class has at least ``threshold``
    probability, and their accuracy. The pipeline restores a crop called
    blurred whose probability of being blurred (1 - P(in focus)) reaches
    ``threshold``: ``in_focus_restored`` is the share of in-focus crops it
    would restore, ``blurred_missed`` the share of blurred crops it would not;
    ``blurred_missed_by_class_probability`` the latter had the class's own
    probability decided instead.
    """
    sure = confidence >= threshold
    restored = (pred > 0) & (blur_probability >= threshold)
    in_focus, blurred = labels == 0, labels > 0
    return {"blurred_or_not_accuracy": float(((pred > 0) == blurred).mean()),
            "threshold": threshold, "share": float(sure.mean()),
            "accuracy": float((pred[sure] == labels[sure]).mean()) if sure.any() else float("nan"),
            "in_focus_restored": float(restored[in_focus].mean()),
            "blurred_missed": float((~restored)[blurred].mean()),
            "blurred_missed_by_class_probability": float((~(sure & (pred > 0)))[blurred].mean())}


def ms_per_crop(fn, batch: np.ndarray, repeats: int = 3) -> float:
    fn(batch)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(batch)
    return (time.perf_counter() - t0) / (repeats * len(batch)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+",
                        default=[Path("out/data/blur-128.npz"), Path("out/data/blur-256.npz")],
                        help="data sets from pipelines.blur_data (each scored on its held-out split)")
    parser.add_argument("--n", type=int, default=2000, help="test crops to score per data set")
    parser.add_argument("--weights", help="BlurNet safetensors to score (default: the shipped weights)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    results, per_field = {}, {}
    for path in args.data:
        if not path.exists():
            print(f"skipping {path}: not made (python -m pipelines.blur_data --out {path} ...)")
            continue
        data = np.load(path)
        keep = unambiguous(data["test_labels"], data["test_severity"])  # as in training (pipelines/blur_data.py)
        images, labels = data["test_images"][keep][:args.n], data["test_labels"][keep][:args.n]
        size = images.shape[1]
        for name, clf in (("BlurNet", NeuralBlurClassifier(args.weights)), ("classical", ClassicalBlurClassifier())):
            pred, confidence, blur_probability = predict(clf, images)
            results[f"{name}, {size}-px held-out crops"] = {
                "accuracy": float((pred == labels).mean()), "confusion": confusion_matrix(labels, pred).tolist(),
                "n": int(len(labels)), "confident": confident_figures(pred, confidence, blur_probability, labels)}
            if name == "BlurNet" and "test_fields" in data:
                fields = data["test_fields"][keep][:args.n]
                per_field[size] = accuracy_per_field(pred, labels, fields, list(data["test_sources"]))
        if path == args.data[0]:
            keep_train = unambiguous(data["train_labels"], data["train_severity"])
            train_labels = data["train_labels"][keep_train][:args.n]
            pred, confidence, blur_probability = predict(NeuralBlurClassifier(args.weights),
                                                         data["train_images"][keep_train][:args.n])
            results[f"BlurNet, {size}-px training-split crops"] = {
                "accuracy": float((pred == train_labels).mean()),
                "confusion": confusion_matrix(train_labels, pred).tolist(), "n": int(len(train_labels)),
                "confident": confident_figures(pred, confidence, blur_probability, train_labels)}

    crops = np.random.default_rng(0).integers(0, 255, (16, 256, 256, 3), dtype=np.uint8)
    speed = {
        "BlurNet fp32": ms_per_crop(NeuralBlurClassifier(args.weights, precision="fp32").classify, crops),
        "BlurNet bf16": ms_per_crop(NeuralBlurClassifier(args.weights, precision="bf16").classify, crops),
        "classical": ms_per_crop(ClassicalBlurClassifier().classify, crops),
    }
    vgg = vgg16_features()
    x = torch.rand(4, 3, 256, 256)
    with torch.inference_mode():
        speed["VGG16 conv stack fp32"] = ms_per_crop(lambda b: vgg(x), np.zeros(4))
    print("Held-out crops come from fields never seen in training; the pipeline classifies 256-px crops.\n")
    print(f"Confident: the class has at least the pipeline's --min-confidence ({DEFAULT_MIN_CONFIDENCE}). The "
          "pipeline restores crops called blurred with P(blurred) = 1 - P(in focus) at least that: in-focus "
          "restored / blurred missed (missed had the class's own probability decided).\n")
    print("| classifier, crops | n | 4-class accuracy | blurred or not | confident share | accuracy when confident "
          "| in-focus restored | blurred missed | missed by class probability |\n|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        c = r["confident"]
        print(f"| {name} | {r['n']} | {r['accuracy']:.2%} | {c['blurred_or_not_accuracy']:.2%} "
              f"| {c['share']:.1%} | {c['accuracy']:.2%} "
              f"| {c['in_focus_restored']:.1%} | {c['blurred_missed']:.1%} "
              f"| {c['blurred_missed_by_class_probability']:.1%} |")
    if per_field:
        print("\n| held-out field | " + " | ".join(f"BlurNet, {s} px" for s in per_field) + " |")
        print("|---|" + "---|" * len(per_field))
        for field in sorted({f for v in per_field.values() for f in v}):
            print(f"| {field} | " + " | ".join(f"{v[field]['accuracy']:.1%}" if field in v else "n/a"
                                                for v in per_field.values()) + " |")
    for name, r in results.items():
        print(f"\nConfusion, {name} (rows true, columns predicted: {', '.join(BLUR_CLASSES)}):")
        for cls, row in zip(BLUR_CLASSES, r["confusion"]):
            print(f"  {cls:>9}: {row}")
    print("\n| model | ms per 256-px crop, 1 CPU thread |\n|---|---|")
    for name, ms in speed.items():
        print(f"| {name} | {ms:.2f} |")
    out = Path("out/bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "classifier.json").write_text(json.dumps({"accuracy": results, "per_field": per_field,
                                                                 "ms_per_crop": speed}, indent=2))


if __name__ == "__main__":
    main()
