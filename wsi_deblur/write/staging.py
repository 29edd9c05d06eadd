"""Outputs written under a temporary name and moved into place when complete.

A crash, a bad slide or Ctrl-C leaves no file under a final name that looks
complete: everything is written in ``OUT/.<stem>.partial-<id>/`` and renamed
into ``OUT/`` only by :meth:`StagedOutputs.commit`.

With a ``resume_key`` (a digest of the slide file and the settings) the
staging folder has a stable name, ``OUT/.<stem>.partial-<key>/``: a run that
is interrupted (killed, Ctrl-C) leaves it in place, and the next run with the
same key continues in it (see :mod:`wsi_deblur.write.checkpoints`). A run
that fails with an error removes it, as does one with another key.

The commit moves the outputs by their names, and one of them (a slide's
``qc.json``) is the *commit point*: the old one is removed before anything
is replaced and the new one moved in last, so a process killed while
committing leaves no commit point, and the set reads as incomplete (the next
run redoes it) rather than as a mix of two runs. Old outputs moved aside
during a commit (``.<name>.old-*``) that a kill left are removed when the
next staging of that stem starts, and a staging folder whose commit was
interrupted is never resumed.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence

from wsi_deblur.errors import Resumable
from wsi_deblur.write.location import OutputPath, move, output_path, remove

logger = logging.getLogger(__name__)

#: How long a discarded staging folder's in-flight writes get to land before the second removal (seconds).
DISCARD_SETTLE_S = 0.5

#: Written in the staging folder when its commit starts.
COMMITTING = ".committing"


class StagedOutputs:
    """A staging folder for one slide's outputs.

    Use as a context manager: on an error the staging folder is removed and
    nothing appears in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        A local folder or an fsspec URL (see :mod:`wsi_deblur.write.location`).
    stem : str
        The slide's output stem.
    resume_key : str, optional
        Give the folder a stable name and keep it when the run is interrupted
        (``KeyboardInterrupt``, ``SystemExit`` or the process being killed).

    Attributes
    ----------
    resumed : bool
        The staging folder was left by an earlier, interrupted run.
    """

    def __init__(self, out_dir: str | os.PathLike, stem: str, *, resume_key: str | None = None) -> None:
        self.out_dir = output_path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.resume_key = resume_key
        self.stem = stem
        for leftover in self.out_dir.iterdir():
            if leftover.name.startswith(f".{stem}.") and ".old-" in leftover.name:
                logger.info("%s: removed, an older output moved aside by a commit that was stopped", leftover)
                remove(leftover)  # moved aside by a commit that was killed
        if resume_key is None:
            self.staging = self.out_dir / f".{stem}.partial-{uuid.uuid4().hex[:8]}"
        else:
            self.staging = self.out_dir / f".{stem}.partial-{resume_key}"
            for stale in self.out_dir.iterdir():
                if stale.name.startswith(f".{stem}.partial-") and stale.name != self.staging.name:
                    logger.info("%s: removed, the unfinished work of another file or other settings", stale)
                    remove(stale)  # another file or other settings: cannot be resumed
        if (self.staging / COMMITTING).exists():
            logger.info("%s: removed, stopped while its outputs moved into place (the slide starts over)",
                        self.staging)
            remove(self.staging)  # killed while committing: part of it has moved out, it cannot be resumed
        self.resumed = self.staging.exists()
        if self.resumed:
            logger.info("%s: resuming from the finished work in %s", stem, self.staging)
        self.staging.mkdir(exist_ok=True)
        self.committed: list[OutputPath] = []

    def path(self, name: str) -> OutputPath:
        """Where to write output ``name`` while it is being made."""
        return self.staging / name

    def commit(self, names: Sequence[str], *, commit_point: str | None = None,
               replaces: Sequence[str] = ()) -> list[OutputPath]:
        """Move the outputs ``names`` (made in the staging folder) to their final names, replacing older ones.

        ``commit_point``, one of ``names``: removed from ``out_dir`` first and
        moved in last (see the module). Anything else in the staging folder
        (bookkeeping such as resume markers) is removed with it. ``replaces``:
        every name an earlier run may have left for the same item; those not in
        ``names`` are removed once the new set is in place (an OME-TIFF of a run
        with ``--no-tiff`` after one without, review crops of a rescan that
        restored nothing), so the folder never holds two runs' outputs.

        Raises
        ------
        FileNotFoundError
            An output in ``names`` was not made (nothing is moved).
        """
        missing = [n for n in names if not (self.staging / n).exists()]
        if missing:
            raise FileNotFoundError(f"{self.staging}: outputs not made: {', '.join(missing)}")
        if commit_point is not None and commit_point not in names:
            raise ValueError(f"the commit point {commit_point!r} is not one of the outputs")
        (self.staging / COMMITTING).write_bytes(b"")
        if commit_point is not None:
            remove(self.out_dir / commit_point)
        order = [n for n in names if n != commit_point] + ([commit_point] if commit_point else [])
        for name in order:
            final = self.out_dir / name
            if final.exists():
                old = self.out_dir / f".{name}.old-{uuid.uuid4().hex[:8]}"
                move(final, old)
                move(self.staging / name, final)
                remove(old)
            else:
                move(self.staging / name, final)
            self.committed.append(final)
        for name in replaces:
            if name not in names and (self.out_dir / name).exists():
                old = self.out_dir / f".{name}.old-{uuid.uuid4().hex[:8]}"
                move(self.out_dir / name, old)
                remove(old)
        remove(self.staging)
        return self.committed

    def discard(self) -> None:
        """Remove the staging folder, and again once any write still in flight has landed.

        When a write fails (a full disk), Zarr's other chunk writes of that
        call may still be in flight on its I/O loop and land a moment after
        the error reached us: a second pass, after they settle, takes them too.
        """
        remove(self.staging)
        time.sleep(DISCARD_SETTLE_S)
        remove(self.staging)

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        interrupted = not issubclass(exc_type, Exception) or issubclass(exc_type, Resumable)  # Ctrl-C, a lost cluster
        if self.resume_key is None or not interrupted:
            self.discard()

