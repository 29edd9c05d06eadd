"""Seamless blending of restored windows back into the image.

Two weights make the result seamless and keep untouched tiles untouched:

- **window weights** form a partition of unity over overlapping windows: a
  separable raised-cosine ramp over the ``2 * halo`` pixels where neighbours
  overlap. Restored windows are averaged with them, so two windows that
  disagree (say, in brightness) meet in a smooth transition, not a step.
- the **restoration alpha** is 1 inside restored tiles and ramps down to 0
  over ``ramp`` pixels *inside* a restored tile where it borders a tile that is
  not restored. Pixels of tiles that are not restored keep alpha 0 and are
  copied from the input bit for bit.

The output of a rectangle depends only on the windows that reach it, summed in
a fixed order, so any chunking gives the same bytes as no chunking.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

from wsi_deblur.tiling.grid import TileGrid


def ramp_profile(size: int, overlap: int) -> np.ndarray:
    """1-D window weight: raised-cosine up over ``overlap`` px, 1, then down.

    Two profiles offset by ``size - overlap`` sum to exactly 1 where they
    overlap (``sin**2 + cos**2``).
    """
    w = np.ones(size, dtype=np.float64)
    if overlap > 0:
        k = (np.arange(overlap) + 0.5) / overlap
        up = np.sin(0.5 * np.pi * k) ** 2
        w[:overlap] = up
        w[size - overlap:] = up[::-1]
    return w


def window_weight(grid: TileGrid) -> np.ndarray:
    """2-D weight ``(window, window)`` of one window, float64."""
    size = grid.tile_size + 2 * grid.halo
    p = ramp_profile(size, 2 * grid.halo)
    return np.outer(p, p)


def restoration_alpha(restored: np.ndarray, grid: TileGrid, rect: tuple[int, int, int, int],
                      ramp: int) -> np.ndarray:
    """How much of the restored estimate each pixel of ``rect`` takes, in [0, 1].

    Parameters
    ----------
    restored : ndarray of bool, shape ``grid.grid_shape``
        Tiles that are restored.
    rect : (y0, x0, y1, x1)
        Level-0 pixel rectangle.
    ramp : int
        Width in pixels of the transition inside a restored tile that borders
        an unrestored one. 0 gives a hard edge.
    """
    y0, x0, y1, x1 = rect
    t = grid.tile_size
    h, w = grid.shape
    m = ramp + 1
    ys = np.arange(y0 - m, y1 + m)
    xs = np.arange(x0 - m, x1 + m)
    # Outside the image counts as restored: no taper at the slide's edge.
    rows = np.clip(ys // t, 0, restored.shape[0] - 1)
    cols = np.clip(xs // t, 0, restored.shape[1] - 1)
    local = restored[rows][:, cols].copy()
    local[(ys < 0) | (ys >= h), :] = True
    local[:, (xs < 0) | (xs >= w)] = True
    inner = (slice(m, m + y1 - y0), slice(m, m + x1 - x0))
    if local.all() or ramp <= 0:
        return local[inner].astype(np.float32)
    dist = ndi.distance_transform_edt(local)[inner]
    u = np.clip(dist / ramp, 0.0, 1.0)
    return (u * u * (3.0 - 2.0 * u)).astype(np.float32)  # smoothstep


def blend_region(original: np.ndarray, rect: tuple[int, int, int, int], grid: TileGrid,
                 restored_tiles: np.ndarray, windows: Mapping[tuple[int, int], np.ndarray],
                 *, ramp: int | None = None) -> np.ndarray:
    """Blend restored windows into ``original`` over the rectangle ``rect``.

    Parameters
    ----------
    original : ndarray, shape (y1 - y0, x1 - x0, 3), uint8
        Input pixels of ``rect``.
    rect : (y0, x0, y1, x1)
        Level-0 pixel rectangle.
    grid : TileGrid
    restored_tiles : ndarray of bool, shape ``grid.grid_shape``
    windows : mapping of (i, j) to ndarray (window, window, 3) uint8
        Restored windows; must hold every restored tile whose window
        touches ``rect``.
    ramp : int, optional
        Transition width in pixels into unrestored tiles; default ``grid.halo``.

    Returns
    -------
    ndarray, shape like ``original``, uint8
    """
    ramp = grid.halo if ramp is None else ramp
    y0, x0, y1, x1 = rect
    touching = [ij for ij in grid.tiles_touching(y0, x0, y1, x1) if restored_tiles[ij]]
    if not touching:
        return original
    # Only pixels of restored tiles can change (alpha is 0 elsewhere): work on
    # their bounding box within rect. Alpha and the window average of a pixel
    # do not depend on the box, so the bytes are those of the whole rect.
    bounds = np.array([grid.tile_bounds(i, j) for i, j in touching])
    sy0, sx0 = max(y0, int(bounds[:, 0].min())), max(x0, int(bounds[:, 1].min()))
    sy1, sx1 = min(y1, int(bounds[:, 2].max())), min(x1, int(bounds[:, 3].max()))
    if sy1 <= sy0 or sx1 <= sx0:
        return original
    if (sy0, sx0, sy1, sx1) != (y0, x0, y1, x1):
        out = original.copy()
        inner = (slice(sy0 - y0, sy1 - y0), slice(sx0 - x0, sx1 - x0))
        out[inner] = blend_region(original[inner], (sy0, sx0, sy1, sx1), grid, restored_tiles, windows, ramp=ramp)
        return out
    alpha = restoration_alpha(restored_tiles, grid, rect, ramp)
    if not alpha.any():
        return original
    weight = window_weight(grid).astype(np.float32)
    acc = np.zeros(original.shape, dtype=np.float32)
    wsum = np.zeros(original.shape[:2], dtype=np.float32)
    for i, j in sorted(touching):
        wy0, wx0, wy1, wx1 = grid.window_bounds(i, j)
        iy0, ix0, iy1, ix1 = max(wy0, y0), max(wx0, x0), min(wy1, y1), min(wx1, x1)
        if iy1 <= iy0 or ix1 <= ix0:
            continue
        win = windows[(i, j)][iy0 - wy0:iy1 - wy0, ix0 - wx0:ix1 - wx0]
        wgt = weight[iy0 - wy0:iy1 - wy0, ix0 - wx0:ix1 - wx0]
        acc[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] += wgt[:, :, None] * win
        wsum[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] += wgt
    # original + alpha * (window average - original), computed in place in ``acc``
    a = alpha[:, :, None]
    acc /= np.maximum(wsum, np.float32(1e-12))[:, :, None]
    acc -= original
    acc *= a
    acc += original
    blended = np.clip(np.rint(acc, out=acc), 0, 255, out=acc).astype(np.uint8)
    return blended if alpha.all() else np.where(a > 0, blended, original)
