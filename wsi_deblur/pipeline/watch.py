"""Continuous QC: process slides as a scanner writes them into a folder.

A slide is taken once every file it is made of has stopped changing for a
while (:func:`slide_signature`, :func:`is_settled`); each then goes through
the same per-slide job, manifest and resume as a batch
(:class:`wsi_deblur.pipeline.batch.Batch`), and ``qc.csv`` and
``report.html`` are rewritten after it. A slide that fails is recorded and
not tried again until its file changes. Stopping (``stop.set()``, which the
command does on Ctrl-C) takes effect between slides.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wsi_deblur.errors import OptionError, SlideError
from wsi_deblur.pipeline.batch import Batch, BatchHooks, BatchOutcome, slides_in_folder
from wsi_deblur.pipeline.options import RunOptions

logger = logging.getLogger(__name__)

#: (relative path, size, modification time) of each file of a slide.
Signature = tuple[tuple[str, int, float], ...]


def slide_files(path: str | Path) -> list[Path]:
    """The files a slide is made of: itself, every file under an OME-Zarr folder, and an MRXS slide's
    companion folder of the same name (its ``Slidedat.ini`` and ``.dat`` files).

    Examples
    --------
    >>> slide_files("/no/such/slide.svs")
    [PosixPath('/no/such/slide.svs')]
    """
    path = Path(path)
    roots = [path]
    if path.suffix.lower() == ".mrxs":
        roots.append(path.with_suffix(""))
    files: list[Path] = []
    for root in roots:
        if root.is_dir():
            files.extend(sorted(p for p in root.rglob("*") if p.is_file()))
        elif root == path:
            files.append(root)
    return files


def slide_signature(path: str | Path) -> Signature | None:
    """Size and modification time of every file of the slide; None while any is missing (moved, renamed)."""
    path = Path(path)
    out = []
    for f in slide_files(path):
        try:
            st = f.stat()
        except OSError:
            return None
        out.append((str(f.relative_to(path.parent)), st.st_size, st.st_mtime))
    return tuple(out) or None


#: A modification time this far in the future (s) is a clock out of step (a network share's), not a write.
FUTURE_MTIME_S = 60.0


def is_settled(signature: Signature, *, settle_s: float, now: float | None = None) -> bool:
    """Whether the newest file of a slide was last modified at least ``settle_s`` seconds ago.

    A modification time more than :data:`FUTURE_MTIME_S` ahead of this clock
    says nothing of age: such a slide counts as settled once two scans saw it
    unchanged (the watch checks that) instead of waiting for the other clock.

    Examples
    --------
    >>> is_settled((("a.svs", 10, 1000.0),), settle_s=10, now=1005.0)
    False
    >>> is_settled((("a.svs", 10, 5000.0),), settle_s=10, now=1005.0)   # an hour ahead: another clock
    True
    """
    now = time.time() if now is None else now
    age = now - max(mtime for _, _, mtime in signature)
    return age >= settle_s or age < -FUTURE_MTIME_S


#: errno values of failures that are the machine's, not the slide's: a full or read-only disk, a quota,
#: a network file system gone stale or unreachable.
#: Permissions and I/O errors too: fixing them (chmod, a remount) changes no modification time, so a slide that
#: failed on one would otherwise never be tried again.
SYSTEM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ESTALE, errno.ETIMEDOUT, errno.ENOTCONN,
                           errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.EACCES, errno.EPERM, errno.EIO})


def is_system_error(exc: BaseException) -> bool:
    """Whether ``exc`` or an error that caused it is an ``OSError`` of :data:`SYSTEM_ERRNOS`.

    Examples
    --------
    >>> is_system_error(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> is_system_error(FileNotFoundError(errno.ENOENT, "No such file"))
    False
    >>> is_system_error(PermissionError(errno.EACCES, "Permission denied"))   # chmod fixes it; mtime unchanged
    True
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in SYSTEM_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass(frozen=True)
class WatchSchedule:
    """When a watch looks and takes: the times of ``wsi-deblur watch`` (seconds).

    Attributes
    ----------
    settle_s : float
        A slide is taken when no file of it has changed for this long, and not sooner than the scan after
        the one that first saw it as it is.
    poll_s : float
        Seconds between scans of the folder.
    retry_s : float
        A slide that failed on a system error (:func:`is_system_error`: a full output disk, a network share
        gone), not on its own content, is tried again after this many seconds; one that is bad is not,
        until its file changes.
    once : bool
        Process the slides there at the start (waiting for those still being written), then return.
    """

    settle_s: float = 10.0
    poll_s: float = 2.0
    retry_s: float = 600.0
    once: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.settle_s < float("inf") or not 0 < self.poll_s < float("inf"):
            raise OptionError(f"--settle must be >= 0 and --poll > 0 seconds (got {self.settle_s:g} and "
                              f"{self.poll_s:g})")
        if not 0 <= self.retry_s < float("inf"):
            raise OptionError(f"--retry-after must be >= 0 seconds (got {self.retry_s:g})")


def check_watch(folder: str | Path, out_dir: str | Path) -> None:
    """Refuse (:class:`OptionError`) a folder that is not one, or is ``out_dir``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OptionError(f"{folder}: not a folder to watch")
    if "://" not in str(out_dir) and Path(out_dir).resolve() == folder.resolve():
        raise OptionError(f"{folder}: the output folder must not be the watched folder (its outputs would be "
                          "taken for slides)")


class FolderWatch:
    """What a watch knows of its folder between scans: each slide as last seen, as taken, and when to retry.

    :meth:`ready` lists the slides to take now (settled, not taken as they are, not waiting for a retry);
    :meth:`taken` records what became of one; :meth:`finished` says whether a ``once`` watch is done.
    """

    def __init__(self, folder: Path, schedule: WatchSchedule, on_waiting: Callable[[str], None] | None = None):
        self.folder, self.schedule, self.on_waiting = folder, schedule, on_waiting
        self.seen: dict[str, Signature] = {}  # each slide as the last scan saw it
        self.handled: dict[str, Signature] = {}  # each slide as it was when processed (done, skipped or failed)
        self.retry_at: dict[str, float] = {}  # slides that failed on a system error: when to try them again
        self.wanted: set[str] | None = None  # with `once`: the slides there at the start

    def scan(self) -> list[str]:
        """The slides in the folder now (those there at the first scan, for a ``once`` watch); OSError if it
        cannot be listed.
        """
        present = slides_in_folder(self.folder)
        if self.wanted is None and self.schedule.once:
            self.wanted = set(present)
        return present if self.wanted is None else [p for p in present if p in self.wanted]

    def ready(self, path: str) -> Signature | None:
        """``path``'s signature if it is to be taken now, else None (and it is remembered as seen)."""
        signature = slide_signature(path)
        if (signature is None or self.handled.get(path) == signature
                or self.retry_at.get(path, 0) > time.monotonic()):
            return None
        previous, self.seen[path] = self.seen.get(path), signature
        settled = is_settled(signature, settle_s=self.schedule.settle_s)
        if previous != signature or not settled:
            if previous is None and not settled and self.on_waiting:
                self.on_waiting(path)
            return None
        return signature

    def taken(self, path: str, signature: Signature, result: object) -> None:
        """Record what processing ``path`` (as ``signature``) gave: a system error is tried again later."""
        if isinstance(result, SlideError) and is_system_error(result):
            self.retry_at[path] = time.monotonic() + self.schedule.retry_s  # the disk or the system, not the slide
            logger.warning("%s: tried again in %g s (a system error, not the slide's content)", path,
                           self.schedule.retry_s)
        else:
            self.retry_at.pop(path, None)
            self.handled[path] = signature  # as it was when taken: a slide rewritten meanwhile is taken again

    def finished(self) -> bool:
        """A ``once`` watch: every slide there at the start is handled, waiting for a retry, or gone."""
        return self.wanted is not None and all(
            p in self.handled or p in self.retry_at or not os.path.exists(p) for p in self.wanted)


def watch_folder(folder: str | Path, out_dir: str | Path, options: RunOptions = RunOptions(restore=False), *,
                 schedule: WatchSchedule = WatchSchedule(), stop: threading.Event | None = None,
                 progress: bool = False, force: bool = False, hooks: BatchHooks = BatchHooks()) -> BatchOutcome:
    """Process each slide of ``folder`` once it has stopped changing, until ``stop`` is set.

    Parameters
    ----------
    folder : path
        Watched folder: its slide files and ``.ome.zarr`` folders (not its sub-folders; hidden files,
        such as the temporary names rsync copies under, are left out).
    out_dir : path
        Output folder, as for :func:`~wsi_deblur.pipeline.batch.process_batch` (not ``folder`` itself).
    options : RunOptions
        As for a batch; by default QC only (``options.restore`` False, as ``wsi-deblur watch``).
    schedule : WatchSchedule
        When a slide is taken, how often the folder is scanned, when a failed one is tried again, ``once``.
    stop : threading.Event, optional
        Set it to stop; a slide being processed is finished first.
    hooks : BatchHooks
        Called as slides fail, complete, are skipped, or are first seen still changing.

    Returns
    -------
    BatchOutcome
        Every slide done, skipped (already complete in ``out_dir``) or failed while watching.

    Raises
    ------
    OptionError
        ``folder`` is not a folder, or is ``out_dir``.
    OutputInUse
        Another run is writing ``out_dir``.

    Examples
    --------
    >>> stop = threading.Event()                                  # set it from another thread to stop
    >>> watch_folder("scanner/outbox", "qc/", stop=stop)          # doctest: +SKIP
    """
    folder = Path(folder)
    check_watch(folder, out_dir)
    stop = stop or threading.Event()
    state = FolderWatch(folder, schedule, hooks.on_waiting)
    logger.info("watching %s for slides (taken once unchanged for %g s)", folder, schedule.settle_s)
    unlisted = 0  # scans in a row the folder could not be listed
    with Batch(out_dir, options, progress=progress, force=force, hooks=hooks) as batch:
        while not stop.is_set():
            try:
                present = state.scan()
                unlisted = 0
            except OSError as exc:  # a network share that drops out for a while: said, and tried again
                unlisted += 1
                if unlisted & (unlisted - 1) == 0:  # the 1st, 2nd, 4th, 8th ... time: said, not every poll
                    logger.warning("%s: cannot be listed (%s; %d time%s in a row); trying again every %g s",
                                   folder, exc, unlisted, "" if unlisted == 1 else "s", schedule.poll_s)
                stop.wait(schedule.poll_s)
                continue
            if _take_ready(present, state, batch, stop):
                batch.write_tables()  # skipped slides too are in the tables
            if state.finished():
                break
            stop.wait(schedule.poll_s)
    return batch.outcome


def _take_ready(present: list[str], state: FolderWatch, batch: Batch, stop: threading.Event) -> bool:
    """Process every slide of ``present`` that is ready (until ``stop``); whether any was."""
    took = False
    for path in present:
        if stop.is_set():
            break
        signature = state.ready(path)
        if signature is not None:
            state.taken(path, signature, batch.process(path))
            took = True
    return took
