"""``OUT/manifest.json``: what a batch did to each slide, so a re-run can skip it.

One entry per output stem: the slide, its size and modification time, a hash
of the settings, the status (``running``, ``done``, ``failed``), timings and
the error. A slide is *complete* only when its entry is ``done`` for the same
file and settings **and** every output it listed is there with a readable
qc.json: a re-run skips exactly those and redoes everything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from wsi_deblur.write.location import output_path, write_text_atomic
from wsi_deblur.write.outputs import MANIFEST, SlideOutputs


def settings_hash(settings: dict[str, Any]) -> str:
    """Short stable hash of the settings that shape the outputs."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime": round(st.st_mtime, 3)}


class Manifest:
    """The batch manifest of an output folder (created on first write)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = output_path(out_dir) / MANIFEST
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text()).get("slides", {})
            except (json.JSONDecodeError, OSError):
                self.entries = {}  # unreadable: start over, every slide is redone

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps({"slides": self.entries}, indent=2) + "\n")

    def completed_summary(self, stem: str, slide: str, settings: str) -> dict[str, Any] | None:
        """The qc.json of ``stem`` if it is complete for this file and settings, else None."""
        entry = self.entries.get(stem)
        if not entry or entry.get("status") != "done" or entry.get("settings") != settings:
            return None
        try:
            if entry.get("file") != file_identity(slide):
                return None
        except OSError:
            return None
        out = self.path.parent
        if not all((out / name).exists() for name in entry.get("outputs", [])):
            return None
        try:
            summary = json.loads((out / SlideOutputs(stem).qc_json).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return summary if summary.get("stem") == stem else None

    def start(self, stem: str, slide: str, settings: str) -> None:
        try:
            identity = file_identity(slide)
        except OSError:
            identity = None
        self.entries[stem] = {"slide": slide, "file": identity, "settings": settings, "status": "running",
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.save()

    def interrupt(self, stem: str, reason: str) -> None:
        """Mark ``stem`` ``interrupted``: its finished work is kept in its staging folder, the next run resumes it."""
        entry = self.entries.setdefault(stem, {})
        entry.update(status="interrupted", error=reason, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.save()

    def finish(self, stem: str, *, outputs: list[str] | None = None, error: str | None = None,
               seconds: float | None = None) -> None:
        entry = self.entries.setdefault(stem, {})
        entry.update(status="failed" if error else "done", error=error, outputs=outputs or [],
                     seconds=None if seconds is None else round(seconds, 3),
                     finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self.save()
