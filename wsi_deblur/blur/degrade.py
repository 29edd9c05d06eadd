"""Degradations of sharp images for training: the simulator's blur, noise and JPEG, drawn at random.

The classifier's crops (:func:`degraded_crop`) and the restorers' pairs
(:func:`restore_pair`) come from here, both for the training pipelines on
``../shared/data`` (:mod:`pipelines.blur_data`, :mod:`pipelines.restore_data`)
and for adaptation to a facility's own in-focus tiles
(:mod:`wsi_deblur.adaptation`): one simulator, whatever the images.
Per-channel pupil-function defocus kernels are computed once per (distance,
NA) on a 0.1-um grid and cached (:func:`warm_psf_bank`); classes are decided
by the blur the optics really add (:func:`added_sigma_px`), not the distance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache, lru_cache

import numpy as np

from wsi_deblur.blur.classes import DEFOCUSED
from wsi_deblur.blur.psf import convolve_kernels, disc_psf, motion_psf
from wsi_deblur.blur.simulate import (
    RANGES,
    BlurParams,
    Optics,
    add_out_of_plane,
    add_sensor_noise,
    convolve_rgb,
    defocus_psf_optics,
    gaussian_sigma_px,
    jpeg_roundtrip,
    sample_params,
)

NUMERICAL_APERTURES = (0.5, 0.65, 0.75, 0.85, 0.95)

#: Contrast of another plane's fine detail in out-of-plane examples (``--out-of-plane`` of both data pipelines).
OUT_OF_PLANE_STRENGTH = (0.1, 0.4)
#: Photons at full scale of out-of-plane examples: the noise measured on the real focus pair (1-3 grey levels).
OUT_OF_PLANE_PHOTONS = (5000.0, 50000.0)


@dataclass(frozen=True)
class SiteAcquisition:
    """The simulator narrowed to one site's scanner (:func:`wsi_deblur.adaptation.site_model.fit_site`).

    The training pipelines draw over every scanner (any scale, stain, noise
    and defocus); a site's own tiles have one scale and stain, and their
    noise and the defocus of their blurred tiles can be measured.

    Attributes
    ----------
    photons : (float, float), optional
        Range (log-uniform) of photons at full scale; default the pipelines'.
    defocus_um : (float, float), optional
        Range of defocus of defocus and mixed pairs (then kept whatever blur
        they add); default the pipelines' (added std 1.2-6 px).
    numerical_aperture : float, optional
        The objective's NA; default one of :data:`NUMERICAL_APERTURES` at random.
    rescale, colour_jitter : bool
        Random rescaling and stain jitter of the sharp crops (off: the site's own).
    """

    photons: tuple[float, float] | None = None
    defocus_um: tuple[float, float] | None = None
    numerical_aperture: float | None = None
    rescale: bool = False
    colour_jitter: bool = False


@lru_cache(maxsize=4096)
def defocus_kernels(defocus_um: float, na: float) -> np.ndarray:
    """The ``(3, k, k)`` per-channel defocus PSF at 0.5 um/px (cached: see :func:`warm_psf_bank`)."""
    return defocus_psf_optics(defocus_um, Optics(numerical_aperture=na, mpp=0.5))


DEFOCUS_STEP_UM = 0.1

#: Classes are defined by the blur the optics really add (Gaussian-equivalent
#: std over the in-focus PSF, pixels at 0.5 um/px), not by the defocus distance
#: alone: at NA 0.95 half a micrometre already blurs, at NA 0.5 it does not.
SHARP_MAX_SIGMA_PX = 0.5
DEFOCUS_MIN_SIGMA_PX = 1.2
#: The same for training sets that teach mild defocus (``--min-defocus-um`` below 1.5): a blur disc
#: of 1 um radius adds about 1 px at 0.5 um/px.
MILD_DEFOCUS_SIGMA_PX = 0.9


@cache
def _sigma_curve(na: float) -> tuple[np.ndarray, np.ndarray]:

    z = np.arange(0.0, 8.0 + 1e-9, 0.25)
    return z, np.array([gaussian_sigma_px(float(v), Optics(numerical_aperture=na, mpp=0.5)) for v in z])


def added_sigma_px(defocus_um: np.ndarray, na: np.ndarray) -> np.ndarray:
    """Blur the defocus adds (px at 0.5 um/px) for each (distance, NA) pair."""
    out = np.empty(len(defocus_um))
    for a in np.unique(na):
        z, sigma = _sigma_curve(float(round(float(a), 2)))
        sel = na == a
        out[sel] = np.interp(defocus_um[sel], z, sigma)
    return out


def unambiguous(labels: np.ndarray, severity: np.ndarray, *,
                min_defocus_sigma_px: float = DEFOCUS_MIN_SIGMA_PX) -> np.ndarray:
    """Crops whose label matches the blur they show: sharp enough or blurred enough."""
    sigma = added_sigma_px(severity[:, 0], severity[:, 3])
    defocused = np.isin(labels, [1, 3])
    return np.where(defocused, sigma >= min_defocus_sigma_px, sigma <= SHARP_MAX_SIGMA_PX)


def warm_psf_bank() -> None:
    """Compute every defocus kernel once (workers forked afterwards share them)."""
    for na in NUMERICAL_APERTURES:
        for z in np.arange(0.0, 8.0 + 1e-9, DEFOCUS_STEP_UM):
            defocus_kernels(round(float(z), 3), na)


def defocus_kernels_of(params: BlurParams) -> np.ndarray:
    """The defocus PSF of ``params``, its distance rounded to the bank's 0.1-um step."""
    z = round(round(params.defocus_um / DEFOCUS_STEP_UM) * DEFOCUS_STEP_UM, 3)
    return defocus_kernels(z, params.optics.numerical_aperture)


def psf_of(params: BlurParams) -> np.ndarray:
    """The ``(3, k, k)`` PSF of ``params``: defocus, then the motion line when there is one."""
    kernels = defocus_kernels_of(params)
    if params.motion_length_px > 1:
        from scipy.signal import fftconvolve

        line = motion_psf(params.motion_length_px, params.motion_angle_deg)
        kernels = np.stack([fftconvolve(k, line, mode="full") for k in kernels])
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    return kernels


def colour_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stain and illumination variation: per-channel gain and gamma in optical density."""
    od = -np.log(np.clip(img, 1, 255) / 255.0)
    od = od * rng.uniform(0.75, 1.3, 3) + rng.normal(0, 0.03, 3)
    out = 255.0 * np.exp(-np.clip(od, 0, None))
    return out * rng.uniform(0.93, 1.05)


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, *, rescale: bool = True) -> np.ndarray | None:
    """A ``size``-px crop with structure, at a random scale (half the time 0.55-1x); None if none fits.

    ``rescale=False``: always at the image's own scale (no random numbers drawn for it).
    """
    scale = (rng.uniform(0.55, 1.0) if rng.random() < 0.5 else 1.0) if rescale else 1.0
    need = int(np.ceil(size / scale))
    h, w = img.shape[:2]
    if h < need or w < need:
        return None
    for _ in range(20):
        y, x = rng.integers(0, h - need + 1), rng.integers(0, w - need + 1)
        patch = img[y:y + need, x:x + need]
        if patch.mean(axis=2).std() > 10:  # enough structure to judge focus by
            break
    else:
        return None
    if need != size:
        from scipy import ndimage as ndi

        patch = ndi.zoom(patch, (size / need, size / need, 1), order=1)[:size, :size]
    patch = np.rot90(patch, rng.integers(4))
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def sample_mixed_params(label: str, rng: np.random.Generator, optics: Optics) -> BlurParams:
    """:func:`sample_params`, with mixed motion long enough to be seen over the defocus."""
    p = sample_params(label, rng, optics=optics)
    if label == "mixed":
        disc = p.defocus_um * np.tan(np.arcsin(optics.numerical_aperture)) / optics.mpp
        length = max(p.motion_length_px, min(40.0, 2.0 * disc + 6.0))
        p = replace(p, motion_length_px=float(length))
    return p


def degraded_crop(img: np.ndarray, size: int, rng: np.random.Generator, label: str, *, out_of_plane: float = 0.0,
                  min_defocus_um: float | None = None, site: SiteAcquisition | None = None,
                  log_defocus: bool = False, pale: float = 0.0):
    """One degraded ``size``-px crop of class ``label`` from the sharp ``img``, and its parameters; None if none fits.

    ``out_of_plane``: probability that a defocus or mixed crop carries another
    plane's fine detail (a thick section, :func:`wsi_deblur.blur.simulate.add_out_of_plane`,
    0.1-0.4 of its contrast, with the real focus pair's low noise);
    ``min_defocus_um``: the lowest defocus of defocus crops (default that of
    :data:`wsi_deblur.blur.simulate.RANGES`). Neither draws a random number
    when left at its default, so the crops are those of earlier versions.
    ``site``: the site's scale, stain and noise (:class:`SiteAcquisition`;
    the classes' blur stays the pipelines', so every class is still taught).
    ``log_defocus``: defocus crops' distance drawn log-uniformly (as many from
    ``min_defocus_um`` to twice it as from 4 to 8 um: scanners' defocus is
    mostly mild). ``pale``: probability that the tissue's absorbance is scaled
    by 0.3-0.7 first (fat, mucin, pale IHC, cytoplasm: sharp tissue of low
    texture, in every class so that paleness is no cue).
    """
    margin = 40
    patch = random_crop(img, size + 2 * margin, rng, rescale=site is None or site.rescale)
    if patch is None:
        return None
    patch = np.ascontiguousarray(patch, dtype=np.float64)
    if site is None or site.colour_jitter:
        patch = colour_jitter(patch, rng)
    if pale > 0 and rng.random() < pale:
        patch = 255.0 * (np.clip(patch, 1, 255) / 255.0) ** rng.uniform(0.3, 0.7)
    optics = Optics(numerical_aperture=float(rng.choice(NUMERICAL_APERTURES)), mpp=0.5)
    params = sample_mixed_params(label, rng, optics)
    if site is not None and site.photons:
        params = replace(params, photons=float(np.exp(rng.uniform(*np.log(site.photons)))))
    if min_defocus_um is not None and label == "defocus":
        low, high = min_defocus_um, RANGES["defocus_um"][1]
        defocus = np.exp(rng.uniform(np.log(low), np.log(high))) if log_defocus else rng.uniform(low, high)
        params = replace(params, defocus_um=float(defocus))
    blurred = convolve_rgb(patch, psf_of(params))
    if out_of_plane > 0 and label in DEFOCUSED and rng.random() < out_of_plane:
        other = random_crop(img, size + 2 * margin, rng)
        if other is not None:
            other = colour_jitter(np.ascontiguousarray(other), rng)
            blurred = add_out_of_plane(blurred, other, float(rng.uniform(*OUT_OF_PLANE_STRENGTH)))
            params = replace(params, photons=float(np.exp(rng.uniform(*np.log(OUT_OF_PLANE_PHOTONS)))))
    blurred = blurred[margin:-margin, margin:-margin]
    noisy = add_sensor_noise(blurred, rng, photons=params.photons, read_noise=params.read_noise)
    out = jpeg_roundtrip(noisy, params.jpeg_quality) if params.jpeg_quality else np.clip(np.rint(noisy), 0, 255)
    return out.astype(np.uint8), params



#: Defocus restored: Gaussian-equivalent std added by the optics, px at 0.5 um/px.
RESTORE_SIGMA_PX = (1.2, 6.0)
#: Photons at full scale (log-uniform), as a slide scanner's camera collects.
RESTORE_PHOTONS = (1000.0, 20000.0)
MARGIN = 48
#: Share of each kind in a dataset (in-focus pairs keep sharp tissue untouched).
KIND_SHARES = {"in_focus": 0.16, "defocus": 0.28, "motion": 0.28, "mixed": 0.28}


def degrade(patch: np.ndarray, params, rng: np.random.Generator, *, other: np.ndarray | None = None,
            strength: float = 0.0, psf: np.ndarray | None = None) -> np.ndarray:
    """Blur (``psf``, default the pupil PSF of ``params``), another plane's detail (``other`` at ``strength``),
    noise and JPEG, as the scanner would.
    """
    blurred = convolve_rgb(patch, psf_of(params) if psf is None else psf)
    if other is not None and strength > 0:
        blurred = add_out_of_plane(blurred, other, strength)
    noisy = add_sensor_noise(blurred, rng, photons=params.photons, read_noise=params.read_noise)
    out = jpeg_roundtrip(noisy, params.jpeg_quality) if params.jpeg_quality else np.clip(np.rint(noisy), 0, 255)
    return out.astype(np.uint8)


def defocus_only(patch: np.ndarray, params) -> np.ndarray:
    """The field with only the defocus of ``params`` (no motion, no noise)."""
    return np.clip(np.rint(convolve_rgb(patch, defocus_kernels_of(params))), 0, 255).astype(np.uint8)


def disc_defocus_kernels(sigma_px: float, na: float) -> np.ndarray:
    """Geometric defocus adding a Gaussian-equivalent std of ``sigma_px`` (px at 0.5 um/px) to the in-focus optics.

    A uniform disc of radius ``2 sigma_px`` (:func:`~wsi_deblur.blur.psf.disc_psf`) convolved with the
    in-focus pupil PSF at NA ``na``, per channel: the shape of the real focus pair's blur
    (``docs/real-defocus.md``: its transfer turns to -0.15 where the pupil's reaches -0.02).

    Examples
    --------
    >>> k = disc_defocus_kernels(3.0, 0.75)
    >>> k.shape[0], bool(np.allclose(k.sum(axis=(1, 2)), 1.0))
    (3, True)
    """
    disc = disc_psf(2.0 * sigma_px)
    return np.stack([convolve_kernels(k, disc) for k in defocus_kernels(0.0, float(na))])


def restore_pair(img: np.ndarray, size: int, rng: np.random.Generator, kind: str, out_of_plane: float = 0.0, *,
                 site: SiteAcquisition | None = None, disc: float = 0.0):
    """One ``size``-px pair of ``kind`` from the sharp ``img``: (blurred, sharp, stage, params), or None if none fits.

    ``stage`` is the target of the first network of DBMID's mixed route (the
    field with only the defocus); ``params`` (defocus um, motion length px,
    motion angle deg, NA, added defocus sigma px).

    ``out_of_plane``: probability that a defocus or mixed pair carries another
    plane's detail (no random numbers are drawn for it when 0, so the pairs
    are those of earlier versions). ``site``: the simulator narrowed to one
    site (:class:`SiteAcquisition`); None, the pipelines' draws, unchanged.
    ``disc``: probability that a defocus pair's blur is the geometric disc of the
    same added width (:func:`disc_defocus_kernels`) instead of the pupil's
    (no random number drawn when 0).
    """
    patch = _pair_patch(img, size, rng, site)
    if patch is None:
        return None
    drawn = _pair_params(kind, rng, site)
    if drawn is None:
        return None
    params, optics, sigma = drawn
    inner = np.s_[MARGIN:-MARGIN, MARGIN:-MARGIN]
    sharp = np.clip(np.rint(patch), 0, 255).astype(np.uint8)
    other, strength = None, 0.0
    if out_of_plane > 0 and kind in DEFOCUSED and rng.random() < out_of_plane:
        other, strength, params = _other_plane(img, size, rng, params)
    psf = None
    if disc > 0 and kind == "defocus" and rng.random() < disc:
        psf = disc_defocus_kernels(sigma, optics.numerical_aperture)
    blurred = degrade(patch, params, rng, other=other, strength=strength, psf=psf)
    stage = defocus_only(patch, params) if kind == "mixed" else sharp
    p = [params.defocus_um, params.motion_length_px, params.motion_angle_deg, optics.numerical_aperture, sigma]
    return blurred[inner], sharp[inner], stage[inner], np.array(p, np.float32)


def _pair_patch(img: np.ndarray, size: int, rng: np.random.Generator,
                site: SiteAcquisition | None) -> np.ndarray | None:
    """A float crop of ``img`` with the margin a pair is cut from, its colours jittered (a site's: if it says)."""
    patch = random_crop(img, size + 2 * MARGIN, rng, rescale=site is None or site.rescale)
    if patch is None:
        return None
    patch = np.ascontiguousarray(patch)
    if site is None or site.colour_jitter:
        patch = colour_jitter(patch, rng)
    return np.clip(patch, 0, 255)


def _pair_params(kind: str, rng: np.random.Generator, site: SiteAcquisition | None):
    """(params, optics, added defocus sigma px) of a pair of ``kind``, or None when the draw is out of range."""
    na = site.numerical_aperture if site is not None and site.numerical_aperture else rng.choice(NUMERICAL_APERTURES)
    optics = Optics(numerical_aperture=float(na), mpp=0.5)
    params = sample_mixed_params(kind, rng, optics)
    photons = site.photons if site is not None and site.photons else RESTORE_PHOTONS
    params = replace(params, photons=float(np.exp(rng.uniform(*np.log(photons)))))
    site_defocus = site is not None and site.defocus_um is not None and kind in DEFOCUSED
    if site_defocus:
        params = replace(params, defocus_um=float(rng.uniform(*site.defocus_um)))
    sigma = float(added_sigma_px(np.array([params.defocus_um]), np.array([optics.numerical_aperture]))[0])
    if kind in DEFOCUSED and not site_defocus and not RESTORE_SIGMA_PX[0] <= sigma <= RESTORE_SIGMA_PX[1]:
        return None
    if kind in ("in_focus", "motion") and sigma > 0.5:
        return None
    return params, optics, sigma


def _other_plane(img: np.ndarray, size: int, rng: np.random.Generator, params):
    """Another plane's detail for a thick section: (crop or None, its strength, params with its photons)."""
    other = random_crop(img, size + 2 * MARGIN, rng)
    if other is None:
        return None, 0.0, params
    other = np.clip(colour_jitter(np.ascontiguousarray(other), rng), 0, 255)
    strength = float(rng.uniform(*OUT_OF_PLANE_STRENGTH))
    return other, strength, replace(params, photons=float(np.exp(rng.uniform(*np.log(OUT_OF_PLANE_PHOTONS)))))


