import numpy as np
import pytest

from wsi_deblur.blur import BlurEstimate
from wsi_deblur.working_scale import downsample_tiles, severity_scaled, working_downsample


def test_working_downsample():
    assert working_downsample(0.5) == 1 and working_downsample(0.25) == 2 and working_downsample(0.227) == 2
    assert working_downsample(1.0) == 1 and working_downsample(None) == 1 and working_downsample(0.17) == 3


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_downsample_tiles_is_the_block_mean_rounded_half_up(factor):
    tiles = np.random.default_rng(factor).integers(0, 256, (2, 61, 50, 3), dtype=np.uint8)
    h, w = 61 // factor * factor, 50 // factor * factor
    mean = tiles[:, :h, :w].reshape(2, h // factor, factor, w // factor, factor, 3).mean(axis=(2, 4))
    np.testing.assert_array_equal(downsample_tiles(tiles, factor), np.floor(mean + 0.5).astype(np.uint8))


def test_severity_scaled_scales_widths_not_direction_or_micrometres():
    est = BlurEstimate("mixed", defocus_sigma_px=3.0, motion_length_px=20.0, motion_angle_deg=30.0, defocus_um=2.0)
    level0 = severity_scaled(est, 2)
    assert (level0.defocus_sigma_px, level0.motion_length_px) == (6.0, 40.0)
    assert (level0.motion_angle_deg, level0.defocus_um, level0.label) == (30.0, 2.0, "mixed")
    assert severity_scaled(level0, 1 / 2) == est
