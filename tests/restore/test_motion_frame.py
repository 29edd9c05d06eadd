import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from wsi_deblur.blur.psf import motion_psf
from wsi_deblur.restore.motion_frame import frame_side, from_motion_frame, restore_in_motion_frame, to_motion_frame


@pytest.mark.parametrize("angle", [0.0, 30.0, 77.0, 135.0, 170.0])
def test_motion_runs_along_x_in_the_motion_frame(angle):
    kernel = motion_psf(31, angle)
    image = np.zeros((101, 101))
    r = kernel.shape[0] // 2
    image[50 - r:50 + r + 1, 50 - r:50 + r + 1] = kernel
    framed = to_motion_frame(torch.tensor(image, dtype=torch.float32)[None, None], torch.tensor([angle]), 101)
    ys, xs = np.nonzero(framed[0, 0].numpy() > 0.2 * framed.max().item())
    assert ys.max() - ys.min() <= 2  # a line one or two pixels thick ...
    assert 28 <= xs.max() - xs.min() <= 32  # ... and as long as the motion, along x


def test_frame_holds_the_whole_image():
    assert frame_side(120, 90, 0.0) == 120
    assert frame_side(100, 100, 45.0) == 144  # 100 * sqrt(2) = 141.4, up to a multiple of 8


def test_there_and_back_again_keeps_smooth_images():
    rng = np.random.default_rng(0)
    images = torch.tensor(gaussian_filter(rng.random((2, 3, 120, 90)), (0, 0, 2, 2)), dtype=torch.float32)
    angles = torch.tensor([33.0, 120.0])
    side = max(frame_side(120, 90, float(a)) for a in angles)
    back = from_motion_frame(to_motion_frame(images, angles, side), angles, 120, 90)
    assert (back - images).abs().max().item() < 0.15 * images.std().item()


def test_identity_network_leaves_images_exactly_as_they_were():
    images = torch.rand(3, 3, 64, 80)
    out = restore_in_motion_frame(torch.nn.Identity(), images, torch.tensor([10.0, 60.0, 150.0]))
    assert torch.equal(out, images)  # zero residual: the input is never resampled
