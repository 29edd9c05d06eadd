"""Errors that wsi-deblur reports to users as one line."""

from __future__ import annotations

from pathlib import Path


class SlideError(Exception):
    """A slide or image that cannot be processed.

    The message always names the file and the reason, so a batch log reads
    ``PATH: reason`` one line per failed slide.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class Resumable:
    """Mixed into errors that mean the work was stopped from outside (not that the slide is bad).

    A slide's staging folder is kept for them, as for Ctrl-C, so that the
    next run with the same settings resumes from what was finished
    (:mod:`wsi_deblur.write.staging`).
    """
