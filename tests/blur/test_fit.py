"""Fitting the forward model to a focus pair: each measure against a pair whose blur is known."""

import numpy as np
import pytest
from skimage.data import immunohistochemistry

from wsi_deblur.blur.fit import fit_defocus, noise_sigma, spectral_distance, ssim_inner, transfer_profile
from wsi_deblur.blur.psf import defocus_psf
from wsi_deblur.blur.simulate import Optics, convolve_rgb, defocus_psf_optics

SHARP = immunohistochemistry()[:384, :384].astype(np.float64)


def test_transfer_of_a_gaussian_blur_is_its_otf_and_never_negative():
    sigma = 2.0
    transfer = transfer_profile(SHARP, convolve_rgb(SHARP, defocus_psf(sigma)), n_rings=10)
    f = (np.arange(10) + 0.5) * 0.05  # ring centres, cycles per pixel
    expected = np.exp(-2 * (np.pi * sigma * f) ** 2)
    np.testing.assert_allclose(transfer[:, :5], np.broadcast_to(expected[:5], (3, 5)), atol=0.05)
    assert transfer.min() > -0.02


def test_transfer_of_pupil_defocus_inverts_contrast_past_its_first_zero():
    blurred = convolve_rgb(SHARP, defocus_psf_optics(3.0, Optics(numerical_aperture=0.75, mpp=0.5)))
    green = transfer_profile(SHARP, blurred)[1]
    assert green[0] > 0.8 and green.min() < -0.03  # a Gaussian stays above -0.02 (the test above)


def test_fit_defocus_finds_the_distance_and_aperture_of_a_simulated_pair():
    blurred = convolve_rgb(SHARP, defocus_psf_optics(2.5, Optics(numerical_aperture=0.65, mpp=0.5)))
    fit = fit_defocus(SHARP, blurred, 0.5, apertures=(0.5, 0.65, 0.85), distances_um=(1.5, 2.0, 2.5, 3.0, 3.5))
    assert (fit.numerical_aperture, fit.defocus_um) == (0.65, 2.5) and fit.ssim > 0.99


def test_noise_sigma_of_a_noisy_flat_field():
    noisy = 128 + np.random.default_rng(0).normal(0, 3.0, (256, 256, 3))
    assert noise_sigma(noisy) == pytest.approx(3.0 / np.sqrt(3), rel=0.1)  # the grey average of 3 channels


def test_spectral_distance_is_zero_for_the_same_spectrum_and_grows_with_blur():
    assert spectral_distance(SHARP, SHARP) == 0
    mild, strong = (spectral_distance(convolve_rgb(SHARP, defocus_psf(s)), SHARP) for s in (1.0, 3.0))
    assert 0 < mild < strong


def test_the_linear_filter_fitted_on_one_field_restores_another_blurred_alike():
    """The linear limit is a property of the optics: fitted on one field, it carries to another."""
    from wsi_deblur.blur.fit import apply_ring_filter, linear_filter_profile
    from wsi_deblur.blur.simulate import Optics, convolve_rgb, defocus_psf_optics
    from wsi_deblur.synthetic import SyntheticSlide

    fields = SyntheticSlide((256, 512), tissue=False, seed=3).render(0, 0, 256, 512)
    psf = defocus_psf_optics(2.0, Optics(numerical_aperture=0.75, mpp=0.5))
    rng = np.random.default_rng(0)
    blurred = np.clip(np.rint(convolve_rgb(fields, psf) + rng.normal(0, 1.0, fields.shape)), 0, 255).astype(np.uint8)
    left, right = np.s_[:, :256], np.s_[:, 256:]
    restored = apply_ring_filter(blurred[right], linear_filter_profile(fields[left], blurred[left]))
    assert ssim_inner(restored, fields[right]) > ssim_inner(blurred[right], fields[right]) + 0.1


def test_wiener_to_the_in_focus_optics_leaves_an_in_focus_image_as_it_is():
    from wsi_deblur.blur.simulate import Optics
    from wsi_deblur.restore.wiener import wiener_to_in_focus
    from wsi_deblur.synthetic import SyntheticSlide

    image = SyntheticSlide((128, 160), tissue=False, seed=5).render(0, 0, 128, 160)
    out = wiener_to_in_focus(image, 0.0, Optics(numerical_aperture=0.75, mpp=0.5))
    assert np.abs(out.astype(int) - image.astype(int)).max() <= 1
