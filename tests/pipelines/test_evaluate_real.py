"""The real-pair evaluation: which pairs it finds, and what it measures on the real FocusPath pair."""

import json

import pytest

from pipelines.evaluate_real import find_pairs, pair_mpp
from wsi_deblur.blur.fit import fit_defocus, ssim_inner, transfer_profile
from wsi_deblur.blur.psf import defocus_psf
from wsi_deblur.blur.simulate import convolve_rgb
from wsi_deblur.io import open_slide


def test_every_complete_pair_in_the_folder_is_found_with_its_pixel_size(tmp_path):
    for name in ("b-in-focus.png", "b-out-of-focus.png", "a-in-focus.png", "a-out-of-focus.png",
                 "lonely-in-focus.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "b.json").write_text(json.dumps({"mpp": 0.5}))
    assert [p[0] for p in find_pairs(tmp_path)] == ["a", "b"]
    assert pair_mpp(tmp_path, "a", 0.25) == 0.25 and pair_mpp(tmp_path, "b", 0.25) == 0.5


@pytest.fixture(scope="module")
def real_pair(shared_data):
    folder = shared_data / "real-defocus"
    if not (folder / "focuspath-left-in-focus.png").exists():
        pytest.skip("the FocusPath pair is not in ../shared/data/real-defocus")
    sharp, blurred = (open_slide(folder / f"focuspath-left-{p}.png", mpp=0.25) for p in ("in-focus", "out-of-focus"))
    return sharp.read_region(0, 0, *sharp.shape), blurred.read_region(0, 0, *blurred.shape)


@pytest.mark.shared_data
def test_real_defocus_inverts_contrast_as_the_pupil_model_does_and_a_gaussian_cannot(real_pair):
    sharp, blurred = real_pair
    green = transfer_profile(sharp, blurred)[1]  # rings of 0.02 cycles/px
    assert green[0] > 0.9 and green[3:6].min() < -0.1  # negative between 0.06 and 0.12 cycles/px
    pupil = fit_defocus(sharp, blurred, 0.25, apertures=(0.65, 0.75), distances_um=(2.5, 2.75, 3.0, 3.5))
    gaussian = ssim_inner(convolve_rgb(sharp, defocus_psf(5.5)), blurred)  # the best Gaussian (evaluate_real)
    assert pupil.ssim > gaussian
    assert 2.5 <= pupil.defocus_um <= 3.5
