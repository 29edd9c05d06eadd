"""Restore defocus of a fine scan, and blur wider than the networks learned, at the working pixel size.

The restoration networks learned blur as a 20x scan (about 0.5 um/px) shows
it: defocus up to a Gaussian-equivalent std of 6 px, motion up to 40 px. A
40x scan (about 0.25 um/px) shows the same defocus twice as wide in pixels,
so at its own pixels the networks leave its wider half untouched (on a real
40x field, 5 um of defocus at NA 0.75, a std of 10.7 px: SSIM 0.637 blurred,
0.639 restored; ``benchmarks/working_scale.py``). :class:`WorkingScaleRestorer`
restores such a window at the working pixel size and hands the *correction*
back at full resolution:

    out = window + upsample(restore(downsample(window)) - downsample(window))

Detail finer than the working pixels passes through, and a window the
restorer leaves alone comes back exactly as it went in.

*Defocus* of a finer scan always goes to the working pixel size: the networks
learned tissue, noise and out-of-focus structure at 0.5 um/px, and at 40x
pixels they sharpen what they never saw (on the real 40x focus pair,
``pipelines.evaluate_real``: SSIM 0.32 at level 0, 0.41 at the working size,
input 0.48; on the synthetic 40x field of ``benchmarks/working_scale.py``
equal or better at every width, and sharp crops keep 0.995 against 0.978).
Motion and mixed blur within what the networks learned stay at level 0,
where they also restore the finest octave (30 px of motion: 0.804 at level 0,
0.777 at the working size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf
from wsi_deblur.restore.base import Restorer
from wsi_deblur.working_scale import WORKING_MPP, downsample_tiles, severity_scaled, working_downsample

#: Widest blur the restoration networks were trained on, in working pixels
#: (``pipelines.restore_data``: defocus std 1.2-6 px, motion 5-40 px).
TRAINED_DEFOCUS_SIGMA_PX = 6.0
TRAINED_MOTION_LENGTH_PX = 40.0


def wider_than_trained(estimate: BlurEstimate) -> bool:
    """Whether ``estimate``'s blur (in the pixels it is given in) is wider than the networks learned."""
    return (estimate.defocus_sigma_px > TRAINED_DEFOCUS_SIGMA_PX
            or estimate.motion_length_px > TRAINED_MOTION_LENGTH_PX)


def restored_at_working_size(estimate: BlurEstimate) -> bool:
    """Whether a window of a finer scan is restored at the working pixel size: defocus always, other blur when
    wider (level-0 pixels) than the networks learned.
    """
    return estimate.label == "defocus" or wider_than_trained(estimate)


def upsample_correction(correction: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear upsampling of ``(n, y, x, 3)`` float corrections by ``factor``.

    Pixel centres where block averaging puts them (half-pixel aligned), edges
    held: a constant correction stays constant.
    """
    t = torch.from_numpy(np.ascontiguousarray(correction, dtype=np.float32)).permute(0, 3, 1, 2)
    up = F.interpolate(t, scale_factor=factor, mode="bilinear", align_corners=False)
    return up.permute(0, 2, 3, 1).numpy()


@dataclass(frozen=True)
class WorkingScaleRestorer:
    """``restorer`` on a scan ``factor`` times finer than the working pixel size.

    Defocused windows, and those whose estimated blur (level-0 pixels) is
    wider than the networks learned, are block-averaged by ``factor``,
    restored, and the correction upsampled onto them
    (:func:`restored_at_working_size`); the others are restored at level 0.

    Parameters
    ----------
    restorer : Restorer
        Made for the working pixel size (about 0.5 um/px).
    factor : int
        Level-0 pixels per working pixel along each axis (2 for a 40x scan;
        :func:`wsi_deblur.working_scale.working_downsample`).
    """

    restorer: Restorer
    factor: int

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ValueError(f"factor must be a positive integer, not {self.factor}")

    @property
    def name(self) -> str:
        return self.restorer.name

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows of level-0 pixels (severities in level-0 pixels)."""
        wide = np.array([restored_at_working_size(e) for e in estimates], bool)
        if not wide.any():
            return self.restorer.restore(windows, estimates)
        out = np.empty_like(windows)
        if not wide.all():
            out[~wide] = self.restorer.restore(windows[~wide], [e for e, w in zip(estimates, wide) if not w])
        out[wide] = self.restore_downsampled(windows[wide], [e for e, w in zip(estimates, wide) if w])
        return out

    def restore_downsampled(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore at the working pixel size and add the upsampled correction (any window size).

        A *defocused* window's detail finer than the working pixels is kept
        in the share the estimated PSF passes of it (:func:`fine_octave_passed`):
        what the blur left of the focal plane there. The rest is noise and
        other planes' structure, and goes (on the real 40x focus pair, keeping
        what the PSF passes, next to nothing: SSIM 0.535, ``pipelines.evaluate_real``;
        keeping it all, an ad hoc run of the same weights: 0.516).
        Motion passes fine detail across its direction, so moved windows keep
        theirs.
        """
        f = self.factor
        _, h, w, _ = windows.shape
        pad = ((0, 0), (0, -h % f), (0, -w % f), (0, 0))
        padded = np.pad(windows, pad, mode="symmetric") if pad[1][1] or pad[2][1] else windows
        small = downsample_tiles(padded, f)
        restored = self.restorer.restore(small, [severity_scaled(e, 1 / f) for e in estimates])
        out = upsample_correction(restored.astype(np.float32) - small, f)[:, :h, :w]
        out += windows
        drop = np.array([1.0 - fine_octave_passed(e, f) if e.label == "defocus" else 0.0 for e in estimates],
                        np.float32)
        if drop.any():
            fine = windows - upsample_correction(small.astype(np.float32), f)[:, :h, :w]
            out -= drop[:, None, None, None] * fine
        return np.clip(np.rint(out, out=out), 0, 255).astype(np.uint8)


def fine_octave_passed(estimate: BlurEstimate, factor: int) -> float:
    """Share of the power finer than the working pixels that ``estimate``'s PSF passes (level-0 pixels, 0-1).

    The mean of ``|OTF|^2`` over the level-0 frequencies beyond the working
    pixel size's Nyquist (``max(|fx|, |fy|) > 0.5 / factor`` cycles/px), PSF
    of :func:`~wsi_deblur.blur.estimated_psf.estimate_psf` at ``WORKING_MPP / factor``.
    1 for in-focus estimates; about 0 for the defocus the networks restore
    (5% at 0.3 um, under 1% from 0.75 um at 40x). A mean over directions: for
    isotropic blur (defocus), not for motion.
    """
    if factor == 1 or not estimate.is_blurred:
        return 1.0
    psf = estimate_psf(estimate, WORKING_MPP / factor)
    size = int(2 ** np.ceil(np.log2(max(64, 2 * psf.shape[1]))))
    freq = np.fft.fftfreq(size)
    beyond = np.maximum(np.abs(freq)[:, None], np.abs(freq)[None, :]) > 0.5 / factor
    otf = np.abs(np.fft.fft2(psf, s=(size, size))) ** 2
    return float(otf[:, beyond].mean())


def at_working_scale(restorer: Restorer, mpp: float | None) -> Restorer:
    """``restorer`` for a scan of ``mpp`` micrometres per pixel: wrapped when finer than the working size."""
    factor = working_downsample(mpp)
    return restorer if factor == 1 else WorkingScaleRestorer(restorer, factor)
