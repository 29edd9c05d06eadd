"""A blur simulator: realistic defocus, motion, noise and JPEG on sharp images.

Used to train and test the classifier and the restorers (there are no real
focus stacks to learn from) and in the test suite.

Units and ranges
----------------
- Defocus is given as the distance of the specimen from the focal plane, in
  micrometres (``defocus_um``). The PSF follows from the optics: scalar
  diffraction through a circular pupil of numerical aperture ``NA`` with the
  defocus phase ``2 pi z (sqrt((n / lambda)^2 - k^2) - n / lambda)``, per RGB
  wavelength, integrated over each pixel. A scanner's objective is typically
  20x/0.75 (0.5 um/px) or 40x/0.95 (0.25 um/px), dry (n = 1). Depth of field
  is about ``lambda n / NA^2`` (~1 um at NA 0.75, ~0.6 um at NA 0.95):
  ``defocus_um`` <= 0.5 is nearly in focus, 1.5 to 8 um is the range of
  defocus we simulate. What counts as *blurred* depends on the NA; training
  labels are therefore decided by :func:`gaussian_sigma_px`, the blur the
  defocus adds over the in-focus PSF (see ``pipelines/blur_data.py``).
- Motion is uniform linear motion of ``motion_length_px`` level-0 pixels
  (5 to 40, as in DBMID) at ``motion_angle_deg`` (0 to 180, counter-clockwise
  from x).
- Mixed blur is motion then defocus.
- Noise is Poisson-Gaussian: ``photons`` at full scale (shot noise; 200 to
  2000) plus Gaussian read noise ``read_noise`` grey levels (0.5 to 2).
- ``jpeg_quality`` re-encodes the result (70 to 95, as scanners store tiles),
  or ``None`` for none.
- A section is 3-5 um thick: a scan out of focus for the plane we want is in
  focus for another, so fine structure of *other* planes stays sharp while the
  wanted plane blurs (:func:`add_out_of_plane`). Fitted on the real focus pair
  (``pipelines.evaluate_real``), the real out-of-focus plane holds 2.5x the
  amplitude that the pupil PSF leaves between 0.06 and 0.5 cycles/px; fine
  detail of another plane at 0.3 of its contrast and 2 grey levels of noise
  account for it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from wsi_deblur.blur.classes import MOVING
from wsi_deblur.blur.psf import motion_psf

#: Representative wavelengths (micrometres) of the red, green and blue channels.
RGB_WAVELENGTHS_UM = (0.61, 0.54, 0.46)


@dataclass(frozen=True)
class Optics:
    """A brightfield objective and camera.

    Attributes
    ----------
    numerical_aperture : float
    mpp : float
        Micrometres per pixel at the specimen.
    immersion_index : float
        Refractive index between objective and slide (1.0 dry, 1.515 oil).
    wavelengths_um : tuple of 3 floats
        Centre wavelengths of the R, G, B channels.
    """

    numerical_aperture: float = 0.75
    mpp: float = 0.5
    immersion_index: float = 1.0
    wavelengths_um: tuple[float, float, float] = RGB_WAVELENGTHS_UM


def psf_radius_px(defocus_um: float, optics: Optics = Optics()) -> int:
    """Half-size of :func:`defocus_psf_optics`'s kernels: the geometric blur disc and three Airy radii
    of the longest wavelength, with a margin.
    """
    na, n, p = optics.numerical_aperture, optics.immersion_index, optics.mpp
    geometric = abs(defocus_um) * np.tan(np.arcsin(min(na / n, 0.999))) / p
    airy = 1.22 * max(optics.wavelengths_um) / (2 * na) / p
    return int(np.ceil(1.3 * geometric + 3 * airy)) + 2


def defocus_psf_optics(defocus_um: float, optics: Optics = Optics(), *, oversample: int = 3,
                       radius_px: int | None = None) -> np.ndarray:
    """Defocus PSF per channel from pupil-function (scalar) diffraction.

    Parameters
    ----------
    defocus_um : float
        Distance of the specimen from the focal plane, micrometres (sign
        does not matter in this aberration-free model).
    optics : Optics
    oversample : int
        Sub-pixel sampling; the PSF is integrated over each pixel.
    radius_px : int, optional
        Half-size of the kernel; default covers the geometric blur disc.

    Returns
    -------
    ndarray, shape (3, 2 r + 1, 2 r + 1)
        One normalised kernel per R, G, B channel.
    """
    na, n, p = optics.numerical_aperture, optics.immersion_index, optics.mpp
    if radius_px is None:
        radius_px = psf_radius_px(defocus_um, optics)
    size = 2 * radius_px + 1
    grid = int(2 ** np.ceil(np.log2(max(2 * size * oversample, 64))))
    step = p / oversample  # micrometres per sample
    k = np.fft.fftfreq(grid, d=step)  # cycles per micrometre
    kx, ky = np.meshgrid(k, k)
    k2 = kx ** 2 + ky ** 2
    kernels = []
    for lam in optics.wavelengths_um:
        pupil = k2 <= (na / lam) ** 2
        kz = np.sqrt(np.maximum((n / lam) ** 2 - k2, 0.0))
        phase = 2 * np.pi * defocus_um * (kz - n / lam)
        amplitude = np.fft.ifft2(pupil * np.exp(1j * phase))
        intensity = np.fft.fftshift(np.abs(amplitude) ** 2)
        c = grid // 2
        half = radius_px * oversample + oversample // 2
        crop = intensity[c - half:c + half + 1, c - half:c + half + 1]
        binned = crop.reshape(size, oversample, size, oversample).sum(axis=(1, 3))
        kernels.append(binned / binned.sum())
    return np.stack(kernels)


def gaussian_sigma_px(defocus_um: float, optics: Optics = Optics()) -> float:
    """Std (pixels) of the Gaussian that the defocus adds to the in-focus PSF.

    From the green channel's PSF second moments, in quadrature over the
    in-focus PSF: what a Gaussian-PSF deconvolution should undo.
    """
    return float(np.sqrt(max(_green_psf_variance(abs(float(defocus_um)), optics)
                             - _green_psf_variance(0.0, optics), 0.0)))


def green_defocus_psf(defocus_um: float, optics: Optics = Optics()) -> np.ndarray:
    """``defocus_psf_optics(defocus_um, optics)[1]``, the green channel's kernel, computing only that channel.

    The same numbers (the kernel keeps the size all three channels get), a third of the work.
    """
    green = replace(optics, wavelengths_um=(optics.wavelengths_um[1],))
    return defocus_psf_optics(defocus_um, green, radius_px=psf_radius_px(defocus_um, optics))[0]


@lru_cache(maxsize=256)
def _green_psf_variance(defocus_um: float, optics: Optics) -> float:
    """Second moment per axis (px^2) of the green channel's defocus PSF (cached)."""
    k = green_defocus_psf(defocus_um, optics)
    c = k.shape[0] // 2
    yy, xx = np.mgrid[:k.shape[0], :k.shape[1]] - c
    return float((k * (yy ** 2 + xx ** 2)).sum()) / 2.0


