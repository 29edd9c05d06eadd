"""``fast``: the CPU default deblurring network, DBMID's U shape one octave coarser.

A 4x4 pixel-unshuffle turns the image into 48 channels at 1/4 resolution
without losing a pixel, two levels (1/4 and 1/8; optionally a third at 1/16)
of 3x3 convolutions work there, and a 4x4 pixel-shuffle brings the residual
(sharp - blurred) back to full resolution. The receptive field is wider than
DBMID's (39 px): 76 px with two levels and 124 px with the third (the shipped
networks), for under a tenth of its arithmetic (6.3 k and 7.3 k
multiply-accumulates per pixel). With ``directional=True`` (the shipped
DL_motion and DL_mixed) it is also told the motion direction, folded into 0-45
degrees (:mod:`wsi_deblur.nets.direction_fold`): a feature-wise affine map of
that angle (FiLM) scales and shifts the features at each level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsi_deblur.nets.direction_fold import SECTOR_DEG
from wsi_deblur.nets.layers import conv3 as _conv
from wsi_deblur.nets.layers import pad_to_multiple
from wsi_deblur.nets.layers import up2 as _up


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

    @classmethod
    def from_config(cls, config: dict) -> FastDeblurNet:
        """The network a weights file's config describes (untrained)."""
        return cls(tuple(config.get("widths") or (32, 96)), directional=bool(config.get("directional", False)))

    def config(self) -> dict:
        """What :meth:`from_config` needs to build this network again."""
        return {"widths": list(self.widths), **({"directional": True} if self.directional else {})}
