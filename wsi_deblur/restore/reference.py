"""The in-focus reference of a slide: the spectrum its own sharp tissue has.

The consistency guard caps what a restoration adds, where the PSF passes
little, at the amplitude that in-focus tissue of the *same* slide has at that
frequency (same scanner, same stain, same section thickness):
:func:`slide_reference` reads the slide's most confidently in-focus tissue
tiles and measures it (:func:`~wsi_deblur.restore.guard.band_amplitude`).
"""

from __future__ import annotations

import numpy as np

from wsi_deblur.blurmap import LABEL_VALUES, BlurMap
from wsi_deblur.io.slide import Slide
from wsi_deblur.restore.guard import band_amplitude

#: Tiles read for the reference (the most confidently in-focus tissue tiles).
REFERENCE_TILES = 8


def slide_reference(slide: Slide, blurmap: BlurMap, *, tiles: int = REFERENCE_TILES,
                    min_tissue: float = 0.9) -> np.ndarray | None:
    """``(3, N_BANDS)`` ring amplitudes of the slide's in-focus tissue at level 0; None if it has none.

    The ``tiles`` in-focus tiles with the highest P(in focus) among those at
    least ``min_tissue`` tissue (ties by position, so the choice is reproducible).
    """
    grid = blurmap.grid
    sharp = (blurmap.is_tissue & (blurmap.label == LABEL_VALUES["in_focus"])
             & (blurmap.tissue_fraction >= min_tissue))
    candidates = np.argwhere(sharp)
    if not len(candidates):
        return None
    p_sharp = 1.0 - blurmap.blur_probability[sharp]
    order = np.lexsort((candidates[:, 1], candidates[:, 0], -p_sharp))[:tiles]
    pixels = []
    for i, j in candidates[order]:
        y0, x0, y1, x1 = grid.tile_bounds(int(i), int(j))
        pixels.append(slide.read_region(y0, x0, y1 - y0, x1 - x0))
    return np.mean([band_amplitude(p) for p in pixels], axis=0)
