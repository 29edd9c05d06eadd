"""Continuous QC: slides copied in slowly are taken once complete, bad ones recorded once, Ctrl-C between slides."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from wsi_deblur.errors import OptionError
from wsi_deblur.pipeline import RunOptions
from wsi_deblur.pipeline.batch import BatchHooks
from wsi_deblur.pipeline.watch import WatchSchedule, is_settled, slide_files, slide_signature, watch_folder

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False, restore=False)  # watch QC only, as `wsi-deblur watch`


def copy_slowly(source, target, *, pieces=8, pause_s=0.3):
    """Write ``source`` into ``target`` a piece at a time, as a scanner or a network copy does."""
    data = source.read_bytes()
    step = len(data) // pieces + 1
    with open(target, "wb") as f:
        for k in range(0, len(data), step):
            f.write(data[k:k + step])
            f.flush()
            time.sleep(pause_s)


def manifest_statuses(out):
    try:
        return {k: v["status"] for k, v in json.loads((out / "manifest.json").read_text())["slides"].items()}
    except (OSError, ValueError, KeyError):
        return {}


def wait_for(condition, timeout_s=120.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_slides_written_slowly_are_taken_once_complete_and_a_bad_one_once(tmp_path, small_slide):
    folder, out = tmp_path / "scanner", tmp_path / "qc"
    folder.mkdir()
    stop = threading.Event()
    waiting, outcome = [], {}
    watcher = threading.Thread(target=lambda: outcome.setdefault("result", watch_folder(
        folder, out, SMALL, schedule=WatchSchedule(settle_s=1.0, poll_s=0.1), stop=stop,
        hooks=BatchHooks(on_waiting=waiting.append))))
    watcher.start()
    try:
        copy_slowly(small_slide, folder / "a.ome.tif")  # ~2.4 s of writing, 0.3 s pauses: never settled early
        hidden = folder / ".b.ome.tif.part"  # rsync's way: a hidden name, renamed when complete
        copy_slowly(small_slide, hidden, pieces=3)
        os.rename(hidden, folder / "b.ome.tif")
        (folder / "bad.svs").write_text("not a slide")
        assert wait_for(lambda: manifest_statuses(out) == {"a": "done", "b": "done", "bad": "failed"})
        time.sleep(1.0)  # ten more scans: the bad slide is not tried again
    finally:
        stop.set()
        watcher.join(timeout=120)
    result = outcome["result"]
    assert sorted(r.stem for r in result.results) == ["a", "b"]  # each once, and never while incomplete
    assert [os.path.basename(e.path) for e in result.failures] == ["bad.svs"]
    assert str(folder / "a.ome.tif") in waiting
    with open(out / "qc.csv", newline="") as f:
        assert sorted(r["stem"] or os.path.basename(r["slide"]) for r in csv.DictReader(f)) == ["a", "b", "bad.svs"]
    assert "bad.svs" in (out / "report.html").read_text()

    (folder / "bad.svs").write_bytes(small_slide.read_bytes())  # the scanner wrote it again, complete this time
    again = watch_folder(folder, out, SMALL, schedule=WatchSchedule(settle_s=0.0, poll_s=0.1, once=True))
    assert [r.stem for r in again.results] == ["bad"] and sorted(r.stem for r in again.skipped) == ["a", "b"]
    assert manifest_statuses(out)["bad"] == "done"


def test_once_waits_for_a_slide_still_being_written(tmp_path, small_slide):
    folder = tmp_path / "in"
    folder.mkdir()
    target = folder / "late.ome.tif"
    writer = threading.Thread(target=copy_slowly, args=(small_slide, target), kwargs={"pieces": 4, "pause_s": 0.4})
    target.touch()
    writer.start()
    outcome = watch_folder(folder, tmp_path / "out", SMALL,
                           schedule=WatchSchedule(settle_s=1.0, poll_s=0.1, once=True))
    writer.join()
    assert [r.stem for r in outcome.results] == ["late"] and not outcome.failures
    assert (tmp_path / "out" / "late.qc.json").exists()


def test_watch_refuses_a_missing_folder_and_its_own_output(tmp_path):
    with pytest.raises(OptionError, match="not a folder"):
        watch_folder(tmp_path / "missing", tmp_path / "out", schedule=WatchSchedule(once=True))
    with pytest.raises(OptionError, match="must not be the watched folder"):
        watch_folder(tmp_path, tmp_path, schedule=WatchSchedule(once=True))
    with pytest.raises(OptionError, match="--poll"):
        watch_folder(tmp_path, tmp_path / "out", schedule=WatchSchedule(poll_s=0, once=True))


def test_a_slide_is_all_its_files(tmp_path):
    mrxs = tmp_path / "s.mrxs"
    mrxs.write_text("x")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "Data0000.dat").write_bytes(b"12")
    assert [p.name for p in slide_files(mrxs)] == ["s.mrxs", "Data0000.dat"]
    before = slide_signature(mrxs)
    (tmp_path / "s" / "Data0001.dat").write_bytes(b"3")  # the scanner still writes the companion folder
    assert slide_signature(mrxs) != before
    assert not is_settled(slide_signature(mrxs), settle_s=60)
    assert is_settled(slide_signature(mrxs), settle_s=60, now=time.time() + 61)
    assert slide_signature(tmp_path / "gone.svs") is None


def test_ctrl_c_stops_between_slides(tmp_path, small_slide):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(small_slide, folder / f"{name}.ome.tif")
        os.utime(folder / f"{name}.ome.tif", (1_000_000, 1_000_000))
    proc = subprocess.Popen([sys.executable, "-m", "wsi_deblur.cli", "watch", str(folder), "-o", str(out),
                             "--settle", "0", "--poll", "0.2", "--tile-size", "256", "--halo", "16",
                             "--chunk", "512", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: "running" in manifest_statuses(out).values() or proc.poll() is not None)
        proc.send_signal(signal.SIGINT)  # while the first slide is being processed
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopping after the current slide" in stderr and "stopped:" in stderr
    statuses = manifest_statuses(out)
    assert statuses and set(statuses.values()) == {"done"}  # the slide in progress was finished, none begun after
    assert len(statuses) < 3
    assert not [p for p in out.iterdir() if p.name.startswith(".") and "partial" in p.name]  # no staging left


def test_a_folder_that_drops_out_for_a_while_is_watched_again(tmp_path, small_slide, caplog):
    folder, out = tmp_path / "share", tmp_path / "out"
    folder.mkdir()
    stop = threading.Event()
    outcome = {}
    watcher = threading.Thread(target=lambda: outcome.setdefault("r", watch_folder(
        folder, out, SMALL, schedule=WatchSchedule(settle_s=0.0, poll_s=0.1), stop=stop)))
    watcher.start()
    try:
        time.sleep(0.3)
        folder.rename(tmp_path / "away")  # the share is gone ...
        time.sleep(0.5)
        (tmp_path / "away").rename(folder)  # ... and back, with a slide
        shutil.copy(small_slide, folder / "back.ome.tif")
        os.utime(folder / "back.ome.tif", (1_000_000, 1_000_000))
        assert wait_for(lambda: manifest_statuses(out).get("back") == "done")
    finally:
        stop.set()
        watcher.join(timeout=120)
    assert [r.stem for r in outcome["r"].results] == ["back"]
    assert "cannot be listed" in caplog.text


def test_a_slide_that_failed_on_a_full_disk_is_tried_again_when_there_is_room(tmp_path, small_slide):
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs",
                                                        str(mount_point)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        folder, out = tmp_path / "in", mount_point / "out"
        folder.mkdir()
        shutil.copy(small_slide, folder / "s.ome.tif")
        os.utime(folder / "s.ome.tif", (1_000_000, 1_000_000))
        stop = threading.Event()
        outcome = {}
        watcher = threading.Thread(target=lambda: outcome.setdefault("r", watch_folder(
            folder, out, RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False, restore=True),
            schedule=WatchSchedule(settle_s=0.0, poll_s=0.1, retry_s=0.5), stop=stop)))
        watcher.start()
        try:
            assert wait_for(lambda: manifest_statuses(out).get("s") == "failed")  # no space left on the device
            subprocess.run(["mount", "-o", "remount,size=200M", str(mount_point)], check=True)  # room made
            assert wait_for(lambda: manifest_statuses(out).get("s") == "done")
        finally:
            stop.set()
            watcher.join(timeout=120)
        result = outcome["r"]
        assert [r.stem for r in result.results] == ["s"] and not result.failures  # counted by its last outcome
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)


def test_a_bad_slide_is_not_a_system_error(tmp_path):
    from wsi_deblur.errors import SlideError
    from wsi_deblur.io import open_slide
    from wsi_deblur.pipeline.watch import is_system_error

    (tmp_path / "bad.svs").write_text("not a slide")
    for path in (tmp_path / "bad.svs", tmp_path / "missing.svs"):
        with pytest.raises(SlideError) as info:
            open_slide(path)
        assert not is_system_error(info.value)
