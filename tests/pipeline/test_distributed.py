"""The same output on a LocalCluster of processes as in-process; GPU placement."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import use_scheduler
from wsi_deblur.pipeline.slide_job import process_slide

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False)


def level0(path):
    return zarr.open_group(str(path), mode="r")["0"][:]


@pytest.mark.timeout(300)
def test_local_cluster_equals_threads(tmp_path, small_slide):
    import tifffile

    with_tiff = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff_compression="deflate")
    with use_scheduler(None):
        a = process_slide(small_slide, tmp_path / "threads", with_tiff)
    with use_scheduler("local", n_workers=2) as client:
        assert client is not None and len(client.scheduler_info()["workers"]) == 2
        b = process_slide(small_slide, tmp_path / "cluster", with_tiff)
    np.testing.assert_array_equal(a.blurmap.label, b.blurmap.label)
    np.testing.assert_array_equal(level0(tmp_path / "threads" / "small.ome.zarr"),
                                  level0(tmp_path / "cluster" / "small.ome.zarr"))
    # the OME-TIFF is written by a worker task: same pixels as the threaded run
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "cluster" / "small.ome.tif"),
                                  tifffile.imread(tmp_path / "threads" / "small.ome.tif"))


@pytest.mark.timeout(300)
def test_remote_scheduler_address_equals_threads(tmp_path, small_slide):
    """``--scheduler tcp://...``: a scheduler this process did not start, with its own workers."""
    from distributed import Client

    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(tmp_path / "s.json")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        for _ in range(300):
            if (tmp_path / "s.json").exists() and (tmp_path / "s.json").stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads((tmp_path / "s.json").read_text())["address"]
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--nworkers", "2", "--no-dashboard", "--host", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
        with use_scheduler(address):
            remote = process_slide(small_slide, tmp_path / "remote", SMALL)
        with use_scheduler(None):
            local = process_slide(small_slide, tmp_path / "threads", SMALL)
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    np.testing.assert_array_equal(remote.blurmap.label, local.blurmap.label)
    np.testing.assert_array_equal(level0(tmp_path / "remote" / "small.ome.zarr"),
                                  level0(tmp_path / "threads" / "small.ome.zarr"))


@pytest.mark.timeout(300)
def test_restore_tasks_run_only_on_gpu_workers(tmp_path, small_slide):
    """A CPU worker and a ``--resources GPU=1`` worker: restoration goes to the latter only."""
    from distributed import Client, LocalCluster, get_task_stream

    from wsi_deblur.io import open_slide
    from wsi_deblur.pipeline.graph import restored_level0
    from wsi_deblur.pipeline.slide_job import compute_blurmap
    from wsi_deblur.restore import WienerRestorer
    from wsi_deblur.write.checkpoints import Checkpoints
    from wsi_deblur.write.ome_zarr import ZarrLayout, create_ome_zarr, store_level0

    slide = open_slide(small_slide)
    with use_scheduler(None):
        blurmap = compute_blurmap(slide, SMALL).blurmap
    assert blurmap.restore_mask().sum() >= 3
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        gpu_worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
                                       "--resources", "GPU=1", "--nthreads", "1", "--no-dashboard",
                                       "--host", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with Client(cluster) as client:
                client.wait_for_workers(2, timeout=120)
                workers = client.scheduler_info()["workers"]
                gpu = {a for a, w in workers.items() if w.get("resources", {}).get("GPU")}
                with use_scheduler(cluster.scheduler_address), get_task_stream(client) as stream:
                    # Written as the pipeline writes it: region tasks that mark their checkpoints.
                    image = restored_level0(slide, blurmap, WienerRestorer(), chunk=512, gpu=True)
                    levels = create_ome_zarr(tmp_path / "gpu.ome.zarr", shape=slide.shape, mpp=0.5, name="gpu",
                                             layout=ZarrLayout(chunk=256))
                    store_level0(image, levels[0], checkpoints=Checkpoints(tmp_path))
                    out = np.moveaxis(levels[0][:], 0, -1)
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(30)
    restore_runs = [t["worker"] for t in stream.data if "restore-windows" in str(t["key"])]
    assert len(gpu) == 1 and len(restore_runs) >= 1
    assert set(restore_runs) == gpu
    with use_scheduler(None):
        np.testing.assert_array_equal(out, restored_level0(slide, blurmap, WienerRestorer(), chunk=512).compute())


def test_a_local_cluster_without_workers_is_refused_not_waited_on():
    with pytest.raises(ValueError, match="--workers must be at least 1, not 0"):
        with use_scheduler("local", n_workers=0):
            pass


@pytest.mark.timeout(120)
def test_a_local_cluster_serves_nothing_over_http():
    import urllib.error
    import urllib.request

    with use_scheduler("local", n_workers=1) as client:
        server = client.cluster.scheduler.http_server
        port = next(iter(server._sockets.values())).getsockname()[1]
        for route in ("/info/main/workers.html", "/json/counts.json", "/metrics", "/health"):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=5)
            assert answer.value.code == 404, route


def test_a_remote_scheduler_without_workers_is_refused_in_one_line_instead_of_waiting_forever():
    from distributed import LocalCluster

    from wsi_deblur.pipeline.scheduler import NoWorkers

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(NoWorkers, match=f"{address}: the Dask scheduler has had no worker for 1 s"):
            with use_scheduler(address, worker_wait_s=1.0):
                pass


@pytest.mark.timeout(300)
def test_bcr_on_a_local_cluster_equals_threads_and_is_recorded(tmp_path, small_slide):
    """The Fourier filters give the same bytes in worker processes, and qc.json names the one network."""
    options = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False, restorer="bcr")
    with use_scheduler(None):
        a = process_slide(small_slide, tmp_path / "threads", options)
    with use_scheduler("local", n_workers=2):
        process_slide(small_slide, tmp_path / "cluster", options)
    assert a.summary["restored_tiles"] > 0
    np.testing.assert_array_equal(level0(tmp_path / "threads" / "small.ome.zarr"),
                                  level0(tmp_path / "cluster" / "small.ome.zarr"))
    qc = json.loads((tmp_path / "threads" / "small.qc.json").read_text())
    assert list(qc["models"]) == ["blur_classifier.safetensors", "deblur_bcr_all.safetensors"]
