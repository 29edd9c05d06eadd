"""Pyramidal OME-TIFF written tile by tile from a stored image pyramid.

BigTIFF, tiled, the reduced levels in SubIFDs of the full-resolution IFD
(``subfiletype=1``), OME-XML with physical pixel sizes, and TIFF resolution
tags, as QuPath, Bio-Formats and OpenSlide expect (DESIGN.md §3). Pixels come
from the OME-Zarr levels one tile at a time, so memory does not depend on the
slide's size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import tifffile
import zarr
from tqdm import tqdm

from wsi_deblur.write.location import local_file, output_path
from wsi_deblur.write.ngff_format import TIFF_COMPRESSIONS, TIFF_LAYOUTS

COMPRESSIONS = TIFF_COMPRESSIONS


def _tiles(level: zarr.Array, tile: int, *, band_tiles: int = 8) -> Iterator[np.ndarray]:
    """Tiles of a ``(c, y, x)`` array as ``(tile, tile, c)``, row by row.

    Reads ``band_tiles`` tiles at a time, so memory does not grow with the
    level's size.
    """
    _, h, w = level.shape
    step = tile * band_tiles
    for y in range(0, h, tile):
        for xb in range(0, w, step):
            band = np.asarray(level[:, y:y + tile, xb:xb + step]).transpose(1, 2, 0)
            for x in range(0, band.shape[1], tile):
                yield _full_tile(band[:, x:x + tile], tile)


def _counted(tiles: Iterator[np.ndarray], bar) -> Iterator[np.ndarray]:
    for t in tiles:
        yield t
        bar.update()


def _full_tile(block: np.ndarray, tile: int) -> np.ndarray:
    """Pad an edge tile with zeros to ``(tile, tile, 3)``."""
    if block.shape[:2] == (tile, tile):
        return np.ascontiguousarray(block)
    full = np.zeros((tile, tile, 3), dtype=np.uint8)
    full[:block.shape[0], :block.shape[1]] = block
    return full



def write_ome_tiff(path: str | os.PathLike, levels: list[zarr.Array], *, mpp: float, name: str,
                   compression: str = "jpeg", quality: int = 90, tile: int = 512, progress: bool = False,
                   layout: str = "subifds") -> None:
    """Write ``levels`` (``(c, y, x)`` uint8 arrays, full resolution first) as OME-TIFF.

    Parameters
    ----------
    path : str or Path
        Output file (``*.ome.tif``): local, or an fsspec URL (written to a
        temporary local file, then uploaded).
    mpp : float
        Micrometres per pixel at level 0.
    compression : {"jpeg", "deflate", "none"}
        JPEG is lossy and small; Deflate is lossless.
    quality : int
        JPEG quality (1-100).
    tile : int
        Tile edge in pixels (a multiple of 16).
    progress : bool
        Show a progress bar (tiles) on stderr.
    layout : {"subifds", "openslide"}
        Reduced levels in SubIFDs of level 0 (OME-TIFF's pyramid: QuPath, Bio-Formats), or in the main IFD
        chain after it (``subfiletype`` 1), which OpenSlide reads as a pyramid and OME readers as level 0 alone.
    """
    if layout not in TIFF_LAYOUTS:
        raise ValueError(f"layout must be one of {TIFF_LAYOUTS}, got {layout!r}")
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    codec = {"jpeg": ("jpeg", {"level": quality}), "deflate": ("zlib", {"level": 6}), "none": (None, {})}[compression]
    options = dict(photometric="rgb", tile=(tile, tile), dtype=np.uint8, resolutionunit="CENTIMETER",
                   compression=codec[0], compressionargs=codec[1] or None)
    metadata = {"axes": "YXS", "Name": name, "PhysicalSizeX": mpp, "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": mpp, "PhysicalSizeYUnit": "µm",
                "Channel": {"Name": ["RGB"]}}
    total = sum(-(-lv.shape[1] // tile) * -(-lv.shape[2] // tile) for lv in levels)
    with local_file(output_path(path), suffix=".ome.tif") as local, \
            tifffile.TiffWriter(str(local), bigtiff=True, ome=True) as tif, \
            tqdm(total=total, unit="tile", desc=f"{name}: writing OME-TIFF", disable=not progress) as bar:
        for k, level in enumerate(levels):
            _, h, w = level.shape
            tiles = _counted(_tiles(level, tile), bar)
            um = mpp * levels[0].shape[1] / h  # micrometres per pixel of this level
            resolution = (1e4 / um, 1e4 / um)
            if k == 0:
                subifds = len(levels) - 1 if layout == "subifds" else None
                tif.write(tiles, shape=(h, w, 3), subifds=subifds, resolution=resolution, metadata=metadata,
                          **options)
            else:
                tif.write(tiles, shape=(h, w, 3), subfiletype=1, resolution=resolution,
                          metadata=None, **options)
