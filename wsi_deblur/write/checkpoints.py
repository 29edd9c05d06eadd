"""Markers of finished work inside a slide's staging folder, so that a run resumes.

A slide's outputs are made in its staging folder (see
:mod:`wsi_deblur.write.staging`). Each piece of work that finishes there
(the blur map, one written region of level 0, a pyramid level, the OME-TIFF)
leaves an empty marker file under ``<staging>/.resume/``, written *after*
the piece itself; state a later step needs (the blur map) is kept there too.
A run that is killed leaves the folder; the next run with the same slide and
settings finds the markers and does only the rest. A piece without its marker
is redone from scratch, so a half-written piece is never trusted.

Markers are written by whichever process did the work (a worker, on a
cluster), so the staging folder must be on storage all of them share, as the
outputs themselves are.
"""

from __future__ import annotations

import os
import uuid

from wsi_deblur.write.location import OutputPath, is_local, output_path

RESUME_FOLDER = ".resume"


class Checkpoints:
    """The finished-work markers of one staging folder.

    Parameters
    ----------
    folder : str, Path or UPath
        The staging folder; markers go in its ``.resume`` subfolder.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = output_path(folder) / RESUME_FOLDER
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> OutputPath:
        """Where to keep the state file ``name`` (give it a suffix, unlike a marker)."""
        return self.folder / name

    def done(self, name: str) -> bool:
        """Whether the piece ``name`` was finished."""
        return (self.folder / name).exists()

    def mark(self, name: str) -> None:
        """Record that the piece ``name`` is finished (atomic: the marker is whole or absent)."""
        if not is_local(self.folder):
            (self.folder / name).write_bytes(b"")  # one object, put whole
            return
        tmp = self.folder / f".{name}.{uuid.uuid4().hex[:8]}"
        tmp.touch()
        os.replace(tmp, self.folder / name)

    def save_text(self, name: str, text: str) -> None:
        """Keep the state file ``name`` (atomic: whole or absent, as a marker)."""
        if not is_local(self.folder):
            (self.folder / name).write_text(text)  # one object, put whole
            return
        tmp = self.folder / f".{name}.{uuid.uuid4().hex[:8]}"
        tmp.write_text(text)
        os.replace(tmp, self.folder / name)

    def names(self, prefix: str = "") -> set[str]:
        """Names of the finished pieces starting with ``prefix``."""
        return {p.name for p in self.folder.iterdir() if p.name.startswith(prefix) and not p.name.startswith(".")}
