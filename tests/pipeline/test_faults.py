"""A worker process killed mid-run: the run completes and the output is identical."""

import os
import signal
import sys
import time
from dataclasses import dataclass

import cloudpickle
import dask.array as da
import numpy as np
import pytest
import zarr

from wsi_deblur.io import open_slide
from wsi_deblur.pipeline.graph import restored_level0
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import use_scheduler
from wsi_deblur.pipeline.slide_job import compute_blurmap
from wsi_deblur.restore import WienerRestorer

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, min_confidence=0.0)
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests


@dataclass
class SlowWiener:
    """The Wiener restorer, slowed down so the run is still going when a worker dies."""

    delay_s: float = 0.8
    name: str = "slow-wiener"

    def restore(self, windows, estimates):
        time.sleep(self.delay_s)
        return WienerRestorer().restore(windows, estimates)


@pytest.mark.timeout(300)
def test_killed_worker_is_survived_with_identical_output(tmp_path, small_slide):
    from distributed import Client, LocalCluster

    slide = open_slide(small_slide)
    with use_scheduler(None):
        blurmap = compute_blurmap(slide, SMALL).blurmap
        expected = restored_level0(slide, blurmap, WienerRestorer(), chunk=512, min_confidence=0.0).compute()
    assert blurmap.restore_mask(min_confidence=0.0).sum() >= 3

    store = zarr.open_array(str(tmp_path / "out.zarr"), mode="w", shape=expected.shape, chunks=(256, 256, 3),
                            dtype="uint8")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        image = restored_level0(slide, blurmap, SlowWiener(), chunk=512, min_confidence=0.0)
        future = client.compute(da.store(image, store, lock=False, compute=False))
        time.sleep(1.5)
        assert not future.done()
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        future.result(timeout=240)
        assert victim not in client.run(os.getpid).values()
    np.testing.assert_array_equal(store[:], expected)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cluster(port):
    import subprocess

    dask_cli = os.path.join(os.path.dirname(sys.executable), "dask")
    scheduler = subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask_cli, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return scheduler, worker


@pytest.mark.timeout(400)
def test_a_lost_scheduler_stops_the_batch_in_one_line_and_the_rerun_resumes(tmp_path):
    import json
    import subprocess
    import threading

    from wsi_deblur.synthetic import demo_slide

    slides = [demo_slide().write(tmp_path / f"{name}.ome.tif") for name in ("first", "second")]
    out, port = tmp_path / "out", _free_port()
    scheduler, worker = _start_cluster(port)
    command = [sys.executable, "-m", "wsi_deblur.cli", "run", *map(str, slides), "-o", str(out),
               "--scheduler", f"tcp://127.0.0.1:{port}", "--no-progress"]

    def kill_scheduler_once_the_second_slide_runs():
        for _ in range(2400):
            try:
                if json.loads((out / "manifest.json").read_text())["slides"]["second"]["status"] == "running":
                    time.sleep(1.5)  # inside its classification or restoration
                    scheduler.kill()
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)

    killer = threading.Thread(target=kill_scheduler_once_the_second_slide_runs)
    try:
        killer.start()
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        killer.join()
    finally:
        scheduler.kill()
        worker.kill()
        worker.wait()
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"error: {slides[1]}: the connection to the Dask scheduler was lost; completed slides are in place, and "
        "running the same command again resumes this one from its finished work"]
    manifest = json.loads((out / "manifest.json").read_text())["slides"]
    assert manifest["first"]["status"] == "done" and manifest["second"]["status"] == "interrupted"
    assert [p.name for p in out.iterdir() if p.name.startswith(".second.partial-")]  # its finished work is kept

    scheduler, worker = _start_cluster(port)
    try:
        again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        scheduler.kill()
        worker.kill()
    assert again.returncode == 0, again.stderr
    assert "first.ome.tif: already complete" in again.stdout
    assert json.loads((out / "second.qc.json").read_text())["resumed"] is not None  # resumed, not started over
