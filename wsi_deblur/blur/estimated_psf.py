"""The PSF a blur estimate implies, from the optics: what the guard checks against and Wiener inverts.

BlurNet reports defocus as a distance from focus (``defocus_um``) and, in the
blur map, as the Gaussian-equivalent width it adds (``defocus_sigma_px``); the
two are tied by :func:`~wsi_deblur.blur.simulate.gaussian_sigma_px` at the NA
BlurNet's severity was trained for (:data:`ASSUMED_NA`). The PSF itself is the
pupil model's, not a Gaussian: real defocus inverts contrast past its OTF's
first zero, as the pupil model does and a Gaussian cannot (``pipelines.evaluate_real``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from wsi_deblur.blur.classes import DEFOCUSED, MOVING
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.psf import motion_psf
from wsi_deblur.blur.simulate import Optics, defocus_psf_optics, gaussian_sigma_px

#: Numerical aperture assumed for every estimate's defocus (that of BlurNet's severity training).
ASSUMED_NA = 0.75
#: Defocus distances (um) of the width table: 0.5-um steps up to 12 um.
_DISTANCES_UM = np.linspace(0.0, 12.0, 25)


@lru_cache(maxsize=16)
def _widths(mpp: float) -> np.ndarray:
    """Gaussian-equivalent width (px at ``mpp``) added by each of :data:`_DISTANCES_UM` (computed once per mpp)."""
    return np.array([gaussian_sigma_px(z, Optics(numerical_aperture=ASSUMED_NA, mpp=mpp)) for z in _DISTANCES_UM])


def sigma_px_for_defocus(defocus_um: float, mpp: float) -> float:
    """Gaussian-equivalent std (px at ``mpp``) that a defocus of ``defocus_um`` adds at NA 0.75."""
    return float(np.interp(defocus_um, _DISTANCES_UM, _widths(round(float(mpp), 4))))


def defocus_um_for_sigma(sigma_px: float, mpp: float) -> float:
    """The defocus distance (um) whose added blur has Gaussian-equivalent std ``sigma_px`` at ``mpp``."""
    return float(np.interp(sigma_px, _widths(round(float(mpp), 4)), _DISTANCES_UM))


def estimate_psf(estimate: BlurEstimate, mpp: float | None) -> np.ndarray:
    """The ``(3, k, k)`` PSF an estimate implies, in pixels of ``mpp`` micrometres (0.5 when None).

    Defocus is the pupil-function PSF of :func:`~wsi_deblur.blur.simulate.defocus_psf_optics`
    at the estimate's ``defocus_um`` (or the distance whose Gaussian-equivalent
    width is its ``defocus_sigma_px``), NA 0.75; motion a line of
    ``motion_length_px`` at ``motion_angle_deg`` through the in-focus
    (diffraction-limited) PSF; mixed both. In focus, or no width: a delta, ``(3, 1, 1)``.

    Examples
    --------
    >>> from wsi_deblur.blur.estimate import BlurEstimate
    >>> estimate_psf(BlurEstimate("in_focus"), 0.5).shape
    (3, 1, 1)
    >>> psf = estimate_psf(BlurEstimate("defocus", defocus_um=2.0), 0.5)
    >>> psf.shape[0], bool(abs(psf.sum(axis=(1, 2)) - 1).max() < 1e-9)
    (3, True)
    """
    from scipy.signal import fftconvolve

    mpp = float(mpp or 0.5)
    moving = estimate.label in MOVING and estimate.motion_length_px > 1
    z = 0.0
    if estimate.label in DEFOCUSED:
        z = estimate.defocus_um or defocus_um_for_sigma(estimate.defocus_sigma_px, mpp)
    if not estimate.is_blurred or (z <= 0 and not moving):
        return np.ones((3, 1, 1))
    kernels = defocus_psf_optics(z, Optics(numerical_aperture=ASSUMED_NA, mpp=mpp))  # z = 0: diffraction only
    if moving:
        line = motion_psf(estimate.motion_length_px, estimate.motion_angle_deg)
        kernels = np.stack([np.clip(fftconvolve(k, line, mode="full"), 0, None) for k in kernels])
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    return kernels


def is_delta(psf: np.ndarray) -> bool:
    """Whether ``psf`` (``(k, k)`` or ``(3, k, k)``) is the identity: nothing to undo or check."""
    return psf.shape[-2:] == (1, 1)
