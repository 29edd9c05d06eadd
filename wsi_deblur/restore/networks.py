"""Deblurring networks: DBMID's encoder-decoder and a fast model for the CPU.

Both map a blurred RGB image ``(n, 3, y, x)`` in [0, 1] to its sharp estimate
of the same shape, predicting the residual (sharp - blurred). Both accept any
size: the input is mirror-padded to a multiple of the network's total stride
and the output cropped back.

``DBMIDNet``
    The DBMID paper's DL_defocus / DL_motion architecture: a symmetric
    encoder-decoder, 3x3 convolutions with 32, 64 and 128 feature maps at full,
    1/2 and 1/4 resolution, stride-2 convolutions down, stride-2 transposed
    convolutions up, encoder features added (not concatenated) to the decoder's.
    About 75 k multiply-accumulates per pixel (:func:`macs_per_pixel`).

``FastDeblurNet``
    The CPU default. The same U shape one octave coarser: a 4x4 pixel-unshuffle
    turns the image into 48 channels at 1/4 resolution without losing a pixel,
    two levels (1/4 and 1/8; optionally a third at 1/16) of 3x3 convolutions
    work there, and a 4x4
    pixel-shuffle brings the residual back to full resolution. The receptive
    field is wider than DBMIDNet's (39 px): 76 px with two levels and 124 px
    with the third (the shipped networks), for under a tenth of its
    arithmetic (6.3 k and 7.3 k multiply-accumulates per pixel). With ``directional=True`` (the shipped
    DL_motion) it is also told the motion direction, folded into 0-45 degrees
    (:mod:`wsi_deblur.restore.direction_fold`): a feature-wise affine map of
    that angle (FiLM) scales and shifts the features at each level.

``BCRNet`` (:mod:`wsi_deblur.restore.bcr`)
    Learned Wiener filters in the Fourier domain at three scales, told each
    window's estimated PSF, and a small encoder-decoder on the residual
    (after m-rBCR); one network for every blur type.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsi_deblur.restore.direction_fold import SECTOR_DEG

ARCHITECTURES = ("fast", "dbmid", "bcr")


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)


class DBMIDNet(nn.Module):
    """DBMID's deblurring encoder-decoder (skip connections by sum).

    Parameters
    ----------
    widths : tuple of int
        Feature maps at full, 1/2 and 1/4 resolution.
    """

    stride = 4
    directional = False  # blind to the motion direction, as in the paper

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128)) -> None:
        super().__init__()
        a, b, c = widths
        self.widths = tuple(widths)
        self.head = _conv(3, a)
        self.enc1 = _conv(a, a)
        self.down1, self.enc2 = _conv(a, b, 2), _conv(b, b)
        self.down2 = _conv(b, c, 2)
        self.mid1, self.mid2 = _conv(c, c), _conv(c, c)
        self.up2, self.dec2 = _up(c, b), _conv(b, b)
        self.up1, self.dec1 = _up(b, a), _conv(a, a)
        self.tail = _conv(a, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, 3, y, x)`` in [0, 1]. Returns the sharp estimate, same shape."""
        padded, h, w = pad_to_multiple(x, self.stride)
        r = F.relu
        e1 = r(self.enc1(r(self.head(padded - 0.5))))
        e2 = r(self.enc2(r(self.down1(e1))))
        m = r(self.mid2(r(self.mid1(r(self.down2(e2))))))
        d2 = r(self.dec2(r(self.up2(m)) + e2))
        d1 = r(self.dec1(r(self.up1(d2)) + e1))
        return padded[..., :h, :w] + self.tail(d1)[..., :h, :w]


