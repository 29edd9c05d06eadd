"""The defocus width that makes a window's restoration sharpest without ringing: a blind refinement of BlurNet's.

BlurNet's defocus width is right on the real focus pair (the disc it implies is
within 1% of the fitted one) and 45-65% too wide on our simulator's 40x blur
(``benchmarks/defocus_model.py``): a learned estimate carries the bias of what
it learned from. A Wiener filter told a width 20% off loses 0.02-0.05 SSIM.
The window itself says which width is right. In-focus tissue has sparse
gradients (a few strong edges, most pixels flat): the distribution of its
gradient magnitudes is heavy-tailed. Deconvolved with too narrow a PSF, a
window stays blurred (gradients spread, light tails); with too wide a one, it
rings (every edge repeated, tails light again). The kurtosis of the gradient
magnitude peaks near the true width: on 9 crops of a held-out 40x field
blurred by a 2.5-um disc its peak falls on the best of the widths tried in 3 of
4 crops and next to it in the fourth, and on the real focus pair at BlurNet's
own width (``python benchmarks/defocus_model.py``).

:func:`sparsest_width_scale` tries widths from :data:`SCALES` times the
estimate on the window's grey image (its centre, at most :data:`SEARCH_PX`
square), Wiener-filtered in one torch batch, and returns the factor whose
restoration has the heaviest-tailed gradients, at a peak inside the range (a
kurtosis still rising at the widest factor is ringing, not a width); it keeps
the estimate (1.0) unless another width is clearly better (:data:`MIN_GAIN`),
so glass and textureless windows keep BlurNet's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Factors of the estimated width that are tried (BlurNet's error on simulated 40x blur is up to +65%).
SCALES = np.round(np.arange(0.5, 1.61, 0.1), 2)
#: Largest side (pixels) of the window's centre the search filters.
SEARCH_PX = 512
#: How much higher (relative) another width's gradient kurtosis must be than the estimate's to replace it.
MIN_GAIN = 0.02


def gradient_kurtosis(grey: np.ndarray, border: int) -> np.ndarray:
    """Kurtosis of the gradient magnitude of each ``(n, y, x)`` image, ``border`` pixels left out; ``(n,)``."""
    g = np.asarray(grey, np.float64)
    if border:
        g = g[:, border:-border, border:-border]
    gy, gx = np.gradient(g, axis=(1, 2))
    m = np.hypot(gx, gy).reshape(len(g), -1)
    d = m - m.mean(axis=1, keepdims=True)
    var = (d ** 2).mean(axis=1)
    return (d ** 4).mean(axis=1) / np.maximum(var, 1e-12) ** 2


def sparsest_width_scale(window: np.ndarray, kernel_at: Callable[[float], np.ndarray], *,
                         balance: float = 0.1, scales: np.ndarray = SCALES) -> float:
    """The factor of the estimated width whose Wiener restoration of ``window`` has the sparsest gradients.

    Parameters
    ----------
    window : ndarray, shape (y, x, 3), uint8
    kernel_at : callable
        ``kernel_at(scale)``: the 2-D PSF (odd size, sums to 1) of the estimate's width times ``scale``.
    balance : float
        The Wiener filter's balance (as the restorer's).
    scales : ndarray
        Factors tried; must contain 1.0, the estimate itself.

    Returns
    -------
    float
        A factor of ``scales``: 1.0 unless another's gradient kurtosis is :data:`MIN_GAIN` higher.

    Examples
    --------
    >>> from skimage.data import immunohistochemistry
    >>> from wsi_deblur.blur.psf import disc_psf
    >>> from wsi_deblur.blur.simulate import convolve_rgb
    >>> sharp = immunohistochemistry()[:256, :256]
    >>> blurred = np.clip(np.rint(convolve_rgb(sharp, np.stack([disc_psf(4.0)] * 3))), 0, 255).astype(np.uint8)
    >>> float(sparsest_width_scale(blurred, lambda s: disc_psf(4.0 * s)))   # told the right width: kept
    1.0
    """
    import torch

    from wsi_deblur._shared.fourier import filter_mirrored_batch, wiener_gain
    from wsi_deblur.blur.otf import mirrored_otf

    h, w = window.shape[:2]
    y0, x0 = max(0, (h - SEARCH_PX) // 2), max(0, (w - SEARCH_PX) // 2)
    grey = window[y0:y0 + SEARCH_PX, x0:x0 + SEARCH_PX].astype(np.float32).mean(axis=2)
    kernels = [np.asarray(kernel_at(float(s)), np.float32) for s in scales]
    size = max(k.shape[-1] for k in kernels)
    stacked = np.zeros((len(kernels), size, size), np.float32)
    for n, k in enumerate(kernels):
        o = (size - k.shape[-1]) // 2
        stacked[n, o:o + k.shape[-2], o:o + k.shape[-1]] = k
    gh, gw = grey.shape
    otf, even = mirrored_otf(torch.from_numpy(stacked), (gh, gw))
    gain = wiener_gain(otf, balance)
    restored = filter_mirrored_batch(torch.from_numpy(grey)[None, None], gain[:, None], even=even)[:, 0].numpy()
    border = min(size, min(gh, gw) // 4)
    kurt = gradient_kurtosis(restored, border)
    at_estimate = kurt[int(np.argmin(np.abs(np.asarray(scales) - 1.0)))]
    peaks = [i for i in range(1, len(kurt) - 1) if kurt[i] > kurt[i - 1] and kurt[i] >= kurt[i + 1]]
    if not peaks:  # rising or falling to the end of the range: ringing or no structure, no width to choose
        return 1.0
    best = max(peaks, key=lambda i: kurt[i])
    return float(scales[best]) if kurt[best] > at_estimate * (1 + MIN_GAIN) else 1.0
