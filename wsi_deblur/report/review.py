"""``OUT/<stem>.review/``: before/after crops of a restored slide's most blurred tiles, for QC staff.

Each crop is the centre of one restored tile, the same field of view
(:data:`CROP_UM` micrometres) whatever the scan's magnification, as scanned
on the left and restored on the right, with the tile's blur and what the
consistency guard did written above. The report shows them beside the blur
map, so a reviewer sees what restoration did where it had the most to do.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image, ImageDraw

from wsi_deblur.blurmap import GUARD_ACTIONS, LABEL_VALUES, BlurMap
from wsi_deblur.report.overlay import legend_font
from wsi_deblur.write.location import output_path

logger = logging.getLogger(__name__)

#: Field of view of a crop, micrometres (256 px at 0.5 um/px).
CROP_UM = 128.0
#: Edge of each half (scanned, restored) in the PNG, pixels.
SHOWN_PX = 256
#: What the consistency guard did, as a caption says it.
GUARD_WORDS = {"restorer": "restoration kept", "pulled back": "pulled back toward the input",
               "not recorded": "not recorded (resumed run)", "not restored": "not restored"}
#: Text size and line height in the PNG, pixels (the report shows it at half size).
FONT_PX, CAPTION_LINE_PX = 20, 24
#: Space between the two halves, pixels.
GAP_PX = 6
#: Crops written per restored slide.
DEFAULT_CROPS = 4


def blur_extent_um(blurmap: BlurMap, mpp: float) -> np.ndarray:
    """How far each tile's blur spreads a point, micrometres: a defocus PSF's FWHM (2.355 sigma), a motion
    length, the larger of the two for mixed blur; 0 in focus and on background.
    """
    defocus = 2.355 * blurmap.defocus_sigma_px * mpp
    motion = blurmap.motion_length_px * mpp
    label = blurmap.label
    extent = np.where(label == LABEL_VALUES["defocus"], defocus, 0.0)
    extent = np.where(label == LABEL_VALUES["motion"], motion, extent)
    return np.where(label == LABEL_VALUES["mixed"], np.maximum(defocus, motion), extent).astype(np.float32)


def worst_restored_tiles(blurmap: BlurMap, restored: np.ndarray, *, mpp: float,
                         n: int = DEFAULT_CROPS) -> list[tuple[int, int]]:
    """The ``n`` restored tiles with the widest blur (:func:`blur_extent_um`), widest first; ties by P(blurred).

    Examples
    --------
    >>> from wsi_deblur.tiling.grid import TileGrid
    >>> grid = TileGrid((512, 768), tile_size=256, halo=0)
    >>> bm = BlurMap(grid, np.ones((2, 3), np.float32), np.ones((2, 3), bool))
    >>> bm.label[:] = 2; bm.defocus_sigma_px[:] = [[1, 4, 2], [3, 0.5, 1]]
    >>> worst_restored_tiles(bm, np.ones((2, 3), bool), mpp=0.5, n=2)
    [(0, 1), (1, 0)]
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    extent = blur_extent_um(blurmap, mpp)
    ij = np.argwhere(restored)
    order = np.lexsort((-blurmap.blur_probability[restored], -extent[restored]))
    return [tuple(int(v) for v in ij[k]) for k in order[:n]]


def review_crop(before: np.ndarray, after: np.ndarray, caption: str) -> Image.Image:
    """One PNG: ``before`` | ``after`` (the longer side of each resized to :data:`SHOWN_PX`), under the caption
    (its lines, ``"; "`` separated) and the two halves' names, in text legible at half size.
    """
    font = legend_font(FONT_PX)
    lines = [*caption.split("; "), ""]
    head = CAPTION_LINE_PX * len(lines) + 4
    canvas = Image.new("RGB", (2 * SHOWN_PX + GAP_PX, SHOWN_PX + head), "white")
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines[:-1]):
        draw.text((4, 2 + k * CAPTION_LINE_PX), line, fill="black", font=font)
    for k, (pixels, label) in enumerate(((before, "as scanned"), (after, "restored"))):
        h, w = pixels.shape[:2]
        scale = SHOWN_PX / max(h, w)  # one scale for both axes: an edge tile's crop is not stretched
        half = Image.fromarray(pixels).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                              Image.Resampling.BOX)
        x = k * (SHOWN_PX + GAP_PX)
        canvas.paste(half, (x, head))
        draw.text((x + 4, head - CAPTION_LINE_PX), label, fill="black", font=font)
    return canvas


def tile_caption(blurmap: BlurMap, ij: tuple[int, int], mpp: float) -> str:
    """``tile (row 3, col 7): defocus, blur 4.2 um; P(blurred) 0.97, restoration kept``."""
    est = blurmap.estimate(ij)
    action = GUARD_WORDS.get(GUARD_ACTIONS[int(blurmap.guard_action[ij])], "")
    return (f"tile (row {ij[0]}, col {ij[1]}): {est.label}, blur {float(blur_extent_um(blurmap, mpp)[ij]):.1f} um; "
            f"P(blurred) {float(blurmap.blur_probability[ij]):.2f}, {action}")


def write_review_crops(folder: str | os.PathLike, slide, level0, blurmap: BlurMap, restored: np.ndarray, *,
                       n: int = DEFAULT_CROPS) -> list[dict]:
    """Write before/after crops of the worst restored tiles into ``folder``; one record per crop.

    Parameters
    ----------
    folder : path
        The ``<stem>.review`` folder (local or fsspec; created).
    slide : Slide
        The slide as scanned (:func:`wsi_deblur.io.open_slide`).
    level0 : zarr.Array
        Level 0 of the restored OME-Zarr, ``(c, y, x)``.
    blurmap : BlurMap
    restored : bool array
        The tiles that were restored (:meth:`BlurMap.restore_mask`).

    Returns
    -------
    list of dict
        ``file`` (the PNG's name in ``folder``), ``tile`` ([row, col]) and ``caption``, worst first.
    """
    out = output_path(folder)
    out.mkdir(parents=True, exist_ok=True)
    size = min(int(round(CROP_UM / slide.mpp)), blurmap.grid.tile_size)
    records = []
    for ij in worst_restored_tiles(blurmap, restored, mpp=slide.mpp, n=n):
        y0, x0, y1, x1 = blurmap.grid.tile_bounds(*ij)
        h, w = min(size, y1 - y0), min(size, x1 - x0)
        y, x = y0 + (y1 - y0 - h) // 2, x0 + (x1 - x0 - w) // 2
        before = slide.read_region(y, x, h, w)
        after = np.moveaxis(np.asarray(level0[:, y:y + h, x:x + w]), 0, -1)
        caption = tile_caption(blurmap, ij, slide.mpp)
        name = f"tile-r{ij[0]}-c{ij[1]}.png"
        with (out / name).open("wb") as f:
            review_crop(before, after, caption).save(f, format="PNG", compress_level=6)
        records.append({"file": name, "tile": list(ij), "caption": caption})
    logger.info("%s: %d before/after crops of the most blurred restored tiles", folder, len(records))
    return records
