import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.data import immunohistochemistry
from skimage.metrics import structural_similarity as ssim

from wsi_deblur.blur import BlurEstimate
from wsi_deblur.blur.simulate import BlurParams, Optics, gaussian_sigma_px, simulate
from wsi_deblur.restore.at_working_scale import (
    TRAINED_DEFOCUS_SIGMA_PX,
    TRAINED_MOTION_LENGTH_PX,
    WorkingScaleRestorer,
    at_working_scale,
    upsample_correction,
)
from wsi_deblur.restore.neural import NeuralRestorer
from wsi_deblur.restore.wiener import WienerRestorer
from wsi_deblur.working_scale import downsample_tiles

#: An IHC field as a 40x scan (0.25 um/px) would show it: the 0.5-um/px field upsampled twice.
SHARP_40X = np.clip(ndi.zoom(immunohistochemistry()[64:320, 64:320].astype(np.float32), (2, 2, 1), order=3),
                    0, 255).astype(np.uint8)
OPTICS_40X = Optics(numerical_aperture=0.75, mpp=0.25)


@pytest.fixture(scope="module")
def fast():
    return NeuralRestorer("fast", threads=2)


def test_only_scans_finer_than_the_working_pixel_size_are_wrapped(fast):
    assert at_working_scale(fast, 0.5) is fast and at_working_scale(fast, None) is fast
    wrapped = at_working_scale(fast, 0.25)
    assert isinstance(wrapped, WorkingScaleRestorer) and wrapped.factor == 2 and wrapped.name == fast.name


def test_upsampled_correction_is_bilinear_between_block_centres():
    c = np.random.default_rng(0).normal(size=(2, 7, 9, 3)).astype(np.float32)
    reference = np.stack([ndi.zoom(a, (2, 2, 1), order=1, grid_mode=True, mode="nearest") for a in c])
    np.testing.assert_allclose(upsample_correction(c, 2), reference, atol=1e-5)


def test_motion_the_networks_learned_is_restored_at_level_0(fast):
    """Within the trained length (level-0 pixels) the wrapper is the restorer itself."""
    blurred = simulate(SHARP_40X, BlurParams("motion", motion_length_px=20.0, optics=OPTICS_40X),
                       np.random.default_rng(1))
    est = [BlurEstimate("motion", motion_length_px=TRAINED_MOTION_LENGTH_PX - 20)]
    np.testing.assert_array_equal(WorkingScaleRestorer(fast, 2).restore(blurred[None], est), fast.restore(blurred[None], est))


def test_defocus_of_a_finer_scan_is_always_restored_at_the_working_size(fast):
    """Even narrow defocus: the networks learned out-of-focus tissue at 0.5 um/px, not at 40x pixels."""
    blurred = simulate(SHARP_40X, BlurParams("defocus", defocus_um=1.5, optics=OPTICS_40X), np.random.default_rng(1))
    est = [BlurEstimate("defocus", defocus_sigma_px=TRAINED_DEFOCUS_SIGMA_PX - 1)]
    wrapper = WorkingScaleRestorer(fast, 2)
    np.testing.assert_array_equal(wrapper.restore(blurred[None], est), wrapper.restore_downsampled(blurred[None], est))


def test_a_window_left_alone_comes_back_unchanged_at_any_size(fast):
    """An in-focus route changes nothing, so the upsampled correction is exactly zero (odd sizes padded)."""
    windows = SHARP_40X[None, :301, :257]
    out = WorkingScaleRestorer(fast, 2).restore_downsampled(windows, [BlurEstimate("in_focus")])
    np.testing.assert_array_equal(out, windows)


def test_wide_blur_goes_to_the_restorer_in_working_pixels():
    """The restorer sees the block-averaged window and widths halved; its correction comes back upsampled."""
    blurred = simulate(SHARP_40X, BlurParams("motion", motion_length_px=60.0, optics=OPTICS_40X),
                       np.random.default_rng(2))[None]
    wiener = WienerRestorer()
    level0 = BlurEstimate("motion", motion_length_px=TRAINED_MOTION_LENGTH_PX + 20)
    small = downsample_tiles(blurred, 2)
    correction = wiener.restore(small, [BlurEstimate("motion", motion_length_px=30.0)]).astype(np.float32) - small
    expected = np.clip(np.rint(blurred + upsample_correction(correction, 2)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(WorkingScaleRestorer(wiener, 2).restore(blurred, [level0]), expected)


def test_wide_defocus_of_a_40x_scan_is_restored_where_level_0_fails(fast):
    """5 um of defocus at 40x (std ~10 px, beyond the trained 6): level 0 makes it worse, the working scale not."""
    blurred = simulate(SHARP_40X, BlurParams("defocus", defocus_um=5.0, photons=5000.0, jpeg_quality=90,
                                             optics=OPTICS_40X), np.random.default_rng(0))
    est = [BlurEstimate("defocus", defocus_sigma_px=gaussian_sigma_px(5.0, OPTICS_40X))]
    assert est[0].defocus_sigma_px > TRAINED_DEFOCUS_SIGMA_PX

    def score(image):
        return ssim(image, SHARP_40X, channel_axis=2)

    at_level0 = score(fast.restore(blurred[None], est)[0])
    at_working = score(WorkingScaleRestorer(fast, 2).restore(blurred[None], est)[0])
    assert at_working > score(blurred) + 0.05 and at_working > at_level0 + 0.1


def test_trained_widths_match_the_training_data():
    from wsi_deblur.blur.degrade import RESTORE_SIGMA_PX
    from wsi_deblur.blur.simulate import RANGES

    assert TRAINED_DEFOCUS_SIGMA_PX == RESTORE_SIGMA_PX[1]
    assert TRAINED_MOTION_LENGTH_PX == RANGES["motion_length_px"][1]


def test_defocus_keeps_only_the_fine_detail_its_psf_passes():
    """Finer than the working pixels, a 3 um defocus passes nothing of the focal plane: what the
    input holds there (noise, other planes) goes. (Motion keeps it: the wide-blur test above.)
    """
    from wsi_deblur.restore.at_working_scale import fine_octave_passed

    def fine(image):
        coarse = upsample_correction(downsample_tiles(image[None], 2).astype(np.float32), 2)[0]
        return image.astype(np.float32) - coarse

    rng = np.random.default_rng(3)
    defocused = simulate(SHARP_40X, BlurParams("defocus", defocus_um=3.0, photons=3000.0, optics=OPTICS_40X), rng)
    est = BlurEstimate("defocus", defocus_um=3.0)
    assert fine_octave_passed(est, 2) < 0.01 and fine_octave_passed(BlurEstimate("in_focus"), 2) == 1.0
    out = WorkingScaleRestorer(WienerRestorer(), 2).restore(defocused[None], [est])[0]
    assert np.abs(fine(out)).mean() < 0.25 * np.abs(fine(defocused)).mean()

