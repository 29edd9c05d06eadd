"""How many times an adapted network is applied: DeepContrast's stopping rule, decided on the site's own tiles.

A network trained to undo ``K`` on ``K b`` and applied to ``b`` undoes part
of the scanner's blur; applied again it sharpens further, and eventually
invents: contrast keeps rising while detail erodes. Two measures on
held-back tiles decide, with no sharp twin:

- one level down (:func:`wsi_deblur.adaptation.evaluation.further_degraded_scores`):
  held-back blurred tiles blurred again, ``K b``; an extra iteration must
  bring them closer to ``b`` (SSIM up by ``min_gain``), i.e. one application
  still under-restores a blur of this kind;
- the consistency guard on the tiles as scanned (:func:`iteration_scores`):
  blurred again by the estimated PSF, the result must still explain the tile
  within its noise and stay under the site's in-focus spectrum; an extra
  iteration must not make the guard reject more windows than the first.

The gradient sharpness (:func:`wsi_deblur.blur.fit.gradient_sharpness`) of
the scanned tiles is recorded beside them, to show what each iteration adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from wsi_deblur.adaptation.evaluation import EVALUATION_PRECISION
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf
from wsi_deblur.blur.fit import gradient_sharpness
from wsi_deblur.nets.runtime import run_network
from wsi_deblur.restore.guard import GUARD_PSF_MODEL, guard_window

#: Most iterations tried.
MAX_ITERATIONS = 4
#: SSIM an extra iteration must add one level down.
MIN_GAIN = 0.002


def iteration_scores(net: torch.nn.Module, windows: np.ndarray, estimates: Sequence[BlurEstimate], *,
                     mpp: float = 0.5, reference: np.ndarray | None = None,
                     max_iterations: int = MAX_ITERATIONS) -> list[dict[str, float]]:
    """Per number of iterations (1 to ``max_iterations``): what the guard and the sharpness say.

    Each row: ``iterations``, ``kept`` (share of windows the guard keeps as
    restored), ``consistency`` (mean; at most 1: the output explains the
    window), ``sharpness`` (mean, of the guarded output) and
    ``input_sharpness``.
    """
    if len(windows) == 0:
        return []
    angles = [e.motion_angle_deg for e in estimates]
    psfs = [estimate_psf(e, mpp, model=GUARD_PSF_MODEL) for e in estimates]  # as the run's guard
    base = float(np.mean([gradient_sharpness(w) for w in windows]))
    rows, out = [], windows
    for k in range(1, max_iterations + 1):
        out = run_network(net, out, angles_deg=angles, precision=EVALUATION_PRECISION)
        guarded = [guard_window(w, o, psf, reference=reference) for w, o, psf in zip(windows, out, psfs)]
        rows.append({"iterations": k,
                     "kept": float(np.mean([r.action == "restorer" for _, r in guarded])),
                     "consistency": float(np.mean([r.consistency for _, r in guarded])),
                     "sharpness": float(np.mean([gradient_sharpness(g) for g, _ in guarded])),
                     "input_sharpness": base})
    return rows


def choose_iterations(down: list[dict[str, float]], guard: list[dict[str, float]], *,
                      min_gain: float = MIN_GAIN) -> int:
    """The iterations the rule of this module picks (1 when there is nothing to judge by).

    ``down``: rows of :func:`~wsi_deblur.adaptation.evaluation.further_degraded_scores`;
    ``guard``: rows of :func:`iteration_scores` (may be empty: no guard check).

    Examples
    --------
    >>> down = [{"iterations": 1, "ssim": 0.80}, {"iterations": 2, "ssim": 0.83}, {"iterations": 3, "ssim": 0.82}]
    >>> choose_iterations(down, [])
    2
    >>> choose_iterations(down, [{"kept": 1.0}, {"kept": 0.5}])
    1
    """
    chosen = 1
    for k in range(1, len(down)):
        if down[k]["ssim"] < down[chosen - 1]["ssim"] + min_gain:
            break
        if len(guard) > k and guard[k]["kept"] < guard[0]["kept"]:
            break
        chosen = k + 1
    return chosen
