import numpy as np
import pytest
import torch
from skimage.data import immunohistochemistry
from skimage.metrics import structural_similarity as ssim

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import estimate_psf, sigma_px_for_defocus
from wsi_deblur.blur.otf import blur_otf, psf_to_otf
from wsi_deblur.blur.psf import motion_psf
from wsi_deblur.blur.simulate import convolve_rgb
from wsi_deblur.nets.bcr import BCRNet, periodic_smooth
from wsi_deblur.nets.runtime import build_network
from wsi_deblur.training.batches import augment_with_directions, pair_psf

SHARP = immunohistochemistry()[100:292, 100:292]


def test_periodic_and_smooth_parts_add_up_and_the_smooth_one_holds_the_border_jumps():
    images = torch.rand(2, 3, 40, 56, dtype=torch.float64)
    periodic, smooth = periodic_smooth(images)
    p = torch.fft.irfft2(periodic, s=(40, 56), norm="ortho")
    s = torch.fft.irfft2(smooth, s=(40, 56), norm="ortho")
    torch.testing.assert_close(p + s, images)
    # Moisan: the periodic Laplacian of the smooth part is the boundary image (the jumps across opposite borders)
    laplacian = sum(torch.roll(s, shift, dim) for shift in (1, -1) for dim in (-1, -2)) - 4 * s
    boundary = torch.zeros_like(images)
    boundary[..., 0, :] += images[..., -1, :] - images[..., 0, :]
    boundary[..., -1, :] -= images[..., -1, :] - images[..., 0, :]
    boundary[..., :, 0] += images[..., :, -1] - images[..., :, 0]
    boundary[..., :, -1] -= images[..., :, -1] - images[..., :, 0]
    torch.testing.assert_close(laplacian, boundary - boundary.mean((-1, -2), keepdim=True))


@pytest.mark.parametrize("label, kw", [("defocus", {"defocus_sigma_px": 2.0}), ("defocus", {"defocus_sigma_px": 4.5}),
                                       ("motion", {"motion_length_px": 17.0, "motion_angle_deg": 30.0}),
                                       ("motion", {"motion_length_px": 9.0, "motion_angle_deg": 125.0})])
def test_the_otf_is_that_of_the_estimated_psf(label, kw):
    """The tabulated pupil defocus and the analytic line against the FFT of the kernels the guard uses."""
    estimate = BlurEstimate(label, **kw)
    if label == "defocus":
        kernel = estimate_psf(estimate, 0.5, model="pupil")[1]  # bcr's table is the pupil's
        focused = estimate_psf(BlurEstimate("defocus", defocus_um=1e-6), 0.5, model="pupil")[1]
        in_focus = np.real(psf_to_otf(focused, (128, 128)))
        truth = np.real(psf_to_otf(kernel, (128, 128))) / in_focus
    else:
        truth = np.real(psf_to_otf(motion_psf(kw["motion_length_px"], kw["motion_angle_deg"]), (128, 128)))
    psf = torch.tensor([[kw.get("defocus_sigma_px", 0.0), kw.get("motion_length_px", 0.0),
                         kw.get("motion_angle_deg", 0.0)]])
    otf = blur_otf(psf, 128, 128)[0, 0].numpy()
    assert np.sqrt(np.mean((otf - truth) ** 2)) < 0.05


@pytest.mark.parametrize("sigma", [2.0, 4.5])
def test_the_disc_otf_is_that_of_the_disc_wiener_is_told(sigma):
    """``defocus_model="disc"``: the OTF of the disc kernel the Wiener restorer uses for the same estimate."""
    kernel = estimate_psf(BlurEstimate("defocus", defocus_sigma_px=sigma), 0.5, model="disc")[1]
    truth = np.real(psf_to_otf(kernel, (128, 128)))
    otf = blur_otf(torch.tensor([[sigma, 0.0, 0.0]]), 128, 128, defocus_model="disc")[0, 0].numpy()
    assert np.sqrt(np.mean((otf - truth) ** 2)) < 0.02
    assert otf.min() < -0.08  # past its first zero it inverts contrast, deeper than the pupil's


def test_a_disc_network_keeps_its_shape_through_its_weights_file(tmp_path):
    from wsi_deblur.nets.files import save_network
    from wsi_deblur.nets.runtime import network_from_weights

    net = BCRNet(defocus_model="disc")
    save_network(net, tmp_path / "deblur_bcr_all.safetensors", "bcr", blur="all")
    again, config = network_from_weights(tmp_path / "deblur_bcr_all.safetensors")
    assert config["defocus_model"] == "disc" and again.banks[0].defocus_model == "disc"
    with pytest.raises(ValueError, match="defocus_model 'gauss'"):
        BCRNet(defocus_model="gauss")


def test_a_coarser_grid_sees_the_same_optics():
    psf = torch.tensor([[3.0, 12.0, 40.0]])
    fine, coarse = blur_otf(psf, 128, 128), blur_otf(psf, 64, 64, factor=2)
    torch.testing.assert_close(coarse[:, 0, :32, :16], fine[:, 0, :32, :16], atol=0.03, rtol=0)


