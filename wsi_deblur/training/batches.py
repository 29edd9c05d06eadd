"""Training batches: uint8 crops to tensors, the augmentations, and direction folding.

Input and target get the same random quarter-turn and mirror; a network told
the motion direction (``fast``'s DL_motion and DL_mixed) sees each pair
folded into 0-45 degrees (:mod:`wsi_deblur.restore.direction_fold`) and is
only ever turned by a half-turn, which keeps the direction.
"""

from __future__ import annotations

import numpy as np
import torch

from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.restore.direction_fold import fold, fold_direction

#: Kinds each deblurring network trains on (DL_motion learns mixed -> defocus only, the first step of DBMID's chain).
TRAINING_KINDS = {"defocus": ("in_focus", "defocus"), "motion": ("in_focus", "motion", "mixed"),
                  "mixed": ("in_focus", "mixed")}


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
