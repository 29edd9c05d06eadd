"""The focus surface of a slide: how far from focus each part of the tissue was scanned, and why a slide blurred.

A scanner's focus varies smoothly over a slide (a tilted slide, focus points
too far apart, a warped coverslip), so the per-tile defocus BlurNet reports
is fitted by a smooth surface over the tissue: a quadratic in the stage
coordinates (a plane with few tiles, a constant with fewer), robust to the
odd wrong tile (Huber weights, iterated; tiles weighted by their tissue). In
focus tiles count as 0 um, defocused and mixed ones at the distance their
blur width implies (:func:`~wsi_deblur.blur.estimated_psf.defocus_um_for_sigma`,
NA 0.75); motion-only tiles say nothing of focus and are left out.

What QC staff read (qc.json ``focus_surface``, the report): the mean, the
range over the tissue, the tilt (um of defocus per mm of stage) and its
direction, and the worst region; per tile, the surface's value
(``focus_surface_um`` in the tiles CSV); and a map, ``<stem>.focus.png``.

Examples
--------
>>> from wsi_deblur.tiling.grid import TileGrid
>>> from wsi_deblur.blurmap import BlurMap
>>> grid = TileGrid((4096, 4096), tile_size=512, halo=0)
>>> bm = BlurMap(grid, np.ones(grid.grid_shape, np.float32), np.ones(grid.grid_shape, bool))
>>> bm.label[:] = 2                                          # every tile defocused ...
>>> bm.defocus_sigma_px[:] = np.linspace(1, 8, 8)[None, :]  # ... more towards the right
>>> s = fit_focus_surface(bm, mpp=0.25)
>>> s.summary()["model"], s.summary()["tilt_direction_deg"]
('quadratic', 0.0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from wsi_deblur.blur.classes import LABEL_VALUES
from wsi_deblur.blur.estimated_psf import defocus_um_for_sigma
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.write.location import output_path

#: Tissue tiles with a focus estimate needed for a plane, and for a quadratic.
MIN_TILES_PLANE, MIN_TILES_QUADRATIC = 4, 12
#: Huber's constant (in robust standard deviations) and the iterations of the fit.
HUBER_K, ITERATIONS = 1.345, 10


@dataclass(frozen=True)
class FocusSurface:
    """A fitted focus surface: the model, its coefficients over ``(x, y)`` in mm, and its value per tile (um)."""

    model: str
    coefficients: np.ndarray
    per_tile_um: np.ndarray
    residual_um: float
    tiles: int
    tile_mm: float

    def summary(self) -> dict:
        """What qc.json says of it (um of defocus; mm of stage from the top-left corner of the slide)."""
        values = self.per_tile_um[np.isfinite(self.per_tile_um)]
        worst = np.unravel_index(np.nanargmax(self.per_tile_um), self.per_tile_um.shape)
        gy, gx = self._gradient_at_centre()
        return {
            "model": self.model, "tiles": self.tiles,
            "mean_um": round(float(values.mean()), 3),
            "range_um": [round(float(values.min()), 3), round(float(values.max()), 3)],
            "tilt_um_per_mm": round(float(np.hypot(gx, gy)), 3),
            "tilt_direction_deg": (round(float(np.degrees(np.arctan2(-gy, gx))), 1) + 360.0) % 360.0
            if gx or gy else None,
            "worst_um": round(float(self.per_tile_um[worst]), 3),
            "worst_tile": [int(worst[0]), int(worst[1])],
            "worst_centre_mm": [round((worst[1] + 0.5) * self.tile_mm, 3), round((worst[0] + 0.5) * self.tile_mm, 3)],
            "residual_um": round(float(self.residual_um), 3),
        }

    def _gradient_at_centre(self) -> tuple[float, float]:
        """d(defocus)/dy and d/dx (um per mm) of the surface at the tissue's centre."""
        rows, cols = np.nonzero(np.isfinite(self.per_tile_um))
        x, y = (cols.mean() + 0.5) * self.tile_mm, (rows.mean() + 0.5) * self.tile_mm
        c = np.zeros(6)
        c[:len(self.coefficients)] = self.coefficients
        return float(c[2] + c[4] * x + 2 * c[5] * y), float(c[1] + 2 * c[3] * x + c[4] * y)


