import numpy as np
import pytest

from wsi_deblur.blur.estimate import mean_direction_deg


def test_mean_direction_wraps_at_180():
    # 2 and 178 deg are nearly the same line: their mean is horizontal, not vertical.
    assert min(mean_direction_deg([2.0, 178.0]), 180 - mean_direction_deg([2.0, 178.0])) < 1e-9
    assert mean_direction_deg([80.0, 100.0]) == pytest.approx(90.0)


@pytest.mark.parametrize("centre", [0.0, 30.0, 95.0, 179.0])
def test_mean_direction_of_a_spread_is_its_centre(centre):
    spread = (centre + np.array([-10.0, -3.0, 0.0, 3.0, 10.0])) % 180.0
    got = mean_direction_deg(spread)
    assert abs((got - centre + 90.0) % 180.0 - 90.0) < 1e-6


def test_mean_direction_of_nothing_is_zero():
    assert mean_direction_deg([]) == 0.0
