"""Outputs written under a temporary name and moved into place when complete.

A crash, a bad slide or Ctrl-C leaves no file under a final name that looks
complete: everything is written in ``OUT/.<stem>.partial-<id>/`` and renamed
into ``OUT/`` only by :meth:`StagedOutputs.commit`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


class StagedOutputs:
    """A staging folder for one slide's outputs.

    Use as a context manager: on an exception the staging folder is removed
    and nothing appears in ``out_dir``.
    """

    def __init__(self, out_dir: str | Path, stem: str) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.staging = self.out_dir / f".{stem}.partial-{uuid.uuid4().hex[:8]}"
        self.staging.mkdir()
        self.committed: list[Path] = []

    def path(self, name: str) -> Path:
        """Where to write output ``name`` while it is being made."""
        return self.staging / name

    def commit(self) -> list[Path]:
        """Move every staged output to its final name, replacing older ones."""
        for item in sorted(self.staging.iterdir()):
            final = self.out_dir / item.name
            if final.exists():
                old = self.out_dir / f".{item.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(final, old)
                os.replace(item, final)
                _remove(old)
            else:
                os.replace(item, final)
            self.committed.append(final)
        self.staging.rmdir()
        return self.committed

    def discard(self) -> None:
        _remove(self.staging)

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
