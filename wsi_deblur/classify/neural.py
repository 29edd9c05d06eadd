"""The shipped neural blur classifier (BlurNet weights in safetensors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wsi_deblur.blur.classes import DEFOCUSED, MOVING
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.estimated_psf import sigma_px_for_defocus
from wsi_deblur.classify.base import luma
from wsi_deblur.nets.blurnet import DEFOCUS_SCALE_UM, MOTION_SCALE_PX, BlurNet
from wsi_deblur.nets.files import CLASSIFIER_WEIGHTS as WEIGHTS
from wsi_deblur.nets.files import shipped_dir
from wsi_deblur.nets.runtime import blurnet_cpu_path, blurnet_logits, load_blurnet

CROP = 256  # pixels at the working resolution


def default_weights() -> Path:
    """The shipped BlurNet weights."""
    return shipped_dir() / WEIGHTS


def defocus_sigma_px(defocus_um: float) -> float:
    """Gaussian-equivalent PSF std (px at 0.5 um/px, NA 0.75) for a defocus distance."""
    return sigma_px_for_defocus(defocus_um, 0.5)


def most_textured_crop(tile: np.ndarray, size: int = CROP) -> np.ndarray:
    """The ``size`` square (of the four corners and the centre) with the most contrast."""
    h, w = tile.shape[:2]
    if h <= size and w <= size:
        return tile
    size_y, size_x = min(size, h), min(size, w)
    starts = {(0, 0), (0, w - size_x), (h - size_y, 0), (h - size_y, w - size_x),
              ((h - size_y) // 2, (w - size_x) // 2)}
    grey = luma(tile)
    best = max(sorted(starts), key=lambda yx: float(grey[yx[0]:yx[0] + size_y, yx[1]:yx[1] + size_x].std()))
    return tile[best[0]:best[0] + size_y, best[1]:best[1] + size_x]


@dataclass
class NeuralBlurClassifier:
    """Blur type and severity from BlurNet, on the most textured crop of each tile.

    Parameters
    ----------
    weights : str, optional
        A safetensors file; default the weights shipped in the package.
    device : str
        ``"cpu"`` or ``"cuda"``.
    threads : int
        CPU threads per call (Dask already runs one task per core).
    precision : {None, "fp32", "bf16"}
        On the CPU: fp32, or bfloat16 autocast (2x faster on CPUs with AMX/AVX-512 bf16, far slower on
        AVX2 ones); None (default) takes the one :mod:`wsi_deblur.nets.cpu_path` found faster on this machine
        with the same probabilities. A GPU always runs bf16 autocast.
    blur_threshold : float, optional
        A tile is called blurred (the most probable of the blurred classes)
        when P(blurred) = 1 - P(in focus) is at least this, else in focus: a
        site's calibration (:mod:`wsi_deblur.adaptation.calibration`). None
        (default): the most probable class.
    both_scales : bool
        Judge the tiles of a scan finer than the working pixel size also at
        their own pixels, and decide on the mean of the two scales'
        probabilities (:func:`~wsi_deblur.classify.tiles.classify_tiles`).
    """

    weights: str | None = None
    device: str = "cpu"
    threads: int = 1
    precision: str | None = None
    blur_threshold: float | None = None
    both_scales: bool = False
    name: str = field(default="neural")

    def __post_init__(self) -> None:
        if self.precision not in (None, "fp32", "bf16"):
            raise ValueError(f"precision must be None, 'fp32' or 'bf16', got {self.precision!r}")
        if self.blur_threshold is not None and not 0.0 < self.blur_threshold < 1.0:
            raise ValueError(f"blur_threshold is a probability in (0, 1), not {self.blur_threshold!r}")

    def decide(self, probs: np.ndarray) -> str:
        """The class of a tile from its four probabilities (the most probable, or by :attr:`blur_threshold`)."""
        if self.blur_threshold is None:
            return BLUR_CLASSES[int(np.argmax(probs))]
        if 1.0 - probs[0] < self.blur_threshold:
            return BLUR_CLASSES[0]
        return BLUR_CLASSES[1 + int(np.argmax(probs[1:]))]

    def preload(self) -> None:
        """Load the network (and on a CPU choose its precision) now: a worker does it once, at start."""
        self._net()
        if self.device == "cpu":
            self.cpu_precision()

    def cpu_precision(self) -> str:
        """``fp32`` or ``bf16``: as given, else as chosen for these weights on this CPU."""
        return self.precision or blurnet_cpu_path(str(self.weights or default_weights()))

    def _net(self) -> BlurNet:
        net, _ = load_blurnet(str(self.weights or default_weights()))
        return net.to(self.device)

    def logits(self, tiles: np.ndarray) -> np.ndarray:
        """Raw network outputs ``(n, 8)`` for ``(n, y, x, 3)`` uint8 tiles."""
        crops = np.stack([most_textured_crop(t) for t in tiles])
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        bf16 = self.device != "cpu" or self.cpu_precision() == "bf16"
        return blurnet_logits(self._net(), crops, bf16=bf16)

    def classify(self, tiles: np.ndarray) -> list[BlurEstimate]:
        out = self.logits(tiles)
        if not np.isfinite(out).all():  # never a verdict from NaN: the tile (and its slide) fails
            raise ValueError(f"BlurNet ({self.weights or 'shipped'}) gave non-finite outputs; are its weights "
                             "damaged?")
        logits = out[:, :4]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        estimates = []
        for probs, sev in zip(p, out[:, 4:]):
            label = self.decide(probs)
            defocus_um = float(np.clip(sev[0], 0, None) * DEFOCUS_SCALE_UM)
            length = float(np.clip(sev[1], 0, None) * MOTION_SCALE_PX)
            angle = float(np.degrees(np.arctan2(sev[3], sev[2])) / 2.0) % 180.0
            blurred_defocus = label in DEFOCUSED
            moving = label in MOVING
            estimates.append(BlurEstimate(
                label, {c: float(v) for c, v in zip(BLUR_CLASSES, probs)},
                defocus_sigma_px=defocus_sigma_px(defocus_um) if blurred_defocus else 0.0,
                motion_length_px=length if moving else 0.0, motion_angle_deg=angle if moving else 0.0,
                defocus_um=defocus_um))
        return estimates
