"""DBMID's DL_defocus / DL_motion architecture (Jiang et al., 2020).

A symmetric encoder-decoder: 3x3 convolutions with 32, 64 and 128 feature
maps at full, 1/2 and 1/4 resolution, stride-2 convolutions down, stride-2
transposed convolutions up, encoder features added (not concatenated) to the
decoder's. About 75 k multiply-accumulates per pixel
(:func:`wsi_deblur.nets.runtime.macs_per_pixel`). It predicts the residual
(sharp - blurred) and accepts any size (mirror-padded to a multiple of 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsi_deblur.nets.layers import conv3 as _conv
from wsi_deblur.nets.layers import pad_to_multiple
from wsi_deblur.nets.layers import up2 as _up


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

    @classmethod
    def from_config(cls, config: dict) -> DBMIDNet:
        """The network a weights file's config describes (untrained)."""
        if config.get("directional"):
            raise ValueError("the dbmid architecture is blind to the motion direction (as in the paper)")
        return cls(tuple(config.get("widths") or (32, 64, 128)))

    def config(self) -> dict:
        """What :meth:`from_config` needs to build this network again."""
        return {"widths": list(self.widths)}
