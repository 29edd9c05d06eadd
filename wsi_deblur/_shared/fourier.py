"""Linear filtering in the Fourier domain without edge artefacts: the image mirrored into a periodic one.

Wiener deconvolution, Wiener to the in-focus optics and the fitted ring filter all
filter the same way: mirror the ``(y, x, c)`` image into ``(2y, 2x, c)`` (an FFT then
sees no edges), multiply each channel's ``rfft2`` by a gain, crop back.

Examples
--------
>>> image = np.arange(12, dtype=np.float64).reshape(2, 2, 3)
>>> mirrored(image).shape
(4, 4, 3)
>>> bool(np.allclose(filter_mirrored(image, lambda c, shape: 1.0), image))
True
>>> wiener_gain(np.array([1.0, 0.5, 0.0]), 0.1).round(3)   # 1 where the PSF passes all, 0 where nothing
array([1.   , 1.571, 0.   ])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def mirrored(image: np.ndarray) -> np.ndarray:
    """``(y, x, c)`` image as float64, mirrored into ``(2y, 2x, c)``: periodic, so an FFT sees no edges."""
    img = np.asarray(image, dtype=np.float64)
    img = np.concatenate([img, img[::-1]], axis=0)
    return np.concatenate([img, img[:, ::-1]], axis=1)


def filter_mirrored(image: np.ndarray, gain: Callable[[int, tuple[int, int]], np.ndarray | float]) -> np.ndarray:
    """``(y, x, c)`` image filtered, channel ``c`` by ``gain(c, shape)`` (an ``rfft2`` of the mirrored ``shape``,
    or a number); float64, same shape.
    """
    m = mirrored(image)
    h, w = np.shape(image)[:2]
    shape = m.shape[:2]
    out = np.empty((h, w, m.shape[2]), np.float64)
    for c in range(m.shape[2]):
        out[:, :, c] = np.fft.irfft2(np.fft.rfft2(m[:, :, c]) * gain(c, shape), s=shape)[:h, :w]
    return out


def filter_mirrored_batch(images: torch.Tensor, gains: torch.Tensor, *, even: bool = False) -> torch.Tensor:
    """:func:`filter_mirrored` for a batch, in torch on the images' device: ``(n, c, y, x)`` float images,
    each channel's ``rfft2`` of the mirrored ``(2y, 2x)`` grid times ``gains`` (broadcast to ``(n, c, 2y, x + 1)``).

    ``even``: the gains are those of a kernel symmetric in each axis (a disc, a pupil PSF: real, and even
    in each frequency). The mirrored image is then even too, and the same filter is a product in its
    DCT-II at the image's own size (:func:`_dct`): the same result, from transforms of a quarter of the
    pixels; ``gains`` may then hold only the first ``(y, x)`` frequencies.
    """
    import torch

    h, w = images.shape[-2:]
    if even:  # gains of the (2y, 2x) grid, or already cut to its first (y, x) frequencies
        spectrum = _dct(_dct(images, -1), -2) * gains[..., :h, :w].real
        return _idct(_idct(spectrum, -2), -1)
    m = torch.cat([images, images.flip(-2)], dim=-2)
    m = torch.cat([m, m.flip(-1)], dim=-1)
    return torch.fft.irfft2(torch.fft.rfft2(m) * gains, s=(2 * h, 2 * w))[..., :h, :w]


def _dct(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Unnormalised DCT-II along ``dim``, ``X[k] = sum_n x[n] cos(pi k (2n + 1) / 2N)``, by one FFT of length N
    (Makhoul 1980: the even samples, then the odd ones reversed). The DFT of the mirrored ``(x, x reversed)``
    is ``2 exp(i pi k / 2N) X[k]``: why a mirrored filter is a product here.
    """
    import torch

    n = x.shape[dim]
    v = torch.cat([x[_every(dim, 0)], x[_every(dim, 1)].flip(dim)], dim=dim)
    return (torch.fft.fft(v, dim=dim) * _twiddle(n, dim, -1.0, x)).real


def _idct(spectrum: torch.Tensor, dim: int) -> torch.Tensor:
    """The inverse of :func:`_dct` along ``dim``."""
    import torch

    n = spectrum.shape[dim]
    mirror = torch.cat([torch.zeros_like(spectrum.narrow(dim, 0, 1)), spectrum.narrow(dim, 1, n - 1).flip(dim)],
                       dim=dim)  # X[N - k], with X[N] = 0
    v = torch.fft.ifft(torch.complex(spectrum, -mirror) * _twiddle(n, dim, 1.0, spectrum), dim=dim).real
    out = torch.empty_like(v)
    half = (n + 1) // 2
    out[_every(dim, 0)] = v.narrow(dim, 0, half)
    out[_every(dim, 1)] = v.narrow(dim, half, n - half).flip(dim)
    return out


def _every(dim: int, first: int) -> tuple:
    """Index of every second element along ``dim`` (a negative axis), from ``first``."""
    return (Ellipsis, slice(first, None, 2), *([slice(None)] * (-dim - 1)))


def _twiddle(n: int, dim: int, sign: float, like: torch.Tensor) -> torch.Tensor:
    """``exp(sign i pi k / 2n)`` for ``k < n``, shaped to broadcast along ``dim`` (a negative axis)."""
    import torch

    k = torch.arange(n, device=like.device, dtype=like.dtype)
    return torch.polar(torch.ones_like(k), sign * torch.pi * k / (2 * n)).reshape(n, *([1] * (-dim - 1)))


def wiener_gain(transfer, balance: float):
    """The Wiener filter of ``transfer`` (an OTF, or a ratio of OTFs): ``T* (1 + b) / (|T|^2 + b)``.

    1 wherever the transfer is 1 (the mean, what the blur left alone), so a restoration keeps its brightness.
    A NumPy array or a torch tensor, the same kind back.
    """
    return transfer.conj() * (1 + balance) / (squared_magnitude(transfer) + balance)


def squared_magnitude(values):
    """``|v|^2`` of a real or complex NumPy array or torch tensor (a real OTF is squared, not multiplied as complex).

    >>> squared_magnitude(np.array([3 + 4j, 2.0])).real.tolist()
    [25.0, 4.0]
    """
    complex_ = values.is_complex() if hasattr(values, "is_complex") else np.iscomplexobj(values)
    return values.real ** 2 + values.imag ** 2 if complex_ else values * values


#: Most grid pixels (windows x FFT grid) filtered in one torch batch: bounds its memory (about 0.5 GB).
BATCH_PIXELS = 4_000_000


def same_size_batches(kernels: dict[int, np.ndarray], grid_pixels: Callable[[int], int]) -> Iterator[list[int]]:
    """The keys of ``kernels`` (window index to PSF), grouped by the PSFs' size and cut so that each group's
    windows span at most :data:`BATCH_PIXELS` of FFT grid (``grid_pixels(size)`` per window).

    Examples
    --------
    >>> kernels = {0: np.ones((3, 5, 5)), 1: np.ones((3, 3, 3)), 2: np.ones((3, 5, 5)), 3: np.ones((3, 5, 5))}
    >>> list(same_size_batches(kernels, lambda size: BATCH_PIXELS // 2))
    [[1], [0, 2], [3]]
    """
    for size in sorted({k.shape[-1] for k in kernels.values()}):
        members = [n for n, k in kernels.items() if k.shape[-1] == size]
        step = max(1, BATCH_PIXELS // grid_pixels(size))
        for start in range(0, len(members), step):
            yield members[start:start + step]
