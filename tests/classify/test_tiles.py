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
