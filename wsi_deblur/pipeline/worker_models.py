"""Models loaded once per Dask worker, when it starts, never per task.

A :class:`distributed.diagnostics.plugin.WorkerPlugin` carries only the names
of the models (a constructor, not the weights); each worker builds them in
``setup``, on its GPU when it has one. The loaders cache per process, so the
tasks that follow reuse the loaded networks.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from wsi_deblur.pipeline.preload import preload
from wsi_deblur.pipeline.scheduler import current_client

logger = logging.getLogger(__name__)


class ModelPreloader(WorkerPlugin):
    """Loads a run's networks on every worker as it starts (and on workers that join later).

    Parameters
    ----------
    classifier, restorer : str, optional
        Names from :mod:`wsi_deblur.restore.by_name` and :mod:`wsi_deblur.classify.by_name`.
    weights_dir : str, optional
        Adapted weights (:mod:`wsi_deblur.nets.files`); a path the workers can read.
    """

    def __init__(self, classifier: str | None = None, restorer: str | None = None,
                 weights_dir: str | None = None) -> None:
        self.classifier, self.restorer, self.weights_dir = classifier, restorer, weights_dir
        self.name = f"wsi-deblur-models-{classifier}-{restorer}-{weights_dir}"

    def setup(self, worker: Any) -> None:
        preload(self.classifier, self.restorer, self.weights_dir)


def register_preloader(classifier: str | None = None, restorer: str | None = None,
                       weights_dir: str | None = None) -> bool:
    """Register :class:`ModelPreloader` with the current distributed client, once per client and models.

    Every slide of a batch asks; only the first registration reaches the
    workers (a worker that joins later gets it from the scheduler). Losing a
    worker while it registers fails nothing: preloading only saves the first
    task the loading, which it otherwise does itself (the loaders cache per
    process). Returns whether the plugin is registered.
    """
    client = current_client()
    if client is None:
        return False
    plugin = ModelPreloader(classifier, restorer, weights_dir)
    key = (id(client), client.id, plugin.name)
    if key in _REGISTERED:
        return True
    try:
        client.register_plugin(plugin)
    except (OSError, TimeoutError, RuntimeError) as exc:  # CommClosedError is an OSError
        logger.warning("models not preloaded on the workers (%s: %s); each loads them with its first task",
                       type(exc).__name__, exc)
        return False
    _REGISTERED.add(key)
    return True


#: Registrations made, by client and plugin name.
_REGISTERED: set[tuple[int, str, str]] = set()
