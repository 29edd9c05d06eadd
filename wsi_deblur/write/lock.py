"""One run at a time per output folder: an exclusive lock on ``OUT/.wsi-deblur.lock``.

Two runs writing one folder overwrite each other's manifest, table and report,
and one may remove the other's staging folder as stale. The batch takes an
exclusive ``flock`` on a file in the folder for as long as it runs (the kernel
releases it if the process dies, so a killed run never leaves the folder
locked) and writes its process id and start time there, for the message the
second run gets. Folders that are not local (fsspec URLs) are not locked.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

from wsi_deblur.errors import RefusedBeforeWork, WsiDeblurError
from wsi_deblur.write.location import is_local, output_path

LOCK_NAME = ".wsi-deblur.lock"


class OutputInUse(WsiDeblurError, RefusedBeforeWork, OSError):
    """The output folder is being written by another run."""


class OutputLock:
    """Hold the output folder's lock inside a ``with`` block.

    Raises
    ------
    OutputInUse
        Another process holds it (the message says which, and since when).
    """

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = output_path(out_dir)
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        if not is_local(self.out_dir):
            return self
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no lock
            return self
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = Path(self.out_dir) / LOCK_NAME
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags, 0o644)  # never through a link: it would truncate whatever it points to
        except OSError as exc:
            raise OutputInUse(f"{path}: the lock file is a link or cannot be opened ({exc.strerror}); remove it "
                              "if no wsi-deblur run is writing this folder") from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OutputInUse(f"{path}: the lock file is not a regular file; remove it if no wsi-deblur run is "
                              "writing this folder")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = _holder(fd)
            os.close(fd)
            raise OutputInUse(f"{self.out_dir}: in use by another wsi-deblur run{holder}; wait for it to finish "
                              "or write to another folder") from exc
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (process {info['pid']}, started {info['started']})"
    except (OSError, ValueError, KeyError):
        return ""
