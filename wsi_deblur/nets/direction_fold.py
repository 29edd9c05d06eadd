"""Bring any motion direction into 0-45 degrees with a mirror and a transpose, and back.

Linear motion blur smears along one direction, and a small network trained
for minutes on a CPU learns a deconvolution for every direction poorly. The
pixel grid has exact symmetries that move pixels without interpolating them:
mirroring left-right turns a direction ``a`` into ``180 - a``, and
transposing (swapping x and y) turns it into ``90 - a``. With at most one of
each, any direction lands in the sector 0-45 degrees. DL_motion therefore
sees every window *folded* into that sector and is told the folded direction
(:class:`wsi_deblur.nets.fast.FastDeblurNet` with ``directional``);
its output is unfolded with the same exact moves. No pixel is resampled and
no extra pixel is computed.

Angles are degrees counter-clockwise from the image x axis with rows growing
downwards, as :func:`wsi_deblur.blur.psf.motion_psf` and
:class:`wsi_deblur.blur.estimate.BlurEstimate` use them: the motion direction
is ``(cos a, -sin a)`` in ``(x, y)`` pixel coordinates, and ``a`` and
``a + 180`` are the same motion. Arrays are ``(n, channels, y, x)`` torch
tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: Width of the sector (degrees) every direction is folded into.
SECTOR_DEG = 45.0


def fold_direction(angle_deg: float) -> tuple[bool, bool, float]:
    """The moves that bring direction ``angle_deg`` into 0-45 degrees.

    Returns
    -------
    mirror : bool
        Mirror left-right first (``a`` -> ``180 - a``).
    transpose : bool
        Then swap x and y (``a`` -> ``90 - a``).
    folded_deg : float
        The direction after both, in [0, 45].
    """
    a = float(angle_deg) % 180.0
    mirror = a > 90.0
    if mirror:
        a = 180.0 - a
    transpose = a > SECTOR_DEG
    if transpose:
        a = 90.0 - a
    return mirror, transpose, a


def fold(images: torch.Tensor, mirror: bool, transpose: bool) -> torch.Tensor:
    """``images`` ``(n, c, y, x)`` mirrored left-right and/or transposed (in that order)."""
    if mirror:
        images = images.flip(-1)
    if transpose:
        images = images.transpose(-1, -2)
    return images


def unfold(images: torch.Tensor, mirror: bool, transpose: bool) -> torch.Tensor:
    """The inverse of :func:`fold` with the same moves."""
    if transpose:
        images = images.transpose(-1, -2)
    if mirror:
        images = images.flip(-1)
    return images


def restore_folded(net: torch.nn.Module, images: torch.Tensor, angles_deg: Sequence[float]) -> torch.Tensor:
    """``net``'s sharp estimate of each image, computed in its folded sector.

    Parameters
    ----------
    net : Module
        Called as ``net(x, angle_deg)`` with ``x`` ``(n, c, y, x)`` folded
        images and ``angle_deg`` ``(n,)`` their folded directions (degrees,
        0-45).
    images : Tensor, (n, c, y, x)
    angles_deg : sequence of float, length n
        Each image's motion direction, degrees.

    Returns
    -------
    Tensor, (n, c, y, x)
        Images that share a fold are computed together; the result does not
        depend on which other images are in the call.
    """
    moves = [fold_direction(a) for a in angles_deg]
    out = torch.empty_like(images)
    for mirror in (False, True):
        for transpose in (False, True):
            idx = [i for i, m in enumerate(moves) if m[:2] == (mirror, transpose)]
            if not idx:
                continue
            x = fold(images[idx], mirror, transpose)
            x = x.contiguous(memory_format=torch.channels_last)  # the layout the networks run fastest in
            folded = torch.tensor([moves[i][2] for i in idx], dtype=x.dtype, device=x.device)
            out[idx] = unfold(net(x, folded), mirror, transpose)
    return out

