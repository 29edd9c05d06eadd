import pytest

from wsi_deblur.tiling import TileGrid


def test_grid_covers_the_image_with_clipped_edge_tiles():
    g = TileGrid((1000, 1300), 256, 16)
    assert g.grid_shape == (4, 6)
    assert g.tile_bounds(3, 5) == (768, 1280, 1000, 1300)
    assert g.window_bounds(0, 0) == (-16, -16, 272, 272)


def test_tiles_touching_includes_neighbours_reached_by_the_halo():
    g = TileGrid((1024, 1024), 256, 16)
    assert g.tiles_touching(256, 256, 512, 512) == [(i, j) for i in range(3) for j in range(3)]
    assert g.tiles_touching(300, 300, 400, 400) == [(1, 1)]


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError):
        TileGrid((100, 100), 8, 0)
    with pytest.raises(ValueError):
        TileGrid((100, 100), 64, 40)
