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
from dataclasses import dataclass, replace

import numpy as np

from wsi_deblur._shared.fourier import filter_mirrored, filter_mirrored_batch, same_size_batches, wiener_gain
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import (
    DEFOCUS_MODELS,
    defocus_um_for_sigma,
    estimate_psf,
    is_delta,
    sigma_px_for_defocus,
)
from wsi_deblur.blur.psf import psf_to_otf
from wsi_deblur.blur.simulate import Optics, defocus_psf_optics
from wsi_deblur.restore.width_search import sparsest_width_scale
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
    device : str, optional
        Torch device of the filtering (default the CPU).
    width_search : bool
        Refine each defocused window's width before filtering: the factor of
        the estimate whose restoration has the sparsest gradients
        (:mod:`wsi_deblur.restore.width_search`).
    """

    balance: float = 0.1
    mpp: float = WORKING_MPP
    name: str = "wiener"
    psf_model: str = DEFOCUS_MODELS[0]
    device: str | None = None
    width_search: bool = False

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows, each by the Wiener filter of its estimate's PSF.

        Windows whose PSFs have one size are filtered together in torch (:func:`wiener_batch`),
        at most :data:`~wsi_deblur._shared.fourier.BATCH_PIXELS` mirrored pixels at a time.
        """
        out = np.array(windows, copy=True)
        if self.width_search:
            estimates = [self.searched(window, est) for window, est in zip(windows, estimates)]
        psfs = {n: estimate_psf(est, self.mpp, model=self.psf_model) for n, est in enumerate(estimates)}
        psfs = {n: psf for n, psf in psfs.items() if not is_delta(psf)}
        h, w = windows.shape[1:3]
        for sel in same_size_batches(psfs, lambda size: 4 * h * w):  # mirrored to twice each side
            out[sel] = wiener_batch(windows[sel], np.stack([psfs[n] for n in sel]), balance=self.balance,
                                    device=self.device)
        return out


    def searched(self, window: np.ndarray, estimate: BlurEstimate) -> BlurEstimate:
        """``estimate`` with its defocus width refined on ``window`` (defocus alone; other blur as it is)."""
        if estimate.label != "defocus" or is_delta(estimate_psf(estimate, self.mpp, model=self.psf_model)):
            return estimate
        sigma = sigma_px_for_defocus(estimate.defocus_um, self.mpp) if estimate.defocus_um \
            else estimate.defocus_sigma_px

        def scaled(scale: float) -> BlurEstimate:
            if self.psf_model == "disc":
                return replace(estimate, defocus_um=0.0, defocus_sigma_px=sigma * scale)
            return replace(estimate, defocus_um=defocus_um_for_sigma(sigma * scale, self.mpp))

        scale = sparsest_width_scale(window, lambda s: estimate_psf(scaled(s), self.mpp, model=self.psf_model)[1],
                                     balance=self.balance)
        return estimate if scale == 1.0 else scaled(scale)


def wiener_batch(windows: np.ndarray, kernels: np.ndarray, *, balance: float, device: str | None = None) -> np.ndarray:
    """Wiener-deconvolve ``(n, y, x, 3)`` uint8 windows by their PSFs ``(n, 3, k, k)``, in torch on ``device``.

    As :func:`wiener_deconvolve` per channel (mirrored, ``H* (1 + b) / (|H|^2 + b)``), in float32, the OTFs
    from :func:`~wsi_deblur.blur.otf.kernel_otf`; uint8.
    """
    import torch

    from wsi_deblur.blur.otf import mirrored_otf

    dev = torch.device(device or "cpu")
    images = torch.from_numpy(np.ascontiguousarray(windows)).to(dev).permute(0, 3, 1, 2).to(torch.float32)
    h, w = images.shape[-2:]
    kernels = np.asarray(kernels, np.float32)
    shared = bool(np.all(kernels == kernels[:, :1]))  # one kernel for every channel (the disc): one OTF
    # a disc or a pupil PSF (symmetric in each axis): the same filter by quarter-size transforms (DCT)
    otf, even = mirrored_otf(torch.from_numpy(kernels[:, :1] if shared else kernels).to(dev), (h, w))
    gain = wiener_gain(otf, balance)
    out = filter_mirrored_batch(images, gain, even=even)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
