"""Tissue detection on a low-resolution image of the slide.

Background on a brightfield slide is bright and unsaturated; stained tissue is
darker or coloured. We compute a per-pixel *tissue score* (the larger of
saturation and darkness), estimate the glass level as the median score of the
darker Otsu class's complement (the bright class), and call tissue anything a
little above the glass: pale stroma counts, not just dense stain. The
threshold is bounded so an all-tissue or all-glass slide is judged sensibly;
the mask is cleaned with a closing, hole filling and by dropping specks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

#: A score below this is glass whatever the statistics say; above MAX_THRESHOLD is tissue.
MIN_THRESHOLD = 0.06
MAX_THRESHOLD = 0.20
#: How far above the glass level tissue starts (score units, about 10 grey levels).
GLASS_MARGIN = 0.04


def tissue_score(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel tissue evidence in [0, 1]: max of HSV saturation and darkness.

    Parameters
    ----------
    rgb : ndarray, shape (y, x, 3), uint8
    """
    x = rgb.astype(np.float32) / 255.0
    cmax = x.max(axis=2)
    cmin = x.min(axis=2)
    saturation = np.where(cmax > 0, (cmax - cmin) / np.maximum(cmax, 1e-6), 0.0)
    darkness = 1.0 - cmax
    return np.maximum(saturation, darkness)


#: Median grey level (0-255) of a thumbnail below which the slide may be fluorescence: brightfield glass
#: is near white (about 240), a fluorescence background near black (the probe's DAPI NDPI: 1).
MIN_BRIGHTFIELD_MEDIAN = 60
#: ... and only if its background is black: a tenth of it darker than this grey level, and the darker half
#: grey rather than coloured (mean chroma, max - min of R, G, B, under this). Dense dark H&E with no glass in
#: view has a median near 50 but its darkest tenth is stained purple at 30-100 grey levels.
MAX_FLUORESCENCE_BACKGROUND, MAX_FLUORESCENCE_CHROMA = 20, 25
#: Slide properties that only fluorescence scans carry (Hamamatsu's excitation/emission keys).
FLUORESCENCE_KEYS = ("hamamatsu.AHEX",)


def blank_reason(thumbnail: np.ndarray) -> str | None:
    """Why an image holds no picture at all (None if it does): every pixel one dark value.

    A TIFF whose tiles were never written (a scanner or converter that died)
    reads as its fill value, zero: black, and would otherwise be taken for a
    fluorescence scan. A uniform *bright* image is empty glass: no tissue, not
    an error.

    Examples
    --------
    >>> blank_reason(np.zeros((8, 8, 3), np.uint8))
    'no image: every pixel of its thumbnail is 0 (empty or never-written tiles?)'
    >>> blank_reason(np.full((8, 8, 3), 250, np.uint8)) is None   # empty glass: no tissue, said later
    True
    """
    rgb = np.asarray(thumbnail)
    if rgb.size == 0 or rgb.min() != rgb.max() or float(rgb.max()) >= MIN_BRIGHTFIELD_MEDIAN:
        return None
    return f"no image: every pixel of its thumbnail is {int(rgb.max())} (empty or never-written tiles?)"


def fluorescence_reason(thumbnail: np.ndarray, properties: dict[str, str] | None = None) -> str | None:
    """Why a slide looks like fluorescence rather than brightfield (None if it does not).

    Examples
    --------
    >>> import numpy as np
    >>> fluorescence_reason(np.full((8, 8, 3), 2, np.uint8))
    'a dark background (thumbnail median 2 of 255): a fluorescence scan, not brightfield'
    >>> fluorescence_reason(np.full((8, 8, 3), 240, np.uint8)) is None
    True
    >>> fluorescence_reason(np.full((8, 8, 3), (90, 30, 110), np.uint8)) is None   # dense dark H&E: stained
    True
    """
    keys = [k for k in (properties or {}) if k.startswith(FLUORESCENCE_KEYS)]
    if keys:
        return f"fluorescence metadata ({keys[0]}): a fluorescence scan, not brightfield"
    rgb = np.asarray(thumbnail, np.float64)
    grey = rgb.mean(axis=2)
    median = float(np.median(grey))
    if median >= MIN_BRIGHTFIELD_MEDIAN or float(np.percentile(grey, 10)) >= MAX_FLUORESCENCE_BACKGROUND:
        return None
    dark = grey <= median
    chroma = float((rgb.max(axis=2) - rgb.min(axis=2))[dark].mean())
    if chroma >= MAX_FLUORESCENCE_CHROMA:
        return None  # dark but stained: dense brightfield tissue
    return f"a dark background (thumbnail median {median:.0f} of 255): a fluorescence scan, not brightfield"


def tissue_mask(rgb: np.ndarray, *, min_object_px: int = 16) -> np.ndarray:
    """Boolean mask of tissue in a low-resolution RGB image.

    Parameters
    ----------
    rgb : ndarray, shape (y, x, 3), uint8
        A thumbnail; about 1024 px on the long side works well.
    min_object_px : int
        Connected specks smaller than this many thumbnail pixels are dropped.

    Returns
    -------
    ndarray of bool, shape (y, x)
    """
    score = ndi.uniform_filter(tissue_score(rgb), size=3)
    threshold = MIN_THRESHOLD
    if np.ptp(score) > 1e-3:
        otsu = threshold_otsu(score)
        glass = float(np.median(score[score <= otsu]))
        threshold = float(np.clip(min(otsu, glass + GLASS_MARGIN), MIN_THRESHOLD, MAX_THRESHOLD))
    mask = score > threshold
    mask = ndi.binary_closing(mask, structure=np.ones((3, 3)), iterations=2, border_value=0) | mask
    mask = ndi.binary_fill_holes(mask)
    labels, n = ndi.label(mask)
    if n:
        sizes = ndi.sum(mask, labels, index=np.arange(1, n + 1))
        keep = np.zeros(n + 1, dtype=bool)
        keep[1:] = sizes >= min_object_px
        mask = keep[labels]
    return mask


def tile_tissue_fraction(mask: np.ndarray, downsample: float, grid_shape: tuple[int, int],
                         tile_size: int) -> np.ndarray:
    """Fraction of each level-0 tile covered by tissue.

    Parameters
    ----------
    mask : ndarray of bool, shape (y, x)
        Tissue mask of a thumbnail.
    downsample : float
        Level-0 pixels per mask pixel.
    grid_shape : (int, int)
        Tiles along y and x.
    tile_size : int
        Tile edge in level-0 pixels.

    Returns
    -------
    ndarray of float32, shape ``grid_shape``
    """
    rows, cols = grid_shape
    out = np.zeros(grid_shape, dtype=np.float32)
    cum = np.pad(mask.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    mh, mw = mask.shape
    step = tile_size / downsample
    for i in range(rows):
        y0 = min(int(np.floor(i * step)), mh - 1)
        y1 = max(min(int(np.ceil((i + 1) * step)), mh), y0 + 1)
        for j in range(cols):
            x0 = min(int(np.floor(j * step)), mw - 1)
            x1 = max(min(int(np.ceil((j + 1) * step)), mw), x0 + 1)
            total = cum[y1, x1] - cum[y0, x1] - cum[y1, x0] + cum[y0, x0]
            out[i, j] = total / ((y1 - y0) * (x1 - x0))
    return out
