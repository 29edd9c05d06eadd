"""Training losses: the deblurring networks' (L1, MSE, L1 + SSIM, and with m-rBCR's Fourier L1) and BlurNet's.

SSIM here is the figure the evaluation reports (scikit-image's
``structural_similarity`` with its defaults: a 7 x 7 uniform window, sample
covariance, K1 = 0.01, K2 = 0.03, averaged over the pixels whose window lies
inside the image, per channel), written in torch so that it can be trained on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from wsi_deblur.nets.blurnet import DEFOCUS_SCALE_UM, MOTION_SCALE_PX

#: Weight of L1 beside (1 - SSIM) in the ``l1+ssim`` loss: the two about equal at the
#: shipped networks' errors (L1 ~0.03, 1 - SSIM ~0.3), so that SSIM, blind to small
#: shifts of the local mean, does not buy structure with colour (at 0.16 / 0.84, as
#: Zhao et al. 2017 mix them, restored defocus drifted by up to 1 grey level).
L1_WEIGHT = 10.0


def box_mean(images: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over every ``window`` x ``window`` box inside ``(n, c, y, x)`` images (valid boxes only).

    Two separable passes (a row, then a column), several times faster to
    train through on a CPU than ``avg_pool2d``'s 2-D window.
    """
    c = images.shape[1]
    row = images.new_full((c, 1, 1, window), 1.0 / window)
    return F.conv2d(F.conv2d(images, row, groups=c), row.transpose(2, 3), groups=c)


def ssim(x: torch.Tensor, y: torch.Tensor, *, window: int = 7, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of ``(n, c, y, x)`` images ``x`` and ``y``, as scikit-image computes it per channel.

    Differentiable; one value over the batch, its channels and the pixels
    whose window lies inside the image (scikit-image's crop).
    """
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = x.float(), y.float()
    means = box_mean(torch.cat([x, y, x * x, y * y, x * y], 1), window)  # one pass for the five local means
    mx, my, mxx, myy, mxy = means.chunk(5, 1)
    cov_norm = window * window / (window * window - 1)  # sample covariance, as scikit-image
    vx, vy, vxy = cov_norm * (mxx - mx * mx), cov_norm * (myy - my * my), cov_norm * (mxy - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


def l1_ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(1 - SSIM) + ``L1_WEIGHT`` * L1, images in 0-1."""
    return (1.0 - ssim(output, target)) + L1_WEIGHT * F.l1_loss(output, target)


def blurnet_targets(severity: torch.Tensor) -> torch.Tensor:
    """(defocus/8, length/40, cos 2a, sin 2a) from (defocus_um, length_px, angle_deg, na)."""
    a = torch.deg2rad(severity[:, 2]) * 2
    return torch.stack([severity[:, 0] / DEFOCUS_SCALE_UM, severity[:, 1] / MOTION_SCALE_PX,
                        torch.cos(a), torch.sin(a)], dim=1)


def blurnet_loss(out: torch.Tensor, labels: torch.Tensor, severity: torch.Tensor) -> torch.Tensor:
    """BlurNet's loss: cross-entropy on the class, smooth L1 on the severities.

    The defocus distance and motion length count for every crop, the motion
    direction only for motion and mixed crops (labels 2 and 3).
    """
    t = blurnet_targets(severity)
    moving = (labels >= 2).float()
    ce = F.cross_entropy(out[:, :4], labels)
    sev = F.smooth_l1_loss(out[:, 4:6], t[:, :2], beta=0.05)
    ang = (F.smooth_l1_loss(out[:, 6:], t[:, 2:], reduction="none", beta=0.1).sum(1) * moving).mean()
    return ce + 2.0 * sev + 0.5 * ang


def fourier_l1(output: torch.Tensor, target: torch.Tensor, *, scales: int = 3) -> torch.Tensor:
    """m-rBCR's frequency term: mean ``|FFT(output - target)|`` (orthonormal), averaged over full, 1/2 and 1/4 size.

    Orthonormal, so a white error of std ``e`` scores about ``e``, as L1 does;
    smaller scales by block averaging.
    """
    error = output.float() - target.float()
    total = error.new_zeros(())
    for s in range(scales):
        if s:
            error = F.avg_pool2d(error, 2)
        total = total + torch.fft.rfft2(error, norm="ortho").abs().mean()
    return total / scales


def l1_ssim_fourier_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`l1_ssim_loss` plus m-rBCR's Fourier L1 at half L1's weight (as its MSE + 0.5 x Fourier L1)."""
    return l1_ssim_loss(output, target) + 0.5 * L1_WEIGHT * fourier_l1(output, target)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": F.l1_loss, "mse": F.mse_loss, "l1+ssim": l1_ssim_loss, "l1+ssim+fourier": l1_ssim_fourier_loss}