class FastDeblurNet(nn.Module):
    """A light encoder-decoder at 1/4 and 1/8 (and optionally 1/16) resolution (pixel-unshuffled input).

    Parameters
    ----------
    widths : tuple of int
        Feature maps at 1/4 and 1/8 resolution, and at 1/16 if a third is given:
        one more convolution there, between the two at 1/8, whose result is
        added back through a transposed convolution that starts at zero (so a
        two-level network's weights load into a three-level one unchanged).
    directional : bool
        Take the folded motion direction (degrees, 0-45) as a second input.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 96), *, directional: bool = False) -> None:
        super().__init__()
        if len(widths) not in (2, 3):
            raise ValueError(f"the fast network has two or three levels of features, got widths {widths}")
        a, b = widths[:2]
        self.widths = tuple(widths)
        self.stride = 8 * 2 ** (len(widths) - 2)
        self.directional = directional
        if directional:  # scale and shift of the features after head, mid1 and dec; starts as the identity
            self.film_sizes = (a, a, b, b, a, a)
            self.film = nn.Linear(2, sum(self.film_sizes))
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.head = _conv(48, a)
        self.enc = _conv(a, a)
        self.down = _conv(a, b, 2)
        self.mid1, self.mid2 = _conv(b, b), _conv(b, b)
        self.up = _up(b, a)
        self.dec = _conv(a, a)
        self.tail = _conv(a, 48)
        if len(widths) == 3:
            c = widths[2]
            self.down2, self.deep, self.up2 = _conv(b, c, 2), _conv(c, c), _up(c, b)
            nn.init.zeros_(self.up2.weight)
            nn.init.zeros_(self.up2.bias)

    def forward(self, x: torch.Tensor, angle_deg: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(n, 3, y, x)`` in [0, 1]; ``angle_deg``: ``(n,)`` folded directions, for a directional net.

        Returns the sharp estimate, same shape as ``x``.
        """
        padded, h, w = pad_to_multiple(x, self.stride)
        r = F.relu
        film = self._modulations(angle_deg, x)
        q = F.pixel_unshuffle(padded - 0.5, 4)
        e = r(self.enc(r(film(0, self.head(q)))))
        m = r(film(1, self.mid1(r(self.down(e)))))
        if len(self.widths) == 3:
            m = m + self.up2(r(self.deep(r(self.down2(m)))))
        m = r(self.mid2(m))
        d = r(film(2, self.dec(r(self.up(m)) + e)))
        residual = F.pixel_shuffle(self.tail(d), 4)
        return padded[..., :h, :w] + residual[..., :h, :w]

    def _modulations(self, angle_deg: torch.Tensor | None, x: torch.Tensor):
        """``film(level, features)``: the features scaled and shifted for each image's direction."""
        if not self.directional:
            return lambda level, features: features
        if angle_deg is None:
            raise ValueError("a directional network needs each image's folded motion direction (angle_deg)")
        t = angle_deg.to(x.dtype).reshape(-1, 1) / SECTOR_DEG
        params = torch.split(self.film(torch.cat([t, 1.0 - t], dim=1)), self.film_sizes, dim=1)

        def film(level: int, features: torch.Tensor) -> torch.Tensor:
            scale, shift = params[2 * level], params[2 * level + 1]
            return torch.addcmul(shift[..., None, None], features, 1.0 + scale[..., None, None])  # one pass

        return film


def build_network(architecture: str, widths: tuple[int, ...] | None = None, *,
                  directional: bool = False, width_uncertainty: float = 0.0) -> nn.Module:
    """A deblurring network by name (``fast``, ``dbmid`` or ``bcr``), untrained.

    ``directional`` (``fast`` only): the network takes the folded motion direction too.
    ``width_uncertainty`` (``bcr`` only): see :class:`~wsi_deblur.restore.bcr.BCRNet`.
    """
    if architecture == "bcr":
        from wsi_deblur.restore.bcr import BCRNet

        if directional:
            raise ValueError("the bcr architecture is told the whole PSF, direction included; it is not folded")
        return BCRNet(tuple(widths) if widths else (24, 64), width_uncertainty=width_uncertainty)
    if architecture == "dbmid":
        if directional:
            raise ValueError("the dbmid architecture is blind to the motion direction (as in the paper)")
        return DBMIDNet(tuple(widths) if widths else (32, 64, 128))
    if architecture == "fast":
        return FastDeblurNet(tuple(widths) if widths else (32, 96), directional=directional)
    raise ValueError(f"unknown deblurring architecture {architecture!r}; available: {', '.join(ARCHITECTURES)}")


def network_conditions(net: nn.Module, n: int) -> tuple[torch.Tensor, ...]:
    """The extra inputs ``net`` takes for ``n`` images, for a speed or size measurement.

    A directional network: directions of 30 degrees; one told the PSF: defocus std 3 px with 20 px of motion at 30
    degrees; others: none.
    """
    if getattr(net, "conditioning", None) == "psf":
        return (torch.tensor([[3.0, 20.0, 30.0]]).repeat(n, 1),)
    if getattr(net, "directional", False):
        return (torch.full((n,), 30.0),)
    return ()


def macs_per_pixel(net: nn.Module, size: int = 256) -> float:
    """Multiply-accumulates per input pixel of every (transposed) convolution, counted on a ``size`` square."""
    total = 0.0

    def count(module, inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):
            spatial = inputs[0].shape[-2] * inputs[0].shape[-1]
            total += spatial * k * module.in_channels * module.out_channels / module.groups
        else:
            total += output.shape[-2] * output.shape[-1] * k * module.in_channels * module.out_channels / module.groups

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    extra = network_conditions(net, 1)
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size), *extra)
    finally:
        for h in hooks:
            h.remove()
    return total / (size * size)
