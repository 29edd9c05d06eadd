"""Fit the forward model to a real focus pair: the same field in focus and out of focus.

What the simulator must reproduce is measured on real focal planes, not
assumed: :func:`transfer_profile` is the blur's optical transfer per ring of
spatial frequency (the cross-spectrum of the two planes over the in-focus
plane's power, so noise and other planes' structure, uncorrelated with the
in-focus plane, fall out); :func:`fit_defocus` finds the pupil-function
defocus (and NA) that best turns the in-focus plane into the out-of-focus
one; :func:`spectral_distance` says how far a simulated plane's spectrum is
from the real one's, which SSIM cannot (a simulator that adds the right
*kind* of structure, not the same pixels, scores lower SSIM and is closer).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from skimage.metrics import structural_similarity

from wsi_deblur._shared.fourier import filter_mirrored, mirrored
from wsi_deblur.blur.simulate import Optics, convolve_rgb, defocus_psf_optics


def ssim_inner(a: np.ndarray, b: np.ndarray, *, border: int = 20) -> float:
    """SSIM of two ``(y, x, 3)`` images leaving ``border`` pixels out on every side (grey range 0-255)."""
    inner = np.s_[border:-border, border:-border] if border else np.s_[:, :]
    a = np.clip(np.asarray(a, np.float64), 0, 255)[inner]
    b = np.clip(np.asarray(b, np.float64), 0, 255)[inner]
    return float(structural_similarity(a, b, channel_axis=2, data_range=255))


@lru_cache(maxsize=64)
def rings(shape: tuple[int, int], n_rings: int) -> np.ndarray:
    """Ring index of every ``rfft2`` coefficient of an image of ``shape``: rings of ``0.5 / n_rings``
    cycles per pixel from 0 (``n_rings`` for the corners beyond 0.5 cycles/px). Cached: read-only.
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    out = np.minimum((np.hypot(fy, fx) / 0.5 * n_rings).astype(np.int64), n_rings)
    out.flags.writeable = False
    return out


def transfer_profile(sharp: np.ndarray, blurred: np.ndarray, *, n_rings: int = 25) -> np.ndarray:
    """The blur's transfer per ring of frequency, per channel: ``(3, n_rings)``.

    ``Re(sum B conj(S)) / sum |S|^2`` over each ring of width ``0.5 / n_rings``
    cycles per pixel (Hann-windowed planes, means removed). 1 where the blur
    passes everything, 0 where it passes nothing; *negative* where it inverts
    contrast, as defocus does past the first zero of its OTF and a Gaussian
    never does.
    """
    s = np.asarray(sharp, np.float64)
    b = np.asarray(blurred, np.float64)
    h, w = s.shape[:2]
    window = np.outer(np.hanning(h), np.hanning(w))
    idx = rings((h, w), n_rings).ravel()
    out = np.zeros((3, n_rings))
    for c in range(3):
        fs = np.fft.rfft2((s[:, :, c] - s[:, :, c].mean()) * window).ravel()
        fb = np.fft.rfft2((b[:, :, c] - b[:, :, c].mean()) * window).ravel()
        cross = np.bincount(idx, (fb * np.conj(fs)).real, minlength=n_rings + 1)[:n_rings]
        power = np.bincount(idx, np.abs(fs) ** 2, minlength=n_rings + 1)[:n_rings]
        out[c] = cross / np.maximum(power, 1e-12)
    return out


def noise_sigma(image: np.ndarray, *, per_channel: bool = False) -> float | np.ndarray:
    """Noise std (grey levels) of an RGB image, from the median of its diagonal second differences.

    Of the grey image (the mean of the channels) by default; with
    ``per_channel``, of each channel, ``(3,)``. For integer images per channel
    the medians are counted (exact, as :func:`numpy.median`, in a fifth of its time).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = np.clip(128 + rng.normal(0, 4, (256, 256, 3)), 0, 255).astype(np.uint8)
    >>> noise_sigma(image, per_channel=True).round(1)   # 4, less a little to the 8-bit rounding
    array([3.7, 3.7, 3.7])
    >>> bool(np.allclose(noise_sigma(image, per_channel=True), noise_sigma(image.astype(np.float32), per_channel=True)))
    True
    """
    if per_channel and np.issubdtype(np.asarray(image).dtype, np.integer):
        g = np.moveaxis(np.asarray(image).astype(np.int32), -1, 0)
        d = (g[:, 1:, 1:] - g[:, 1:, :-1] - g[:, :-1, 1:] + g[:, :-1, :-1]).reshape(len(g), -1)
        out = []
        for row in d:
            m2 = _twice_median_of_integers(row)  # twice the median: an integer, also for an even count
            out.append(1.4826 * _twice_median_of_integers(np.abs(2 * row - m2)) / 8.0)  # d = row / 2
        return np.array(out)
    f = np.asarray(image, np.float32)  # differences of 8-bit values: exact in float32, and twice as fast
    planes = [f[:, :, c] for c in range(f.shape[2])] if per_channel else [f.mean(axis=2)]
    out = []
    for g in planes:
        d = (g[1:, 1:] - g[1:, :-1] - g[:-1, 1:] + g[:-1, :-1]) / 2.0
        out.append(1.4826 * np.median(np.abs(d - np.median(d))))
    return np.array(out) if per_channel else float(out[0])


