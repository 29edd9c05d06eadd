import numpy as np
import pytest
from scipy.signal import fftconvolve
from skimage.data import immunohistochemistry

from wsi_deblur.blur.psf import psf_for
from wsi_deblur.classify import ClassicalBlurClassifier, directional_blur_widths


def blurred(label, **kw):
    img = immunohistochemistry().astype(np.float64)
    k = psf_for(label, **kw)
    if k.size > 1:
        img = np.stack([fftconvolve(img[..., c], k, mode="same") for c in range(3)], axis=-1)
    noise = np.random.default_rng(0).normal(0, 1.5, img.shape)
    return np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)[32:-32, 32:-32]


def test_widths_grow_with_defocus():
    widths = [directional_blur_widths(blurred("defocus", defocus_sigma_px=s).mean(-1)).mean() for s in (0, 2, 4)]
    assert widths[0] < widths[1] < widths[2]
    assert widths[2] == pytest.approx(4.0, rel=0.35)


@pytest.mark.parametrize("label,kw", [
    ("in_focus", {}),
    ("defocus", dict(defocus_sigma_px=3.0)),
    ("motion", dict(motion_length_px=25, motion_angle_deg=0)),
    ("motion", dict(motion_length_px=25, motion_angle_deg=90)),
])
def test_known_blur_is_classified(label, kw):
    est = ClassicalBlurClassifier().estimate(blurred(label, **kw))
    assert est.label == label
    assert abs(sum(est.probabilities.values()) - 1) < 1e-9
    if label == "motion":
        diff = abs((est.motion_angle_deg - kw["motion_angle_deg"] + 90) % 180 - 90)
        assert diff <= 15 and est.motion_length_px > 5
    if label == "defocus":
        assert est.defocus_sigma_px == pytest.approx(3.0, rel=0.4)


def test_flat_tile_is_not_called_blurred():
    flat = np.full((256, 256, 3), 230, np.uint8)
    assert ClassicalBlurClassifier().estimate(flat).label == "in_focus"


def test_batch_matches_single():
    clf = ClassicalBlurClassifier()
    tiles = np.stack([blurred("in_focus")[:256, :256], blurred("defocus", defocus_sigma_px=3)[:256, :256]])
    assert [e.label for e in clf.classify(tiles)] == [clf.estimate(t).label for t in tiles]
