"""Load a run's networks into this process now, rather than with the first task that needs them.

A Dask worker does it as it starts (:mod:`wsi_deblur.pipeline.worker_models`); a run
on threads does it before its first slide, so that every network's CPU path is
measured alike (:mod:`wsi_deblur.nets.cpu_path`) whichever tiles then go through it.
"""

from __future__ import annotations

from wsi_deblur.classify.by_name import make_classifier
from wsi_deblur.restore.by_name import make_restorer


def preload(classifier: str | None = None, restorer: str | None = None,
            weights_dir: str | None = None) -> list[str]:
    """Load the named classifier's and restorer's networks into this process; returns what was loaded.

    ``weights_dir``: adapted weights (see :mod:`wsi_deblur.nets.files`).
    """
    loaded = []
    if classifier:
        model = make_classifier(classifier, weights_dir=weights_dir)
        if hasattr(model, "preload"):
            model.preload()
            loaded.append(f"classifier:{classifier}")
    if restorer:
        model = make_restorer(restorer, weights_dir=weights_dir)
        if hasattr(model, "preload"):
            model.preload()
            loaded.append(f"restorer:{restorer}")
    return loaded
