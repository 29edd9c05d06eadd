"""OTFs of kernels on an FFT grid: the cosine sums of symmetric kernels equal their FFT."""

import numpy as np
import pytest
import torch

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf
from wsi_deblur.blur.otf import is_symmetric, kernel_otf, symmetric_kernel_otf
from wsi_deblur.blur.psf import psf_to_otf


@pytest.mark.parametrize("estimate, model", [
    (BlurEstimate("defocus", defocus_sigma_px=3.0), "pupil"),   # three channels of their own
    (BlurEstimate("defocus", defocus_sigma_px=2.0), "disc"),
    (BlurEstimate("motion", motion_length_px=9.0, motion_angle_deg=30.0), "pupil"),  # not symmetric: the FFT
])
def test_kernel_otf_is_the_fft_of_the_kernel(estimate, model):
    kernels = estimate_psf(estimate, 0.5, model=model)
    shape = (96, 70)  # odd and even sides, not square
    got = kernel_otf(torch.from_numpy(np.asarray(kernels, np.float32)), shape).numpy()
    truth = np.stack([psf_to_otf(k, shape) for k in kernels])
    assert np.abs(got - truth).max() < 2e-6
    assert is_symmetric(kernels) == (estimate.label == "defocus")


def test_a_corner_of_the_mirrored_grid_is_the_first_frequencies():
    """What the Wiener restorer's DCT route takes: the first (y, x) frequencies of the (2y, 2x) grid."""
    disc = estimate_psf(BlurEstimate("defocus", defocus_sigma_px=2.5), 0.5, model="disc")[:1]
    full = psf_to_otf(disc[0], (120, 90)).real
    corner = symmetric_kernel_otf(torch.from_numpy(disc), (120, 90), (60, 45))[0].numpy()
    assert np.abs(corner - full[:60, :45]).max() < 2e-6


def test_a_kernel_wider_than_the_grid_wraps_onto_it_as_an_fft_would():
    from wsi_deblur.blur.psf import disc_psf

    kernel = disc_psf(9.0)  # 19 px or so, on a 12 x 10 grid
    shape = (12, 10)
    c = kernel.shape[0] // 2
    folded = np.zeros(shape)
    for (a, b), v in np.ndenumerate(kernel):
        folded[(a - c) % shape[0], (b - c) % shape[1]] += v
    got = kernel_otf(torch.from_numpy(kernel)[None].float(), shape)[0].numpy()
    assert np.abs(got - np.fft.rfft2(folded)).max() < 2e-6
