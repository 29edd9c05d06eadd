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
from functools import lru_cache

import numpy as np
import torch
from scipy import fft as sfft

from wsi_deblur._shared.fourier import same_size_batches, squared_magnitude
from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf, is_delta
from wsi_deblur.blur.fit import noise_sigma, ring_power, rings
from wsi_deblur.blur.otf import kernel_otf
from wsi_deblur.restore.base import Restorer

#: Rings of spatial frequency the guard compares, over 0 to 0.5 cycles per pixel.
N_BANDS = 16
#: How far (a factor) a restoration's amplitude may exceed the cap in a ring before it is cut.
CAP_TOLERANCE = 1.05


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
                 max_residual: float = 1.25, reference: np.ndarray | None = None,
                 device: str | torch.device | None = None) -> tuple[np.ndarray, GuardReport]:
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
    device : str or torch.device, optional
        Where the spectra are computed (the restorer's device; default the CPU).

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
    kernels = psf if psf.ndim == 3 else np.stack([psf] * 3)
    out, reports = guard_batch(window[None], restored[None], kernels[None], balance=balance,
                               max_residual=max_residual, reference=reference, device=device)
    return out[0], reports[0]


def guard_batch(windows: np.ndarray, restored: np.ndarray, kernels: np.ndarray, *, balance: float = 0.1,
                max_residual: float = 1.25, reference: np.ndarray | None = None,
                device: str | torch.device | None = None) -> tuple[np.ndarray, list[GuardReport]]:
    """:func:`guard_window` for ``(n, y, x, 3)`` uint8 windows whose PSFs ``(n, 3, k, k)`` have one size.

    The windows' and restorations' spectra, the re-blur residuals, their ring
    powers and the pulled-back and capped outputs are computed as one batch in
    torch on ``device`` (float32; where the network ran, so a GPU worker's
    windows stay on its GPU): one FFT per window, restoration and residual.
    """
    dev = torch.device(device or "cpu")
    n, h, w, _ = windows.shape
    pad = kernels.shape[-1] // 2 + 1
    grid = _PaddedGrid.of(h, w, pad)
    y = grid.padded(torch.from_numpy(np.ascontiguousarray(windows)).to(dev))
    x = grid.padded(torch.from_numpy(np.ascontiguousarray(restored)).to(dev))
    ys, xs = torch.fft.rfft2(y), torch.fft.rfft2(x)
    k = kernel_otf(torch.from_numpy(np.asarray(kernels, np.float32)).to(dev), grid.shape)
    idx = _ring_index(grid.shape, dev)
    checked = _ring_mean(squared_magnitude(k), idx) >= balance  # (n, 3, N_BANDS)
    checked[..., 0] = False  # the lowest ring holds the mean and the layout of the tissue, not its focus
    ratio, kept = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    if min(h, w) > 4 * pad and bool(checked.any()):  # a window without a checked ring: 0 and all kept
        inner = np.s_[..., grid.oy + pad:grid.oy + h - pad, grid.ox + pad:grid.ox + w - pad]
        total = torch.fft.irfft2(k * xs - ys, s=grid.shape)[inner]  # K x - y = (K y - y) + K (x - y)
        base = torch.fft.irfft2(k * ys - ys, s=grid.shape)[inner]
        noise = torch.from_numpy(np.stack([noise_sigma(wdw, per_channel=True) for wdw in windows]))
        ratio, kept = _ratio_and_share(total, base, checked, noise, max_residual)
    out, capped = _outputs(restored, ys, xs, kept, ~checked, grid, reference)
    reports = [GuardReport("restorer" if kept[i] == 1.0 else "pulled back", round(float(ratio[i]), 4),
                           bool(capped[i]), round(float(kept[i]), 4) if capped[i] or kept[i] < 1.0 else 1.0)
               for i in range(n)]
    return out, reports


def _outputs(restored: np.ndarray, ys: torch.Tensor, xs: torch.Tensor, kept: torch.Tensor, free: torch.Tensor,
             grid: _PaddedGrid, reference: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The windows to use: ``restored`` where kept whole and not capped, else ``y + kept (x - y)`` capped at
    ``reference`` in the ``free`` (unchecked) rings; and whether each was capped.
    """
    n, h, w = restored.shape[:3]
    out = np.array(restored, copy=True)
    changed = np.flatnonzero((kept < 1.0).numpy()) if reference is None else np.arange(n)
    capped = np.zeros(n, bool)
    if not changed.size:
        return out, capped
    dev = ys.device
    sel = torch.from_numpy(changed).to(dev)
    whole = changed.size == n  # every window (a reference given): no copies of the spectra
    given, spec = (ys, xs) if whole else (ys[sel], xs[sel])
    share = kept[changed]
    pulled = torch.nonzero(share < 1.0).flatten()
    if pulled.numel():  # y + s (x - y) where s < 1; x itself, unchanged, where the whole correction is kept
        at = pulled.to(dev)
        spec = spec.clone()
        spec[at] = given[at] + share[pulled].to(dev, torch.float32)[:, None, None, None] * (spec[at] - given[at])
    if reference is not None:
        spec, cut = _capped(spec, given, _ring_index(grid.shape, dev), free[sel],
                            torch.from_numpy(np.asarray(reference, np.float32)).to(dev), grid.shape)
        capped[changed] = cut.cpu().numpy()
    redo = changed[(kept[changed] < 1.0).numpy() | capped[changed]]
    if redo.size:
        keep = torch.from_numpy(np.searchsorted(changed, redo)).to(dev)
        pixels = torch.fft.irfft2(spec[keep], s=grid.shape)[..., grid.oy:grid.oy + h, grid.ox:grid.ox + w]
        out[redo] = pixels.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out, capped


@dataclass(frozen=True)
class _PaddedGrid:
    """The guard's FFT grid for ``h`` x ``w`` windows: mirrored by at least ``pad`` on every side, to a fast size."""

    shape: tuple[int, int]
    oy: int
    ox: int
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of(cls, h: int, w: int, pad: int) -> _PaddedGrid:
        shape = (sfft.next_fast_len(h + 2 * pad, real=True), sfft.next_fast_len(w + 2 * pad, real=True))
        oy, ox = (shape[0] - h) // 2, (shape[1] - w) // 2
        return cls(shape, oy, ox, _symmetric_index(h, shape[0], oy), _symmetric_index(w, shape[1], ox))

    def padded(self, images: torch.Tensor) -> torch.Tensor:
        """``(n, y, x, 3)`` uint8 images as ``(n, 3, Y, X)`` float32, mirrored (edge pixels repeated) onto the grid."""
        rows = torch.from_numpy(self.rows).to(images.device)
        cols = torch.from_numpy(self.cols).to(images.device)
        return images.permute(0, 3, 1, 2).index_select(2, rows).index_select(3, cols).to(torch.float32)


def _symmetric_index(size: int, padded: int, before: int) -> np.ndarray:
    """Source index of each of ``padded`` positions, ``before`` of them ahead of a length-``size`` axis, mirrored
    as ``numpy.pad(mode="symmetric")`` does.
    """
    pos = np.arange(padded) - before
    period = np.mod(pos, 2 * size)
    return np.where(period < size, period, 2 * size - 1 - period).astype(np.int64)


@lru_cache(maxsize=32)
def _ring_index(shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """:func:`~wsi_deblur.blur.fit.rings` of an ``rfft2`` of ``shape``, flattened, on ``device``."""
    return torch.from_numpy(rings(shape, N_BANDS).ravel().copy()).to(device)


def _ring_sum(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Sum of ``(..., Y, Xf)`` over each ring: ``(..., N_BANDS)``."""
    flat = values.flatten(-2)
    out = flat.new_zeros((*flat.shape[:-1], N_BANDS + 1))
    return out.index_add_(-1, idx, flat)[..., :N_BANDS]


def _ring_mean(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    counts = torch.bincount(idx, minlength=N_BANDS + 1)[:N_BANDS].clamp(min=1).to(values.dtype)
    return _ring_sum(values, idx) / counts


def _ratio_and_share(total: torch.Tensor, base: torch.Tensor, checked: torch.Tensor, noise: torch.Tensor,
                     max_residual: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window, the restoration's re-blur residual ``total`` against what is allowed (the input's own,
    ``base``, plus the noise), over the checked rings, and the share of the correction to keep (1: all).
    """
    shape = tuple(total.shape[-2:])
    idx = _ring_index(shape, total.device)
    st = torch.fft.rfft2(total - total.mean(dim=(-2, -1), keepdim=True))
    sb = torch.fft.rfft2(base - base.mean(dim=(-2, -1), keepdim=True))
    pixels = float(shape[0] * shape[1])
    powers = [(_ring_sum((s.real ** 2 + s.imag ** 2).double(), idx) / pixels).cpu() for s in (st, sb, st - sb)]
    sel = checked.cpu().double()  # each checked ring counts its coefficients, as a sum over the spectrum does
    p_total, p_base, p_step = (p.mul(sel).sum(dim=(1, 2)) for p in powers)
    counts = torch.bincount(idx, minlength=N_BANDS + 1)[:N_BANDS].cpu().double()
    allowed = p_base + (noise.double() ** 2 * (sel * counts).sum(dim=2)).sum(dim=1)
    ratio = torch.sqrt(p_total / allowed.clamp(min=1e-12))
    kept = torch.ones_like(ratio)
    for i in torch.nonzero(ratio > max_residual).flatten().tolist():
        kept[i] = _share_allowed(float(p_base[i]), float(p_total[i] - p_base[i] - p_step[i]) / 2,
                                 float(p_step[i]), max_residual ** 2 * float(allowed[i]))
    return ratio, kept


def _share_allowed(base: float, cross: float, step: float, limit: float) -> float:
    """Largest ``s`` in [0, 1] with ``base + 2 s cross + s^2 step <= limit`` (``base <= limit``)."""
    if step <= 0:
        return 0.0
    c = base - limit
    disc = max(cross * cross - step * c, 0.0)
    return float(np.clip((-cross + np.sqrt(disc)) / step, 0.0, 1.0))


def _capped(spec: torch.Tensor, given: torch.Tensor, idx: torch.Tensor, free: torch.Tensor,
            reference: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``spec`` ``(n, 3, Y, Xf)`` with its RMS amplitude per ring, in the ``free`` rings ``(n, 3, N_BANDS)``,
    capped at the larger of ``reference`` ``(3, N_BANDS)`` and the input's own (``given``): what a restoration
    *adds* is bounded, the input is never taken below itself. Rings within :data:`CAP_TOLERANCE` of the cap
    are left alone. Also, per window, whether any ring was cut.
    """
    scale = float(np.sqrt(shape[0] * shape[1]))
    rms = torch.sqrt(_ring_mean(spec.real ** 2 + spec.imag ** 2, idx)) / scale
    limit = torch.maximum(reference[None], torch.sqrt(_ring_mean(given.real ** 2 + given.imag ** 2, idx)) / scale)
    over = free & (rms > limit * CAP_TOLERANCE)
    if not bool(over.any()):
        return spec, over.flatten(1).any(dim=1)
    factor = torch.ones((*rms.shape[:2], N_BANDS + 1), dtype=rms.dtype, device=rms.device)
    factor[..., :N_BANDS] = torch.where(over, limit / rms.clamp(min=1e-30), 1.0)
    flat = spec.flatten(-2)
    out = flat * factor[..., idx]
    out[..., 0] = flat[..., 0]
    return out.reshape(spec.shape), over.flatten(1).any(dim=1)


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
    device : str, optional
        Where the guard's spectra are computed; by default the restorer's own
        device (a network restorer's ``device``), else the CPU.
    """

    restorer: Restorer
    mpp: float | None = None
    balance: float = 0.1
    max_residual: float = 1.25
    reference: np.ndarray | None = field(default=None, compare=False)
    device: str | None = None

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
        """Guard restorations made already: ``restored`` for ``windows`` (both ``(n, y, x, 3)`` uint8).

        Windows whose PSFs have one size are checked together (:func:`guard_batch`), at most
        :data:`~wsi_deblur._shared.fourier.BATCH_PIXELS` padded pixels at a time.
        """
        out = np.array(restored, copy=True)
        reports = [GuardReport("none")] * len(windows)
        psfs = {n: estimate_psf(est, self.mpp, model=GUARD_PSF_MODEL) for n, est in enumerate(estimates)
                if est.is_blurred}
        psfs = {n: psf for n, psf in psfs.items() if not is_delta(psf)}
        h, w = windows.shape[1:3]
        for sel in same_size_batches(psfs, lambda size: (h + 2 * (size // 2 + 1)) * (w + 2 * (size // 2 + 1))):
            out[sel], batch_reports = guard_batch(windows[sel], restored[sel], np.stack([psfs[n] for n in sel]),
                                                  balance=self.balance, max_residual=self.max_residual,
                                                  reference=self.reference, device=self._device())
            for n, report in zip(sel, batch_reports):
                reports[n] = report
        return out, reports

    def _device(self) -> str:
        return self.device or getattr(self.restorer, "device", None) or "cpu"

    def restore(self, windows: np.ndarray, estimates: Sequence[BlurEstimate]) -> np.ndarray:
        """Restore ``(n, y, x, 3)`` uint8 windows, each kept only where it agrees with the optics."""
        return self.restore_checked(windows, estimates)[0]
