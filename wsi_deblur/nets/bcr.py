"""``bcr``: a learned deconvolution in the Fourier domain, told each window's PSF (after m-rBCR).

m-rBCR (Li, Kudryashev and Yakimovich, ECCV 2024) restores microscopy images
from a frequency-domain representation with very few parameters. Blur is a
product there: the spectrum of a blurred window is the sharp one's times the
optical transfer function (OTF) of its PSF. BlurNet already estimates that
PSF for every tile (defocus width, motion length and direction), so this
network does not guess the blur from texture: it is *given* the OTF
(:mod:`wsi_deblur.blur.otf`) and learns how far to trust each frequency.

``BCRNet``
    1. A pyramid of the window: full size, 1/2 and 1/4 by block averaging
       (area, anti-aliased; not strided picks).
    2. At each scale, a bank of *learned Wiener filters* on the window's
       spectrum (at full size on its luminance, the mean of R, G and B; its
       colour, less detailed, at 1/2 and 1/4):
       ``G = H (1 + lam) / (H^2 + lam)``, with ``H`` the estimated OTF at
       that scale's frequencies (optionally ``E[H] (1 + lam) / (E[H^2] + lam)``,
       its moments over a log-normal error of the estimated widths,
       ``width_uncertainty``: past a first zero whose place the estimate
       cannot pin, the sign of ``H`` is unknown and ``G`` falls to 0; tried,
       and worse on both the held-out pairs and the real one: docs/bcr.md),
       and ``log lam`` a learned radial
       profile (8 hat functions of the frequency radius) whose coefficients
       are a linear map of the window's blur (width, length) and of its
       measured high-frequency noise power. ``G`` is 1 wherever the PSF
       passes everything (an in-focus estimate gives the input back exactly)
       and goes to 0 where the PSF passed nothing: what the optics cannot
       justify is left out, not invented. Each window is split into its
       periodic and smooth parts first (Moisan 2011), so the FFT sees no
       edges and needs no mirrored copy; the smooth part passes unchanged.
    3. A small encoder-decoder at 1/4 and 1/8 of the size (pixel-unshuffled,
       as ``fast``) sees the input, every filter's output at every scale,
       and predicts the residual on top of the input corrected by the
       full-size filter's luminance (the network starts as that plain
       Wiener deconvolution).

125 k parameters (``fast``: 517 k per network); one network serves every blur type,
as its PSF says which blur it is.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from wsi_deblur.blur.otf import DEFOCUS_OTF_MODELS, blur_otf, frequency_grid
from wsi_deblur.nets.layers import pad_to_multiple

#: Hat functions of the frequency radius that each filter's regularisation is a sum of.
RADIAL_BASIS = 8
#: Initial regularisation (``lam`` at every frequency) of each filter of a bank: gentle, then firm.
INITIAL_LAMBDAS = (0.02, 0.2)
#: What the regularisation is told of each window: defocus width / 6 px, motion length / 40 px, noise.
CONDITIONS = 3


def periodic_smooth(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectra of the periodic and smooth parts of ``(n, c, h, w)`` images (Moisan's decomposition).

    The image is ``p + s``: ``s`` is the smooth image whose Laplacian holds
    all the jumps between opposite borders, ``p`` has none, so its FFT is
    free of the cross an image's edges make. Returns ``(P, S)``, their
    orthonormal ``rfft2`` (``S`` is 0 at the mean).
    """
    h, w = images.shape[-2:]
    spectrum = torch.fft.rfft2(images, norm="ortho")
    jump_rows = torch.fft.rfft(images[..., -1, :] - images[..., 0, :], norm="ortho")  # (..., wf)
    jump_cols = torch.fft.fft(images[..., :, -1] - images[..., :, 0], norm="ortho")  # (..., h)
    fy, fx = frequency_grid(h, w, device=images.device)
    lead = images.shape[:-2]
    ey = ((1 - torch.exp(2j * torch.pi * fy)) / h ** 0.5).expand(*lead, h, 1)
    ex = ((1 - torch.exp(2j * torch.pi * fx)) / w ** 0.5).expand(*lead, 1, w // 2 + 1)
    # the boundary image (the jumps on the first and last rows and columns) transformed: two outer products,
    # ey R + C ex, as one matrix product
    boundary = torch.cat([ey, jump_cols[..., None]], -1) @ torch.cat([jump_rows[..., None, :], ex], -2)
    inverse_laplacian = 1 / (2 * torch.cos(2 * torch.pi * fy) + 2 * torch.cos(2 * torch.pi * fx) - 4 + 1e-30)
    inverse_laplacian[0, 0] = 0.0
    smooth = boundary.mul_(inverse_laplacian)
    return spectrum.sub_(smooth), smooth


@lru_cache(maxsize=32)
def _radial_basis(h: int, w: int, device: str) -> torch.Tensor:
    """``(RADIAL_BASIS, h, w // 2 + 1)`` hat functions of the radius (0 to the corner) on an rfft2 grid.

    Cached, so built outside inference mode whoever asks first: an inference tensor cannot take part in
    training, and a process that restores then trains (``adapt``, the test suite) would get one.
    """
    with torch.inference_mode(False):
        fy, fx = frequency_grid(h, w, device=device)
        r = torch.sqrt(fy * fy + fx * fx) / (0.5 * 2 ** 0.5) * (RADIAL_BASIS - 1)
        centres = torch.arange(RADIAL_BASIS, device=device, dtype=torch.float32)[:, None, None]
        return (1 - (r[None] - centres).abs()).clamp(min=0)


class WienerBank(nn.Module):
    """``filters`` learned Wiener filters of one scale: ``(n, c, h, w)`` -> corrections ``(n, filters * c, h, w)``.

    Each filter's output minus its input, which is what the network adds or
    sees: ``irfft((G - 1) P)``, ``P`` the periodic part's spectrum.
    """

    def __init__(self, filters: int, width_uncertainty: float = 0.0, defocus_model: str = "pupil") -> None:
        super().__init__()
        self.filters = filters
        self.width_uncertainty = float(width_uncertainty)
        self.defocus_model = defocus_model
        self.regularisation = nn.Linear(CONDITIONS, filters * RADIAL_BASIS)
        nn.init.zeros_(self.regularisation.weight)
        with torch.no_grad():
            start = torch.log(torch.tensor(INITIAL_LAMBDAS[:filters] + (INITIAL_LAMBDAS[-1],) * (filters - 2)))
            self.regularisation.bias.copy_(start.repeat_interleave(RADIAL_BASIS)[:filters * RADIAL_BASIS])

    def forward(self, images: torch.Tensor, psf: torch.Tensor, factor: float) -> torch.Tensor:
        n, c, h, w = images.shape
        periodic, _ = periodic_smooth(images.float())
        mean, square = blur_otf(psf, h, w, factor=factor, uncertainty=self.width_uncertainty,
                                defocus_model=self.defocus_model)[:, :, None]
        basis = _radial_basis(h, w, str(images.device))
        condition = torch.stack([psf[:, 0] / 6.0, psf[:, 1] / 40.0, (noise_power(periodic) + 4.0) / 2.0], dim=1)
        weight = self.regularisation.weight
        coefficients = self.regularisation(condition.to(weight.dtype)).float().view(n, self.filters, RADIAL_BASIS)
        lam = torch.exp(torch.einsum("nfr,ryx->nfyx", coefficients, basis))  # (n, f, h, wf)
        gain = (mean * (1 + lam)).div_(square + lam).sub_(1)[:, :, None]  # G - 1: (n, f, 1, h, wf)
        # filtered - images = irfft(G P + S) - irfft(P + S): the smooth part passes unchanged and cancels
        out = torch.fft.irfft2(periodic[:, None] * gain, s=(h, w), norm="ortho")
        return out.reshape(n, self.filters * c, h, w).to(images.dtype)


def noise_power(spectrum: torch.Tensor) -> torch.Tensor:
    """log10 of the mean power of an orthonormal ``rfft2`` ``(n, c, h, wf)`` beyond 1/4 cycle/px on both axes: ``(n,)``.

    What blur leaves there is mostly noise (a white noise of std s gives s^2).
    """
    h, wf = spectrum.shape[-2:]
    block = torch.view_as_real(spectrum[..., h // 4: h - h // 4, wf // 2:])
    return torch.log10(block.square().sum(-1).mean((1, 2, 3)) + 1e-10)


def _conv(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2)


class BCRNet(nn.Module):
    """Learned Wiener filters at three scales, told the PSF, then a small encoder-decoder on the residual.

    Parameters
    ----------
    widths : tuple of int
        Feature maps of the encoder-decoder at 1/4 and 1/8 resolution.
    filters : tuple of int
        Wiener filters at full, 1/2 and 1/4 resolution.
    width_uncertainty : float
        Log-normal std of the error of the told widths that the filters
        average the OTF over (0: the OTF as told; see the module).
    defocus_model : {"pupil", "disc"}
        The shape of the defocus PSF its OTFs are built from
        (:func:`~wsi_deblur.blur.otf.defocus_table`).

    Called as ``net(x, psf)``: ``x`` ``(n, 3, y, x)`` in [0, 1], any size
    (mirror-padded to a multiple of 8); ``psf`` ``(n, 3)``: each window's
    defocus Gaussian-equivalent std (px), motion length (px) and direction
    (degrees), zeros for none (see :func:`psf_conditions`).
    """

    stride = 8
    directional = False
    conditioning = "psf"

    def __init__(self, widths: tuple[int, int] = (24, 64), filters: tuple[int, int, int] = (1, 2, 2), *,
                 width_uncertainty: float = 0.0, defocus_model: str = "pupil") -> None:
        super().__init__()
        if not 0 <= width_uncertainty < 1:
            raise ValueError(f"width_uncertainty is a log-normal std in [0, 1), not {width_uncertainty}")
        if defocus_model not in DEFOCUS_OTF_MODELS:
            raise ValueError(f"defocus_model {defocus_model!r} is not one of {', '.join(DEFOCUS_OTF_MODELS)}")
        if len(widths) != 2 or len(filters) != 3 or min(filters) < 1:
            raise ValueError(f"bcr takes two widths and three filter counts, got {widths} and {filters}")
        a, b = widths
        self.widths, self.filters = tuple(widths), tuple(filters)
        self.width_uncertainty = float(width_uncertainty)
        self.defocus_model = defocus_model
        self.banks = nn.ModuleList(WienerBank(f, width_uncertainty, defocus_model) for f in filters)
        # one linear map of every pixel of each scale's 4 x 4, 2 x 2 and 1 x 1 blocks (a pixel-unshuffle and 1 x 1)
        self.head = nn.Conv2d(3 + filters[0], a, 4, stride=4)
        self.head_half = nn.Conv2d(3 * filters[1], a, 2, stride=2, bias=False)
        self.head_quarter = nn.Conv2d(3 * filters[2], a, 1, bias=False)
        self.enc = _conv(a, a)
        self.down = _conv(a, b, 2)
        self.mid1, self.mid2 = _conv(b, b), _conv(b, b)
        self.up = nn.ConvTranspose2d(b, a, 3, stride=2, padding=1, output_padding=1)
        self.dec = _conv(a, a)
        self.tail = _conv(a, 48)
        nn.init.zeros_(self.tail.weight)  # starts as the first full-size Wiener filter
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor, psf: torch.Tensor) -> torch.Tensor:
        padded, h, w = pad_to_multiple(x, self.stride)
        padded = padded.contiguous()  # the FFTs want rows contiguous
        half = F.avg_pool2d(padded, 2)
        pyramid = [padded.mean(1, keepdim=True), half, F.avg_pool2d(half, 2)]  # full size: luminance only
        corrections = [bank(level, psf, 2 ** s) for s, (bank, level) in enumerate(zip(self.banks, pyramid))]
        first = torch.cat([padded - 0.5, corrections[0]], 1)
        r = F.relu
        head = self.head(first) + self.head_half(corrections[1]) + self.head_quarter(corrections[2])
        if head.device.type == "cpu":  # the layout the CPU's convolutions run fastest in
            head = head.contiguous(memory_format=torch.channels_last)
        e = r(self.enc(r(head)))
        m = r(self.mid2(r(self.mid1(r(self.down(e))))))
        d = r(self.dec(r(self.up(m)) + e))
        residual = F.pixel_shuffle(self.tail(d), 4)
        return residual.add_(padded).add_(corrections[0])[..., :h, :w]  # the luminance correction on every channel

    @classmethod
    def from_config(cls, config: dict) -> BCRNet:
        """The network a weights file's config describes (untrained)."""
        if config.get("directional"):
            raise ValueError("the bcr architecture is told the whole PSF, direction included; it is not folded")
        return cls(tuple(config.get("widths") or (24, 64)),
                   width_uncertainty=float(config.get("width_uncertainty", 0.0)),
                   defocus_model=str(config.get("defocus_model", "pupil")))

    def config(self) -> dict:
        """What :meth:`from_config` needs to build this network again."""
        return {"widths": list(self.widths),
                **({"width_uncertainty": self.width_uncertainty} if self.width_uncertainty else {}),
                **({"defocus_model": self.defocus_model} if self.defocus_model != "pupil" else {})}
