"""The same output on a LocalCluster of processes as in-process; GPU placement."""

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
    with use_scheduler(None):
        a = process_slide(small_slide, tmp_path / "threads", SMALL)
    with use_scheduler("local", n_workers=2) as client:
        assert client is not None and len(client.scheduler_info()["workers"]) == 2
        b = process_slide(small_slide, tmp_path / "cluster", SMALL)
    np.testing.assert_array_equal(a.blurmap.label, b.blurmap.label)
    np.testing.assert_array_equal(level0(tmp_path / "threads" / "small.ome.zarr"),
                                  level0(tmp_path / "cluster" / "small.ome.zarr"))


@pytest.mark.timeout(300)
def test_restore_tasks_run_only_on_gpu_workers(tmp_path, small_slide):
    """A CPU worker and a ``--resources GPU=1`` worker: restoration goes to the latter only."""
    import subprocess
    import sys

    from distributed import Client, LocalCluster, get_task_stream

    from wsi_deblur.io import open_slide
    from wsi_deblur.pipeline.graph import restored_level0
    from wsi_deblur.pipeline.slide_job import compute_blurmap
    from wsi_deblur.restore import WienerRestorer

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
                    image = restored_level0(slide, blurmap, WienerRestorer(), chunk=512, gpu=True)
                    out = image.compute()
        finally:
            gpu_worker.terminate()
            gpu_worker.wait(30)
    restore_runs = [t["worker"] for t in stream.data if "restore-windows" in str(t["key"])]
    assert len(gpu) == 1 and len(restore_runs) >= 1
    assert set(restore_runs) == gpu
    with use_scheduler(None):
        np.testing.assert_array_equal(out, restored_level0(slide, blurmap, WienerRestorer(), chunk=512).compute())
