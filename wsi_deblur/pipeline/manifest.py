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

from wsi_deblur.report.batch_csv import summary_row
from wsi_deblur.write.location import output_path, write_text_atomic
from wsi_deblur.write.outputs import MANIFEST, SlideOutputs


def settings_hash(settings: dict[str, Any]) -> str:
    """Short stable hash of the settings that shape the outputs."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime": round(st.st_mtime, 3)}


def is_complete_summary(summary: Any, stem: str) -> bool:
    """Whether a qc.json document is one of ours for ``stem``, whole: a damaged one (a list, a null field, text
    for a number) means the slide is redone, never a crash of every later run of the batch.
    """
    try:
        row = summary_row(summary)
        fields_ok = (isinstance(summary["outputs"], list) and all(isinstance(o, str) for o in summary["outputs"])
                     and isinstance(summary["blurred_fraction_of_tissue"], (int, float))
                     and summary["verdict"] in ("pass", "review", "rescan")
                     and all(isinstance(v, (int, float)) for v in summary["blur_fractions_of_tissue"].values()))
        return fields_ok and row["stem"] == stem
    except (TypeError, KeyError, AttributeError, ValueError):
        return False


class Manifest:
    """The batch manifest of an output folder (created on first write)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.path = output_path(out_dir) / MANIFEST
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                slides = data.get("slides", {}) if isinstance(data, dict) else {}
                self.entries = {k: v for k, v in slides.items() if isinstance(v, dict)} if isinstance(
                    slides, dict) else {}
            except (ValueError, OSError):
                self.entries = {}  # unreadable or damaged: start over, every slide is redone

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
        except (OSError, ValueError):
            return None
        return summary if is_complete_summary(summary, stem) else None

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
