import numpy as np
import pytest
import tifffile

from wsi_deblur.io import open_slide
from wsi_deblur.write.ome_tiff import write_ome_tiff


@pytest.fixture(scope="module")
def levels():
    rng = np.random.default_rng(1)
    l0 = rng.integers(0, 256, (3, 1300, 1100), dtype=np.uint8)
    return [l0, l0[:, ::2, ::2].copy(), l0[:, ::4, ::4].copy()]


def test_deflate_pyramid_reads_back_exactly_with_subifds(tmp_path, levels):
    path = tmp_path / "x.ome.tif"
    write_ome_tiff(path, levels, mpp=0.25, name="x", compression="deflate", tile=256)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff and tif.is_ome
        assert len(tif.pages) == 1  # reduced levels live in SubIFDs, not the main chain
        page = tif.pages[0]
        assert page.is_tiled and page.tilewidth == 256
        series = tif.series[0]
        assert [lv.shape for lv in series.levels] == [(1300, 1100, 3), (650, 550, 3), (325, 275, 3)]
        for k, lv in enumerate(series.levels):
            np.testing.assert_array_equal(lv.asarray(), levels[k].transpose(1, 2, 0))
        assert all(p.subfiletype == 1 for p in series.levels[1].pages)
        assert 'PhysicalSizeX="0.25"' in tif.ome_metadata
        x_res = page.tags["XResolution"].value
        assert x_res[0] / x_res[1] == pytest.approx(1e4 / 0.25)
    slide = open_slide(path)
    assert slide.mpp == pytest.approx(0.25) and len(slide.level_shapes) == 3


def test_jpeg_is_close(tmp_path, levels):
    yy, xx = np.mgrid[0:1300, 0:1100]
    l0 = np.stack([yy * 0.15, xx * 0.2, 128 + 60 * np.sin(yy / 40.0)]).astype(np.uint8)
    smooth = [l0, l0[:, ::2, ::2].copy()]
    path = tmp_path / "j.ome.tif"
    write_ome_tiff(path, smooth, mpp=0.5, name="j", compression="jpeg", quality=95, tile=256)
    back = tifffile.imread(path)
    assert np.abs(back.astype(int) - smooth[0].transpose(1, 2, 0)).mean() < 2


def test_the_openslide_layout_is_a_pyramid_openslide_reads(tmp_path, levels):
    """OpenSlide sees SubIFD levels as one level; with --tiff-layout openslide it reads every level, same pixels."""
    openslide = pytest.importorskip("openslide")
    subifds, chain = tmp_path / "s.ome.tif", tmp_path / "c.ome.tif"
    write_ome_tiff(subifds, levels, mpp=0.25, name="s", compression="deflate", tile=256)
    write_ome_tiff(chain, levels, mpp=0.25, name="c", compression="deflate", tile=256, layout="openslide")
    assert openslide.OpenSlide(str(subifds)).level_count == 1
    with openslide.OpenSlide(str(chain)) as slide:
        assert slide.level_dimensions == ((1100, 1300), (550, 650), (275, 325))
        for k, (w, h) in enumerate(slide.level_dimensions):
            got = np.asarray(slide.read_region((0, 0), k, (w, h)).convert("RGB"))
            np.testing.assert_array_equal(got, levels[k].transpose(1, 2, 0))
    with tifffile.TiffFile(chain) as tif:  # still an OME-TIFF whose level 0 OME readers find
        assert tif.is_ome and len(tif.pages) == 3
        np.testing.assert_array_equal(tif.pages[0].asarray(), levels[0].transpose(1, 2, 0))
    with pytest.raises(ValueError, match="layout must be one of"):
        write_ome_tiff(tmp_path / "x.ome.tif", levels, mpp=0.25, name="x", layout="chain")
