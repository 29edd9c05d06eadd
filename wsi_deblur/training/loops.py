"""The training loops: a deblurring network on (blurred, target) pairs, BlurNet on labelled crops.

Both draw batches at random with replacement from in-memory uint8 arrays
(fixed ``rng``: the same steps give the same weights), run Adam with a
one-cycle learning rate (or a constant one), fp32 channels-last (bf16
training was an order of magnitude slower on the CPUs measured), and call
``on_step(step, loss)`` after every step for progress and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from wsi_deblur.training.batches import (
    augment,
    augment_with_directions,
    in_folded_sector,
    pair_angles,
    pair_psf,
    to_tensor,
)
from wsi_deblur.training.losses import LOSSES, blurnet_loss

StepCallback = Callable[[int, float], None]


@dataclass(frozen=True)
class Schedule:
    """Steps, batch size and learning rate of one training run.

    Attributes
    ----------
    steps, batch : int
    lr : float
        Peak learning rate of the one-cycle schedule (or the constant one).
    one_cycle : bool
        One-cycle schedule (10% warm-up) instead of a constant rate.
    """

    steps: int
    batch: int
    lr: float
    one_cycle: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps and batch must be at least 1, not {self.steps} and {self.batch}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, not {self.lr}")


@dataclass(frozen=True)
class TrainingPairs:
    """``(n, y, x, 3)`` uint8 inputs and targets, each pair's blur class index and its degradation ``(n, k)``
    (``params[:, 2]``: the motion direction; :func:`wsi_deblur.training.batches.pair_psf` reads the rest).
    """

    blurred: np.ndarray
    target: np.ndarray
    kinds: np.ndarray
    params: np.ndarray

    @classmethod
    def of(cls, pairs: dict) -> TrainingPairs:
        """From a dict of those four arrays (what :mod:`wsi_deblur.adaptation.pairs` makes)."""
        return cls(pairs["blurred"], pairs["target"], pairs["kinds"], pairs["params"])


@dataclass(frozen=True)
class ConditionNoise:
    """How far what a network is told of each pair is off, as BlurNet's estimates are.

    Attributes
    ----------
    angle_deg : float
        Std of the error of a told motion direction (degrees).
    width : float
        Log-normal std of the error of told blur widths (a network told the PSF).
    """

    angle_deg: float = 5.0
    width: float = 0.2


def _optimiser(net: torch.nn.Module, schedule: Schedule):
    opt = torch.optim.Adam(net.parameters(), lr=schedule.lr)
    # 10% warm-up, at least two steps of it (torch divides by the warm-up's length less one); too short a run
    # for a cycle keeps its rate constant
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=schedule.lr, total_steps=schedule.steps,
                                                 pct_start=max(0.1, 2.0 / schedule.steps))
             if schedule.one_cycle and schedule.steps >= 3 else None)
    return opt, sched


def _step(opt, sched, loss: torch.Tensor) -> float:
    opt.zero_grad()
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    return float(loss.item())


def fit_restorer(net: torch.nn.Module, pairs: TrainingPairs, schedule: Schedule, rng: np.random.Generator, *,
                 loss: str = "l1", noise: ConditionNoise = ConditionNoise(), on_step: StepCallback | None = None,
                 device: str = "cpu") -> torch.nn.Module:
    """Train a deblurring network in place on ``pairs``; returns it in train mode.

    A directional network's pairs are folded by their motion direction (with
    N(0, ``noise.angle_deg``) added, about BlurNet's error). A network told
    the PSF (``conditioning == "psf"``: ``bcr``) gets each pair's blur as
    BlurNet would report it (:func:`~wsi_deblur.training.batches.pair_psf`,
    widths off by ``noise.width``, directions by ``noise.angle_deg``).
    ``device``: where the network and its batches go (a torch device).
    """
    blurred, target, kinds, params = pairs.blurred, pairs.target, pairs.kinds, pairs.params
    angle_jitter_deg, width_error = noise.angle_deg, noise.width
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; available: {', '.join(LOSSES)}")
    if len(blurred) == 0 or len(blurred) != len(target):
        raise ValueError(f"need as many targets as inputs (at least one), not {len(blurred)} and {len(target)}")
    directional = bool(getattr(net, "directional", False))
    told_psf = getattr(net, "conditioning", None) == "psf"
    net.train()
    net.to(device=device, memory_format=torch.channels_last)
    opt, sched = _optimiser(net, schedule)
    loss_fn = LOSSES[loss]
    for step in range(schedule.steps):
        idx = rng.integers(0, len(blurred), schedule.batch)
        x, y = to_tensor(blurred[idx]), to_tensor(target[idx])
        folded = ()
        if told_psf:
            psf = torch.from_numpy(pair_psf(kinds[idx], params[idx], rng, width_error=width_error,
                                            direction_error_deg=angle_jitter_deg))
            x, y, psf = augment_with_directions(x, y, psf, rng)
            folded = (psf,)
        elif directional:
            x, y, angles = in_folded_sector(x, y, pair_angles(kinds[idx], params[idx], rng, angle_jitter_deg))
            folded = (angles,)
        if not told_psf:
            x, y = augment(x, y, rng, keep_direction=directional)
        x, y, folded = x.to(device), y.to(device), tuple(a.to(device) for a in folded)
        value = _step(opt, sched, loss_fn(net(x, *folded), y))
        if on_step is not None:
            on_step(step, value)
    return net


def fit_blurnet(net: torch.nn.Module, images: np.ndarray, labels: np.ndarray, severity: np.ndarray,
                schedule: Schedule, rng: np.random.Generator, *,
                on_step: StepCallback | None = None, device: str = "cpu") -> torch.nn.Module:
    """Train BlurNet in place on ``(n, y, x, 3)`` uint8 crops; returns it in train mode.

    ``labels``: class indices; ``severity``: ``(n, 4)`` defocus um, motion
    length px, motion angle deg, NA (:func:`wsi_deblur.training.losses.blurnet_loss`).
    """
    if len(images) == 0 or not len(images) == len(labels) == len(severity):
        raise ValueError(f"need one label and severity per crop (at least one crop), not {len(images)}, "
                         f"{len(labels)} and {len(severity)}")
    net.train()
    net.to(device=device, memory_format=torch.channels_last)
    opt, sched = _optimiser(net, schedule)
    for step in range(schedule.steps):
        idx = rng.integers(0, len(labels), schedule.batch)
        out = net(to_tensor(images[idx]).to(device))
        value = _step(opt, sched, blurnet_loss(out, torch.from_numpy(labels[idx]).to(device),
                                               torch.from_numpy(severity[idx]).to(device)))
        if on_step is not None:
            on_step(step, value)
    return net
