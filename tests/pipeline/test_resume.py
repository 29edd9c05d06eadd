"""A run killed mid-slide resumes: finished regions are not redone, the output is the same."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from wsi_deblur.pipeline.batch import process_batch
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.slide_job import process_slide
from wsi_deblur.synthetic import BlurRegion, SyntheticSlide
from wsi_deblur.write.ome_zarr import levels_of

#: The slow reference network, so that the run is still going when it is killed.
OPTIONS = RunOptions(tile_size=256, halo=16, chunk=512, min_confidence=0.0, restorer="dbmid",
                     tiff_compression="deflate")
CLI_OPTIONS = ["--tile-size", "256", "--halo", "16", "--chunk", "512", "--min-confidence", "0",
               "--restorer", "dbmid", "--tiff-compression", "deflate", "--no-progress"]


@pytest.fixture(scope="module")
def blurred_slide(tmp_path_factory) -> Path:
    """1536 x 1536 px, defocused everywhere: every one of its nine 512-px regions has tiles to restore."""
    slide = SyntheticSlide((1536, 1536), [BlurRegion(0, 0, 1536, 1536, "defocus", defocus_sigma_px=3.0)],
                           tissue=False, seed=11)
    return slide.write(tmp_path_factory.mktemp("resume") / "blurred.ome.tif", mpp=0.5, tile=256,
                       compression="deflate")


def _markers(out: Path) -> list[Path]:
    return sorted(out.glob(".blurred.partial-*/.resume/level0-*"))


def _kill_after_regions(slide: Path, out: Path, n: int) -> None:
    """Start `wsi-deblur run`, SIGKILL it once ``n`` level-0 regions are written."""
    proc = subprocess.Popen([sys.executable, "-m", "wsi_deblur.cli", "run", str(slide), "-o", str(out),
                             *CLI_OPTIONS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(_markers(out)) < n:
            assert proc.poll() is None, "the run ended before it could be interrupted"
            assert time.monotonic() < deadline, "no level-0 region was written in time"
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)


def _zarr_chunk_files(region: str, staging_zarr: Path) -> list[Path]:
    """Files of level 0's Zarr chunks (v2 keys ``c/y/x``) inside the region ``level0-i-j``."""
    per_region = OPTIONS.chunk // OPTIONS.zarr_chunk
    _, ci, cj = region.split("-")
    ys = range(int(ci) * per_region, (int(ci) + 1) * per_region)
    xs = range(int(cj) * per_region, (int(cj) + 1) * per_region)
    return [staging_zarr / "0" / "0" / str(y) / str(x) for y in ys for x in xs]


@pytest.mark.timeout(600)
def test_killed_run_resumes_without_redoing_finished_regions(tmp_path, blurred_slide):
    reference = process_slide(blurred_slide, tmp_path / "reference", OPTIONS)
    assert reference.summary["resumed"] is None
    assert reference.summary["restored_tiles"] >= 20

    out = tmp_path / "out"
    _kill_after_regions(blurred_slide, out, 2)
    assert not (out / "blurred.ome.zarr").exists() and not (out / "blurred.qc.json").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["slides"]["blurred"]["status"] == "running"

    finished = [m.name for m in _markers(out)]
    assert 2 <= len(finished) < 9
    staging_zarr = next(out.glob(".blurred.partial-*")) / "blurred.ome.zarr"
    written = {f: f.stat().st_mtime_ns for name in finished for f in _zarr_chunk_files(name, staging_zarr)}
    assert all(f.exists() for f in written)

    # The same batch again: the interrupted slide is neither skipped nor started over.
    outcome = process_batch([blurred_slide], out, OPTIONS)
    assert outcome.ok and len(outcome.results) == 1
    resumed = outcome.results[0].summary["resumed"]
    assert resumed["blurmap"] is True and resumed["level0_regions"] >= len(finished)
    assert json.loads((out / "manifest.json").read_text())["slides"]["blurred"]["status"] == "done"
    assert not list(out.glob(".blurred.partial-*"))

    # Regions finished before the kill were not written again ...
    final_zarr = out / "blurred.ome.zarr"
    for f, mtime in written.items():
        assert (final_zarr / f.relative_to(staging_zarr)).stat().st_mtime_ns == mtime
    # ... and the result is the one an uninterrupted run gives.
    for got, want in zip(levels_of(final_zarr), levels_of(tmp_path / "reference" / "blurred.ome.zarr"),
                         strict=True):
        np.testing.assert_array_equal(got[:], want[:])
    np.testing.assert_array_equal(tifffile.imread(out / "blurred.ome.tif"),
                                  tifffile.imread(tmp_path / "reference" / "blurred.ome.tif"))
    got_qc = json.loads((out / "blurred.qc.json").read_text())
    for key in ("verdict", "blur_fractions_of_tissue", "severity", "restored_tiles"):
        assert got_qc[key] == reference.summary[key]
    # every restored tile has the guard's decision, or says an earlier run restored it unrecorded
    assert sum(got_qc["restoration_guard"]["tiles"].values()) == got_qc["restored_tiles"]
    # ... and the decisions of the regions the killed run wrote were kept with them: as the reference's, but
    # for a region whose write finished in the instant between its restoration and the saving of its decisions
    guard, want = got_qc["restoration_guard"]["tiles"], reference.summary["restoration_guard"]["tiles"]
    unrecorded = guard.get("not recorded", 0)
    assert unrecorded <= (OPTIONS.chunk // OPTIONS.tile_size) ** 2
    if not unrecorded:
        assert guard == want


def test_other_settings_start_over(tmp_path, small_slide):
    """A partial folder from other settings is not resumed (and is cleared away)."""
    options = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, restorer="wiener", tiff=False)
    stale = tmp_path / ".small.partial-0123456789abcdef"
    (stale / ".resume").mkdir(parents=True)
    (stale / ".resume" / "level0-0-0").touch()
    result = process_slide(small_slide, tmp_path, options)
    assert result.summary["resumed"] is None
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(result.summary["outputs"])


@pytest.mark.timeout(600)
def test_sigterm_stops_a_run_as_ctrl_c_does_saying_so_and_leaving_it_resumable(tmp_path, blurred_slide):
    import json

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "wsi_deblur.cli", "run", str(blurred_slide), "-o", str(out),
                             *CLI_OPTIONS], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not _markers(out):
        assert proc.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline, "no level-0 region was written in time"
        time.sleep(0.01)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert json.loads((out / "manifest.json").read_text())["slides"]["blurred"]["status"] == "interrupted"
    assert "interrupted" in (out / "qc.csv").read_text()
    assert _markers(out)  # the finished regions kept for the next run
