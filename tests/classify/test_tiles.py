import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from wsi_deblur.classify import ClassicalBlurClassifier
from wsi_deblur.classify.tiles import classify_tiles
from wsi_deblur.io import open_slide
from wsi_deblur.synthetic import BlurRegion, SyntheticSlide
from wsi_deblur.tiling import TileGrid
from wsi_deblur.working_scale import working_downsample


def test_a_40x_scan_is_judged_like_the_20x_scan(tmp_path):
    """The same field scanned at 0.25 um/px (2x the pixels) gets the same classes; sigma in its own pixels."""
    model = SyntheticSlide((512, 1024), [BlurRegion(0, 512, 512, 1024, "defocus", defocus_sigma_px=3.0)],
                           tissue=False)
    lowres = model.render(0, 0, 512, 1024)
    highres = np.clip(ndi.zoom(lowres.astype(np.float32), (2, 2, 1), order=3), 0, 255).astype(np.uint8)
    for name, pixels, mpp in (("x20", lowres, 0.5), ("x40", highres, 0.25)):
        tifffile.imwrite(tmp_path / f"{name}.tif", pixels, tile=(256, 256), photometric="rgb",
                         resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
    results = {}
    for name, tile in (("x20", 256), ("x40", 512)):
        slide = open_slide(tmp_path / f"{name}.tif")
        grid = TileGrid(slide.shape, tile, 16)
        results[name] = classify_tiles(slide, grid, [(0, 0), (0, 1), (1, 2), (1, 3)], ClassicalBlurClassifier(),
                                       downsample=working_downsample(slide.mpp))
    labels = {k: [e.label for _, e in v] for k, v in results.items()}
    assert labels["x20"] == labels["x40"]
    assert labels["x20"][:3] == ["in_focus", "in_focus", "defocus"]
    for (_, a), (_, b) in zip(results["x20"][2:], results["x40"][2:]):
        assert b.defocus_sigma_px == pytest.approx(2 * a.defocus_sigma_px, rel=0.25)


def test_both_scales_decides_on_the_mean_of_the_two_scales_probabilities(tmp_path):
    """A 40x slide judged at both scales: each tile's probabilities are the mean of BlurNet's on the tile
    block-averaged to the working size and on the tile as scanned (oracle: the classifier called on each);
    a 20x slide has one scale and is judged as without the option.
    """
    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.working_scale import downsample_tiles

    model = SyntheticSlide((1024, 1024), [BlurRegion(0, 512, 512, 1024, "defocus", defocus_sigma_px=2.0)],
                           tissue=False)
    for name, mpp in (("x40", 0.25), ("x20", 0.5)):
        path = model.write(tmp_path / f"{name}.ome.tif", mpp=mpp, tile=256, compression="deflate")
        slide = open_slide(path)
        grid, tiles = TileGrid(slide.shape, 512, 16), [(0, 0), (0, 1), (1, 0), (1, 1)]
        down = working_downsample(slide.mpp)
        plain = NeuralBlurClassifier(threads=2)
        both = classify_tiles(slide, grid, tiles, NeuralBlurClassifier(threads=2, both_scales=True), downsample=down)
        pixels = np.stack([slide.read_window(*grid.tile_bounds(i, j)) for i, j in tiles])
        working = plain.classify(downsample_tiles(pixels, down))
        if down == 1:
            assert [e for _, e in both] == working
            continue
        native = plain.classify(pixels)
        for (_, got), w, n in zip(both, working, native):
            for c, p in got.probabilities.items():
                assert p == pytest.approx((w.probabilities[c] + n.probabilities[c]) / 2, abs=1e-6)
        assert [e.label for _, e in both][1] != "in_focus"  # the defocused quarter
