"""Many slides in one go: each slide's failure is recorded, the batch goes on."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wsi_deblur.errors import SlideError
from wsi_deblur.io.slide import slide_stem
from wsi_deblur.nets.files import weights_digest
from wsi_deblur.pipeline.manifest import Manifest, settings_hash
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import SchedulerLost, check_gpu_workers
from wsi_deblur.pipeline.slide_job import SlideResult, process_slide
from wsi_deblur.report.batch_csv import failure_row, summary_row, write_batch_csv
from wsi_deblur.report.html import write_report
from wsi_deblur.write.location import output_path
from wsi_deblur.write.lock import OutputLock
from wsi_deblur.write.outputs import QC_CSV, REPORT_HTML, SlideOutputs, is_output_name

#: Least time between two rewrites of qc.csv and report.html after a slide (seconds); see Batch.write_tables.
TABLES_MIN_INTERVAL_S = 5.0
#: File endings taken from a folder given as input.
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm",
                  ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class BatchHooks:
    """What a caller is told as a batch goes (the CLI prints there); each optional.

    Attributes
    ----------
    on_error : callable
        Called with the :class:`~wsi_deblur.errors.SlideError` of each slide that fails.
    on_done, on_skip : callable
        Called with the :class:`~wsi_deblur.pipeline.slide_job.SlideResult` of each slide processed, or
        skipped as already complete.
    on_waiting : callable
        (A watch) called with a slide's path when it is first seen still changing.
    """

    on_error: Callable[[SlideError], None] | None = None
    on_done: Callable[[SlideResult], None] | None = None
    on_skip: Callable[[SlideResult], None] | None = None
    on_waiting: Callable[[str], None] | None = None


@dataclass
class BatchOutcome:
    """Results of the slides that worked and one line per slide that did not."""

    results: list[SlideResult] = field(default_factory=list)
    failures: list[SlideError] = field(default_factory=list)
    skipped: list[SlideResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def is_slide_entry(entry: Path) -> bool:
    """Whether a folder entry is a slide: a slide file or an OME-Zarr folder, not hidden (macOS ``._x.svs``,
    rsync's ``.x.svs.Ab12``), not one of the files wsi-deblur writes (a blur-map PNG).
    """
    name = entry.name.lower()
    if entry.name.startswith("."):
        return False
    if name.endswith(".ome.zarr"):
        return entry.is_dir()
    return name.endswith(SLIDE_SUFFIXES) and not is_output_name(name) and entry.is_file()


def slides_in_folder(folder: str | Path) -> list[str]:
    """The slides directly in ``folder`` (:func:`is_slide_entry`), sorted by name."""
    return sorted(str(entry) for entry in Path(folder).iterdir() if is_slide_entry(entry))


def expand_inputs(inputs: Iterable[str | Path]) -> list[str]:
    """Slides named by paths, folders (their slide files and OME-Zarr folders; hidden files and the blur-map
    PNGs wsi-deblur writes left out) and glob patterns.

    A path that matches nothing is kept, so that it is reported as missing.
    Local paths come back absolute (qc.json, qc.csv and the manifest say where
    the slide is whatever folder the command ran in); URLs as given.
    """
    out: list[str] = []
    for item in map(str, inputs):
        p = Path(item)
        if p.is_dir() and not item.lower().endswith(".ome.zarr"):
            out.extend(slides_in_folder(p))
        elif any(ch in item for ch in "*?[") and not p.exists():
            out.extend(sorted(glob.glob(item)))
        else:
            out.append(item)
    return [p if "://" in p else os.path.abspath(p) for p in out]


class Batch:
    """An output folder being filled slide by slide: the manifest, the batch table and the report.

    :func:`process_batch` runs one over a list of slides, :func:`wsi_deblur.pipeline.watch.watch_folder` over
    slides as they arrive. Each call of :meth:`process` records the slide's outcome (done, skipped as
    already complete, or failed) and rewrites ``qc.csv`` and ``report.html``, so that a crash mid-batch
    still leaves them describing what was done. Use it as a context manager: it holds the folder's lock.

    Examples
    --------
    >>> with Batch("out", RunOptions(restore=False)) as batch:  # doctest: +SKIP
    ...     batch.process("slide-1.svs")
    """

    def __init__(self, out_dir: str | Path, options: RunOptions = RunOptions(), *, progress: bool = False,
                 force: bool = False, hooks: BatchHooks = BatchHooks()) -> None:
        self.out_dir, self.out = out_dir, output_path(out_dir)
        self.options, self.progress, self.force, self.hooks = options, progress, force, hooks
        self.outcome = BatchOutcome()
        adapted = {"models": weights_digest(options.weights)} if options.weights else {}  # new weights in one folder
        self.settings = settings_hash({**options.as_dict(), **adapted})
        self._stems: dict[str, str] = {}
        self._rows: dict[str, dict] = {}  # by slide path: a slide processed again replaces its row
        self._tables_written, self._tables_took = float("-inf"), 0.0
        self._lock = OutputLock(out_dir)
        self.manifest: Manifest | None = None

    def __enter__(self) -> Batch:
        if self.options.gpu and self.options.restore:
            check_gpu_workers()  # before the folder is touched
        self._lock.__enter__()  # one run at a time per output folder
        self.manifest = Manifest(self.out_dir)
        return self

    def __exit__(self, *exc) -> None:
        self._lock.__exit__(*exc)

    def process(self, path: str) -> SlideResult | SlideError:
        """Process (or skip, when already complete) one slide; its result, or the error it failed with.

        A slide that fails (:class:`SlideError`, or an ``OSError``, ``ValueError``, ``RuntimeError`` or
        ``MemoryError`` while processing it) is recorded and its error returned. :class:`SchedulerLost`
        (every later slide would fail the same way) and ``KeyboardInterrupt`` propagate, the slide left
        resumable.
        """
        if self.manifest is None:
            raise RuntimeError("Batch.process called outside `with Batch(...)`")
        manifest, stem = self.manifest, slide_stem(path)
        try:
            if self._stems.get(stem, path) != path:
                raise SlideError(path, f"its outputs would overwrite those of {self._stems[stem]} (same name {stem!r})")
            if self._is_own_output(path, stem):
                raise SlideError(path, "it is an output of this folder, which the run would overwrite; write to "
                                       "another folder (-o)")
            self._stems[stem] = path
            done = None if self.force else manifest.completed_summary(stem, path, self.settings)
            if done is not None:
                result = SlideResult(path, stem, [self.out / n for n in done["outputs"]], None, done)
                self.outcome.skipped.append(result)
                self.outcome.failures = [f for f in self.outcome.failures if f.path != path]
                self._rows[path] = summary_row(done)
                if self.hooks.on_skip:
                    self.hooks.on_skip(result)
                return result
            manifest.start(stem, path, self.settings)
            result = process_slide(path, self.out_dir, self.options, progress=self.progress)
        except SchedulerLost as exc:
            # Every later slide would fail the same way: stop, this slide's finished work kept in its staging
            # folder (as after Ctrl-C), the manifest and the tables saying so.
            manifest.interrupt(stem, str(exc))
            self._rows[path] = failure_row(path, f"interrupted: {exc}")
            self.write_tables()
            raise SchedulerLost(f"{path}: {exc}; completed slides are in place, and running the same command "
                                "again resumes this one from its finished work") from exc
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as the CLI maps it: resumable, and said so in the tables
            if manifest.entries.get(stem, {}).get("status") == "running":
                manifest.interrupt(stem, "interrupted (Ctrl-C or SIGTERM)")
                self._rows[path] = failure_row(path, "interrupted: run the same command again to resume it")
                self.write_tables()
            raise
        except SlideError as exc:
            return self._failed(path, stem, exc)
        except (OSError, ValueError, RuntimeError, MemoryError) as exc:
            error = SlideError(path, f"{type(exc).__name__}: {str(exc).strip()[:300]}")
            error.__cause__ = exc  # kept: a full disk (OSError) is not the slide's fault, a watch tries it again
            return self._failed(path, stem, error)
        self.outcome.results.append(result)
        self.outcome.failures = [f for f in self.outcome.failures if f.path != path]  # each slide by its last outcome
        self._rows[path] = summary_row(result.summary)
        manifest.finish(stem, outputs=result.summary["outputs"], seconds=result.summary["timings_s"]["total"])
        if self.hooks.on_done:
            self.hooks.on_done(result)
        self.write_tables(throttled=True)
        return result

    def _is_own_output(self, path: str, stem: str) -> bool:
        """Whether ``path`` is where this batch writes ``stem``'s restored image (restoring it would destroy it)."""
        if "://" in str(self.out_dir):
            return False
        files = SlideOutputs(stem)
        own = {(Path(self.out_dir) / name).resolve() for name in (files.ome_zarr, files.ome_tiff)}
        return Path(path).resolve() in own

    def write_tables(self, *, throttled: bool = False) -> None:
        """Rewrite ``qc.csv`` and ``report.html`` from every slide recorded so far.

        ``throttled`` (after each slide): skipped while the last write is more recent than
        :data:`TABLES_MIN_INTERVAL_S` or ten times what it took (20000 slides' tables take about a second;
        rewritten after every slide, 2 hours of a batch), the next write catching up; the end of a batch, an
        interruption and each round of a watch write them whatever the time.
        """
        now = time.monotonic()
        if throttled and now - self._tables_written < max(TABLES_MIN_INTERVAL_S, 10 * self._tables_took):
            return
        rows = list(self._rows.values())
        self.out.mkdir(parents=True, exist_ok=True)
        write_batch_csv(self.out / QC_CSV, rows)
        write_report(self.out / REPORT_HTML, rows, thresholds=self.options.thresholds())
        self._tables_written, self._tables_took = time.monotonic(), time.monotonic() - now

    def _failed(self, path: str, stem: str, error: SlideError) -> SlideError:
        self.outcome.failures.append(error)
        if self.hooks.on_error:
            self.hooks.on_error(error)
        self._rows[path] = failure_row(path, error.reason)
        if self._stems.get(stem) == path:  # not for a duplicate name: that entry belongs to the first slide
            self.manifest.finish(stem, error=error.reason)
        self.write_tables(throttled=True)
        return error


