"""Classify whole images (camera fields, tiles): the ``classify`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wsi_deblur.blur.estimate import BLUR_CLASSES, BlurEstimate, mean_direction_deg
from wsi_deblur.classify.base import BlurClassifier, luma
from wsi_deblur.errors import SlideError
from wsi_deblur.io import Slide, open_slide
from wsi_deblur.tissue import blank_reason, fluorescence_reason
from wsi_deblur.working_scale import WORKING_MPP, downsample_tiles, working_downsample

#: Smallest image side, in pixels at the working resolution, that can be judged.
MIN_SIDE = 64
#: Side of the pieces a large image is judged in (pixels at the working resolution).
PIECE = 256
#: At most this many pieces (the most textured) are judged per image.
MAX_PIECES = 16
#: Larger images are slides: they go through ``qc``, which reads them tile by tile.
MAX_PIXELS = 8192 * 8192


def _pieces(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if h <= PIECE or w <= PIECE:
        return image[None]
    ys = np.linspace(0, h - PIECE, max(1, round(h / PIECE))).astype(int)
    xs = np.linspace(0, w - PIECE, max(1, round(w / PIECE))).astype(int)
    starts = [(y, x) for y in ys for x in xs]
    grey = luma(image[::2, ::2])  # contrast on every other pixel: 4x less work, ranks pieces alike
    contrast = np.array([grey[y // 2:(y + PIECE) // 2, x // 2:(x + PIECE) // 2].std() for y, x in starts])
    keep = np.flatnonzero(contrast >= 0.5 * contrast.max())  # judge focus where there is structure
    keep = keep[np.argsort(-contrast[keep], kind="stable")[:MAX_PIECES]]
    return np.stack([image[y:y + PIECE, x:x + PIECE] for y, x in (starts[k] for k in np.sort(keep))])


#: Longest side (pixels) the fluorescence test looks at: it judges a thumbnail in ``qc``, and every k-th pixel here.
FLUORESCENCE_SIDE = 512


def refuse_fluorescence(image: np.ndarray, slide: Slide) -> None:
    """Raise :class:`SlideError` for a fluorescence image (``image``: its pixels, any scale), as ``qc`` does.

    Judged on every k-th pixel, at most :data:`FLUORESCENCE_SIDE` on the long side, as ``qc`` judges a
    thumbnail (a 1024-px field took 25 ms at full size, twice per ``restore``).
    """
    blank = blank_reason(image)
    if blank:
        raise SlideError(slide.path, blank)
    step = max(1, -(-max(image.shape[:2]) // FLUORESCENCE_SIDE))
    reason = fluorescence_reason(image[::step, ::step], slide.properties)
    if reason:
        raise SlideError(slide.path, f"{reason}; wsi-deblur reads brightfield images only")


def classify_image(path: str | Path | Slide, classifier: BlurClassifier, *, mpp: float | None = None) -> dict[str, Any]:
    """Blur class, probabilities and severity of a whole image.

    Large images are judged in 256-px pieces (at about 0.5 um/px when the
    pixel size is known, as given otherwise); probabilities are averaged over
    the pieces with structure, severities are the median over the pieces of
    the winning class (the motion direction their axial mean). Severities are in the image's own pixels.

    ``path`` may be an image already opened with :func:`open_slide` (its
    pixels are then not decoded a second time).

    Raises
    ------
    SlideError
        Not an image, empty, too small, not 8-bit RGB, or a fluorescence scan.
    """
    if isinstance(path, Slide):
        slide, path = path, path.path
    else:
        slide = open_slide(path, mpp_fallback=mpp)
    h, w = slide.shape
    if h * w > MAX_PIXELS:
        raise SlideError(path, f"{w}x{h} px is a slide, not a field: use `wsi-deblur qc` (it reads tile by tile)")
    factor = working_downsample(slide.mpp, WORKING_MPP)
    if min(h, w) // factor < MIN_SIDE:
        raise SlideError(path, f"image is too small to judge focus ({w}x{h} px; at least {MIN_SIDE * factor} px "
                               "on each side)")
    image = downsample_tiles(slide.read_region(0, 0, h, w)[None], factor)[0]
    refuse_fluorescence(image, slide)
    estimates: list[BlurEstimate] = classifier.classify(_pieces(image))
    probs = {c: float(np.mean([e.probabilities.get(c, 0.0) for e in estimates])) for c in BLUR_CLASSES}
    label = max(probs, key=probs.get)
    chosen = [e for e in estimates if e.label == label] or estimates

    def median(attr: str) -> float:
        return round(float(np.median([getattr(e, attr) for e in chosen])) * factor, 3)

    return {
        "path": str(path),
        "mpp": slide.mpp or WORKING_MPP,
        "mpp_source": slide.mpp_source,
        "class": label,
        "probabilities": {c: round(v, 4) for c, v in probs.items()},
        "severity": {
            "defocus_um": round(float(np.median([e.defocus_um for e in chosen])), 3),
            "defocus_sigma_px": median("defocus_sigma_px"),
            "motion_length_px": median("motion_length_px"),
            "motion_angle_deg": round(mean_direction_deg(e.motion_angle_deg for e in chosen), 1),
        },
    }
