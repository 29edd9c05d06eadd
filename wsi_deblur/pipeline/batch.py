"""Many slides in one go: each slide's failure is recorded, the batch goes on."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wsi_deblur.errors import SlideError
from wsi_deblur.io.slide import slide_stem
from wsi_deblur.pipeline.manifest import Manifest, settings_hash
from wsi_deblur.weights import weights_digest
from wsi_deblur.pipeline.scheduler import SchedulerLost
from wsi_deblur.write.lock import OutputLock
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.slide_job import SlideResult, process_slide
from wsi_deblur.report.batch_csv import failure_row, summary_row, write_batch_csv
from wsi_deblur.report.html import write_report
from wsi_deblur.write.location import output_path

#: File endings taken from a folder given as input.
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".dcm",
                  ".png", ".jpg", ".jpeg")


@dataclass
class BatchOutcome:
    """Results of the slides that worked and one line per slide that did not."""

    results: list[SlideResult] = field(default_factory=list)
    failures: list[SlideError] = field(default_factory=list)
    skipped: list[SlideResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


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
            out.extend(sorted(str(f) for f in p.iterdir() if not f.name.startswith(".")  # hidden: macOS ._x.svs
                              and ((f.is_file() and f.name.lower().endswith(SLIDE_SUFFIXES)
                                    and not f.name.endswith(".blurmap.png"))  # our own QC image, not a slide
                                   or (f.is_dir() and f.name.lower().endswith(".ome.zarr")))))
        elif any(ch in item for ch in "*?[") and not p.exists():
            out.extend(sorted(glob.glob(item)))
        else:
            out.append(item)
    return [p if "://" in p else os.path.abspath(p) for p in out]


def process_batch(inputs: Iterable[str | Path], out_dir: str | Path, options: RunOptions = RunOptions(), *,
                  restore: bool = True, progress: bool = False, force: bool = False,
                  on_error: Callable[[SlideError], None] | None = None,
                  on_done: Callable[[SlideResult], None] | None = None,
                  on_skip: Callable[[SlideResult], None] | None = None) -> BatchOutcome:
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
    on_error, on_done, on_skip : callable, optional
        Called as each slide fails, completes or is skipped (the CLI prints there).
    """
    outcome = BatchOutcome()
    out = output_path(out_dir)
    stems: dict[str, str] = {}
    rows: list[dict] = []
    adapted = {"models": weights_digest(options.weights)} if options.weights else {}  # new weights in one folder
    settings = settings_hash({**options.as_dict(), "restore": restore, **adapted})
    inputs = list(inputs)
    paths = expand_inputs(inputs)
    if not paths:  # an empty folder or a glob matching nothing: a cron job must not "succeed"
        raise ValueError(f"no slides in {', '.join(map(str, inputs)) or 'the arguments'} "
                         f"(folders are searched for {', '.join(SLIDE_SUFFIXES)} and .ome.zarr)")
    with OutputLock(out_dir):  # one run at a time per output folder
        manifest = Manifest(out_dir)
        for path in paths:
            stem = slide_stem(path)
            try:
                if stem in stems:
                    raise SlideError(path, f"its outputs would overwrite those of {stems[stem]} (same name {stem!r})")
                stems[stem] = path
                done = None if force else manifest.completed_summary(stem, path, settings)
                if done is not None:
                    result = SlideResult(path, stem, [out / n for n in done["outputs"]], None, done)
                    outcome.skipped.append(result)
                    rows.append(summary_row(done))
                    if on_skip:
                        on_skip(result)
                    continue
                manifest.start(stem, path, settings)
                result = process_slide(path, out_dir, options, restore=restore, progress=progress)
            except SchedulerLost as exc:
                # Every later slide would fail the same way: stop, this slide's finished work kept in its staging
                # folder (as after Ctrl-C), the manifest and the tables saying so.
                manifest.interrupt(stem, str(exc))
                rows.append(failure_row(path, f"interrupted: {exc}"))
                write_batch_csv(out / "qc.csv", rows)
                write_report(out / "report.html", rows, thresholds=options.thresholds())
                raise SchedulerLost(f"{path}: {exc}; completed slides are in place, and running the same command "
                                    "again resumes this one from its finished work") from exc
            except SlideError as exc:
                _record(outcome, exc, on_error)
                rows.append(failure_row(path, exc.reason))
                _finish_failed(manifest, stem, stems, path, exc.reason)
            except (OSError, ValueError, RuntimeError, MemoryError) as exc:
                error = SlideError(path, f"{type(exc).__name__}: {str(exc).strip()[:300]}")
                _record(outcome, error, on_error)
                rows.append(failure_row(path, error.reason))
                _finish_failed(manifest, stem, stems, path, error.reason)
            else:
                outcome.results.append(result)
                rows.append(summary_row(result.summary))
                manifest.finish(stem, outputs=result.summary["outputs"], seconds=result.summary["timings_s"]["total"])
                if on_done:
                    on_done(result)
            # The batch table and report are rewritten after every slide: a
            # crash mid-batch still leaves them describing what was done.
            out.mkdir(parents=True, exist_ok=True)
            write_batch_csv(out / "qc.csv", rows)
            write_report(out / "report.html", rows, thresholds=options.thresholds())
    return outcome


def _finish_failed(manifest: Manifest, stem: str, stems: dict[str, str], path: str, reason: str) -> None:
    if stems.get(stem) == path:  # not for a duplicate name: that entry belongs to the first slide
        manifest.finish(stem, error=reason)


def _record(outcome: BatchOutcome, exc: SlideError, on_error) -> None:
    outcome.failures.append(exc)
    if on_error:
        on_error(exc)
