"""Each worker loads each network once, at start, never per task."""

import pytest

from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import use_scheduler
from wsi_deblur.pipeline.slide_job import process_slide

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False)


def _loads():
    from wsi_deblur.nets.runtime import load_blurnet, load_deblur_network

    return {"restorer": load_deblur_network.cache_info().misses, "classifier": load_blurnet.cache_info().misses,
            "restorer_hits": load_deblur_network.cache_info().hits}


@pytest.mark.timeout(300)
def test_workers_load_the_networks_once_each(tmp_path, small_slide):
    with use_scheduler("local", n_workers=2) as client:
        process_slide(small_slide, tmp_path / "a", SMALL)
        process_slide(small_slide, tmp_path / "b", SMALL)
        loads = client.run(_loads)
    assert len(loads) == 2
    for worker, n in loads.items():
        # loaded at start on every worker (DL_defocus, DL_motion, DL_mixed, BlurNet), whatever tasks it got, and
        # only then
        assert n["restorer"] == 3 and n["classifier"] == 1, (worker, n)
    assert sum(n["restorer_hits"] for n in loads.values()) > 0  # tasks used the loaded networks


@pytest.mark.timeout(300)
def test_the_plugin_is_registered_once_and_a_failed_registration_fails_no_slide(tmp_path, small_slide, monkeypatch):
    from distributed.comm.core import CommClosedError

    with use_scheduler("local", n_workers=1) as client:
        calls = []
        real = client.register_plugin

        def counted(plugin, *args, **kwargs):
            calls.append(plugin.name)
            return real(plugin, *args, **kwargs)

        monkeypatch.setattr(client, "register_plugin", counted)
        process_slide(small_slide, tmp_path / "a", SMALL)
        process_slide(small_slide, tmp_path / "b", SMALL)
        assert len(calls) == 1  # the second slide did not register (and reload) again

        def lost(plugin, *args, **kwargs):  # as when a worker dies during registration
            raise CommClosedError("in <TCP (closed) ConnectionPool.register_worker_plugin>: Stream is closed")

        monkeypatch.setattr(client, "register_plugin", lost)
        other = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False, restorer="dbmid")
        result = process_slide(small_slide, tmp_path / "c", other)
    assert result.summary["restored_tiles"] > 0 and (tmp_path / "c" / "small.ome.zarr").is_dir()
