"""The blur map: which tiles are restored, and what is saved for a resumed run."""

import io

import numpy as np
import pytest

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.tiling.grid import TileGrid


def one_row_map(estimates):
    grid = TileGrid((256, 256 * len(estimates)), tile_size=256, halo=16)
    blurmap = BlurMap(grid, np.ones(grid.grid_shape, np.float32), np.ones(grid.grid_shape, bool))
    for j, est in enumerate(estimates):
        blurmap.set_estimate((0, j), est)
    return blurmap


#: Surely blurred, unsure of the type; unsure it is blurred; surely sharp.
ESTIMATES = [
    BlurEstimate("defocus", {"in_focus": 0.05, "defocus": 0.55, "motion": 0.0, "mixed": 0.40}, defocus_sigma_px=3.0),
    BlurEstimate("defocus", {"in_focus": 0.30, "defocus": 0.65, "motion": 0.05, "mixed": 0.0}, defocus_sigma_px=2.0),
    BlurEstimate("in_focus", {"in_focus": 0.90, "defocus": 0.10, "motion": 0.0, "mixed": 0.0}),
]


def test_a_surely_blurred_tile_is_restored_even_when_its_type_is_uncertain():
    blurmap = one_row_map(ESTIMATES)
    np.testing.assert_array_equal(blurmap.restore_mask(min_confidence=0.8), [[True, False, False]])
    np.testing.assert_array_equal(blurmap.restore_mask(min_confidence=0.6), [[True, True, False]])
    np.testing.assert_allclose(blurmap.blur_probability, [[0.95, 0.70, 0.10]], atol=1e-6)
    # the route is the likelier type, and the estimate keeps the probability of being blurred
    est = blurmap.estimate((0, 0))
    assert est.label == "defocus" and est.blur_probability == pytest.approx(0.95)
    assert blurmap.estimate((0, 2)).blur_probability == pytest.approx(0.10)


def test_saved_map_reads_back_and_an_older_map_without_blur_probability_still_loads(tmp_path):
    blurmap = one_row_map(ESTIMATES)
    blurmap.save(tmp_path / "map.npz")
    back = BlurMap.load(tmp_path / "map.npz", blurmap.grid)
    for name in ("label", "confidence", "blur_probability", "defocus_sigma_px"):
        np.testing.assert_array_equal(getattr(back, name), getattr(blurmap, name))

    with np.load(tmp_path / "map.npz") as data:  # as written before blur_probability was recorded
        older = {k: data[k] for k in data.files if k != "blur_probability"}
    buffer = io.BytesIO()
    np.savez(buffer, **older)
    (tmp_path / "older.npz").write_bytes(buffer.getvalue())
    old = BlurMap.load(tmp_path / "older.npz", blurmap.grid)
    # the class's probability bounds P(blurred) from below; in-focus tiles are exact
    np.testing.assert_allclose(old.blur_probability, [[0.55, 0.65, 0.10]], atol=1e-6)
    assert (old.blur_probability <= blurmap.blur_probability + 1e-6).all()

    del older["label"]
    buffer = io.BytesIO()
    np.savez(buffer, **older)
    (tmp_path / "broken.npz").write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="broken.npz: blur map lacks label"):
        BlurMap.load(tmp_path / "broken.npz", blurmap.grid)
