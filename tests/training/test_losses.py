"""The training SSIM is the evaluated SSIM (scikit-image's), and it can be trained on."""

import numpy as np
import torch
from skimage.metrics import structural_similarity

from wsi_deblur.synthetic import SyntheticSlide
from wsi_deblur.training.losses import l1_ssim_loss, ssim


def test_ssim_equals_scikit_image_on_tissue_and_its_blur():
    from scipy.ndimage import gaussian_filter

    sharp = SyntheticSlide((96, 80), tissue=False).render(0, 0, 96, 80)
    blurred = gaussian_filter(sharp.astype(float), (2, 2, 0)).round().astype(np.uint8)
    expected = structural_similarity(sharp, blurred, channel_axis=2)
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    assert abs(ssim(as_tensor(sharp), as_tensor(blurred)).item() - expected) < 1e-5
    assert 0.2 < expected < 0.95  # a case where the figure means something


def test_the_loss_is_zero_on_the_target_and_its_gradient_sharpens():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.random((1, 3, 32, 32))).float()
    assert l1_ssim_loss(target, target).item() < 1e-6
    guess = torch.full_like(target, 0.5, requires_grad=True)
    l1_ssim_loss(guess, target).backward()
    stepped = (guess - 0.5 * guess.grad).detach()
    assert ssim(stepped, target) > ssim(guess.detach(), target)
