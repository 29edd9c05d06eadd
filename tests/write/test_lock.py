"""One run at a time per output folder; a run that dies leaves the folder free."""

import subprocess
import sys
import time

import pytest

from wsi_deblur.pipeline import RunOptions, process_batch
from wsi_deblur.write.lock import OutputInUse, OutputLock

HOLD = """
import sys, time
from wsi_deblur.write.lock import OutputLock
with OutputLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(tmp_path, small_slide):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputInUse, match=rf"in use by another wsi-deblur run \(process {holder.pid}, started"):
            process_batch([small_slide], tmp_path, RunOptions(tile_size=256, tiff=False, restore=False))
        assert not (tmp_path / "manifest.json").exists()  # the running one's files are untouched
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with OutputLock(tmp_path):  # the kernel released the dead process's lock
        pass


@pytest.mark.parametrize("kind", ["link", "fifo"])
def test_a_lock_file_that_is_a_link_or_a_fifo_is_refused_and_what_it_points_to_untouched(tmp_path, kind):
    import os

    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    if kind == "link":
        (out / ".wsi-deblur.lock").symlink_to(victim)
    else:
        os.mkfifo(out / ".wsi-deblur.lock")
    with pytest.raises(OutputInUse, match="lock file"):
        with OutputLock(out):
            pass
    assert victim.read_text() == "keep me"
