"""On the real focus pair (../shared/data/real-defocus): no restorer makes it worse, told its pixel size (0.25),
none, or a wrong one (twice or half the real one)."""

import pytest

from wsi_deblur.blur.fit import ssim_inner
from wsi_deblur.classify.neural import NeuralBlurClassifier
from wsi_deblur.io import open_slide
from wsi_deblur.restore.by_name import RESTORERS, make_restorer
from wsi_deblur.restore.image import restore_image


@pytest.fixture(scope="module")
def pair(shared_data):
    folder = shared_data / "real-defocus"
    if not (folder / "focuspath-left-in-focus.png").exists():
        pytest.skip("the FocusPath pair is not in ../shared/data/real-defocus")
    sharp = open_slide(folder / "focuspath-left-in-focus.png", mpp=0.25)
    blurred = open_slide(folder / "focuspath-left-out-of-focus.png", mpp=0.25)
    return folder / "focuspath-left-out-of-focus.png", sharp.read_region(0, 0, *sharp.shape), \
        blurred.read_region(0, 0, *blurred.shape)


@pytest.mark.shared_data
@pytest.mark.parametrize("mpp", [0.25, None, 0.5, 0.125])
@pytest.mark.parametrize("name", RESTORERS)
def test_no_restorer_lowers_ssim_on_the_real_pair_whatever_pixel_size_it_is_told(pair, tmp_path, name, mpp):
    path, sharp, blurred = pair
    result = restore_image(path, tmp_path, make_restorer(name, threads=2), classifier=NeuralBlurClassifier(threads=2),
                           mpp=mpp)
    restored = open_slide(result["output"], mpp=0.25)
    assert ssim_inner(restored.read_region(0, 0, *restored.shape), sharp) > ssim_inner(blurred, sharp)
    assert result["restorer"] == (name if mpp else "wiener")  # no pixel size: the networks give way to Wiener
