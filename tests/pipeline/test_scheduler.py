"""The scheduler context: what a notebook user gets when they run one job after another."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time


def test_threaded_work_after_a_block_that_first_imported_distributed() -> None:
    """A block that imports distributed for the first time leaves Dask's configuration whole: later work runs.

    In a fresh process, as a notebook's first job is (the test process itself has distributed loaded already).
    """
    code = textwrap.dedent("""
        import dask.array as da
        from wsi_deblur.pipeline.scheduler import use_scheduler

        with use_scheduler("threads"):
            import distributed  # noqa: F401  (as a job that reaches for a client does)
            first = da.ones(4).sum().compute()
        with use_scheduler("threads"):
            second = da.ones(4).sum().compute()
        print(first + second + da.ones(4).sum().compute())
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "12.0"


def test_work_left_without_any_worker_stops_in_one_line_instead_of_hanging(monkeypatch):
    """A remote scheduler keeps tasks queued forever once its last worker is gone; the run says so and stops."""
    import dask
    import pytest
    from distributed import Client, LocalCluster

    from wsi_deblur.errors import Resumable
    from wsi_deblur.pipeline import scheduler

    monkeypatch.setattr(scheduler, "WORKER_POLL_S", 0.2)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert scheduler._gather(client, client.compute([dask.delayed(sum)([1, 2])])) == [3]
        cluster.scale(0)  # every worker gone, none to come back
        for _ in range(600):
            if not client.scheduler_info()["workers"]:
                break
            time.sleep(0.05)
        assert not client.scheduler_info()["workers"]
        futures = client.compute([dask.delayed(sum)([3, 4], dask_key_name="after-the-last-worker")])
        with pytest.raises(scheduler.WorkersLost, match="no worker for 1 s") as caught:
            scheduler._gather(client, futures, worker_wait_s=1.0)
        assert isinstance(caught.value, Resumable)
