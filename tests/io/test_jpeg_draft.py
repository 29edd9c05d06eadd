"""Thumbnails of JPEG-tiled slides without reduced levels, decoded at 1/8 scale: the same picture, the same mask."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from wsi_deblur.io import open_slide
from wsi_deblur.synthetic import SyntheticSlide
from wsi_deblur.tissue import tissue_mask


@pytest.fixture(scope="module")
def jpeg_slide(tmp_path_factory):
    """4096 x 3072 px, tissue on glass, JPEG tiles of 512 px, level 0 only (as some scanners and converters write)."""
    path = tmp_path_factory.mktemp("draft") / "flat.tif"
    return SyntheticSlide((3072, 4096), [], seed=5).write(path, mpp=0.5, tile=512, compression="jpeg")


def test_the_thumbnail_from_reduced_jpeg_decodes_matches_the_full_decode(jpeg_slide, monkeypatch):
    slide = open_slide(jpeg_slide)
    assert len(slide.level_shapes) == 1 and slide.backend.draft_tiles(0) is not None
    fast, ds_fast = slide.thumbnail(max_size=512)
    monkeypatch.setattr(type(slide.backend), "draft_tiles", lambda self, level: None)  # the full decode
    full, ds_full = slide.thumbnail(max_size=512)
    assert fast.shape == full.shape and ds_fast == ds_full == 8
    assert np.abs(fast.astype(float) - full).mean() < 3.0
    a, b = tissue_mask(fast), tissue_mask(full)
    edges = ndi.binary_dilation(a) & ~ndi.binary_erosion(a) | ndi.binary_dilation(b) & ~ndi.binary_erosion(b)
    assert (a ^ b).mean() < 0.005 and not (a ^ b)[~ndi.binary_dilation(edges)].any()  # within a pixel of an edge


def test_any_region_at_reduced_scale_is_the_block_mean_of_its_pixels(jpeg_slide):
    slide = open_slide(jpeg_slide)
    draft = slide.backend.draft_tiles(0)
    for y, x, h, w, scale in ((0, 0, 512, 512, 8), (504, 1000, 700, 1030, 4), (2048, 3584, 1024, 512, 2),
                              (2560, 3072, 512, 1024, 8)):
        got = draft.read(y, x, h, w, scale).astype(float)
        pixels = slide.read_region(y, x, h, w).astype(float)
        hh, ww = h // scale * scale, w // scale * scale
        expected = pixels[:hh, :ww].reshape(hh // scale, scale, ww // scale, scale, 3).mean(axis=(1, 3))
        assert got.shape == (-(-h // scale), -(-w // scale), 3)
        assert np.abs(got[:hh // scale, :ww // scale] - expected).mean() < 3.0, (y, x, h, w, scale)


def test_other_compressions_keep_the_full_decode(tmp_path):
    path = SyntheticSlide((1024, 1024), [], seed=1).write(tmp_path / "lossless.tif", mpp=0.5, tile=256,
                                                          compression="deflate")
    assert open_slide(path).backend.draft_tiles(0) is None
