"""Oracles for tiling and blending: identity, smoothness, untouched tiles, tiled == untiled."""

from dataclasses import dataclass

import numpy as np
import pytest
import tifffile

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.io import open_slide
from wsi_deblur.pipeline.graph import restored_level0
from wsi_deblur.restore import WienerRestorer
from wsi_deblur.tiling import TileGrid
from wsi_deblur.tiling.blend import ramp_profile, window_weight


@dataclass
class IdentityRestorer:
    name: str = "identity"

    def restore(self, windows, estimates):
        return windows.copy()


@dataclass
class OffsetRestorer:
    """Adds a different brightness offset to every window: the worst case for seams."""

    name: str = "offset"

    def restore(self, windows, estimates):
        out = []
        for w, est in zip(windows, estimates):
            offset = est.motion_angle_deg  # the test stores each tile's offset here
            out.append(np.clip(w.astype(np.float64) + offset, 0, 255).astype(np.uint8))
        return np.stack(out)


def blurmap_for(grid: TileGrid, restored: np.ndarray, offsets: np.ndarray | None = None, *,
                sigma: float = 2.0) -> BlurMap:
    bm = BlurMap(grid, np.ones(grid.grid_shape, np.float32), np.ones(grid.grid_shape, bool))
    for ij in np.ndindex(grid.grid_shape):
        p_in_focus = 0.05 if restored[ij] else 0.95
        est = BlurEstimate("defocus" if restored[ij] else "in_focus",
                           {"defocus": 1.0 - p_in_focus, "in_focus": p_in_focus},
                           defocus_sigma_px=sigma, motion_angle_deg=float(offsets[ij]) if offsets is not None else 0.0)
        bm.set_estimate(ij, est)
    return bm


def test_weights_are_a_partition_of_unity():
    p = ramp_profile(128 + 64, 64)
    total = np.zeros(128 * 4 + 64)
    for k in range(4):
        total[k * 128:k * 128 + 192] += p
    np.testing.assert_allclose(total[64:-64], 1.0, atol=1e-12)
    assert window_weight(TileGrid((10, 10), 128, 32)).min() > 0


@pytest.mark.parametrize("chunk", [256, 512, 2048])
def test_identity_restorer_reproduces_the_input_exactly(small_slide, chunk):
    slide = open_slide(small_slide)
    grid = TileGrid(slide.shape, 128, 16)
    bm = blurmap_for(grid, np.ones(grid.grid_shape, bool))
    out = restored_level0(slide, bm, IdentityRestorer(), chunk=chunk).compute()
    np.testing.assert_array_equal(out, slide.read_region(0, 0, *slide.shape))


def test_untouched_tiles_are_bit_identical_and_borders_smooth(tmp_path):
    # A smooth gradient: offsets of +-40 never clip, so any step would be a seam.
    yy, xx = np.mgrid[0:700, 0:900]
    image = np.repeat((60 + 0.1 * yy + 0.05 * xx).astype(np.uint8)[:, :, None], 3, axis=2)
    tifffile.imwrite(tmp_path / "ramp.tif", image, tile=(256, 256), photometric="rgb",
                     resolution=(2e4, 2e4), resolutionunit="CENTIMETER")
    slide = open_slide(tmp_path / "ramp.tif")
    grid = TileGrid(slide.shape, 128, 16)
    rng = np.random.default_rng(0)
    restored = rng.random(grid.grid_shape) > 0.5
    offsets = rng.uniform(-40, 40, grid.grid_shape)
    bm = blurmap_for(grid, restored, offsets)
    out = restored_level0(slide, bm, OffsetRestorer(), chunk=256).compute().astype(np.int32)
    original = slide.read_region(0, 0, *slide.shape).astype(np.int32)
    for i, j in zip(*np.nonzero(~restored)):
        y0, x0, y1, x1 = grid.tile_bounds(i, j)
        np.testing.assert_array_equal(out[y0:y1, x0:x1], original[y0:y1, x0:x1])
    # The change (output - input) is what the offsets add: it must vary smoothly.
    delta = (out - original).mean(axis=2)
    step = max(np.abs(np.diff(delta, axis=0)).max(), np.abs(np.diff(delta, axis=1)).max())
    # A hard stitch would jump by up to 80 grey levels; the blend ramps over
    # 2 * halo = 32 px (windows) and halo = 16 px (into untouched tiles).
    assert step <= 8, step
    hard = np.kron(np.where(restored, offsets, 0), np.ones((128, 128)))[:700, :900]
    assert max(np.abs(np.diff(hard, axis=0)).max(), np.abs(np.diff(hard, axis=1)).max()) > 30


@pytest.mark.parametrize("mpp, sigma", [(0.5, 2.0), (0.25, 8.0)])
def test_tiled_equals_untiled_on_odd_sizes(tmp_path, mpp, sigma):
    """Also on a 40x scan whose blur is wide enough to be restored at the working pixel size."""
    from wsi_deblur.synthetic import BlurRegion, SyntheticSlide

    path = SyntheticSlide((613, 745), [BlurRegion(100, 90, 400, 500, "defocus", defocus_sigma_px=2.5)],
                          tissue=False).write(tmp_path / "odd.ome.tif", compression="deflate", tile=128, mpp=mpp)
    slide = open_slide(path)
    grid = TileGrid(slide.shape, 96, 24)
    restored = np.zeros(grid.grid_shape, bool)
    restored[1:4, 1:5] = True
    bm = blurmap_for(grid, restored, sigma=sigma)
    untiled = restored_level0(slide, bm, WienerRestorer(), chunk=96 * 8).compute()
    for chunk in (96, 192, 288):
        tiled = restored_level0(slide, bm, WienerRestorer(), chunk=chunk).compute()
        np.testing.assert_array_equal(tiled, untiled)
    assert (untiled != slide.read_region(0, 0, *slide.shape)).any()  # the restorer did change pixels


def test_chunk_must_be_a_multiple_of_the_tile(small_slide):
    slide = open_slide(small_slide)
    grid = TileGrid(slide.shape, 128, 16)
    with pytest.raises(ValueError, match="multiple"):
        restored_level0(slide, blurmap_for(grid, np.ones(grid.grid_shape, bool)), IdentityRestorer(), chunk=200)
