"""How many times an adapted network is applied: DeepContrast's stopping rule, decided on the site's own tiles.

A network trained to undo ``K`` on ``K b`` and applied to ``b`` undoes part
of the scanner's blur; applied again it sharpens further, and eventually
invents: contrast keeps rising while detail erodes. Each iteration is
therefore judged on held-back scanned blurred windows, with no ground truth,
by two measures: the consistency guard (:func:`wsi_deblur.restore.guard.guard_window`:
blurred again by the estimated PSF, does the result still explain the window
as scanned, within its noise, and stay under the slide's in-focus spectrum?)
and the detail it adds (gradient sharpness, :func:`wsi_deblur.blur.fit.gradient_sharpness`).
One more iteration is taken only while the guard keeps at least as large a
share of windows as after the first, and the sharpness still rises by
``min_gain``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf
from wsi_deblur.blur.fit import gradient_sharpness
from wsi_deblur.restore.guard import guard_window
from wsi_deblur.restore.neural import run_network

#: Most iterations tried.
MAX_ITERATIONS = 4
#: Relative rise in sharpness an extra iteration must bring.
MIN_GAIN = 0.03


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
    psfs = [estimate_psf(e, mpp) for e in estimates]
    base = float(np.mean([gradient_sharpness(w) for w in windows]))
    rows, out = [], windows
    for k in range(1, max_iterations + 1):
        out = run_network(net, out, angles_deg=angles)
        guarded = [guard_window(w, o, psf, reference=reference) for w, o, psf in zip(windows, out, psfs)]
        rows.append({"iterations": k,
                     "kept": float(np.mean([r.action == "restorer" for _, r in guarded])),
                     "consistency": float(np.mean([r.consistency for _, r in guarded])),
                     "sharpness": float(np.mean([gradient_sharpness(g) for g, _ in guarded])),
                     "input_sharpness": base})
    return rows


def choose_iterations(rows: list[dict[str, float]], *, min_gain: float = MIN_GAIN) -> int:
    """The number of iterations the rule of this module picks from :func:`iteration_scores`' rows (1 if none).

    Examples
    --------
    >>> rows = [{"iterations": 1, "kept": 1.0, "sharpness": 5.0}, {"iterations": 2, "kept": 1.0, "sharpness": 5.5},
    ...         {"iterations": 3, "kept": 0.5, "sharpness": 7.0}]
    >>> choose_iterations(rows)
    2
    """
    if not rows:
        return 1
    chosen = 1
    for before, row in zip(rows, rows[1:]):
        if row["kept"] < rows[0]["kept"] or row["sharpness"] < before["sharpness"] * (1.0 + min_gain):
            break
        chosen = int(row["iterations"])
    return chosen
