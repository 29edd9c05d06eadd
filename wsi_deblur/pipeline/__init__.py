"""The pipeline: per-slide jobs, batches, the Dask graphs and where they run.

Names are imported on first use (``from wsi_deblur.pipeline import RunOptions`` loads only the options).
"""

from wsi_deblur.lazy_exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "BatchOutcome": "batch", "process_batch": "batch", "RunOptions": "options", "use_scheduler": "scheduler",
    "SlideQC": "slide_job", "SlideResult": "slide_job", "compute_blurmap": "slide_job", "process_slide": "slide_job",
    "Batch": "batch", "watch_folder": "watch"})
