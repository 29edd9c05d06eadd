"""The tile grid: square tiles over level 0, and windows around them.

A *tile* is the unit of classification and of the restore decision
(``tile_size`` pixels square; the last row and column may be smaller). A
*window* is a tile grown by ``halo`` pixels on every side: the restorer sees
that context, and neighbouring windows overlap by ``2 * halo`` pixels, which is
where they are blended.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def chunk_sizes(n: int, chunk: int) -> tuple[int, ...]:
    """Dask chunk sizes along an axis of ``n`` pixels: full ``chunk``s, then the rest."""
    return tuple(min(chunk, n - start) for start in range(0, n, chunk))


@dataclass(frozen=True)
class TileGrid:
    """Square tiles of ``tile_size`` pixels over an image of ``shape``.

    Parameters
    ----------
    shape : (int, int)
        ``(height, width)`` of level 0 in pixels.
    tile_size : int
        Tile edge in pixels.
    halo : int
        Context added around each tile to make its window, in pixels.
    """

    shape: tuple[int, int]
    tile_size: int = 512
    halo: int = 64

    def __post_init__(self) -> None:
        if self.tile_size < 16:
            raise ValueError(f"tile_size must be at least 16 pixels, got {self.tile_size}")
        if not 0 <= self.halo <= self.tile_size // 2:
            raise ValueError(f"halo must be between 0 and tile_size/2, got {self.halo}")

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Number of tiles along y and x."""
        h, w = self.shape
        return -(-h // self.tile_size), -(-w // self.tile_size)

    def area_share(self) -> np.ndarray:
        """Each tile's area inside the image, as a share of a whole tile (1 inside, less on the last row and
        column): what a tile weighs in a share of tissue.

        Examples
        --------
        >>> TileGrid((1025, 1024), tile_size=512, halo=0).area_share()[:, 0].round(4).tolist()
        [1.0, 1.0, 0.002]
        """
        h, w = self.shape
        rows, cols = self.grid_shape
        t = self.tile_size
        hy = np.minimum(t, h - np.arange(rows) * t) / t
        wx = np.minimum(t, w - np.arange(cols) * t) / t
        return np.outer(hy, wx)

    def tile_bounds(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(y0, x0, y1, x1)`` of tile ``(i, j)``, clipped to the image."""
        t = self.tile_size
        h, w = self.shape
        return i * t, j * t, min((i + 1) * t, h), min((j + 1) * t, w)

    def window_bounds(self, i: int, j: int) -> tuple[int, int, int, int]:
        """``(y0, x0, y1, x1)`` of the window of tile ``(i, j)``.

        A full tile grown by ``halo``; it may reach outside the image (the
        reader pads there).
        """
        t, g = self.tile_size, self.halo
        return i * t - g, j * t - g, (i + 1) * t + g, (j + 1) * t + g

    def tiles_touching(self, y0: int, x0: int, y1: int, x1: int) -> list[tuple[int, int]]:
        """Tiles whose *windows* overlap the pixel rectangle ``[y0, y1) x [x0, x1)``."""
        t, g = self.tile_size, self.halo
        rows, cols = self.grid_shape
        i0, i1 = max((y0 - g) // t, 0), min((y1 - 1 + g) // t, rows - 1)
        j0, j1 = max((x0 - g) // t, 0), min((x1 - 1 + g) // t, cols - 1)
        return [(i, j) for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
