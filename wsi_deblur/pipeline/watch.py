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
from pathlib import Path

from wsi_deblur.errors import OptionError, SlideError
from wsi_deblur.pipeline.batch import Batch, BatchOutcome, slides_in_folder
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


def is_settled(signature: Signature, *, settle_s: float, now: float | None = None) -> bool:
    """Whether the newest file of a slide was last modified at least ``settle_s`` seconds ago."""
    now = time.time() if now is None else now
    return now - max(mtime for _, _, mtime in signature) >= settle_s


#: errno values of failures that are the machine's, not the slide's: a full or read-only disk, a quota,
#: a network file system gone stale or unreachable.
SYSTEM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ESTALE, errno.ETIMEDOUT, errno.ENOTCONN,
                           errno.EHOSTDOWN, errno.EHOSTUNREACH})


def is_system_error(exc: BaseException) -> bool:
    """Whether ``exc`` or an error that caused it is an ``OSError`` of :data:`SYSTEM_ERRNOS`.

    Examples
    --------
    >>> is_system_error(OSError(errno.ENOSPC, "No space left on device"))
    True
    >>> is_system_error(FileNotFoundError(errno.ENOENT, "No such file"))
    False
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in SYSTEM_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def check_watch(folder: str | Path, out_dir: str | Path, *, settle_s: float, poll_s: float,
                retry_s: float = 600.0) -> None:
    """Refuse (:class:`OptionError`) a folder that is not one or is ``out_dir``, and times out of range."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OptionError(f"{folder}: not a folder to watch")
    if "://" not in str(out_dir) and Path(out_dir).resolve() == folder.resolve():
        raise OptionError(f"{folder}: the output folder must not be the watched folder (its outputs would be "
                          "taken for slides)")
    if not 0 <= settle_s < float("inf") or not 0 < poll_s < float("inf"):
        raise OptionError(f"--settle must be >= 0 and --poll > 0 seconds (got {settle_s:g} and {poll_s:g})")
    if not 0 <= retry_s < float("inf"):
        raise OptionError(f"--retry-after must be >= 0 seconds (got {retry_s:g})")


def watch_folder(folder: str | Path, out_dir: str | Path, options: RunOptions = RunOptions(), *,
                 restore: bool = False, once: bool = False, settle_s: float = 10.0, poll_s: float = 2.0,
                 retry_s: float = 600.0,
                 stop: threading.Event | None = None, progress: bool = False, force: bool = False,
                 on_error: Callable[[SlideError], None] | None = None, on_done: Callable | None = None,
                 on_skip: Callable | None = None, on_waiting: Callable[[str], None] | None = None) -> BatchOutcome:
    """Process each slide of ``folder`` once it has stopped changing, until ``stop`` is set.

    Parameters
    ----------
    folder : path
        Watched folder: its slide files and ``.ome.zarr`` folders (not its sub-folders; hidden files,
        such as the temporary names rsync copies under, are left out).
    out_dir : path
        Output folder, as for :func:`~wsi_deblur.pipeline.batch.process_batch` (not ``folder`` itself).
    restore : bool
        Also restore (``run``); by default QC only (``qc``).
    once : bool
        Process the slides there now (waiting for those still being written) and return.
    settle_s : float
        A slide is taken when no file of it has changed for this long, and not sooner than the scan after
        the one that first saw it as it is.
    poll_s : float
        Seconds between scans of the folder.
    retry_s : float
        A slide that failed on a system error (:func:`is_system_error`: a full output disk, a network share
        gone), not on its own content, is tried again after this many seconds; one that is bad is not,
        until its file changes.
    stop : threading.Event, optional
        Set it to stop; a slide being processed is finished first.
    on_waiting : callable, optional
        Called with a slide's path when it is first seen still changing.

    Returns
    -------
    BatchOutcome
        Every slide done, skipped (already complete in ``out_dir``) or failed while watching.

    Raises
    ------
    OptionError
        ``folder`` is not a folder, or is ``out_dir``; ``settle_s`` or ``poll_s`` out of range.
    OutputInUse
        Another run is writing ``out_dir``.

    Examples
    --------
    >>> stop = threading.Event()                                  # set it from another thread to stop
    >>> watch_folder("scanner/outbox", "qc/", stop=stop)          # doctest: +SKIP
    """
    folder = Path(folder)
    check_watch(folder, out_dir, settle_s=settle_s, poll_s=poll_s, retry_s=retry_s)
    stop = stop or threading.Event()
    seen: dict[str, Signature] = {}  # each slide as the last scan saw it
    handled: dict[str, Signature] = {}  # each slide as it was when processed (done, skipped or failed)
    retry_at: dict[str, float] = {}  # slides that failed on a system error: when to try them again
    wanted: set[str] | None = None  # with `once`: the slides there at the start
    logger.info("watching %s for slides (taken once unchanged for %g s)", folder, settle_s)
    with Batch(out_dir, options, restore=restore, progress=progress, force=force, on_error=on_error,
               on_done=on_done, on_skip=on_skip) as batch:
        while not stop.is_set():
            try:
                present = slides_in_folder(folder)
            except OSError as exc:  # a network share that drops out for a while: said, and tried again
                logger.warning("%s: cannot be listed (%s); trying again in %g s", folder, exc, poll_s)
                stop.wait(poll_s)
                continue
            if wanted is None and once:
                wanted = set(present)
            took = False
            for path in present if wanted is None else [p for p in present if p in wanted]:
                if stop.is_set():
                    break
                signature = slide_signature(path)
                if signature is None or handled.get(path) == signature or retry_at.get(path, 0) > time.monotonic():
                    continue
                previous, seen[path] = seen.get(path), signature
                settled = is_settled(signature, settle_s=settle_s)
                if previous != signature or not settled:
                    if previous is None and not settled and on_waiting:
                        on_waiting(path)
                    continue
                result = batch.process(path)
                if isinstance(result, SlideError) and is_system_error(result):
                    retry_at[path] = time.monotonic() + retry_s  # the disk or the system, not the slide
                    logger.warning("%s: tried again in %g s (a system error, not the slide's content)", path,
                                   retry_s)
                else:
                    retry_at.pop(path, None)
                    handled[path] = signature  # as it was when taken: a slide rewritten meanwhile is taken again
                took = True
            if took:
                batch.write_tables()  # skipped slides too are in the tables
            if wanted is not None and all(p in handled or p in retry_at or not os.path.exists(p) for p in wanted):
                break
            stop.wait(poll_s)
    return batch.outcome
