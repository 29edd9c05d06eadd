import numpy as np
import pytest

from wsi_deblur.blur import BlurEstimate
from wsi_deblur.working_scale import downsample_tiles, severity_scaled, working_downsample, working_grid


def test_working_downsample():
    assert working_downsample(0.5) == 1 and working_downsample(0.25) == 2 and working_downsample(0.227) == 2
    assert working_downsample(1.0) == 1 and working_downsample(None) == 1 and working_downsample(0.17) == 3


def test_the_halo_covers_the_same_micrometres_on_a_20x_and_a_40x_scan():
    at_20x = working_grid((3000, 5000), 0.5, tile_size=512, halo=64)
    at_40x = working_grid((6000, 10000), 0.25, tile_size=1024, halo=64)
    assert at_20x.halo * 0.5 == at_40x.halo * 0.25 == 32.0  # micrometres of context on each side
    assert at_20x.grid_shape == at_40x.grid_shape  # tiles stay in level-0 pixels
    assert working_grid((3000, 5000), None, tile_size=512, halo=64).halo == 64  # pixel size unknown


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
