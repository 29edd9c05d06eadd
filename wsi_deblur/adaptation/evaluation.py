"""Shipped against adapted, on tiles held back from adaptation.

The held-back in-focus tiles are degraded by the simulator (fixed seed, so
shipped and adapted see the same pairs): each restorer's SSIM gain on the
pairs of its own kinds, BlurNet's four-class and blurred-or-not accuracy.
The held-back tiles as scanned say what the simulator cannot: how many sharp
tiles BlurNet calls blurred (false alarms), and for the scanner's own blurred
tiles, one level down (:func:`further_degraded_scores`): blurred again at
their estimated blur, how close a restorer brings them back to themselves as
scanned, the one ground truth a blurred tile has.

Every network is run here in fp32 (:data:`EVALUATION_PRECISION`), whatever
path :mod:`wsi_deblur.nets.cpu_path` chose for it on this machine: that choice
is made by timing, which moves with the machine's load, and the decisions
taken from these scores (kept, iterations) must be the same for an
uninterrupted run and a run resumed after a kill.
"""

from __future__ import annotations

import numpy as np

from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blur.fit import ssim_inner
from wsi_deblur.nets.runtime import run_network

#: The precision adaptation judges networks in: fp32, the reference of every CPU path.
EVALUATION_PRECISION = "fp32"


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return ssim_inner(a, b, border=0)


def restorer_scores(net, pairs: dict[str, np.ndarray]) -> dict[str, float] | None:
    """Mean SSIM of input and output against the target, and the gain, over the blurred pairs; None if none.

    A directional network is told each pair's true direction.
    """
    blurred_kinds = pairs["kinds"] != BLUR_CLASSES.index("in_focus")
    if not blurred_kinds.any():
        return None
    x, target = pairs["blurred"][blurred_kinds], pairs["target"][blurred_kinds]
    out = run_network(net, x, angles_deg=pairs["params"][blurred_kinds, 2], precision=EVALUATION_PRECISION)
    before = np.mean([_ssim(a, t) for a, t in zip(x, target)])
    after = np.mean([_ssim(a, t) for a, t in zip(out, target)])
    sharp = ~blurred_kinds
    kept = None
    if sharp.any():  # in-focus pairs must come out as they went in
        same = run_network(net, pairs["blurred"][sharp], angles_deg=pairs["params"][sharp, 2],
                           precision=EVALUATION_PRECISION)
        kept = float(np.mean([_ssim(a, t) for a, t in zip(same, pairs["blurred"][sharp])]))
    return {"n": int(blurred_kinds.sum()), "input_ssim": float(before), "output_ssim": float(after),
            "ssim_gain": float(after - before), "sharp_unchanged_ssim": kept}


def classifier_scores(classifier, crops: dict[str, np.ndarray], sharp_tiles: np.ndarray) -> dict[str, float] | None:
    """BlurNet's accuracy on simulated crops and false-alarm share on in-focus tiles as scanned; None if no crops."""
    if len(crops["labels"]) == 0:
        return None
    predicted = np.array([BLUR_CLASSES.index(e.label) for e in classifier.classify(crops["images"])])
    labels = crops["labels"]
    out = {"n": int(len(labels)), "accuracy": float(np.mean(predicted == labels)),
           "blurred_or_not_accuracy": float(np.mean((predicted > 0) == (labels > 0))), "false_alarms": None}
    if len(sharp_tiles):
        calls = classifier.classify(sharp_tiles)
        out["false_alarms"] = float(np.mean([e.is_blurred for e in calls]))
        out["n_sharp_tiles"] = int(len(sharp_tiles))
    return out


def further_degraded_scores(net, pairs: dict[str, np.ndarray], *, max_iterations: int = 1) -> list[dict[str, float]]:
    """SSIM to the scanned tile of the further-degraded held-back pairs, after 1 to ``max_iterations`` applications.

    ``pairs`` from :func:`wsi_deblur.adaptation.pairs.further_degraded_pairs`
    (input ``K b``, target ``b``). Rows: ``iterations``, ``input_ssim``,
    ``ssim``; empty without pairs.
    """
    if len(pairs["kinds"]) == 0:
        return []
    x, target, angles = pairs["blurred"], pairs["target"], pairs["params"][:, 2]
    before = float(np.mean([_ssim(a, t) for a, t in zip(x, target)]))
    rows, out = [], x
    for k in range(1, max_iterations + 1):
        out = run_network(net, out, angles_deg=angles, precision=EVALUATION_PRECISION)
        rows.append({"iterations": k, "input_ssim": before,
                     "ssim": float(np.mean([_ssim(a, t) for a, t in zip(out, target)]))})
    return rows
