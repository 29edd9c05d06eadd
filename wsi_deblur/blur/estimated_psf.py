"""The PSF a blur estimate implies, from the optics: what the guard checks against and Wiener inverts.

BlurNet reports defocus as a distance from focus (``defocus_um``) and, in the
blur map, as the Gaussian-equivalent width it adds (``defocus_sigma_px``); the
two are tied by :func:`~wsi_deblur.blur.simulate.gaussian_sigma_px` at the NA
BlurNet's severity was trained for (:data:`ASSUMED_NA`).

The PSF's shape is a model (:data:`DEFOCUS_MODELS`). ``disc`` (the default):
geometric defocus, a uniform disc of the same second moment (radius twice
the Gaussian-equivalent width), what defocus *adds* to the in-focus optics.
``pupil``: scalar pupil diffraction at NA 0.75, the in-focus optics included.
Both invert contrast past their OTF's first zero, as real defocus does and a
Gaussian cannot; on the real focus pair the disc's OTF is the one that matches
(its negative lobe reaches -0.13, the measured transfer -0.15, the pupil's
-0.05), and Wiener told BlurNet's width gains 0.10 SSIM with the disc, 0.06 with
the pupil (``python benchmarks/defocus_model.py``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from wsi_deblur.blur.classes import DEFOCUSED, MOVING
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.psf import convolve_full, disc_psf, motion_psf
from wsi_deblur.blur.simulate import Optics, defocus_psf_optics, gaussian_sigma_px

#: Numerical aperture assumed for every estimate's defocus (that of BlurNet's severity training).
ASSUMED_NA = 0.75
#: The shapes a defocus estimate's PSF can take (see the module), the default first.
DEFOCUS_MODELS = ("disc", "pupil")
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


def estimate_psf(estimate: BlurEstimate, mpp: float | None, *, model: str = DEFOCUS_MODELS[0]) -> np.ndarray:
    """The ``(3, k, k)`` PSF an estimate implies, in pixels of ``mpp`` micrometres (0.5 when None).

    Defocus, ``model="disc"``: a uniform disc (:func:`~wsi_deblur.blur.psf.disc_psf`)
    of radius twice the Gaussian-equivalent width the estimate's
    ``defocus_um`` adds at ``mpp`` (else its ``defocus_sigma_px``);
    ``model="pupil"``: the pupil-function PSF of
    :func:`~wsi_deblur.blur.simulate.defocus_psf_optics` at that distance, NA
    0.75 (the in-focus optics included). Motion a line of ``motion_length_px``
    at ``motion_angle_deg`` (through the in-focus PSF, for the pupil model);
    mixed both. In focus, or no width: a delta, ``(3, 1, 1)``.

    Examples
    --------
    >>> from wsi_deblur.blur.estimate import BlurEstimate
    >>> estimate_psf(BlurEstimate("in_focus"), 0.5).shape
    (3, 1, 1)
    >>> psf = estimate_psf(BlurEstimate("defocus", defocus_um=2.0), 0.5)
    >>> psf.shape[0], bool(abs(psf.sum(axis=(1, 2)) - 1).max() < 1e-9)
    (3, True)
    """
    if model not in DEFOCUS_MODELS:
        raise ValueError(f"defocus model must be one of {', '.join(DEFOCUS_MODELS)}, not {model!r}")
    mpp = float(mpp or 0.5)
    moving = estimate.label in MOVING and estimate.motion_length_px > 1
    z = 0.0
    if estimate.label in DEFOCUSED:
        z = estimate.defocus_um or defocus_um_for_sigma(estimate.defocus_sigma_px, mpp)
    if not estimate.is_blurred or (z <= 0 and not moving):
        return np.ones((3, 1, 1))
    if model == "disc":
        sigma = sigma_px_for_defocus(z, mpp) if estimate.defocus_um else estimate.defocus_sigma_px
        kernels = np.stack([disc_psf(2.0 * sigma)] * 3) if z > 0 else np.ones((3, 1, 1))
    else:
        kernels = defocus_psf_optics(z, Optics(numerical_aperture=ASSUMED_NA, mpp=mpp))  # z = 0: diffraction only
    if moving:
        line = motion_psf(estimate.motion_length_px, estimate.motion_angle_deg)
        kernels = np.stack([np.clip(convolve_full(k, line), 0, None) for k in kernels])
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    return kernels


def is_delta(psf: np.ndarray) -> bool:
    """Whether ``psf`` (``(k, k)`` or ``(3, k, k)``) is the identity: nothing to undo or check."""
    return psf.shape[-2:] == (1, 1)
