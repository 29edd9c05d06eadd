"""Classical restoration: Wiener deconvolution with the estimated PSF.

The baseline the networks must beat. The PSF is the optics'
(:func:`wsi_deblur.blur.estimated_psf.estimate_psf`: pupil defocus, whose OTF
turns negative past its first zero as real defocus does, not a Gaussian,
which never does; on the real focus pair a Gaussian Wiener at balance 0.01
took SSIM from 0.48 to 0.31). Each window is mirrored to twice its size
before the FFT, so the periodic extension has no edges to ring at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wsi_deblur._shared.fourier import filter_mirrored, wiener_gain
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import DEFOCUS_MODELS, estimate_psf, is_delta
from wsi_deblur.blur.psf import psf_to_otf
from wsi_deblur.blur.simulate import Optics, defocus_psf_optics
from wsi_deblur.working_scale import WORKING_MPP


def wiener_deconvolve(image: np.ndarray, psf: np.ndarray, *, balance: float = 0.01) -> np.ndarray:
    """Wiener-deconvolve ``image`` (y, x) or (y, x, c) by ``psf``.

    Parameters
    ----------
    image : ndarray
        Float or uint8 pixels.
    psf : ndarray, 2-D
        Centred kernel summing to 1, in pixels of ``image``.
    balance : float
        Noise-to-signal power ratio; larger is smoother. The filter is
        ``H* (1 + balance) / (|H|^2 + balance)``: 1 wherever the PSF passes
        everything, so the mean and what the blur left alone stay as they are.

    Returns
    -------
    ndarray of float64, shape like ``image``
    """
    img = np.asarray(image, dtype=np.float64)
    squeeze = img.ndim == 2
    gains: dict[tuple[int, int], np.ndarray] = {}  # one OTF for every channel

    def gain(c: int, shape: tuple[int, int]) -> np.ndarray:
        if shape not in gains:
            gains[shape] = wiener_gain(psf_to_otf(psf, shape), balance)
        return gains[shape]

    out = filter_mirrored(img[:, :, None] if squeeze else img, gain)
    return out[:, :, 0] if squeeze else out


def wiener_to_in_focus(image: np.ndarray, defocus_um: float, optics: Optics, *,
                       balance: float = 0.1) -> np.ndarray:
    """Wiener-deconvolve the blur that ``defocus_um`` of pupil defocus adds to ``optics``' in-focus PSF; uint8.

    The in-focus plane itself went through the in-focus optics, so the filter
    inverts the ratio ``R`` of the defocused OTF to the in-focus one, per
    channel, as ``R* (1 + balance) / (|R|^2 + balance)``: 1 wherever the
    defocus changes nothing (the mean, an in-focus image); where the in-focus
    OTF passes (almost) nothing the image is left as it is.
    The classical baseline told a pupil PSF (``pipelines.evaluate_real``).
    """
    defocused, in_focus = defocus_psf_optics(defocus_um, optics), defocus_psf_optics(0.0, optics)

    def gain(c: int, shape: tuple[int, int]) -> np.ndarray:
        h0 = psf_to_otf(in_focus[c], shape)
        passed = np.abs(h0) >= 0.05
        ratio = np.where(passed, psf_to_otf(defocused[c], shape) / np.where(passed, h0, 1.0), 1.0)
        return np.where(passed, wiener_gain(ratio, balance), 1.0)

    return np.clip(np.rint(filter_mirrored(image, gain)), 0, 255).astype(np.uint8)


@dataclass
class WienerRestorer:
    """Wiener deconvolution with the PSF of each window's blur estimate.

    Parameters
    ----------
    balance : float
        Noise-to-signal power ratio (regularisation); 0.1 shrinks what the
        PSF passes less than a third of.
    mpp : float
        Pixel size of the windows it is given (micrometres): the working
        pixel size, at which every restorer works.
    psf_model : {"disc", "pupil"}
        The defocus PSF an estimate implies (:data:`~wsi_deblur.blur.estimated_psf.DEFOCUS_MODELS`).
    """

    balance: float = 0.1
    mpp: float = WORKING_MPP
    name: str = "wiener"
    psf_model: str = DEFOCUS_MODELS[0]

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        out = np.empty_like(windows)
        for n, (window, est) in enumerate(zip(windows, estimates)):
            psf = estimate_psf(est, self.mpp, model=self.psf_model)
            if is_delta(psf):
                out[n] = window
                continue
            restored = np.stack([wiener_deconvolve(window[:, :, c], psf[c], balance=self.balance) for c in range(3)],
                                axis=2)
            out[n] = np.clip(np.rint(restored), 0, 255).astype(np.uint8)
        return out
