"""BlurNet: a small CNN that tells blur type and severity, fast on a CPU.

Six 3x3 convolutions (four with stride 2) to 64 feature maps, then the mean
*and standard deviation* of each map over the image: blur is a property of an
image's frequency content everywhere, not of one place, and the spread of
feature responses measures it directly. A two-layer head gives 4 class logits
and 4 severity outputs (defocus distance / 8 um, motion length / 40 px, and the
motion direction as cos 2a, sin 2a). Fully convolutional: any input size.
"""

from __future__ import annotations

import torch
from torch import nn

DEFOCUS_SCALE_UM = 8.0
MOTION_SCALE_PX = 40.0


class BlurNet(nn.Module):
    """Blur classifier and severity regressor.

    Parameters
    ----------
    widths : sequence of int
        Feature maps of each convolution.
    strides : sequence of int
        Stride of each convolution.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 24, 32, 48, 64, 64),
                 strides: tuple[int, ...] = (2, 1, 2, 1, 2, 2)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for w, s in zip(widths, strides):
            layers += [nn.Conv2d(c, w, 3, s, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * c, 64), nn.ReLU(inplace=True), nn.Linear(64, 8))
        self.widths, self.strides = tuple(widths), tuple(strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(n, 3, y, x)`` RGB in [0, 1]. Returns ``(n, 8)``: 4 logits, 4 severities."""
        f = self.features(x - 0.5)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.float().std(dim=(2, 3)).to(f.dtype)], dim=1)
        return self.head(pooled)


    @classmethod
    def from_config(cls, config: dict) -> BlurNet:
        """The network a weights file's config describes (untrained)."""
        return cls(tuple(config.get("widths") or (16, 24, 32, 48, 64, 64)),
                   tuple(config.get("strides") or (2, 1, 2, 1, 2, 2)))

    def config(self) -> dict:
        """What :meth:`from_config` needs to build this network again."""
        return {"widths": list(self.widths), "strides": list(self.strides)}


def macs_per_pixel(net: BlurNet) -> float:
    """Multiply-accumulates per input pixel (convolutions only)."""
    total, c, area = 0.0, 3, 1.0
    for w, s in zip(net.widths, net.strides):
        area /= s * s
        total += area * w * c * 9
        c = w
    return total
