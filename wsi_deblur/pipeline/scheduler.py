"""Where Dask work runs: in this process, a local cluster, or a remote scheduler."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import dask

from wsi_deblur._shared.cpus import usable_cpus
from wsi_deblur.errors import OptionError, Resumable, WsiDeblurError

#: How long a local cluster's task may wait for a worker to run it before it fails.
NO_WORKERS_TIMEOUT = "300s"
#: How long a run waits for a remote scheduler to have its first worker before it gives up (seconds).
REMOTE_WORKER_WAIT_S = 300.0
#: A local cluster serves nothing over HTTP: distributed's scheduler and workers always listen (on
#: 127.0.0.1 here) for their routes (cluster info, metrics, a proxy) even with the dashboard off.
NO_HTTP = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}


class NoWorkers(WsiDeblurError, ConnectionError):
    """A remote Dask scheduler that has no worker to run the work."""


@contextlib.contextmanager
def use_scheduler(spec: str | None = None, *, n_workers: int | None = None,
                  worker_wait_s: float = REMOTE_WORKER_WAIT_S) -> Iterator[Any]:
    """Run the Dask work inside the block on the scheduler ``spec``.

    Parameters
    ----------
    spec : str, optional
        ``None`` or ``"threads"``: Dask's threaded scheduler in this process
        (the default). ``"local"``: a :class:`distributed.LocalCluster` of
        single-threaded worker processes on 127.0.0.1, no dashboard and no
        HTTP routes (:data:`NO_HTTP`). Anything else: the
        address of a running ``distributed`` scheduler (``tcp://host:8786``).
    n_workers : int, optional
        Worker processes for ``"local"`` (at least 1); default one per core.
        A task that finds no worker for :data:`NO_WORKERS_TIMEOUT` fails (a
        local cluster's scheduler reads it; a remote one has its own setting,
        ``distributed.scheduler.no-workers-timeout``).
    worker_wait_s : float
        A remote scheduler without workers gets this long to gain its first
        one; then :class:`NoWorkers` is raised (one line, before any work)
        instead of waiting forever.

    Yields
    ------
    distributed.Client or None
    """
    if n_workers is not None and n_workers < 1:
        raise OptionError(f"--workers must be at least 1, not {n_workers} (a cluster without workers never finishes)")
    # Task fusion would merge the GPU-annotated restore tasks into others
    # and lose their annotation (DESIGN.md §3).
    with dask.config.set({"optimization.fuse.active": False}):
        if spec in (None, "", "threads"):
            with dask.config.set(scheduler="threads"):
                yield None
            return
        from distributed import Client, LocalCluster

        # Set only once distributed is imported: a key set before its defaults are loaded is removed with them
        # when the block ends, and every later compute fails with KeyError('distributed').
        # A task no worker can run (every worker lost) fails after NO_WORKERS_TIMEOUT instead of waiting forever.
        with dask.config.set({"distributed.scheduler.no-workers-timeout": NO_WORKERS_TIMEOUT}):
            if spec == "local":
                with dask.config.set(NO_HTTP), LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                                            processes=True, host="127.0.0.1",
                                                            dashboard_address=None) as cluster, \
                        Client(cluster) as client:
                    yield client
                return
            with Client(spec) as client:
                try:
                    client.wait_for_workers(1, timeout=worker_wait_s)
                except TimeoutError as exc:
                    raise NoWorkers(f"{spec}: the Dask scheduler has had no worker for {worker_wait_s:.0f} s; "
                                    f"start some (dask worker {spec}) or use --scheduler local") from exc
                yield client


class SchedulerLost(Resumable, WsiDeblurError, ConnectionError):
    """The Dask scheduler went away while work was running: that work is kept for the next run to resume."""


class WorkersLost(SchedulerLost):
    """Every worker of the scheduler went away while work waited: as a lost scheduler, the batch stops resumable."""


#: How often a distributed compute looks at the scheduler's workers while it waits (seconds).
WORKER_POLL_S = 5.0


def _wait_with_workers(client: Any, futures: list, worker_wait_s: float) -> None:
    """Wait for ``futures``; raise :class:`NoWorkers` once the scheduler has had no worker for ``worker_wait_s``.

    A remote scheduler whose workers are all gone keeps the tasks queued
    forever (its own no-workers timeout is its setting, not ours).
    """
    from distributed import wait

    workerless_since = None
    while True:
        try:
            wait(futures, timeout=WORKER_POLL_S)
            return
        except TimeoutError:
            pass
        try:
            workers = len(client.scheduler_info().get("workers", {}))
        except (OSError, TimeoutError):  # the scheduler itself is gone: gather says so
            return
        now = time.monotonic()
        workerless_since = None if workers else (workerless_since or now)
        if workerless_since is not None and now - workerless_since >= worker_wait_s:
            raise WorkersLost(f"the Dask scheduler has had no worker for {worker_wait_s:.0f} s while work waited "
                              "(every worker lost; start some, or use --scheduler local)")


def _gather(client: Any, futures: list, worker_wait_s: float = REMOTE_WORKER_WAIT_S) -> Sequence[Any]:
    """``client.gather``, a lost scheduler connection raised as :class:`SchedulerLost` (one line, resumable), and
    a scheduler left without workers as :class:`NoWorkers` after ``worker_wait_s``.
    """
    from concurrent.futures import CancelledError

    try:
        _wait_with_workers(client, futures, worker_wait_s)
        return client.gather(futures)
    except CancelledError as exc:
        if "scheduler-connection-lost" not in str(exc):
            raise
        raise SchedulerLost("the connection to the Dask scheduler was lost") from exc


def current_client() -> Any:
    """The active ``distributed.Client``, or None when work runs in this process."""
    if "distributed" not in sys.modules:  # no client can exist yet, and importing it costs 0.1 s
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def compute(*collections: Any, progress: bool = False, label: str = "") -> Sequence[Any]:
    """``dask.compute`` on the current scheduler, with an optional progress bar on stderr."""
    client = current_client()
    if client is not None:
        futures = client.compute(list(collections))
        if progress:
            from distributed.diagnostics.progressbar import progress as show

            print(label, file=sys.stderr)
            show(futures, notebook=False)
        return _gather(client, futures)
    with _joined_threads() as extra:
        if progress:
            from dask.diagnostics import ProgressBar

            print(label, file=sys.stderr)
            with ProgressBar(out=sys.stderr, minimum=1.0):
                return dask.compute(*collections, **extra)
        return dask.compute(*collections, **extra)


@contextlib.contextmanager
def _joined_threads() -> Iterator[dict]:
    """A thread pool of Dask's size for one threaded compute, joined before the block is left.

    When one task fails (a full disk), Dask raises at once while the tasks
    already running go on writing; with this pool every one of them has
    finished before the caller cleans up, so nothing is written after it.
    Yields the ``dask.compute`` keywords (none on another scheduler).
    """
    if dask.config.get("scheduler", None) not in (None, "threads", "threading"):
        yield {}
        return
    from concurrent.futures import ThreadPoolExecutor

    workers = dask.config.get("num_workers", None) or usable_cpus()
    with ThreadPoolExecutor(workers) as pool:
        yield {"pool": pool}


def check_gpu_workers() -> None:
    """Refuse (:class:`~wsi_deblur.errors.OptionError`) ``--gpu`` where no worker has a ``GPU`` resource.

    Restore tasks annotated with ``resources={"GPU": 1}`` would wait forever on
    a cluster without one; without a cluster they would run on the CPU while
    qc.json said ``"gpu": true``. Either is refused before any work.
    """
    client = current_client()
    if client is None:
        raise OptionError("--gpu places restoration on cluster workers started with --resources GPU=1; there is no "
                          "cluster (pass --scheduler ADDRESS), or leave out --gpu")
    workers = client.scheduler_info().get("workers", {})
    if not any((w.get("resources") or {}).get("GPU") for w in workers.values()):
        raise OptionError(f"--gpu: none of the cluster's {len(workers)} worker(s) has a GPU resource (start them "
                          "with --resources GPU=1), or leave out --gpu")

