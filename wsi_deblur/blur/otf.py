"""Optical transfer functions of estimated blur, on an FFT grid, in torch: what the ``bcr`` network inverts.

Blur is a product in the Fourier domain: a window blurred by a PSF has the
spectrum of the sharp window times the PSF's optical transfer function (OTF).
This module evaluates the OTF that a blur estimate implies on the ``rfft2``
grid of a window, for a batch of windows at once, without building kernels:

- **defocus** is the pupil model's, as the guard uses it
  (:func:`wsi_deblur.blur.estimated_psf.estimate_psf`: NA 0.75, the green
  channel's wavelength), or with ``model="disc"`` the geometric disc of the
  same Gaussian-equivalent width (radius twice it) that the Wiener restorer
  uses, the real focus pair's shape; tabulated once per process as radial
  profiles over Gaussian-equivalent widths of 0-12 px (0.25-px steps) and
  interpolated in width and radius. Past its first zero it turns negative, as
  real defocus does: on the simulator's held-out pairs, whose NA spans
  0.5-0.95, the pupil's RMS error against the true OTF is 0.017, against 0.021
  for a Gaussian and 0.047 for the disc; on the real pair the disc is the
  closer (``docs/real-defocus.md``).
- **motion** is a centred line of the estimated length at its direction:
  ``sinc(L (fx cos a - fy sin a))`` (rows grow downwards), times the tents
  with which :func:`wsi_deblur.blur.psf.motion_psf` draws it.
- **mixed** is their product.

Frequencies are in cycles per pixel of the image the estimate describes; a
window ``factor`` times coarser (block-averaged) has its frequencies divided
by ``factor`` before the lookup, so the OTF stays that of the optics.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from wsi_deblur.blur.estimated_psf import ASSUMED_NA, defocus_um_for_sigma
from wsi_deblur.blur.psf import disc_psf, psf_to_otf
from wsi_deblur.blur.simulate import Optics, green_defocus_psf

#: Gaussian-equivalent widths (px) of the defocus table, and the radii (cycles/px, up to the corner) it samples.
TABLE_SIGMA_STEP_PX = 0.25
TABLE_SIGMA_MAX_PX = 12.0
TABLE_RADII = 181
TABLE_RADIUS_MAX = 0.5 * np.sqrt(2.0)
#: The defocus PSF shapes the OTFs can be built from (the first is the default).
DEFOCUS_OTF_MODELS = ("pupil", "disc")


@lru_cache(maxsize=2)
def defocus_table(model: str = "pupil") -> np.ndarray:
    """Radial OTF profiles of the defocus PSF: ``(widths, radii)`` float32, computed once per process.

    Row ``i`` is the width ``i * TABLE_SIGMA_STEP_PX``; column ``j`` the
    radius ``j / (TABLE_RADII - 1) * TABLE_RADIUS_MAX`` cycles/px; each the
    mean of the 2-D OTF over a ring. For the pupil (``model="pupil"``; the
    green channel, 0.5 um/px) divided by the in-focus (diffraction-limited)
    one: the sharp scan already went through that, and the network must not
    try to undo it. For ``model="disc"`` the disc of radius twice the width,
    which is all blur added to the in-focus optics.
    """
    if model not in DEFOCUS_OTF_MODELS:
        raise ValueError(f"defocus OTF model {model!r} is not one of {', '.join(DEFOCUS_OTF_MODELS)}")
    size = 256
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]
    ring = np.rint(np.hypot(fx, fy) / TABLE_RADIUS_MAX * (TABLE_RADII - 1)).astype(int).ravel()
    counts = np.bincount(ring, minlength=TABLE_RADII)
    widths = np.arange(0.0, TABLE_SIGMA_MAX_PX + 1e-9, TABLE_SIGMA_STEP_PX)

    def profile(psf: np.ndarray) -> np.ndarray:
        otf = np.real(psf_to_otf(psf, (size, size), full=True)).ravel()
        return np.bincount(ring, weights=otf, minlength=TABLE_RADII) / np.maximum(counts, 1)

    rows = [np.ones(TABLE_RADII)]
    if model == "disc":
        rows += [np.clip(profile(disc_psf(2.0 * float(sigma))), -1.0, 1.0) for sigma in widths[1:]]
        return np.asarray(rows, dtype=np.float32)
    # the sharp scan already went through the in-focus optics: the table holds what defocus adds to them
    optics = Optics(numerical_aperture=ASSUMED_NA, mpp=0.5)  # the PSF estimate_psf gives each width
    in_focus = profile(green_defocus_psf(0.0, optics))
    for sigma in widths[1:]:
        added = profile(green_defocus_psf(defocus_um_for_sigma(float(sigma), 0.5), optics)) / in_focus
        rows.append(np.clip(added, -1.0, 1.0))
    return np.asarray(rows, dtype=np.float32)


#: Gauss-Hermite nodes and weights for a standard normal (7 for the tabulated defocus, 5 for motion at run time).
_NODES = {n: (nodes, weights / np.sqrt(2 * np.pi))
          for n in (5, 7) for nodes, weights in [np.polynomial.hermite_e.hermegauss(n)]}


@lru_cache(maxsize=8)
def defocus_moments(uncertainty: float, model: str = "pupil") -> np.ndarray:
    """``(2, widths, radii)``: the mean and mean square of :func:`defocus_table` over a width error.

    Row ``i`` averages the OTF of widths ``sigma_i * exp(uncertainty * z)``, ``z``
    standard normal (7-point Gauss-Hermite), interpolated between rows. Past
    the first zero the OTF's sign depends on the exact width, so its mean
    falls towards 0 while its mean square does not: a Wiener filter built on
    them does not amplify what the estimate cannot say the sign of.
    """
    table = defocus_table(model).astype(np.float64)
    widths = np.arange(table.shape[0]) * TABLE_SIGMA_STEP_PX
    nodes, weights = _NODES[7] if uncertainty > 0 else (np.zeros(1), np.ones(1))
    mean, square = np.zeros_like(table), np.zeros_like(table)
    for z, wgt in zip(nodes, weights):
        idx = np.clip(widths * np.exp(uncertainty * z) / TABLE_SIGMA_STEP_PX, 0, table.shape[0] - 1.001)
        i0 = np.floor(idx).astype(int)
        frac = (idx - i0)[:, None]
        rows = table[i0] * (1 - frac) + table[i0 + 1] * frac
        mean += wgt * rows
        square += wgt * rows * rows
    return np.stack([mean, square]).astype(np.float32)


def frequency_grid(h: int, w: int, *, device=None, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fy, fx)`` of an ``rfft2`` of an ``h`` x ``w`` image, cycles/px: ``(h, 1)`` and ``(1, w // 2 + 1)``."""
    fy = torch.fft.fftfreq(h, device=device, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(w, device=device, dtype=dtype)[None, :]
    return fy, fx


def defocus_otf(sigma_px: torch.Tensor, radius: torch.Tensor, *, uncertainty: float = 0.0,
                model: str = "pupil") -> torch.Tensor:
    """The defocus OTF (``model``'s, :func:`defocus_table`) of each width ``sigma_px`` ``(n,)`` at ``radius``
    ``(h, wf)`` cycles/px.

    ``(2, n, h, wf)``: its mean and mean square over a log-normal width error
    of std ``uncertainty`` (:func:`defocus_moments`; for 0, the OTF and its square).
    """
    table = torch.from_numpy(defocus_moments(uncertainty, model)).to(device=radius.device, dtype=radius.dtype)
    s = (sigma_px.to(radius.dtype) / TABLE_SIGMA_STEP_PX).clamp(0, table.shape[1] - 1.001)
    s0 = s.floor().long()
    ws = (s - s0)[:, None]
    profiles = table[:, s0] * (1 - ws) + table[:, s0 + 1] * ws  # (2, n, radii)
    r = (radius / TABLE_RADIUS_MAX * (TABLE_RADII - 1)).clamp(0, TABLE_RADII - 1.001)
    r0 = r.floor().long()
    wr = r - r0
    return profiles[:, :, r0] * (1 - wr) + profiles[:, :, r0 + 1] * wr


def motion_otf(length_px: torch.Tensor, angle_deg: torch.Tensor, fy: torch.Tensor, fx: torch.Tensor, *,
               uncertainty: float = 0.0) -> torch.Tensor:
    """OTF of centred linear motion of ``length_px`` ``(n,)`` at ``angle_deg`` ``(n,)``.

    ``(2, n, h, wf)``: its mean and mean square over a log-normal length error of std ``uncertainty``
    (5-point Gauss-Hermite; for 0, the OTF and its square). The line as
    :func:`~wsi_deblur.blur.psf.motion_psf` draws it: a box of the length
    along the direction, its points spread bilinearly onto the pixels (a
    tent along x and along y: ``sinc^2``); RMS error 0.02-0.04 against that
    kernel's FFT at oblique directions, 0.06 along an axis, where no point
    falls between rows.
    """
    a = torch.deg2rad(angle_deg.to(fx.dtype))[:, None, None]
    along = fx[None] * torch.cos(a) - fy[None] * torch.sin(a)
    tents = torch.sinc(fx).square() * torch.sinc(fy).square()
    length = length_px.to(fx.dtype)[:, None, None]
    if uncertainty <= 0:
        otf = torch.sinc(length * along) * tents
        return torch.stack([otf, otf * otf])
    nodes, weights = _NODES[5]
    mean = square = 0
    for z, wgt in zip(nodes, weights):
        otf = torch.sinc(length * float(np.exp(uncertainty * z)) * along)
        mean = mean + float(wgt) * otf
        square = square + float(wgt) * otf * otf
    return torch.stack([mean * tents, square * tents * tents])


def blur_otf(psf: torch.Tensor, h: int, w: int, *, factor: float = 1.0,
             uncertainty: float = 0.0, defocus_model: str = "pupil") -> torch.Tensor:
    """The OTF of each window's estimated blur on the ``rfft2`` grid of ``h`` x ``w``.

    Parameters
    ----------
    psf : Tensor, (n, 3)
        Per window: defocus Gaussian-equivalent std (px), motion length (px)
        and motion direction (degrees), in pixels of the full-size image; 0
        widths for none.
    h, w : int
        The (possibly block-averaged) window's size.
    factor : float
        How many full-size pixels one of its pixels spans (1, 2, 4).
    uncertainty : float
        Log-normal std of the error of the widths: the OTF's mean and mean
        square are taken over it (``bcr``'s ``width_uncertainty``).
    defocus_model : {"pupil", "disc"}
        The defocus PSF's shape (:func:`defocus_table`).

    Returns
    -------
    Tensor, (2, n, h, w // 2 + 1)
        The mean OTF and its mean square (for ``uncertainty`` 0: the OTF and its square).

    Examples
    --------
    >>> import torch
    >>> otf = blur_otf(torch.tensor([[0.0, 0.0, 0.0], [3.0, 20.0, 30.0]]), 64, 64)
    >>> otf.shape, bool(torch.allclose(otf[0, 0], torch.ones(64, 33)))
    (torch.Size([2, 2, 64, 33]), True)
    >>> round(float(otf[0, 1, 0, 0]), 3)  # the mean passes unchanged
    1.0
    """
    fy, fx = frequency_grid(h, w, device=psf.device, dtype=torch.float32)
    fy, fx = fy / factor, fx / factor
    psf = psf.to(torch.float32)
    otf = defocus_otf(psf[:, 0], torch.sqrt(fy * fy + fx * fx), uncertainty=uncertainty, model=defocus_model)
    moving = psf[:, 1] > 1
    if bool(moving.any()):
        motion = motion_otf(psf[:, 1], psf[:, 2], fy, fx, uncertainty=uncertainty)
        otf = torch.where(moving[None, :, None, None], otf * motion, otf)
    return otf


def kernel_otf(kernels: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """``rfft2`` OTFs of centred kernels ``(..., k, k)`` on a grid of ``shape``: ``(..., Y, X // 2 + 1)``; real
    (float32) for kernels symmetric in each axis, else complex.

    The kernel's centre on pixel (0, 0), wrapped around: what
    :func:`wsi_deblur.blur.psf.psf_to_otf` computes for one kernel in numpy, for a batch in torch on the
    kernels' device (the guard and the Wiener restorer take their OTFs from here). Kernels symmetric in each
    axis (a disc, a pupil PSF) take :func:`symmetric_kernel_otf`'s cosine sums instead of an FFT of the grid.

    Examples
    --------
    >>> import torch
    >>> from wsi_deblur.blur.psf import psf_to_otf
    >>> box = np.full((3, 3), 1 / 9)
    >>> otf = kernel_otf(torch.from_numpy(box)[None], (8, 8))
    >>> otf.shape, bool(np.allclose(otf[0].numpy(), psf_to_otf(box, (8, 8))))
    (torch.Size([1, 8, 5]), True)
    """
    if is_symmetric(kernels):
        return symmetric_kernel_otf(kernels, shape, (shape[0], shape[1] // 2 + 1))
    ph, pw = kernels.shape[-2:]
    grid = kernels.new_zeros((*kernels.shape[:-2], *shape))
    grid[..., :ph, :pw] = kernels
    return torch.fft.rfft2(torch.roll(grid, (-(ph // 2), -(pw // 2)), dims=(-2, -1)))


def is_symmetric(kernels: torch.Tensor | np.ndarray) -> bool:
    """Whether every kernel ``(..., k, k)`` has a centre pixel (odd sides) and is its own mirror image in each
    axis through it (to float32 rounding): a disc, a pupil PSF.

    Examples
    --------
    >>> from wsi_deblur.blur.psf import disc_psf, motion_psf
    >>> is_symmetric(disc_psf(4.0)), is_symmetric(motion_psf(9, 30.0))
    (True, False)
    """
    k = torch.as_tensor(kernels)
    if not (k.shape[-1] % 2 and k.shape[-2] % 2):
        return False
    tol = 1e-6 * float(k.abs().max()) if k.numel() else 0.0
    return bool(torch.allclose(k, k.flip(-2), rtol=0, atol=tol) and torch.allclose(k, k.flip(-1), rtol=0, atol=tol))


def symmetric_kernel_otf(kernels: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """The OTF of centred kernels ``(..., k, k)`` symmetric in each axis, on the ``rfft2`` of ``grid``: real,
    its first ``size`` (rows, columns) frequencies, ``(..., *size)``.

    Such a kernel's transform is real and a product of cosine sums,
    ``sum_ab k[a, b] cos(2 pi u a / Y) cos(2 pi v b / X)`` (``a``, ``b`` from the centre): two small matrix
    products instead of an FFT of the whole grid (for a Wiener filter of a 1152-px window, mirrored to
    2304 px, a thousandth of the work). Float32, on the kernels' device; a kernel wider than the grid is
    wrapped, as an FFT would (the cosines are periodic).

    Examples
    --------
    >>> from wsi_deblur.blur.psf import disc_psf, psf_to_otf
    >>> otf = symmetric_kernel_otf(torch.from_numpy(disc_psf(3.0))[None], (64, 48), (64, 25))
    >>> bool(np.allclose(otf[0].numpy(), psf_to_otf(disc_psf(3.0), (64, 48)).real, atol=1e-6))
    True
    """
    ph, pw = kernels.shape[-2:]

    def cosines(n: int, taps: int, count: int) -> torch.Tensor:
        freq = torch.arange(count, dtype=torch.float64, device=kernels.device)
        offset = torch.arange(taps, dtype=torch.float64, device=kernels.device) - taps // 2
        return torch.cos(2 * torch.pi * freq[:, None] * offset[None, :] / n)  # (count, taps)

    k = kernels.to(torch.float64)
    out = cosines(grid[0], ph, size[0]) @ k @ cosines(grid[1], pw, size[1]).T
    return out.to(torch.float32)


def mirrored_otf(kernels: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, bool]:
    """The OTFs that :func:`~wsi_deblur._shared.fourier.filter_mirrored_batch` filters ``size`` images with:
    ``(otf, even)``.

    Kernels symmetric in each axis (``even``): the real OTF's first ``size`` frequencies of the mirrored
    ``(2y, 2x)`` grid, for the DCT route at the images' own size; others: the complex OTF of the whole grid.
    """
    h, w = size
    if is_symmetric(kernels):
        return symmetric_kernel_otf(kernels, (2 * h, 2 * w), (h, w)), True
    return kernel_otf(kernels, (2 * h, 2 * w)), False
