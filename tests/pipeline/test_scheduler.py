"""The scheduler context: what a notebook user gets when they run one job after another."""

from __future__ import annotations

import subprocess
import sys
import textwrap


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
