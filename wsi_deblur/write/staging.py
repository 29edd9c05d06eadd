"""Outputs written under a temporary name and moved into place when complete.

A crash, a bad slide or Ctrl-C leaves no file under a final name that looks
complete: everything is written in ``OUT/.<stem>.partial-<id>/`` and renamed
into ``OUT/`` only by :meth:`StagedOutputs.commit`.

With a ``resume_key`` (a digest of the slide file and the settings) the
staging folder has a stable name, ``OUT/.<stem>.partial-<key>/``: a run that
is interrupted (killed, Ctrl-C) leaves it in place, and the next run with the
same key continues in it (see :mod:`wsi_deblur.write.checkpoints`). A run
that fails with an error removes it, as does one with another key.
"""

from __future__ import annotations

import os
import uuid

from wsi_deblur.write.location import OutputPath, move, output_path, remove


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
        if resume_key is None:
            self.staging = self.out_dir / f".{stem}.partial-{uuid.uuid4().hex[:8]}"
        else:
            self.staging = self.out_dir / f".{stem}.partial-{resume_key}"
            for stale in self.out_dir.iterdir():
                if stale.name.startswith(f".{stem}.partial-") and stale.name != self.staging.name:
                    remove(stale)  # another file or other settings: cannot be resumed
        self.resumed = self.staging.exists()
        self.staging.mkdir(exist_ok=True)
        self.committed: list[OutputPath] = []

    def path(self, name: str) -> OutputPath:
        """Where to write output ``name`` while it is being made."""
        return self.staging / name

    def commit(self) -> list[OutputPath]:
        """Move every staged output to its final name, replacing older ones.

        Hidden entries of the staging folder (bookkeeping such as resume
        markers) are not outputs and are removed with the folder.
        """
        for item in sorted(self.staging.iterdir()):
            if item.name.startswith("."):
                continue
            final = self.out_dir / item.name
            if final.exists():
                old = self.out_dir / f".{item.name}.old-{uuid.uuid4().hex[:8]}"
                move(final, old)
                move(item, final)
                remove(old)
            else:
                move(item, final)
            self.committed.append(final)
        remove(self.staging)
        return self.committed

    def discard(self) -> None:
        remove(self.staging)

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            return
        interrupted = not issubclass(exc_type, Exception)  # KeyboardInterrupt, SystemExit
        if self.resume_key is None or not interrupted:
            self.discard()

