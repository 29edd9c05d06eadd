"""The errors wsi-deblur reports to users as one line, and the exit codes of the command.

Every error the package raises on purpose derives from :class:`WsiDeblurError`
and from the built-in that says what kind of problem it is, so that callers
can catch either (as tifffile's do): bad input (a slide, an option) is a
``ValueError``, a file, folder or cluster that fails is an ``OSError``.

=====================  =====================  ==========================================
error                  built-in               ``wsi-deblur`` exits with
=====================  =====================  ==========================================
:class:`SlideError`    ``ValueError``         1 (:data:`EXIT_FAILED`); a batch goes on
:class:`OptionError`   ``ValueError``         2 (:data:`EXIT_USAGE`), before any work
``OutputInUse``        ``OSError``            2 (another run holds the output folder: refused before any work)
``SchedulerLost``      ``ConnectionError``    1, the slide left resumable
=====================  =====================  ==========================================

Any other ``OSError`` (a full or read-only disk) exits with 1, an interrupt
with 130 (:data:`EXIT_INTERRUPTED`). The cause stays attached
(``raise ... from exc``): ``--debug`` prints the whole chain.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Exit codes of ``wsi-deblur``: done; a slide, file or output failed; options refused; interrupted.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class WsiDeblurError(Exception):
    """The root of the errors wsi-deblur raises on purpose (each also derives from a built-in)."""


class OptionError(WsiDeblurError, ValueError):
    """An option or setting that cannot be used (checked before any work starts)."""


class SlideError(WsiDeblurError, ValueError):
    """A slide or image that cannot be processed.

    The message always names the file and the reason, so a batch log reads
    ``PATH: reason`` one line per failed slide.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RefusedBeforeWork:
    """Mixed into errors that stop a command before it did anything (exit 2, as a bad option)."""


class Resumable:
    """Mixed into errors that mean the work was stopped from outside (not that the slide is bad).

    A slide's staging folder is kept for them, as for Ctrl-C, so that the
    next run with the same settings resumes from what was finished
    (:mod:`wsi_deblur.write.staging`).
    """


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raise :class:`~wsi_deblur.errors.OptionError` (a ValueError) unless ``value`` is one of ``allowed``.

    The message suggests the closest allowed value.

    Examples
    --------
    >>> check_choice("restorer", "fsat", ("fast", "dbmid", "wiener"))
    Traceback (most recent call last):
    ...
    wsi_deblur.errors.OptionError: restorer 'fsat' is not one of fast, dbmid, wiener; did you mean 'fast'?
    """
    if value in allowed:
        return
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise OptionError(f"{name} {value!r} is not one of {', '.join(allowed)}{hint}")
