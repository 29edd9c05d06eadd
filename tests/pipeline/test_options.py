"""Options are checked when they are made, before any work: a typo gets a suggestion, a range its bounds."""

import pytest

from wsi_deblur.pipeline.options import RunOptions


@pytest.mark.parametrize("bad, message", [
    (dict(restorer="fsat"), "restorer 'fsat' is not one of fast, dbmid, bcr, wiener, hybrid; did you mean 'fast'?"),
    (dict(tiff_compression="jpg"), "did you mean 'jpeg'?"),
    (dict(ngff_version="0.6"), "ngff_version '0.6' is not one of 0.4, 0.5"),
    (dict(classifier="nerual"), "did you mean 'neural'?"),
    (dict(zarr_compression="zstd"), "zarr_compression 'zstd' is not one of blosc, zlib, none"),
    (dict(reader="openslid"), "did you mean 'openslide'?"),
    (dict(halo=-5), "halo must be a whole number of pixels of at least 0"),
    (dict(tile_size=0), "tile_size must be a whole number"),
    (dict(chunk=0), "chunk must be a whole number"),
    (dict(min_confidence=80), r"min_confidence is a share in \[0, 1\], not 80 \(80 -> 0.8\?\)"),
    (dict(min_tissue=2), r"min_tissue is a share in \[0, 1\]"),
    (dict(jpeg_quality=0), "jpeg_quality must be in 1-100"),
    (dict(jpeg_quality=500), "jpeg_quality must be in 1-100"),
    (dict(mpp=float("inf")), "mpp must be a pixel size in micrometres"),
    (dict(mpp=0.0), "mpp must be a pixel size"),
])
def test_bad_options_are_refused_when_made(bad, message):
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")
                       if "\\" not in message else message):
        RunOptions(**bad)


def test_the_defaults_and_a_40x_setting_are_accepted():
    RunOptions()
    RunOptions(mpp=0.25, tile_size=256, chunk=1024, zarr_chunk=256, halo=0, min_confidence=0.5, jpeg_quality=100)
