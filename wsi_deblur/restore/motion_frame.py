"""Turn images so that their motion blur runs along x, and turn the result back.

Linear motion blur smears along one direction. A network that always sees
that direction along its x axis learns a one-dimensional problem instead of
having to find the direction first, which a small network trained for minutes
on a CPU does poorly. DL_motion therefore works in the *motion frame*: each
window is resampled (bicubic) onto a square grid whose x axis follows the
estimated motion direction, the network predicts the residual (sharp - blurred)
there, and only that residual is resampled back and added to the untouched
input. The input's pixels are never interpolated; the residual is, twice.

Angles are degrees counter-clockwise from the image x axis with rows growing
downwards, as :func:`wsi_deblur.blur.psf.motion_psf` and
:class:`wsi_deblur.blur.estimate.BlurEstimate` use them: the motion direction
is ``(cos a, -sin a)`` in ``(x, y)`` pixel coordinates. Arrays are
``(n, channels, y, x)`` torch tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def frame_side(height: int, width: int, angle_deg: float, *, multiple: int = 8) -> int:
    """Side (pixels) of the square motion frame that holds a whole ``height`` x ``width`` image turned by ``angle_deg``."""
    a = math.radians(angle_deg)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    side = max(width * c + height * s, width * s + height * c)
    return int(math.ceil(side / multiple) * multiple)


def _axes(angle_deg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit motion direction ``d`` and its normal ``n``, each ``(n, 2)`` as (x, y)."""
    a = torch.deg2rad(angle_deg.to(torch.float32))
    d = torch.stack([torch.cos(a), -torch.sin(a)], dim=1)
    normal = torch.stack([torch.sin(a), torch.cos(a)], dim=1)
    return d, normal


def _sample(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Bicubic samples of ``images`` at pixel offsets ``(n, h, w, 2)`` (x, y) from their centre."""
    h, w = images.shape[-2:]
    grid = torch.empty_like(offsets)
    grid[..., 0] = offsets[..., 0] * (2.0 / max(w - 1, 1))
    grid[..., 1] = offsets[..., 1] * (2.0 / max(h - 1, 1))
    return F.grid_sample(images, grid.to(images.dtype), mode="bicubic", padding_mode="reflection",
                         align_corners=True)


def _centred(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(h, device=device, dtype=torch.float32) - (h - 1) / 2
    xs = torch.arange(w, device=device, dtype=torch.float32) - (w - 1) / 2
    return torch.meshgrid(ys, xs, indexing="ij")


def to_motion_frame(images: torch.Tensor, angle_deg: torch.Tensor, side: int) -> torch.Tensor:
    """Resample ``images`` onto a ``side`` x ``side`` grid whose x axis runs along each image's motion.

    Parameters
    ----------
    images : Tensor, (n, c, y, x)
    angle_deg : Tensor, (n,)
        Motion direction of each image, degrees.
    side : int
        Output side in pixels (:func:`frame_side` for the whole image; smaller
        crops the centre). Samples beyond the image edge are mirrored.

    Returns
    -------
    Tensor, (n, c, side, side)
    """
    d, normal = _axes(angle_deg.to(images.device))
    v, u = _centred(side, side, images.device)
    offsets = (u[None, ..., None] * d[:, None, None, :] + v[None, ..., None] * normal[:, None, None, :])
    return _sample(images, offsets)


def from_motion_frame(frames: torch.Tensor, angle_deg: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of :func:`to_motion_frame`: ``frames`` resampled back onto ``height`` x ``width`` images."""
    d, normal = _axes(angle_deg.to(frames.device))
    y, x = _centred(height, width, frames.device)
    q = torch.stack([x, y], dim=-1)[None]  # (1, h, w, 2) offsets in the image
    u = (q * d[:, None, None, :]).sum(-1)
    v = (q * normal[:, None, None, :]).sum(-1)
    return _sample(frames, torch.stack([u, v], dim=-1))


def restore_in_motion_frame(net: torch.nn.Module, images: torch.Tensor, angle_deg: torch.Tensor, *,
                            side: int | None = None) -> torch.Tensor:
    """``images`` plus the residual ``net`` predicts for them in their motion frame.

    ``net`` maps an image to its sharp estimate (as every network in
    :mod:`wsi_deblur.restore.networks`); images sharing one call share a frame
    of ``side`` pixels (default: that of the widest turn among them).
    """
    h, w = images.shape[-2:]
    if side is None:
        side = max(frame_side(h, w, float(a)) for a in angle_deg)
    framed = to_motion_frame(images, angle_deg, side)
    if images.device.type == "cpu":  # the layout the CPU networks run fastest in (grid_sample returns NCHW)
        framed = framed.contiguous(memory_format=torch.channels_last)
    residual = net(framed) - framed
    return images + from_motion_frame(residual, angle_deg, h, w)
