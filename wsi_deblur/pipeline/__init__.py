"""The pipeline: per-slide jobs, batches, the Dask graphs and where they run."""

from wsi_deblur.pipeline.batch import BatchOutcome, process_batch
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import use_scheduler
from wsi_deblur.pipeline.slide_job import SlideQC, SlideResult, compute_blurmap, process_slide

__all__ = ["BatchOutcome", "RunOptions", "SlideQC", "SlideResult", "compute_blurmap", "process_batch", "process_slide",
           "use_scheduler"]
