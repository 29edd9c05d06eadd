"""The pipeline: per-slide jobs, batches, the Dask graphs and where they run.

Names are imported on first use (``from wsi_deblur.pipeline import RunOptions`` loads only the options).
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"BatchOutcome": "batch", "process_batch": "batch", "RunOptions": "options", "use_scheduler": "scheduler",
           "SlideQC": "slide_job", "SlideResult": "slide_job", "compute_blurmap": "slide_job",
           "process_slide": "slide_job"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"wsi_deblur.pipeline.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'wsi_deblur.pipeline' has no attribute {name!r}")
