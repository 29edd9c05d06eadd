"""Point-spread functions (PSFs) for defocus and linear motion.

All kernels are 2-D float64 arrays that sum to 1, odd-sized and centred, in
pixels of the image they blur. Angles are degrees counter-clockwise from the
image x axis (with y pointing down, as image rows do).
"""

from __future__ import annotations

import numpy as np


def defocus_psf(sigma_px: float, *, radius: int | None = None) -> np.ndarray:
    """Gaussian approximation of a defocus PSF with std ``sigma_px`` pixels."""
    if sigma_px <= 0:
        return np.ones((1, 1))
    radius = int(np.ceil(3.5 * sigma_px)) if radius is None else radius
    ax = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (ax / sigma_px) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def disc_psf(radius_px: float, *, oversample: int = 8) -> np.ndarray:
    """Geometric defocus: a uniform disc of ``radius_px`` pixels, each pixel weighted by its share inside.

    Its Gaussian-equivalent std (per axis) is ``radius_px / 2``; its OTF,
    ``2 J1(x) / x``, turns negative past its first zero (to -0.13), as a real
    strong defocus does (``pipelines.evaluate_real``).

    Examples
    --------
    >>> k = disc_psf(3.0)
    >>> k.shape, round(float(k.sum()), 6), round(float(np.sqrt((k * np.arange(-4, 5) ** 2).sum())), 1)
    ((9, 9), 1.0, 1.5)
    """
    if radius_px <= 0.5:
        return np.ones((1, 1))
    r = int(np.ceil(radius_px)) + 1
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    k = np.zeros_like(yy)
    for dy in offsets:
        for dx in offsets:
            k += np.hypot(yy + dy, xx + dx) <= radius_px
    return k / k.sum()


def motion_psf(length_px: float, angle_deg: float) -> np.ndarray:
    """Uniform linear motion of ``length_px`` pixels at ``angle_deg``.

    The line is drawn with sub-pixel (bilinear) weights so any length and
    angle give a smooth, centred kernel.
    """
    if length_px <= 1:
        return np.ones((1, 1))
    half = length_px / 2.0
    radius = int(np.ceil(half)) + 1
    size = 2 * radius + 1
    k = np.zeros((size, size))
    theta = np.deg2rad(angle_deg)
    dx, dy = np.cos(theta), -np.sin(theta)  # image rows grow downwards
    n = max(int(np.ceil(length_px * 4)), 2)
    for t in np.linspace(-half, half, n):
        x, y = radius + t * dx, radius + t * dy
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for yy, xx, w in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                          (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)):
            if 0 <= yy < size and 0 <= xx < size:
                k[yy, xx] += w
    return k / k.sum()


def convolve_full(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full 2-D convolution of two small kernels, by NumPy's FFT (``scipy.signal``, 1.2 s to import, not needed).

    Examples
    --------
    >>> from scipy.signal import fftconvolve
    >>> a, b = np.random.default_rng(0).random((5, 7)), np.random.default_rng(1).random((3, 4))
    >>> bool(np.allclose(convolve_full(a, b), fftconvolve(a, b, mode="full")))
    True
    """
    shape = (a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1)
    return np.fft.irfft2(np.fft.rfft2(a, shape) * np.fft.rfft2(b, shape), shape)


def convolve_kernels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full 2-D convolution of two small kernels (for mixed blur), clipped at 0 and normalised."""
    k = np.clip(convolve_full(a, b), 0, None)
    return k / k.sum()


def psf_for(label: str, *, defocus_sigma_px: float = 0.0, motion_length_px: float = 0.0,
            motion_angle_deg: float = 0.0) -> np.ndarray:
    """The PSF for a blur class and its severity (see :class:`BlurEstimate`)."""
    if label == "defocus":
        return defocus_psf(defocus_sigma_px)
    if label == "motion":
        return motion_psf(motion_length_px, motion_angle_deg)
    if label == "mixed":
        return convolve_kernels(motion_psf(motion_length_px, motion_angle_deg), defocus_psf(defocus_sigma_px))
    return np.ones((1, 1))


def psf_to_otf(psf: np.ndarray, shape: tuple[int, int], *, dtype=np.float64, full: bool = False) -> np.ndarray:
    """Optical transfer function of a centred ``psf`` for an image of ``shape``: the one conversion of the package.

    The PSF is placed with its centre on pixel (0, 0) (wrapped around), in
    ``dtype``; ``rfft2`` of that (``full``: the whole ``fft2``). Wiener, the
    guard and the defocus table all take their OTFs from here.

    Examples
    --------
    >>> otf = psf_to_otf(np.full((3, 3), 1 / 9), (8, 8))
    >>> otf.shape, round(float(otf[0, 0].real), 6), bool(np.allclose(otf.imag, 0, atol=1e-12))
    ((8, 5), 1.0, True)
    """
    from scipy import fft as sfft

    pad = np.zeros(shape, dtype=dtype)
    ph, pw = psf.shape
    pad[:ph, :pw] = psf
    pad = np.roll(pad, (-(ph // 2), -(pw // 2)), axis=(0, 1))
    return np.fft.fft2(pad) if full else sfft.rfft2(pad)
