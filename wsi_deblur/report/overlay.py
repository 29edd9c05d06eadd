"""``<stem>.blurmap.png``: the slide thumbnail with a colour per blur class and a legend."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from wsi_deblur.blur.classes import CLASS_COLORS
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blurmap import LABEL_VALUES, BlurMap
from wsi_deblur.write.location import output_path

#: Opacity of the overlay per class; in-focus tissue is only tinted.
OPACITY = {"in_focus": 0.15, "defocus": 0.5, "motion": 0.5, "mixed": 0.5}


def overlay_image(thumbnail: np.ndarray, downsample: float, blurmap: BlurMap) -> np.ndarray:
    """Blend class colours into the thumbnail, tile by tile; ``(h, w, 3)`` uint8."""
    out = thumbnail.astype(np.float32).copy()
    h, w = thumbnail.shape[:2]
    grid = blurmap.grid
    for name in BLUR_CLASSES:
        mask = blurmap.is_tissue & (blurmap.label == LABEL_VALUES[name])
        color = np.array(CLASS_COLORS[name], np.float32)
        a = OPACITY[name]
        for i, j in zip(*np.nonzero(mask)):
            y0, x0, y1, x1 = (int(round(v / downsample)) for v in grid.tile_bounds(i, j))
            y1, x1 = min(max(y1, y0 + 1), h), min(max(x1, x0 + 1), w)
            out[y0:y1, x0:x1] = (1 - a) * out[y0:y1, x0:x1] + a * color
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def legend_font(size: int):
    """Pillow's default font at ``size`` pixels (a bitmap font where Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def write_overlay_png(path: str | os.PathLike, thumbnail: np.ndarray, downsample: float, blurmap: BlurMap, *,
                      title: str = "") -> None:
    """Write the overlay with a legend (class colour, share of tissue) underneath.

    The legend grows with the image (14-px text at 560 px wide and below, in
    proportion above), so that it stays legible where the report shows the
    image at 520 px.
    """
    image = Image.fromarray(overlay_image(thumbnail, downsample, blurmap))
    fractions = blurmap.class_fractions()
    width = max(image.width, 560)
    scale = width / 560

    def px(v: float) -> int:
        return int(round(v * scale))

    font = legend_font(px(14))
    canvas = Image.new("RGB", (width, image.height + px(54)), "white")
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    y = image.height + px(8)
    draw.text((px(8), y), title, fill="black", font=font)
    x = px(8)
    for name in BLUR_CLASSES:
        color = tuple(CLASS_COLORS[name])
        draw.rectangle([x, y + px(22), x + px(16), y + px(38)], fill=color, outline="black")
        label = f"{name.replace('_', ' ')} {fractions[name]:.0%}"
        draw.text((x + px(22), y + px(22)), label, fill="black", font=font)
        x += px(26) + int(draw.textlength(label, font=font)) + px(18)
    with output_path(path).open("wb") as f:
        canvas.save(f, format="PNG", compress_level=6)  # optimize=True: 6x the time, same size
