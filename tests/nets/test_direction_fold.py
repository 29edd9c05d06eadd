import numpy as np
import pytest
import torch

from wsi_deblur.blur.psf import motion_psf
from wsi_deblur.nets.direction_fold import fold, fold_direction, restore_folded, unfold
from wsi_deblur.nets.fast import FastDeblurNet


@pytest.mark.parametrize("angle", [0.0, 30.0, 45.0, 46.0, 77.0, 90.0, 120.0, 135.0, 170.0, 179.5, -20.0, 200.0])
def test_folding_the_image_folds_its_motion_into_0_to_45_degrees(angle):
    mirror, transpose, folded = fold_direction(angle)
    assert 0.0 <= folded <= 45.0
    kernel = torch.tensor(motion_psf(31, angle))[None, None]
    moved = fold(kernel, mirror, transpose)[0, 0].numpy()
    np.testing.assert_allclose(moved, motion_psf(31, folded), atol=1e-9)  # the same line, exactly


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("transpose", [False, True])
def test_unfold_undoes_fold_exactly(mirror, transpose):
    images = torch.rand(2, 3, 40, 56)
    folded = fold(images, mirror, transpose)
    assert folded.shape[-2:] == ((56, 40) if transpose else (40, 56))
    assert torch.equal(unfold(folded, mirror, transpose), images)


def directional_net() -> FastDeblurNet:
    torch.manual_seed(0)
    net = FastDeblurNet((8, 16), directional=True).eval()
    with torch.no_grad():  # a direction that matters (trained networks learn it; zeros start as the identity)
        net.film.weight.normal_(0.0, 0.5)
    return net


def test_the_network_is_told_the_folded_direction():
    net, image = directional_net(), torch.rand(1, 3, 48, 64)
    with torch.inference_mode():
        at_30 = restore_folded(net, image, [30.0])
        assert not torch.allclose(at_30, restore_folded(net, image, [10.0]), atol=1e-4)
        # an image mirrored, with its direction mirrored (180 - a), folds back to the same pixels and angle
        mirrored = restore_folded(net, image.flip(-1), [150.0])
        transposed = restore_folded(net, image.transpose(-1, -2), [60.0])
    assert torch.equal(mirrored, at_30.flip(-1))
    assert torch.equal(transposed, at_30.transpose(-1, -2))


def test_images_of_a_batch_are_restored_as_if_alone():
    net, images = directional_net(), torch.rand(4, 3, 40, 40)
    angles = [10.0, 100.0, 60.0, 170.0]  # all four folds
    with torch.inference_mode():
        together = restore_folded(net, images, angles)
        alone = torch.cat([restore_folded(net, images[i:i + 1], angles[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_a_directional_network_needs_the_direction():
    with pytest.raises(ValueError, match="folded motion direction"):
        directional_net()(torch.rand(1, 3, 32, 32))
