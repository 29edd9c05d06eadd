"""wsi-deblur: whole-slide blur QC and deblurring.

Read a slide, find its tissue, classify the blur of every tissue tile (in
focus, defocus, motion, mixed, and how severe), restore the blurred tiles,
blend them back without seams, and write a pyramidal OME-Zarr and OME-TIFF
with a blur map and a QC report.

>>> from wsi_deblur import open_slide, process_slide, RunOptions
>>> result = process_slide("slide.svs", "out/")            # doctest: +SKIP
>>> result.summary["blur_fractions_of_tissue"]             # doctest: +SKIP
>>> adapt(["site/slide-1.svs"], "weights/site-a")          # doctest: +SKIP
>>> calibrate(["site/slide-1.svs"], "weights/site-a")      # doctest: +SKIP
"""

from wsi_deblur.lazy_exports import lazy_exports

# Imported on first use, so that ``import wsi_deblur`` (and ``wsi-deblur --help``) loads no torch, dask or zarr.
__getattr__, _public = lazy_exports(__name__, {
    "AdaptOptions": "wsi_deblur.adaptation.options", "adapt": "wsi_deblur.adaptation.job",
    "CalibrateOptions": "wsi_deblur.adaptation.calibration", "calibrate": "wsi_deblur.adaptation.calibration",
    "BlurMap": "wsi_deblur.blurmap", "SlideError": "wsi_deblur.errors",
    "Slide": "wsi_deblur.io", "open_slide": "wsi_deblur.io",
    "BatchOutcome": "wsi_deblur.pipeline.batch", "process_batch": "wsi_deblur.pipeline.batch",
    "RunOptions": "wsi_deblur.pipeline.options", "use_scheduler": "wsi_deblur.pipeline.scheduler",
    "SlideResult": "wsi_deblur.pipeline.slide_job", "compute_blurmap": "wsi_deblur.pipeline.slide_job",
    "process_slide": "wsi_deblur.pipeline.slide_job", "watch_folder": "wsi_deblur.pipeline.watch",
})

__version__ = "0.1.0"

__all__ = [*_public, "__version__"]