def process_batch(inputs: Iterable[str | Path], out_dir: str | Path, options: RunOptions = RunOptions(), *,
                  progress: bool = False, force: bool = False, hooks: BatchHooks = BatchHooks()) -> BatchOutcome:
    """Process every slide; a failing slide is recorded and the batch goes on.

    Each slide's status, timings and error go to ``OUT/manifest.json``. A
    slide already completed in ``out_dir`` for the same file and settings
    (verified: outputs present, qc.json readable) is skipped unless ``force``.
    One batch at a time writes a folder (:mod:`wsi_deblur.write.lock`).

    Raises
    ------
    ValueError
        ``inputs`` name no slide (an empty folder, a glob matching nothing).
    OutputInUse
        Another run is writing ``out_dir``.

    Parameters
    ----------
    hooks : BatchHooks, optional
        Called as each slide fails, completes or is skipped (the CLI prints there).
    """
    inputs = list(inputs)
    paths = expand_inputs(inputs)
    if not paths:  # an empty folder or a glob matching nothing: a cron job must not "succeed"
        raise ValueError(f"no slides in {', '.join(map(str, inputs)) or 'the arguments'} "
                         f"(folders are searched for {', '.join(SLIDE_SUFFIXES)} and .ome.zarr)")
    with Batch(out_dir, options, progress=progress, force=force, hooks=hooks) as batch:
        for path in paths:
            batch.process(path)
        batch.write_tables()  # also when every slide was skipped as complete
    return batch.outcome
