import numpy as np
from scipy.signal import fftconvolve
from skimage.data import immunohistochemistry
from skimage.metrics import peak_signal_noise_ratio

from wsi_deblur.blur import BlurEstimate, defocus_psf, motion_psf
from wsi_deblur.restore import WienerRestorer, wiener_deconvolve


def test_motion_psf_is_a_normalised_line():
    k = motion_psf(21, 0)
    assert abs(k.sum() - 1) < 1e-12
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert (k.sum(axis=1) > 0).sum() <= 2  # horizontal: one or two rows


def test_wiener_with_the_true_psf_improves_psnr():
    sharp = immunohistochemistry().astype(np.float64)[:256, :256]
    psf = defocus_psf(2.5)
    blurred = np.stack([fftconvolve(sharp[..., c], psf, mode="same") for c in range(3)], axis=-1)
    blurred = np.clip(blurred + np.random.default_rng(0).normal(0, 1.0, blurred.shape), 0, 255)
    restored = np.clip(wiener_deconvolve(blurred, psf, balance=0.005), 0, 255)
    crop = (slice(16, -16), slice(16, -16))
    before = peak_signal_noise_ratio(sharp[crop], blurred[crop], data_range=255)
    after = peak_signal_noise_ratio(sharp[crop], restored[crop], data_range=255)
    assert after > before + 1.5


def test_in_focus_estimate_leaves_window_alone():
    win = immunohistochemistry()[None, :128, :128]
    out = WienerRestorer().restore(win, [BlurEstimate("in_focus")])
    np.testing.assert_array_equal(out, win)
    assert out.dtype == np.uint8


def test_the_batched_restorer_equals_the_per_channel_filter():
    """WienerRestorer (windows batched in torch, float32) against wiener_deconvolve (NumPy, float64)."""
    from wsi_deblur.blur.estimated_psf import estimate_psf

    windows = np.stack([immunohistochemistry()[:160, :192], immunohistochemistry()[200:360, 100:292]])
    estimates = [BlurEstimate("defocus", defocus_um=2.0), BlurEstimate("mixed", defocus_um=1.0,
                                                                       motion_length_px=9, motion_angle_deg=20)]
    for model in ("disc", "pupil"):
        out = WienerRestorer(psf_model=model).restore(windows, estimates)
        for window, est, got in zip(windows, estimates, out):
            psf = estimate_psf(est, 0.5, model=model)
            want = np.stack([wiener_deconvolve(window[:, :, c], psf[c], balance=0.1) for c in range(3)], axis=2)
            assert np.abs(got.astype(np.float64) - np.clip(want, 0, 255)).max() <= 1.0


def test_a_symmetric_kernel_filters_the_same_through_the_dct_at_any_size():
    """A disc is even in each axis: its mirrored FFT filter is a product in the DCT-II at a quarter of the size."""
    import torch

    from wsi_deblur._shared.fourier import filter_mirrored_batch, wiener_gain
    from wsi_deblur.blur.otf import kernel_otf
    from wsi_deblur.blur.psf import disc_psf

    kernel = torch.from_numpy(disc_psf(3.3))[None, None].float()
    for h, w in [(12, 13), (37, 61), (64, 64)]:
        images = torch.rand(2, 3, h, w, dtype=torch.float64) * 255
        gain = wiener_gain(kernel_otf(kernel, (2 * h, 2 * w)), 0.1).to(torch.complex128)
        mirrored = filter_mirrored_batch(images, gain)
        torch.testing.assert_close(filter_mirrored_batch(images, gain, even=True), mirrored, atol=1e-3, rtol=0)
        torch.testing.assert_close(filter_mirrored_batch(images, gain[..., :h, :w], even=True), mirrored,
                                   atol=1e-3, rtol=0)
