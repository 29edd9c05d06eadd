"""Training examples from a site's own tiles: what each network learns from is what its route is for."""

import numpy as np
import pytest

from wsi_deblur.adaptation.pairs import classifier_crops, further_degraded_pairs, simulated_pairs
from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate
from wsi_deblur.blur.fit import gradient_sharpness
from wsi_deblur.synthetic import SyntheticSlide


@pytest.fixture(scope="module")
def tiles():
    field = SyntheticSlide((768, 1152), tissue=False, seed=5).render(0, 0, 768, 1152)
    return np.stack([field[:384, :384], field[:384, 384:768], field[384:, 768:]])


def test_simulated_pairs_have_the_kinds_and_targets_of_each_network(tiles):
    rng = np.random.default_rng(0)
    motion = simulated_pairs(tiles, "motion", 24, 64, rng)
    assert motion["blurred"].shape == motion["target"].shape == (24, 64, 64, 3)
    assert set(motion["kinds"]) <= {BLUR_CLASSES.index(k) for k in ("in_focus", "motion", "mixed")}
    mixed = motion["kinds"] == BLUR_CLASSES.index("mixed")
    assert mixed.any()
    # DL_motion's mixed target keeps the defocus (DBMID's chain): blurrier than the blurred-free tile would be.
    defocus = simulated_pairs(tiles, "defocus", 24, 64, np.random.default_rng(0))
    assert set(defocus["kinds"]) <= {BLUR_CLASSES.index(k) for k in ("in_focus", "defocus")}
    blurred = defocus["kinds"] == BLUR_CLASSES.index("defocus")
    assert all(gradient_sharpness(b, border=4) < gradient_sharpness(t, border=4)
               for b, t in zip(defocus["blurred"][blurred], defocus["target"][blurred]))


def test_unknown_network_is_refused(tiles):
    with pytest.raises(ValueError, match="unknown network 'defcus'"):
        simulated_pairs(tiles, "defcus", 4, 64, np.random.default_rng(0))


def test_further_degraded_pairs_blur_the_scanned_tile_again_where_its_estimate_says(tiles):
    estimates = [BlurEstimate("defocus", {"defocus": 0.9, "in_focus": 0.05}, defocus_sigma_px=2.5),
                 BlurEstimate("motion", {"motion": 0.9, "in_focus": 0.05}, motion_length_px=15, motion_angle_deg=30),
                 BlurEstimate("in_focus", {"in_focus": 0.9})]
    pairs = further_degraded_pairs(tiles, estimates, "defocus", 16, 64, np.random.default_rng(1))
    assert pairs["blurred"].shape == (16, 64, 64, 3)
    assert set(pairs["kinds"]) == {BLUR_CLASSES.index("defocus")}  # only tiles routed to DL_defocus
    for x, y in zip(pairs["blurred"], pairs["target"]):
        assert gradient_sharpness(x, border=0) < 0.8 * gradient_sharpness(y, border=0)  # blurred again
        corr = np.corrcoef(x.mean(axis=2).ravel(), y.mean(axis=2).ravel())[0, 1]
        assert corr > 0.6  # the same place of the same tile
    # the target is the tile as scanned: one of its crops
    t = pairs["target"][0]
    assert any((tiles[0][y:y + 64, x:x + 64] == t).all() for y in range(0, 321) for x in range(0, 321))
    none = further_degraded_pairs(tiles, estimates[2:], "defocus", 8, 64, np.random.default_rng(1))
    assert len(none["kinds"]) == 0 and none["blurred"].shape == (0, 64, 64, 3)


def test_classifier_crops_cycle_through_the_classes_with_matching_severities(tiles):
    crops = classifier_crops(tiles, 16, 64, np.random.default_rng(2))
    assert crops["images"].shape == (16, 64, 64, 3)
    assert list(crops["labels"][:4]) == [0, 1, 2, 3]
    moving = np.isin(crops["labels"], [2, 3])
    assert (crops["severity"][moving, 1] >= 5).all() and (crops["severity"][~moving, 1] == 0).all()
