"""The consistency guard keeps restorations that agree with the optics and refuses the rest."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import immunohistochemistry
from skimage.restoration import richardson_lucy

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blur.estimated_psf import defocus_um_for_sigma, estimate_psf, sigma_px_for_defocus
from wsi_deblur.blur.fit import ssim_inner
from wsi_deblur.blur.psf import motion_psf
from wsi_deblur.blur.simulate import add_sensor_noise, convolve_rgb
from wsi_deblur.restore.guard import GUARD_PSF_MODEL, GuardedRestorer, band_amplitude, guard_window
from wsi_deblur.restore.neural import NeuralRestorer
from wsi_deblur.restore.wiener import wiener_deconvolve

MPP = 0.5
DEFOCUS = BlurEstimate("defocus", {"in_focus": 0.0, "defocus": 1.0}, defocus_um=2.5)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Real IHC tissue (scikit-image), and it defocused 2.5 um through the pupil model with camera noise."""
    sharp = immunohistochemistry()[:320, :320]
    blurred = add_sensor_noise(convolve_rgb(sharp, estimate_psf(DEFOCUS, MPP)), np.random.default_rng(0),
                               photons=20000, read_noise=0.5)
    return sharp, np.clip(np.rint(blurred), 0, 255).astype(np.uint8)


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def richardson_lucy_rgb(image: np.ndarray, psf: np.ndarray, iterations: int = 30) -> np.ndarray:
    pad = psf.shape[-1]
    padded = np.pad(image / 255.0, ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    out = np.stack([richardson_lucy(padded[:, :, c], psf[c], num_iter=iterations, clip=False) for c in range(3)], 2)
    return _uint8(out[pad:-pad, pad:-pad] * 255)


def test_a_restorer_that_inverts_the_true_blur_is_kept(pair):
    sharp, blurred = pair
    psf = estimate_psf(DEFOCUS, MPP)
    restored = richardson_lucy_rgb(blurred, psf)
    assert ssim_inner(restored, sharp) > ssim_inner(blurred, sharp) + 0.05  # a real restoration
    out, report = guard_window(blurred, restored, psf)
    assert report.action == "restorer"
    assert report.consistency < 1.0  # it explains the input better than the input does
    np.testing.assert_array_equal(out, restored)


def test_the_sharp_field_itself_is_kept(pair):
    sharp, blurred = pair
    out, report = guard_window(blurred, sharp, estimate_psf(DEFOCUS, MPP))
    assert report.action == "restorer" and report.consistency < 1.0
    np.testing.assert_array_equal(out, sharp)


def test_a_restorer_that_adds_noise_is_pulled_back_toward_its_input():
    """Mild defocus passes most frequencies, so re-blurring sees added noise (under wide blur the
    reference cap bounds it: the test below).
    """
    mild = BlurEstimate("defocus", defocus_um=1.0)
    sharp = immunohistochemistry()[:320, :320]
    blurred = _uint8(add_sensor_noise(convolve_rgb(sharp, estimate_psf(mild, MPP)), np.random.default_rng(0),
                                      photons=20000, read_noise=0.5))
    noisy = _uint8(blurred + np.random.default_rng(1).normal(0, 15, blurred.shape))
    out, report = guard_window(blurred, noisy, estimate_psf(mild, MPP))
    assert report.action == "pulled back" and report.consistency > 1.25 and report.kept < 0.8
    assert ssim_inner(out, sharp) > ssim_inner(noisy, sharp) + 0.02
    assert guard_window(blurred, out, estimate_psf(mild, MPP))[1].consistency <= 1.26  # what is left passes


def test_a_restorer_that_inverts_another_psf_is_pulled_back(pair):
    sharp, blurred = pair
    wrong = motion_psf(25, 30.0)
    restored = _uint8(wiener_deconvolve(blurred, wrong, balance=0.003))
    out, report = guard_window(blurred, restored, estimate_psf(DEFOCUS, MPP))
    assert report.action == "pulled back"
    assert ssim_inner(out, sharp) > ssim_inner(restored, sharp)
    assert guard_window(blurred, out, estimate_psf(DEFOCUS, MPP))[1].consistency <= 1.26  # it passes now


def test_contrast_inverted_structure_is_refused(pair):
    sharp, blurred = pair
    inverted = _uint8(2.0 * blurred.astype(np.float64) - sharp)  # the correction pointing the wrong way
    assert guard_window(blurred, inverted, estimate_psf(DEFOCUS, MPP))[1].action == "pulled back"


def test_reference_caps_what_is_added_where_the_psf_passes_little(pair):
    sharp, blurred = pair
    psf = estimate_psf(DEFOCUS, MPP)
    rng = np.random.default_rng(2)
    textured = _uint8(sharp + rng.normal(0, 3, sharp.shape))  # restored, plus fine texture of its own
    reference = band_amplitude(sharp)
    free, _ = guard_window(blurred, textured, psf)
    capped, report = guard_window(blurred, textured, psf, reference=reference)
    assert report.action == "restorer"
    fine = slice(8, None)  # the rings where a 2.5 um defocus passes nothing
    assert report.capped and (band_amplitude(capped)[:, fine] <= reference[:, fine] * 1.15).all()  # measured unpadded
    assert (band_amplitude(free)[:, fine] > reference[:, fine] * 1.2).any()


def test_guarded_restorer_keeps_the_networks_restoration_and_reports_every_window(pair):
    sharp, blurred = pair
    fast = NeuralRestorer("fast", threads=2)
    windows, estimates = np.stack([blurred, sharp]), [DEFOCUS, BlurEstimate("in_focus")]
    guarded = GuardedRestorer(fast, mpp=MPP)
    out, reports = guarded.restore_checked(windows, estimates)
    assert [r.action for r in reports] == ["restorer", "none"]  # simulator blur: the network agrees with the optics
    np.testing.assert_array_equal(out, fast.restore(windows, estimates))
    assert ssim_inner(out[0], sharp) > ssim_inner(blurred, sharp) + 0.05
    np.testing.assert_array_equal(out[1], sharp)  # in focus: untouched
    assert guarded.name == "fast"


def test_options_are_checked_when_built():
    with pytest.raises(ValueError, match="balance"):
        GuardedRestorer(None, balance=0)
    with pytest.raises(ValueError, match="max_residual"):
        GuardedRestorer(None, max_residual=0)


def test_psf_of_a_width_only_estimate_matches_its_defocus():
    z = defocus_um_for_sigma(3.0, MPP)
    assert sigma_px_for_defocus(z, MPP) == pytest.approx(3.0, abs=1e-6)
    from_width = estimate_psf(BlurEstimate("defocus", defocus_sigma_px=3.0), MPP)
    from_distance = estimate_psf(BlurEstimate("defocus", defocus_um=z), MPP)
    np.testing.assert_allclose(from_width, from_distance)
    assert estimate_psf(BlurEstimate("in_focus"), MPP).shape == (3, 1, 1)
    mixed = estimate_psf(BlurEstimate("mixed", defocus_um=z, motion_length_px=20, motion_angle_deg=0), MPP)
    assert mixed.shape[2] > from_width.shape[2]  # the motion widens it along x
    np.testing.assert_allclose(mixed.sum(axis=(1, 2)), 1.0)


def consistency_oracle(window: np.ndarray, restored: np.ndarray, psf: np.ndarray, balance: float = 0.1) -> float:
    """The guard's consistency from its definition, in the image domain: the restoration blurred again by
    ``scipy.ndimage.convolve`` (mirrored edges), its residual and the input's own a PSF radius inside the
    window, their powers summed over the rings the PSF passes, against the input's plus the noise.
    """
    from scipy import fft as sfft
    from scipy.ndimage import convolve

    from wsi_deblur.blur.fit import noise_sigma, ring_power, rings
    from wsi_deblur.blur.psf import psf_to_otf
    from wsi_deblur.restore.guard import N_BANDS

    h, w = window.shape[:2]
    pad = psf.shape[-1] // 2 + 1
    grid = (sfft.next_fast_len(h + 2 * pad, real=True), sfft.next_fast_len(w + 2 * pad, real=True))
    idx = rings(grid, N_BANDS).ravel()
    inner = np.s_[pad:h - pad, pad:w - pad]
    counts = np.bincount(rings((h - 2 * pad, w - 2 * pad), N_BANDS).ravel(), minlength=N_BANDS + 1)[:N_BANDS]
    noise = noise_sigma(window, per_channel=True)
    total = base = allowed = 0.0
    for c in range(3):
        k2 = np.abs(psf_to_otf(psf[c], grid)) ** 2
        checked = (np.bincount(idx, k2.ravel(), minlength=N_BANDS + 1)
                   / np.maximum(np.bincount(idx, minlength=N_BANDS + 1), 1))[:N_BANDS] >= balance
        checked[0] = False
        y = window[:, :, c].astype(np.float64)
        reblurred = convolve(restored[:, :, c].astype(np.float64), psf[c], mode="reflect")
        own = convolve(y, psf[c], mode="reflect")
        for image, acc in ((reblurred - y, "total"), (own - y, "base")):
            p = (ring_power(image[inner][:, :, None], n_rings=N_BANDS)[0] * counts * checked).sum()
            total, base = (total + p, base) if acc == "total" else (total, base + p)
        allowed += noise[c] ** 2 * (counts * checked).sum()
    return float(np.sqrt(total / (base + allowed)))


@pytest.mark.parametrize("case", ["truth", "noisy", "another psf", "motion"])
def test_consistency_is_what_its_definition_says(pair, case):
    """The torch guard (padded spectra, batched) against the definition computed in the image domain."""
    sharp, blurred = pair
    psf = estimate_psf(DEFOCUS, MPP)
    restored = {"truth": sharp, "noisy": _uint8(sharp + np.random.default_rng(3).normal(0, 10, sharp.shape)),
                "another psf": _uint8(wiener_deconvolve(blurred, motion_psf(25, 30.0), balance=0.003)),
                "motion": sharp}[case]
    if case == "motion":
        psf = estimate_psf(BlurEstimate("motion", motion_length_px=15, motion_angle_deg=30), MPP)
        blurred = _uint8(convolve_rgb(sharp, psf))
    assert psf.shape[-1] % 2 == 1
    report = guard_window(blurred, restored, psf)[1]
    assert report.consistency == pytest.approx(consistency_oracle(blurred, restored, psf), abs=1e-3)


def test_a_batch_is_guarded_as_each_window_alone(pair):
    """GuardedRestorer.check (windows grouped by PSF size, transformed together) equals guard_window per window."""
    sharp, blurred = pair
    rng = np.random.default_rng(4)
    estimates = [DEFOCUS, BlurEstimate("defocus", defocus_um=1.0), BlurEstimate("in_focus"),
                 BlurEstimate("motion", motion_length_px=15, motion_angle_deg=30), DEFOCUS]
    windows = np.stack([blurred] * len(estimates))
    restored = np.stack([sharp, _uint8(blurred + rng.normal(0, 15, blurred.shape)), sharp, sharp,
                         _uint8(2.0 * blurred.astype(np.float64) - sharp)])
    reference = band_amplitude(sharp)
    out, reports = GuardedRestorer(None, mpp=MPP, reference=reference).check(windows, restored, estimates)
    for n, est in enumerate(estimates):
        if not est.is_blurred:
            assert reports[n].action == "none"
            np.testing.assert_array_equal(out[n], restored[n])
            continue
        alone, report = guard_window(windows[n], restored[n], estimate_psf(est, MPP, model=GUARD_PSF_MODEL),
                                     reference=reference)
        assert reports[n] == report
        np.testing.assert_array_equal(out[n], alone)
    assert [r.action for r in reports] == ["restorer", "pulled back", "none", "restorer", "pulled back"]
