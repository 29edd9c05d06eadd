"""How ``wsi-deblur adapt`` samples and trains: :class:`AdaptOptions`, each field declared once."""

from __future__ import annotations

from dataclasses import dataclass

from wsi_deblur._shared.options import check_fields, option
from wsi_deblur.errors import OptionError
from wsi_deblur.pipeline.options import READERS

#: The command whose flags an option is.
ADAPT = ("adapt",)


@dataclass(frozen=True)
class AdaptOptions:
    """How adaptation samples and trains.

    Attributes
    ----------
    steps : int
        Training steps per network (batch ``batch``; BlurNet twice the batch).
    max_tiles : int
        In-focus tiles and blurred tiles sampled (each), over all slides.
    tile_size : int
        Tile edge at the working pixel size (about 0.5 um/px).
    held_out : float
        Share of the sampled tiles held back to score shipped against adapted.
    pairs : int
        Simulated training pairs per network (and half as many further-degraded ones).
    crop : int
        Edge of a training crop (pixels).
    batch : int
    lr : float
        Peak learning rate (one-cycle) of the fine-tuning.
    max_iterations : int
        Most iterations the stopping rule may choose (:mod:`wsi_deblur.adaptation.iterations`).
    mpp : float, optional
        Pixel size of slides whose files lack one.
    reader : str
    seed : int
    device : str, optional
        Torch device to train on (default: CUDA when present, else the CPU).
    """

    steps: int = option(300, "training steps per network", kind="count", low=1, high=100_000, groups=ADAPT)
    max_tiles: int = option(128, "in-focus and blurred tiles sampled (each), over all slides", kind="count", low=1,
                            high=10_000, groups=ADAPT)
    tile_size: int = option(512, "tile edge in pixels at about 0.5 um/px (256 for small images)", kind="pixels",
                            low=32, groups=ADAPT)
    held_out: float = option(0.25, "share of the sampled tiles held back", kind="open_share")
    pairs: int = option(1024, "simulated training pairs per network, and half as many further-degraded",
                        kind="count", low=1, high=65_536, groups=ADAPT)
    crop: int = option(128, "edge of a training crop (pixels)", kind="pixels", low=32)
    batch: int = option(16, "training crops per step", kind="count", low=1, high=1024)
    lr: float = option(2e-4, "peak learning rate", kind="positive")
    max_iterations: int = option(4, "most iterations the stopping rule may choose", kind="count", low=1, high=16)
    mpp: float | None = option(None, "micrometres per pixel, for files without one", kind="mpp", groups=ADAPT)
    reader: str = option("auto", "force a reader", kind="choice", choices=READERS, groups=ADAPT)
    seed: int = option(0, "seed of the sampling and training", kind="count", low=0, groups=ADAPT)
    device: str | None = option(None, "torch device to train on (default: cuda if present, else cpu)",
                                kind="path", groups=ADAPT)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.crop % 8:
            raise OptionError(f"crop must be a multiple of 8 of at least 32, not {self.crop}")
        if self.tile_size < self.crop:
            raise OptionError(f"tile_size ({self.tile_size}) must be at least crop ({self.crop})")
        if self.device:
            from wsi_deblur.nets.runtime import check_device  # torch

            try:
                check_device(self.device)
            except ValueError as exc:
                raise OptionError(str(exc)) from exc
