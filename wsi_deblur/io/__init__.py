"""Reading slides: :func:`open_slide` returns a lazy :class:`Slide`."""

from __future__ import annotations

import logging
from pathlib import Path

from wsi_deblur.errors import SlideError
from wsi_deblur.io.backends import open_backend
from wsi_deblur.io.slide import Slide, SlideSource, forget_open_slides, slide_stem

logger = logging.getLogger(__name__)

__all__ = ["Slide", "SlideError", "open_slide", "forget_open_slides", "slide_stem"]


def open_slide(path: str | Path, *, mpp: float | None = None, backend: str = "auto",
               mpp_fallback: float | None = None) -> Slide:
    """Open a whole-slide image or a plain RGB field for reading.

    Parameters
    ----------
    path : str or Path
        Any format OpenSlide reads (SVS, NDPI, MRXS, ...), OME-TIFF or other
        TIFF, an OME-Zarr folder (NGFF 0.4 or 0.5, as ``run`` writes), or a
        plain PNG/JPEG image.
    mpp : float, optional
        Micrometres per pixel at level 0; overrides (or supplies, when the
        file has none) the pixel size from the metadata.
    mpp_fallback : float, optional
        Micrometres per pixel for a file whose metadata has none (one that has
        one keeps it): what ``--mpp`` means on the command line.
    backend : {"auto", "tifffile", "openslide", "pillow", "ome-zarr"}
        ``auto`` takes the tifffile fast path where it yields OpenSlide's
        pixels, OpenSlide for other slide formats, Pillow for plain images,
        the OME-Zarr reader for a Zarr folder.

    Raises
    ------
    SlideError
        The file is missing, empty, truncated, not an image, or not 8-bit RGB.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from wsi_deblur.synthetic import SyntheticSlide
    >>> path = SyntheticSlide((1024, 1536), seed=1).write(pathlib.Path(tempfile.mkdtemp()) / "x.ome.tif", mpp=0.5)
    >>> slide = open_slide(path)
    >>> slide.shape, slide.mpp, slide.mpp_source
    ((1024, 1536), 0.5, 'file')
    >>> slide.read_region(0, 0, 256, 512).shape
    (256, 512, 3)
    """
    path = str(path)
    for given in (mpp, mpp_fallback):
        if given is not None and not given > 0:
            raise SlideError(path, f"--mpp must be a positive number of micrometres per pixel, got {given}")
    handle = open_backend(path, backend)
    source = SlideSource(path=path, backend=handle.name, mpp_override=mpp, mpp_fallback=mpp_fallback)
    slide = Slide(source, handle)
    logger.info("%s: read with %s, %d x %d px in %d levels, %s um/px", path, handle.name, slide.shape[1],
                slide.shape[0], len(slide.level_shapes), slide.mpp)
    return slide