def tile_defocus_um(blurmap: BlurMap, mpp: float) -> np.ndarray:
    """Each tissue tile's defocus (um): 0 in focus, from its blur width when defocused or mixed, NaN otherwise."""
    out = np.full(blurmap.grid.grid_shape, np.nan)
    label, sigma = blurmap.label, blurmap.defocus_sigma_px
    out[blurmap.is_tissue & (label == LABEL_VALUES["in_focus"])] = 0.0
    for ij in zip(*np.nonzero(blurmap.is_tissue & np.isin(label, (LABEL_VALUES["defocus"], LABEL_VALUES["mixed"])))):
        out[ij] = defocus_um_for_sigma(float(sigma[ij]), mpp)
    return out


def _design(x: np.ndarray, y: np.ndarray, terms: int) -> np.ndarray:
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y][:terms], axis=1)


def fit_focus_surface(blurmap: BlurMap, mpp: float) -> FocusSurface | None:
    """The robust smooth surface through the tiles' defocus (None without a tissue tile that tells focus)."""
    z = tile_defocus_um(blurmap, mpp)
    rows, cols = np.nonzero(np.isfinite(z))
    if rows.size == 0:
        return None
    tile_mm = blurmap.grid.tile_size * mpp / 1000.0
    x, y = (cols + 0.5) * tile_mm, (rows + 0.5) * tile_mm
    terms, model = ((6, "quadratic") if rows.size >= MIN_TILES_QUADRATIC else
                    (3, "plane") if rows.size >= MIN_TILES_PLANE else (1, "constant"))
    a, target = _design(x, y, terms), z[rows, cols]
    prior = np.clip(blurmap.tissue_fraction[rows, cols].astype(np.float64), 0.05, 1.0)
    weights, scale = prior.copy(), 0.0
    for _ in range(ITERATIONS):
        sw = np.sqrt(weights)
        coefficients = np.linalg.lstsq(a * sw[:, None], target * sw, rcond=None)[0]
        residual = target - a @ coefficients
        scale = 1.4826 * float(np.median(np.abs(residual))) + 1e-6
        r = np.abs(residual) / (HUBER_K * scale)
        weights = prior * np.where(r <= 1, 1.0, 1.0 / np.maximum(r, 1e-12))
    all_rows, all_cols = np.nonzero(blurmap.is_tissue)
    per_tile = np.full(z.shape, np.nan)
    fitted = _design((all_cols + 0.5) * tile_mm, (all_rows + 0.5) * tile_mm, terms) @ coefficients
    per_tile[all_rows, all_cols] = np.maximum(fitted, 0.0)
    return FocusSurface(model, coefficients, per_tile, scale, int(rows.size), tile_mm)


def write_focus_png(path: str | os.PathLike, surface: FocusSurface, *, cell: int = 16) -> None:
    """The surface per tissue tile as colours (white 0 um to dark red at the slide's worst, grey background),
    ``cell`` pixels a tile, with a scale bar in the title row.
    """
    from PIL import Image, ImageDraw

    values = surface.per_tile_um
    top = max(float(np.nanmax(values)), 1e-6)
    level = np.clip(np.nan_to_num(values / top, nan=0.0), 0.0, 1.0)
    rgb = np.stack([255 - 80 * level, 255 - 230 * level, 255 - 230 * level], axis=-1)
    rgb[~np.isfinite(values)] = (200, 200, 200)
    tiles = np.repeat(np.repeat(rgb.astype(np.uint8), cell, axis=0), cell, axis=1)
    image = Image.new("RGB", (max(tiles.shape[1], 240), tiles.shape[0] + 20), (255, 255, 255))
    image.paste(Image.fromarray(tiles), (0, 20))
    ImageDraw.Draw(image).text((2, 4), f"defocus 0 (white) to {top:.1f} um (red)", fill=(0, 0, 0))
    with output_path(path).open("wb") as f:
        image.save(f, format="PNG")
