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
    two levels (1/4 and 1/8) of 3x3 convolutions work there, and a 4x4
    pixel-shuffle brings the residual back to full resolution. The receptive
    field is wider than DBMIDNet's (about 90 px, enough for 40-px motion) for
    under a tenth of its arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURES = ("fast", "dbmid")


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
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
        padded, h, w = _pad_to_multiple(x, self.stride)
        r = F.relu
        e1 = r(self.enc1(r(self.head(padded - 0.5))))
        e2 = r(self.enc2(r(self.down1(e1))))
        m = r(self.mid2(r(self.mid1(r(self.down2(e2))))))
        d2 = r(self.dec2(r(self.up2(m)) + e2))
        d1 = r(self.dec1(r(self.up1(d2)) + e1))
        return padded[..., :h, :w] + self.tail(d1)[..., :h, :w]


class FastDeblurNet(nn.Module):
    """A light encoder-decoder at 1/4 and 1/8 resolution (pixel-unshuffled input).

    Parameters
    ----------
    widths : tuple of int
        Feature maps at 1/4 and 1/8 resolution.
    """

    stride = 8

    def __init__(self, widths: tuple[int, int] = (32, 96)) -> None:
        super().__init__()
        a, b = widths
        self.widths = tuple(widths)
        self.head = _conv(48, a)
        self.enc = _conv(a, a)
        self.down = _conv(a, b, 2)
        self.mid1, self.mid2 = _conv(b, b), _conv(b, b)
        self.up = _up(b, a)
        self.dec = _conv(a, a)
        self.tail = _conv(a, 48)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, 3, y, x)`` in [0, 1]. Returns the sharp estimate, same shape."""
        padded, h, w = _pad_to_multiple(x, self.stride)
        r = F.relu
        q = F.pixel_unshuffle(padded - 0.5, 4)
        e = r(self.enc(r(self.head(q))))
        m = r(self.mid2(r(self.mid1(r(self.down(e))))))
        d = r(self.dec(r(self.up(m)) + e))
        residual = F.pixel_shuffle(self.tail(d), 4)
        return padded[..., :h, :w] + residual[..., :h, :w]


def build_network(architecture: str, widths: tuple[int, ...] | None = None) -> nn.Module:
    """A deblurring network by name (``fast`` or ``dbmid``), untrained."""
    if architecture == "dbmid":
        return DBMIDNet(tuple(widths) if widths else (32, 64, 128))
    if architecture == "fast":
        return FastDeblurNet(tuple(widths) if widths else (32, 96))
    raise ValueError(f"unknown deblurring architecture {architecture!r}; available: {', '.join(ARCHITECTURES)}")


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
    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    return total / (size * size)