def _twice_median_of_integers(values: np.ndarray) -> int:
    """Twice the median of a 1-D integer array (the mean of the middle two for an even count), by counting."""
    lo = int(values.min())
    cdf = np.cumsum(np.bincount(values - lo))
    n = len(values)
    a = int(np.searchsorted(cdf, (n - 1) // 2 + 1)) + lo  # the middle element (0-based (n-1)//2)
    b = int(np.searchsorted(cdf, n // 2 + 1)) + lo  # and the next, for an even count
    return a + b


def gradient_sharpness(image: np.ndarray, *, border: int = 20) -> float:
    """A no-reference sharpness: mean gradient magnitude of the grey image (grey levels per pixel).

    ``border`` pixels on every side are left out (mirrored edges, blending).
    """
    g = np.asarray(image, np.float64).mean(axis=2)
    if border:
        g = g[border:-border, border:-border]
    gy, gx = np.gradient(g)
    return float(np.hypot(gy, gx).mean())


def ring_power(image: np.ndarray, *, n_rings: int = 16) -> np.ndarray:
    """Mean spectral power per pixel in each ring, per channel: ``(3, n_rings)``.

    Of a ``(y, x, 3)`` image, mean removed; independent of the image size (the
    power is divided by the number of pixels).
    """
    return _spectrum_ring_power(_centred_spectrum(image), np.shape(image)[:2], n_rings)


def ring_powers_of_difference(a: np.ndarray, b: np.ndarray, *, n_rings: int = 16) -> tuple[np.ndarray, ...]:
    """:func:`ring_power` of ``a``, of ``b`` and of ``a - b``, from two FFTs instead of three."""
    sa, sb = _centred_spectrum(a), _centred_spectrum(b)
    shape = np.shape(a)[:2]
    return tuple(_spectrum_ring_power(s, shape, n_rings) for s in (sa, sb, sa - sb))


def _centred_spectrum(image: np.ndarray) -> np.ndarray:
    """``rfft2`` of each channel of a ``(y, x, 3)`` image, its mean removed: ``(3, y, x // 2 + 1)``
    (float32 stays float32; channels first, so that every transform runs over contiguous rows).
    """
    import scipy.fft as sfft

    f = np.asarray(image)
    f = np.moveaxis(f.astype(np.float32 if f.dtype == np.float32 else np.float64, copy=False), -1, 0)
    return sfft.rfft2(f - f.mean(axis=(1, 2), keepdims=True))


@lru_cache(maxsize=64)
def _ring_counts(shape: tuple[int, int], n_rings: int) -> np.ndarray:
    """Coefficients per ring of :func:`rings` (at least 1), times the pixels of ``shape``; cached, read-only."""
    out = np.maximum(np.bincount(rings(shape, n_rings).ravel(), minlength=n_rings + 1)[:n_rings], 1) \
        * float(shape[0] * shape[1])
    out.flags.writeable = False
    return out


def _spectrum_ring_power(spec: np.ndarray, shape: tuple[int, int], n_rings: int) -> np.ndarray:
    idx = rings(tuple(shape), n_rings).ravel()
    power = spec.real ** 2 + spec.imag ** 2
    return np.stack([np.bincount(idx, power[c].ravel(), minlength=n_rings + 1)[:n_rings]
                     for c in range(len(power))]) / _ring_counts(tuple(shape), n_rings)


def ring_amplitude(image: np.ndarray, *, n_rings: int = 16) -> np.ndarray:
    """RMS spectral amplitude per pixel in each ring, over the three channels: ``(n_rings,)``."""
    return np.sqrt(ring_power(image, n_rings=n_rings).mean(axis=0))


def spectral_distance(simulated: np.ndarray, real: np.ndarray, *, n_rings: int = 16) -> float:
    """Mean absolute log ratio of ring amplitudes, rings 1 to 3/4 of Nyquist (0: same spectrum)."""
    a, b = ring_amplitude(simulated, n_rings=n_rings), ring_amplitude(real, n_rings=n_rings)
    rings = slice(1, 3 * n_rings // 4)
    return float(np.mean(np.abs(np.log(np.maximum(a[rings], 1e-9) / np.maximum(b[rings], 1e-9)))))


@dataclass(frozen=True)
class DefocusFit:
    """The pupil defocus that best explains a focus pair.

    Attributes
    ----------
    numerical_aperture, defocus_um : float
        Best fit (NA of the objective, distance from focus in micrometres).
    ssim : float
        SSIM of the in-focus plane blurred so against the real out-of-focus plane.
    """

    numerical_aperture: float
    defocus_um: float
    ssim: float


def fit_defocus(sharp: np.ndarray, blurred: np.ndarray, mpp: float, *,
                apertures: Iterable[float] = (0.5, 0.65, 0.75, 0.85, 0.95),
                distances_um: Iterable[float] = tuple(np.arange(0.5, 6.01, 0.25))) -> DefocusFit:
    """Grid search over NA and defocus for the pupil PSF that maps ``sharp`` closest (SSIM) to ``blurred``.

    Examples
    --------
    >>> import numpy as np
    >>> from wsi_deblur.blur.simulate import Optics, convolve_rgb, defocus_psf_optics
    >>> sharp = np.random.default_rng(0).integers(0, 256, (96, 96, 3)).astype(np.float64)
    >>> blurred = convolve_rgb(sharp, defocus_psf_optics(2.0, Optics(numerical_aperture=0.75, mpp=0.5)))
    >>> fit = fit_defocus(sharp, blurred, 0.5, apertures=(0.75,), distances_um=(1.0, 2.0, 3.0))
    >>> fit.defocus_um
    2.0
    """
    best = DefocusFit(0.0, 0.0, -1.0)
    for na in apertures:
        optics = Optics(numerical_aperture=float(na), mpp=float(mpp))
        for z in distances_um:
            score = ssim_inner(convolve_rgb(sharp, defocus_psf_optics(float(z), optics)), blurred)
            if score > best.ssim:
                best = DefocusFit(float(na), float(z), score)
    return best


def linear_filter_profile(sharp: np.ndarray, blurred: np.ndarray, *, n_rings: int = 64) -> np.ndarray:
    """The best isotropic linear filter from ``blurred`` to ``sharp``: a gain per ring and channel, ``(3, n_rings)``.

    Least squares over every frequency of each ring (images mirrored, so that the filter sees no edges). Fitted
    on one half of a focus pair and applied to the other (:func:`apply_ring_filter`), it is the linear limit of
    restoring that blur: what any linear deconvolution could reach knowing the real optics.
    """
    s, b = mirrored(sharp), mirrored(blurred)
    idx = rings(s.shape[:2], n_rings).ravel()
    out = np.empty((s.shape[2], n_rings))
    for c in range(s.shape[2]):
        fs, fb = np.fft.rfft2(s[:, :, c]).ravel(), np.fft.rfft2(b[:, :, c]).ravel()
        num = np.bincount(idx, np.real(np.conj(fb) * fs), minlength=n_rings + 1)[:n_rings]
        den = np.bincount(idx, np.abs(fb) ** 2, minlength=n_rings + 1)[:n_rings]
        out[c] = num / np.maximum(den, 1e-12)
    return out


def apply_ring_filter(image: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """``image`` filtered by a per-ring, per-channel gain (:func:`linear_filter_profile`): uint8, same shape.

    Examples
    --------
    >>> image = np.random.default_rng(0).integers(0, 256, (32, 48, 3)).astype(np.uint8)
    >>> bool((apply_ring_filter(image, np.ones((3, 8))) == image).all())
    True
    """
    def gain(c: int, shape: tuple[int, int]) -> np.ndarray:
        return np.append(profile[c], profile[c, -1])[rings(shape, profile.shape[1])]

    return np.clip(np.rint(filter_mirrored(image, gain)), 0, 255).astype(np.uint8)
