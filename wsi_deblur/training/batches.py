"""Training batches: uint8 crops to tensors, the augmentations, and direction folding.

Input and target get the same random quarter-turn and mirror; a network told
the motion direction (``fast``'s DL_motion and DL_mixed) sees each pair
folded into 0-45 degrees (:mod:`wsi_deblur.nets.direction_fold`) and is
only ever turned by a half-turn, which keeps the direction.
"""

from __future__ import annotations

import numpy as np
import torch

from wsi_deblur.blur.classes import DEFOCUSED, MOVING
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.nets.direction_fold import fold, fold_direction

#: Kinds each deblurring network trains on (DL_motion learns mixed -> defocus only, the first step of DBMID's chain;
#: ``all``, a network told the PSF (``bcr``), learns every kind).
TRAINING_KINDS = {"defocus": ("in_focus", "defocus"), "motion": ("in_focus", "motion", "mixed"),
                  "mixed": ("in_focus", "mixed"), "all": ("in_focus", "defocus", "motion", "mixed")}


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(n, y, x, 3)`` uint8 to ``(n, 3, y, x)`` float in [0, 1], channels-last in memory."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last)


def augment(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, *,
            keep_direction: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random quarter-turn and mirror on input and target; only a half-turn if ``keep_direction``."""
    k = 2 * int(rng.integers(2)) if keep_direction else int(rng.integers(4))
    if k:
        x, y = torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (2, 3))
    if not keep_direction and rng.random() < 0.5:
        x, y = x.flip(3), y.flip(3)
    return x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)


def augment_with_directions(x: torch.Tensor, y: torch.Tensor, psf: torch.Tensor,
                            rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`augment` for a network told each pair's PSF: the motion directions (``psf[:, 2]``) follow the turn.

    A quarter-turn moves a direction by 90 degrees, a mirror takes ``a`` to ``180 - a``.
    """
    k = int(rng.integers(4))
    mirror = bool(rng.random() < 0.5)
    x, y = (torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (2, 3))) if k else (x, y)
    angles = psf[:, 2] + 90.0 * (k % 2)
    if mirror:
        x, y, angles = x.flip(3), y.flip(3), 180.0 - angles
    psf = torch.stack([psf[:, 0], psf[:, 1], angles % 180.0], dim=1)
    return x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last), psf


def pair_psf(kinds: np.ndarray, params: np.ndarray, rng: np.random.Generator, *, width_error: float = 0.2,
             direction_error_deg: float = 5.0) -> np.ndarray:
    """What a PSF-conditioned network (``bcr``) is told of each pair: ``(n, 3)`` defocus std, motion length, direction.

    The true blur (``params``: defocus um, length, direction, NA, added std)
    as BlurNet would report it for its type, with BlurNet's kind of error:
    widths times a log-normal factor of ``width_error`` std, directions off
    by N(0, ``direction_error_deg``). Defocus only for defocus and mixed
    pairs, motion only for motion and mixed; in-focus pairs get none.
    """
    classes = np.asarray(BLUR_CLASSES)[kinds]
    defocused = np.isin(classes, DEFOCUSED)
    moving = np.isin(classes, MOVING)
    n = len(kinds)
    sigma = np.where(defocused, params[:, 4] * np.exp(rng.normal(0.0, width_error, n)), 0.0)
    length = np.where(moving, params[:, 1] * np.exp(rng.normal(0.0, width_error, n)), 0.0)
    angle = np.where(moving, params[:, 2] + rng.normal(0.0, direction_error_deg, n), 0.0) % 180.0
    return np.stack([sigma, length, angle], axis=1).astype(np.float32)


def pair_angles(kinds: np.ndarray, params: np.ndarray, rng: np.random.Generator, jitter_deg: float) -> np.ndarray:
    """The direction a pair is folded by: its motion's (``params[:, 2]``), off by N(0, ``jitter_deg``).

    In-focus pairs, which have none, get one at random.
    """
    return np.where(kinds == BLUR_CLASSES.index("in_focus"), rng.uniform(0.0, 180.0, len(kinds)),
                    params[:, 2] + rng.normal(0.0, jitter_deg, len(kinds)))


def in_folded_sector(x: torch.Tensor, y: torch.Tensor,
                     angles: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input and target folded so each pair's direction lies in 0-45 degrees, and the folded directions."""
    moves = [fold_direction(a) for a in angles]
    x = torch.stack([fold(x[i:i + 1], m, t)[0] for i, (m, t, _) in enumerate(moves)])
    y = torch.stack([fold(y[i:i + 1], m, t)[0] for i, (m, t, _) in enumerate(moves)])
    return x, y, torch.tensor([a for _, _, a in moves], dtype=torch.float32)
