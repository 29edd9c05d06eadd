"""wsi-deblur: whole-slide blur QC and deblurring.

Read a slide, find its tissue, classify the blur of every tissue tile (in
focus, defocus, motion, mixed, and how severe), restore the blurred tiles,
blend them back without seams, and write a pyramidal OME-Zarr and OME-TIFF
with a blur map and a QC report.

>>> from wsi_deblur import open_slide, process_slide, RunOptions
>>> result = process_slide("slide.svs", "out/")            # doctest: +SKIP
>>> result.summary["blur_fractions_of_tissue"]             # doctest: +SKIP
>>> adapt(["site/slide-1.svs"], "weights/site-a")          # doctest: +SKIP
"""

from wsi_deblur.adaptation.job import AdaptOptions, adapt
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.errors import SlideError
from wsi_deblur.io import Slide, open_slide
from wsi_deblur.pipeline import (BatchOutcome, RunOptions, SlideResult, compute_blurmap, process_batch,
                                 process_slide, use_scheduler)

__version__ = "0.1.0"

__all__ = ["AdaptOptions", "BatchOutcome", "BlurMap", "RunOptions", "Slide", "SlideError", "SlideResult", "adapt",
           "compute_blurmap", "open_slide", "process_batch", "process_slide", "use_scheduler", "__version__"]