def convolve_rgb(image: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve ``(y, x, 3)`` by a kernel ``(k, k)`` or one per channel ``(3, k, k)``.

    The image is mirrored at its edges; the result is float32 of the same shape.
    """
    from scipy.signal import fftconvolve  # imported here: scipy.signal takes 0.5 s to import

    img = np.asarray(image, dtype=np.float32)
    kernels = psf if psf.ndim == 3 else np.stack([psf] * 3)
    r = max(kernels.shape[1], kernels.shape[2]) // 2 + 1
    padded = np.pad(img, ((r, r), (r, r), (0, 0)), mode="symmetric")
    out = np.stack([fftconvolve(padded[:, :, c], kernels[c], mode="same") for c in range(3)], axis=2)
    return out[r:-r, r:-r].astype(np.float32)


def add_sensor_noise(image: np.ndarray, rng: np.random.Generator, *, photons: float = 1000.0,
                     read_noise: float = 1.0) -> np.ndarray:
    """Poisson shot noise (``photons`` at grey level 255) plus Gaussian read noise (grey levels)."""
    img = np.clip(np.asarray(image, dtype=np.float64), 0, 255)
    shot = rng.poisson(img / 255.0 * photons) * (255.0 / photons)
    return (shot + rng.normal(0.0, read_noise, img.shape)).astype(np.float32)


def add_out_of_plane(blurred: np.ndarray, other: np.ndarray, strength: float, *,
                     detail_sigma_px: float = 4.0) -> np.ndarray:
    """Add the fine structure of another plane of a thick section to a defocused image.

    Parameters
    ----------
    blurred : ndarray, shape (y, x, 3)
        The wanted plane, defocused.
    other : ndarray, shape (y, x, 3)
        Sharp tissue standing for another plane (another crop of the same field).
    strength : float
        Contrast of the other plane's detail, 0 (none) to about 0.4.
    detail_sigma_px : float
        Only detail finer than a Gaussian of this std (pixels) is added: the
        other plane's coarse structure is as blurred as the wanted plane's.

    Returns
    -------
    ndarray of float32, shape like ``blurred``; its mean colour is ``blurred``'s.
    """
    from scipy import ndimage as ndi

    other = np.asarray(other, dtype=np.float32)
    detail = other - ndi.gaussian_filter(other, (detail_sigma_px, detail_sigma_px, 0), mode="reflect")
    return np.asarray(blurred, dtype=np.float32) + np.float32(strength) * detail


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as JPEG (4:2:0, as most scanners store tiles)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


@dataclass(frozen=True)
class BlurParams:
    """One degradation: the blur (see module doc for units) and acquisition noise."""

    label: str = "in_focus"
    defocus_um: float = 0.0
    motion_length_px: float = 0.0
    motion_angle_deg: float = 0.0
    photons: float = 1000.0
    read_noise: float = 1.0
    jpeg_quality: int | None = None
    optics: Optics = field(default_factory=Optics)


def blur_psf(params: BlurParams) -> np.ndarray:
    """The ``(3, k, k)`` PSF of a degradation (defocus and/or motion)."""
    from scipy.signal import fftconvolve  # imported here: scipy.signal takes 0.5 s to import

    kernels = defocus_psf_optics(params.defocus_um, params.optics)
    if params.label in MOVING and params.motion_length_px > 1:
        line = motion_psf(params.motion_length_px, params.motion_angle_deg)
        kernels = np.stack([fftconvolve(k, line, mode="full") for k in kernels])
        kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    return kernels


def simulate(image: np.ndarray, params: BlurParams, rng: np.random.Generator) -> np.ndarray:
    """Degrade a sharp ``(y, x, 3)`` uint8 image; returns uint8 of the same shape.

    In-focus images still get the in-focus PSF of the optics (a sharp scan is
    not sharper than its objective), noise and JPEG, so every class sees the
    same acquisition.
    """
    out = convolve_rgb(image, blur_psf(params))
    out = add_sensor_noise(out, rng, photons=params.photons, read_noise=params.read_noise)
    if params.jpeg_quality is not None:
        return jpeg_roundtrip(out, params.jpeg_quality)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


#: Ranges sampled by :func:`sample_params` (see module doc).
RANGES = {
    "in_focus_defocus_um": (0.0, 0.5),
    "defocus_um": (1.5, 8.0),
    "mixed_defocus_um": (1.5, 6.0),
    "motion_length_px": (5.0, 40.0),
    "photons": (200.0, 2000.0),
    "read_noise": (0.5, 2.0),
    "jpeg_quality": (70, 95),
}


def sample_params(label: str, rng: np.random.Generator, *, optics: Optics = Optics(),
                  jpeg_probability: float = 0.7) -> BlurParams:
    """Draw a random degradation of class ``label`` from :data:`RANGES`."""
    u = rng.uniform
    defocus = {"in_focus": RANGES["in_focus_defocus_um"], "defocus": RANGES["defocus_um"],
               "motion": RANGES["in_focus_defocus_um"], "mixed": RANGES["mixed_defocus_um"]}[label]
    length = u(*RANGES["motion_length_px"]) if label in MOVING else 0.0
    quality = int(rng.integers(*RANGES["jpeg_quality"])) if rng.random() < jpeg_probability else None
    return BlurParams(label=label, defocus_um=float(u(*defocus)), motion_length_px=float(length),
                      motion_angle_deg=float(u(0, 180)) if length else 0.0,
                      photons=float(np.exp(u(*np.log(RANGES["photons"])))), read_noise=float(u(*RANGES["read_noise"])),
                      jpeg_quality=quality, optics=optics)