def test_an_uncertain_width_keeps_the_low_frequencies_and_drops_the_sign_past_the_first_zero():
    psf = torch.tensor([[4.0, 0.0, 0.0], [0.0, 20.0, 0.0]])
    exact = blur_otf(psf, 128, 128)
    mean, square = blur_otf(psf, 128, 128, uncertainty=0.25)
    torch.testing.assert_close(mean[:, 0, :2], exact[0, :, 0, :2], atol=0.02, rtol=0)  # the mean and next to it
    assert bool((square >= mean * mean - 1e-6).all())  # a variance is never negative
    lobes = exact[0, :, 0, 10:40].abs()  # past the first zero (0.08 and 0.05 cycles/px)
    assert float(mean[:, 0, 10:40].abs().mean()) < 0.6 * float(lobes.mean())


def bcr_input(image):
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


def test_an_in_focus_psf_gives_the_input_back_and_any_size_works():
    net = BCRNet().eval()
    x = torch.rand(2, 3, 37, 61)
    with torch.no_grad():
        out = net(x, torch.zeros(2, 3))
    assert out.shape == x.shape
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_the_untrained_network_is_already_a_deconvolution_of_the_psf_it_is_told():
    sigma = sigma_px_for_defocus(3.0, 0.5)
    psf = estimate_psf(BlurEstimate("defocus", defocus_um=3.0), 0.5, model="pupil")
    blurred = np.clip(convolve_rgb(SHARP, psf), 0, 255)
    blurred = np.rint(blurred + np.random.default_rng(0).normal(0, 1.0, blurred.shape)).clip(0, 255).astype(np.uint8)
    with torch.no_grad():
        out = BCRNet().eval()(bcr_input(blurred), torch.tensor([[sigma, 0.0, 0.0]]))
    restored = (out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    inner = np.s_[16:-16, 16:-16]
    assert ssim(restored[inner], SHARP[inner], channel_axis=2) > ssim(blurred[inner], SHARP[inner], channel_axis=2) + 0.05


def test_each_window_is_restored_on_its_own():
    net = BCRNet().eval()
    torch.manual_seed(0)
    for p in net.parameters():  # a network whose every part does something
        p.data.add_(0.01 * torch.randn_like(p))
    x = torch.rand(3, 3, 48, 48)
    psf = torch.tensor([[2.0, 0.0, 0.0], [0.0, 15.0, 60.0], [3.0, 10.0, 120.0]])
    with torch.no_grad():
        together = net(x, psf)
        alone = torch.cat([net(x[i:i + 1], psf[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_bcr_is_small_and_has_no_folding():
    net = build_network("bcr")
    assert sum(p.numel() for p in net.parameters()) <= 250_000
    assert build_network("bcr", {"width_uncertainty": 0.25}).banks[0].width_uncertainty == 0.25
    with pytest.raises(ValueError, match="not folded"):
        build_network("bcr", {"directional": True})


def test_turned_training_pairs_keep_their_motion_direction():
    """The pair's blur after augmentation is the PSF at the augmented direction (motion_psf's own convention)."""
    from scipy.signal import fftconvolve

    grey = SHARP[..., 1].astype(float) / 255
    blurred = fftconvolve(grey, motion_psf(15.0, 30.0), mode="same")
    x, y = torch.from_numpy(blurred)[None, None].float(), torch.from_numpy(grey)[None, None].float()
    for seed in range(6):
        xa, ya, psf = augment_with_directions(x, y, torch.tensor([[0.0, 15.0, 30.0]]), np.random.default_rng(seed))
        again = fftconvolve(ya[0, 0].numpy(), motion_psf(15.0, float(psf[0, 2])), mode="same")
        assert np.abs(again - xa[0, 0].numpy())[20:-20, 20:-20].mean() < 1e-3


def test_training_pairs_are_told_the_blur_of_their_type():
    kinds = np.array([0, 1, 2, 3])
    params = np.array([[0.3, 0, 0, 0.75, 0.2], [3, 0, 0, 0.75, 2.4], [0.1, 20, 30, 0.75, 0.1], [2, 15, 100, 0.75, 1.8]],
                      np.float32)
    told = pair_psf(kinds, params, np.random.default_rng(0), width_error=0.0, direction_error_deg=0.0)
    np.testing.assert_allclose(told, [[0, 0, 0], [2.4, 0, 0], [0, 20, 30], [1.8, 15, 100]], rtol=1e-6)


def test_it_trains_after_it_restored_in_inference_mode():
    """Its cached frequency basis, first built while restoring, must not be an inference tensor when it trains."""
    from wsi_deblur.nets import bcr

    bcr._radial_basis.cache_clear()
    net, x, psf = BCRNet(), torch.rand(1, 3, 40, 40), torch.tensor([[2.0, 0.0, 0.0]])
    with torch.inference_mode():
        net(x, psf)
    net(x, psf).mean().backward()  # raised "Inference tensors cannot be saved for backward"
    assert net.banks[0].regularisation.weight.grad is not None
