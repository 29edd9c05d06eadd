"""Outputs to an fsspec URL: the same files, bytes and pixels as to a local folder.

``memory://`` is fsspec's in-process filesystem: not local, no rename, so it
takes every path an object store takes (moves by copy, Zarr through
FsspecStore, the TIFF uploaded whole).
"""

import csv
import io
import json
import uuid

import numpy as np
import pytest
import tifffile
import zarr
from upath import UPath

from wsi_deblur.pipeline.batch import process_batch
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import use_scheduler
from wsi_deblur.write.location import output_path, zarr_store
from wsi_deblur.write.ome_zarr import levels_of

OPTIONS = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, restorer="wiener",
                     tiff_compression="deflate")


@pytest.fixture
def memory_url():
    url = f"memory://wsi-deblur-test-{uuid.uuid4().hex[:8]}/out"
    yield url
    remote = UPath(url)
    remote.fs.rm(remote.parent.path, recursive=True)


def test_batch_to_a_url_writes_what_a_local_folder_gets(tmp_path, small_slide, memory_url):
    with use_scheduler(None):
        local = process_batch([small_slide], tmp_path, OPTIONS)
        remote = process_batch([small_slide], memory_url, OPTIONS)
    assert local.ok and remote.ok
    out = UPath(memory_url)
    local_names = sorted(p.name for p in tmp_path.iterdir() if p.name != ".wsi-deblur.lock")  # URLs are not locked
    assert sorted(p.name for p in out.iterdir()) == local_names

    for got, want in zip(levels_of(out / "small.ome.zarr"), levels_of(tmp_path / "small.ome.zarr"), strict=True):
        np.testing.assert_array_equal(got[:], want[:])
    labels = zarr.open_group(zarr_store(out / "small.ome.zarr"), mode="r")["labels/blur/0"][:]
    np.testing.assert_array_equal(labels, zarr.open_group(str(tmp_path / "small.ome.zarr"))["labels/blur/0"][:])
    np.testing.assert_array_equal(tifffile.imread(io.BytesIO((out / "small.ome.tif").read_bytes())),
                                  tifffile.imread(tmp_path / "small.ome.tif"))
    for name in ("small.blurmap.csv", "small.blurmap.geojson", "small.blurmap.png"):
        assert (out / name).read_bytes() == (tmp_path / name).read_bytes(), name
    rows = list(csv.DictReader(io.StringIO((out / "qc.csv").read_text())))
    assert [r["verdict"] for r in rows] == [local.results[0].summary["verdict"]]
    qc = json.loads((out / "small.qc.json").read_text())
    assert qc["blur_fractions_of_tissue"] == local.results[0].summary["blur_fractions_of_tissue"]
    assert json.loads((out / "manifest.json").read_text())["slides"]["small"]["status"] == "done"

    # Re-running verifies the outputs on the URL and skips the slide.
    with use_scheduler(None):
        again = process_batch([small_slide], memory_url, OPTIONS)
    assert [r.stem for r in again.skipped] == ["small"] and not again.results


def test_local_spellings_stay_plain_paths(tmp_path):
    from pathlib import Path

    assert output_path(f"file://{tmp_path}") == tmp_path and type(output_path(str(tmp_path))) is type(tmp_path)
    assert isinstance(output_path(Path("rel/out")), Path)
    assert output_path("memory://bucket/out").protocol == "memory"
