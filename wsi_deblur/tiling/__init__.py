"""Tiles, overlapping windows and seamless blending over level 0."""

from wsi_deblur.tiling.grid import TileGrid

__all__ = ["TileGrid"]
