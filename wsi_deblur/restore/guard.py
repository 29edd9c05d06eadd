"""The consistency guard: a restoration must agree with the optics, or it is not used.

Every restorer's output goes through it (:func:`~wsi_deblur.restore.windows.restore_windows`).
For each window ``y`` and its restoration ``x``, the guard builds the PSF ``k``
that the window's blur estimate implies (pupil defocus from the optics,
:func:`~wsi_deblur.blur.estimated_psf.estimate_psf`; the real defocus of the focus pair has the pupil's
contrast inversion, which a Gaussian lacks: ``pipelines.evaluate_real``) and
checks, ring by ring of spatial frequency:

- where the PSF passes enough of the signal to be inverted (``|K|^2 >= balance``
  on average over the ring, a *checked* ring), the restoration blurred again
  must explain the input at least as well as the input explains itself, or
  as well as the noise allows. A restorer that adds noise or texture, inverts
  another PSF, or turns contrast the wrong way does not; that window is
  *pulled back* toward its input, ``y + s (x - y)`` with the largest share
  ``s`` that passes: what the restorer cannot justify is left alone, and no
  pixel is made from the PSF model itself, which assumes NA 0.75 (on the 11
  held-out synthetic defocus pairs it refuses, of other NAs, pulling back kept
  0.677 SSIM where a Wiener deconvolution with the assumed PSF had given 0.603,
  an ad hoc comparison;
  with it, ``python -m pipelines.evaluate_restorers`` scores ``fast`` guarded
  within 0.001 of unguarded);
- where the PSF passes little, re-blurring cannot see what a restorer adds; a
  ``reference`` spectrum (that of the slide's own in-focus tissue, same scanner,
  same stain; :func:`band_amplitude`) caps the output's amplitude in those rings.

What neither test can see: on the real focus pair the in-focus plane itself
explains the out-of-focus one no better than the networks' restorations do
(the scanned plane holds other planes' detail that no single PSF explains:
``pipelines.evaluate_real``), so the networks pass there while lowering SSIM.
The guard refuses what contradicts the optics; it does not make a restorer that
learned the wrong forward model right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf, is_delta
from wsi_deblur.blur.fit import noise_sigma, ring_power, ring_powers_of_difference, rings
from wsi_deblur.blur.psf import psf_to_otf
from wsi_deblur.restore.base import Restorer

#: Rings of spatial frequency the guard compares, over 0 to 0.5 cycles per pixel.
N_BANDS = 16
#: How far (a factor) a restoration's amplitude may exceed the cap in a ring before it is cut.
CAP_TOLERANCE = 1.05
def _padded(image: np.ndarray, pad: int) -> np.ndarray:
    h, w = image.shape[:2]
    shape = (sfft.next_fast_len(h + 2 * pad, real=True), sfft.next_fast_len(w + 2 * pad, real=True))
    py, px = shape[0] - h, shape[1] - w
    return np.pad(image, ((py // 2, py - py // 2), (px // 2, px - px // 2), (0, 0)), mode="symmetric")


def band_amplitude(images: np.ndarray, *, n_bands: int = N_BANDS) -> np.ndarray:
    """RMS spectral amplitude per pixel in each ring, per channel: ``(3, n_bands)``.

    Of ``(n, y, x, 3)`` (or ``(y, x, 3)``) uint8 images, e.g. in-focus tissue
    of a slide: the ``reference`` of :class:`GuardedRestorer`. Independent of
    the image size.
    """
    images = np.asarray(images)
    images = images[None] if images.ndim == 3 else images
    return np.sqrt(np.mean([ring_power(image, n_rings=n_bands) for image in images], axis=0))


@dataclass(frozen=True)
class GuardReport:
    """What the guard decided for one window.

    Attributes
    ----------
    action : {"none", "restorer", "pulled back"}
        ``none``: the PSF is a delta (nothing to check, output = restorer's);
        ``restorer``: the restoration agreed with the optics and was kept;
        ``pulled back``: it did not, and the output is the input plus the
        share ``kept`` of the restorer's correction that does.
    consistency : float
        Ratio, over the rings the PSF passes, of the restoration's re-blur
        residual to the input's own plus the noise: at most 1, it explains
        the input at least as well as the input does; 0 when nothing was
        checked.
    kept : float
        Share of the restorer's correction in the output (1 unless pulled back).
    capped : bool
        Whether, where the PSF passes little, the output's amplitude was cut
        to that of the slide's in-focus tissue (or the input's own).
    """

    action: str
    consistency: float = 0.0
    capped: bool = False
    kept: float = 1.0


def guard_window(window: np.ndarray, restored: np.ndarray, psf: np.ndarray, *, balance: float = 0.1,
                 max_residual: float = 1.25, reference: np.ndarray | None = None) -> tuple[np.ndarray, GuardReport]:
    """Check one restored window against its PSF; the output to use and why.

    Blurred again by the PSF, the restoration must explain the input at least
    as well as the input explains itself, within the window's noise: over the
    rings of frequency the PSF passes (``|K|^2 >= balance`` on average),
    ``|K X - Y|^2 <= max_residual^2 * (|K Y - Y|^2 + noise power)``. A
    restorer that adds noise or texture, inverts another PSF, or turns
    contrast the wrong way fails it, and the output is pulled back to
    ``Y + s (X - Y)`` with the largest ``s`` in [0, 1) that passes (the
    residual is quadratic in ``s``; ``s = 0``, the input, always passes).

    Parameters
    ----------
    window, restored : ndarray, shape (y, x, 3), uint8
        The input window and a restorer's output for it.
    psf : ndarray, shape (3, k, k) or (k, k)
        The blur the window's estimate implies, in the window's pixels.
    balance : float
        What the PSF's power ``|K|^2`` must average in a ring for it to be checked.
    max_residual : float
        Largest ratio, over the checked rings, of the restoration's re-blur
        residual to the input's own plus the window's noise. Above 1 by the
        error of the PSF model itself: the guard assumes NA 0.75, and on the
        held-out synthetic pairs (NA 0.5-0.95, JPEG) the sharp truth itself
        scores above 1 in a tenth of the defocus pairs; at 1.25 the guard pulls back
        11 of 139 of ``fast``'s defocus restorations, at 1.0, 23
        (``python -m pipelines.evaluate_restorers``).
    reference : ndarray, shape (3, N_BANDS), optional
        Amplitude per ring of in-focus tissue (:func:`band_amplitude`): in the
        rings that are not checked, the output's amplitude is capped at it
        (or at the input's, where that is larger).

    Returns
    -------
    out : ndarray, shape (y, x, 3), uint8
    report : GuardReport

    Examples
    --------
    >>> import numpy as np
    >>> from wsi_deblur.blur.simulate import convolve_rgb, defocus_psf_optics, Optics
    >>> rng = np.random.default_rng(0)
    >>> sharp = rng.integers(0, 256, (96, 96, 3)).astype(np.uint8)
    >>> psf = defocus_psf_optics(3.0, Optics(mpp=0.5))
    >>> blurred = np.clip(np.rint(convolve_rgb(sharp, psf)), 0, 255).astype(np.uint8)
    >>> guard_window(blurred, sharp, psf)[1].action   # the truth explains its blurred self
    'restorer'
    >>> guard_window(blurred, 255 - sharp, psf)[1].action   # its negative does not
    'pulled back'
    """
    if is_delta(psf):
        return restored, GuardReport("none")
    spectra = _WindowSpectra.of(window, restored, psf, balance)
    ratio, kept = _residual_ratio_and_share(window, spectra, max_residual)
    if kept == 1.0 and reference is None:
        return restored, GuardReport("restorer", round(ratio, 4))
    out, capped = _output(spectra, kept, reference)
    if kept == 1.0 and not capped:
        return restored, GuardReport("restorer", round(ratio, 4))
    h, w = window.shape[:2]
    out = np.clip(np.rint(out[spectra.oy:spectra.oy + h, spectra.ox:spectra.ox + w]), 0, 255).astype(np.uint8)
    return out, GuardReport("restorer" if kept == 1.0 else "pulled back", round(ratio, 4), capped, round(kept, 4))


@dataclass
class _WindowSpectra:
    """A window and its restoration on the guard's padded grid: per channel their spectra and which rings the
    PSF passes, and the re-blur residuals of the restoration (``K x - y``) and of the input (``K y - y``).
    """

    shape: tuple[int, int]
    oy: int
    ox: int
    pad: int
    idx: np.ndarray
    residual: list
    own: list
    outputs: dict
    checked_any: np.ndarray

    @classmethod
    def of(cls, window: np.ndarray, restored: np.ndarray, psf: np.ndarray, balance: float) -> _WindowSpectra:
        kernels = psf if psf.ndim == 3 else np.stack([psf] * 3)
        h, w = window.shape[:2]
        pad = max(kernels.shape[1:]) // 2 + 1
        y = _padded(window.astype(np.float32), pad)
        x = _padded(restored.astype(np.float32), pad)
        shape = y.shape[:2]
        oy, ox = (shape[0] - h) // 2, (shape[1] - w) // 2
        # Residuals are judged inside the window, a PSF radius from its edges: beyond that the
        # re-blurred restoration sees the mirrored padding, which the input never did.
        inner = np.s_[oy + pad:oy + h - pad, ox + pad:ox + w - pad]
        idx = rings(shape, N_BANDS).ravel()
        n = N_BANDS + 1
        counts = np.maximum(np.bincount(idx, minlength=n), 1)
        residual, own, outputs, checked_any = [], [], {}, np.zeros(N_BANDS, bool)
        for c in range(3):
            k = psf_to_otf(kernels[c], shape, dtype=np.float32)
            ys, xs = sfft.rfft2(y[:, :, c]), sfft.rfft2(x[:, :, c])
            k2 = np.abs(k) ** 2
            checked = (np.bincount(idx, k2.ravel(), minlength=n) / counts)[:N_BANDS] >= balance
            checked[0] = False  # the lowest ring holds the mean and the layout of the tissue, not its focus
            checked_any |= checked
            residual.append(sfft.irfft2(k * xs - ys, s=shape)[inner])
            own.append(sfft.irfft2(k * ys - ys, s=shape)[inner])
            outputs[c] = (xs, ys, checked)
        return cls(shape, oy, ox, pad, idx, residual, own, outputs, checked_any)


def _residual_ratio_and_share(window: np.ndarray, spectra: _WindowSpectra, max_residual: float) -> tuple[float, float]:
    """The restoration's re-blur residual against what is allowed, and the share of it to keep (1: all)."""
    h, w = window.shape[:2]
    if not (spectra.checked_any.any() and min(h, w) > 4 * spectra.pad):
        return 0.0, 1.0
    ring_counts = np.bincount(rings(spectra.residual[0].shape, N_BANDS).ravel(), minlength=N_BANDS + 1)[:N_BANDS]
    sel = np.stack([spectra.outputs[c][2] for c in range(3)]) * ring_counts  # checked rings, per channel
    total = np.stack(spectra.residual, axis=2)  # K x - y = (K y - y) + K (x - y)
    base = np.stack(spectra.own, axis=2)
    p_total, p_base, p_step = (float((p * sel).sum()) for p in ring_powers_of_difference(total, base))
    allowed = p_base + float((noise_sigma(window, per_channel=True) ** 2 * sel.T).sum())
    ratio = float(np.sqrt(p_total / max(allowed, 1e-12)))
    kept = 1.0
    if ratio > max_residual:
        kept = _share_allowed(p_base, (p_total - p_base - p_step) / 2, p_step, max_residual ** 2 * allowed)
    return ratio, kept


def _output(spectra: _WindowSpectra, kept: float, reference: np.ndarray | None) -> tuple[np.ndarray, bool]:
    """``y + kept (x - y)`` on the padded grid, capped at ``reference`` in the unchecked rings; whether it was."""
    out = np.empty((*spectra.shape, 3), np.float32)
    capped = False
    for c, (xs, ys, checked) in spectra.outputs.items():
        spec = ys + np.float32(kept) * (xs - ys)
        if reference is not None:
            spec, cut = _capped(spec, ys, spectra.idx, ~checked, reference[c], spectra.shape)
            capped |= cut
        out[:, :, c] = sfft.irfft2(spec, s=spectra.shape)
    return out, capped


def _share_allowed(base: float, cross: float, step: float, limit: float) -> float:
    """Largest ``s`` in [0, 1] with ``base + 2 s cross + s^2 step <= limit`` (``base <= limit``)."""
    if step <= 0:
        return 0.0
    c = base - limit
    disc = max(cross * cross - step * c, 0.0)
    return float(np.clip((-cross + np.sqrt(disc)) / step, 0.0, 1.0))


def _ring_rms(spec: np.ndarray, idx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    n = N_BANDS + 1
    power = np.bincount(idx, np.abs(spec.ravel()) ** 2, minlength=n)[:N_BANDS]
    return np.sqrt(power / np.maximum(np.bincount(idx, minlength=n)[:N_BANDS], 1)) / np.sqrt(shape[0] * shape[1])


def _capped(spec: np.ndarray, given: np.ndarray, idx: np.ndarray, free: np.ndarray, reference: np.ndarray,
            shape: tuple[int, int]) -> tuple[np.ndarray, bool]:
    """``spec`` with its RMS amplitude per ring, in the ``free`` rings, capped at the larger of
    ``reference`` and the input's own (``given``): what a restoration *adds* is bounded, the input
    is never taken below itself. Rings within :data:`CAP_TOLERANCE` of the cap are left alone.
    Also whether any ring was cut.
    """
    rms = _ring_rms(spec, idx, shape)
    limit = np.maximum(reference, _ring_rms(given, idx, shape))
    over = free & (rms > limit * CAP_TOLERANCE)
    if not over.any():
        return spec, False
    factor = np.ones(N_BANDS + 1)
    factor[:N_BANDS][over] = limit[over] / rms[over]
    flat = spec.ravel()
    out = flat * factor[idx]
    out[0] = flat[0]
    return out.reshape(spec.shape), True


#: The defocus model the guard checks against, whatever the restorer deconvolved with (see GuardedRestorer).
GUARD_PSF_MODEL = "pupil"

@dataclass(frozen=True)
class GuardedRestorer:
    """``restorer`` with every window checked by :func:`guard_window`.

    The PSF it checks against is the pupil model's (``estimate_psf(..., model="pupil")``), whatever model
    the restorer deconvolves with: the in-focus optics included, its main lobe is the wider, so it checks
    more rings (a wide geometric disc passes too little for any ring to be checked).

    Parameters
    ----------
    restorer : Restorer
    mpp : float, optional
        Pixel size of the windows (micrometres), for the defocus PSF.
    balance, max_residual : float
        As :func:`guard_window`.
    reference : ndarray, shape (3, N_BANDS), optional
        In-focus amplitude per ring (:func:`band_amplitude`) that caps what is
        added where the PSF passes little.
    """

    restorer: Restorer
    mpp: float | None = None
    balance: float = 0.1
    max_residual: float = 1.25
    reference: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.balance <= 0:
            raise ValueError(f"balance must be positive, not {self.balance}")
        if self.max_residual <= 0:
            raise ValueError(f"max_residual must be positive, not {self.max_residual}")

    @property
    def name(self) -> str:
        return self.restorer.name

    def restore_checked(self, windows: np.ndarray,
                        estimates: Sequence[BlurEstimate]) -> tuple[np.ndarray, list[GuardReport]]:
        """Restore ``(n, y, x, 3)`` uint8 windows; the guarded windows and one report per window."""
        return self.check(windows, self.restorer.restore(windows, estimates), estimates)

    def check(self, windows: np.ndarray, restored: np.ndarray,
              estimates: Sequence[BlurEstimate]) -> tuple[np.ndarray, list[GuardReport]]:
        """Guard restorations made already: ``restored`` for ``windows`` (both ``(n, y, x, 3)`` uint8)."""
        out = np.empty_like(restored)
        reports = []
        for n, (window, est) in enumerate(zip(windows, estimates)):
            out[n], report = restored[n], GuardReport("none")
            if est.is_blurred:
                out[n], report = guard_window(window, restored[n], estimate_psf(est, self.mpp, model=GUARD_PSF_MODEL),
                                              balance=self.balance, max_residual=self.max_residual,
                                              reference=self.reference)
            reports.append(report)
        return out, reports

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows, each kept only where it agrees with the optics."""
        return self.restore_checked(windows, estimates)[0]
