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
