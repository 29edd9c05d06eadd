"""``wsi-deblur``: the command line, a thin layer over the Python API.

The imports marked ``# deferred`` load dask, zarr or torch: each command imports what it runs, so that
``wsi-deblur --help`` and a refused option answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
from pathlib import Path

from wsi_deblur import __version__
from wsi_deblur._shared.cpus import usable_cpus
from wsi_deblur._shared.options import add_arguments, choice_flag, from_arguments
from wsi_deblur.adaptation.calibration import CalibrateOptions
from wsi_deblur.adaptation.options import AdaptOptions
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.classify.by_name import CLASSIFIERS, make_classifier
from wsi_deblur.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    RefusedBeforeWork,
    SlideError,
    check_choice,
)
from wsi_deblur.nets.files import check_weights_dir
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.restore.by_name import RESTORERS, make_restorer, restorer_help
from wsi_deblur.write.outputs import BATCH_OUTPUTS

logger = logging.getLogger("wsi_deblur.cli")

#: Loggers of the libraries underneath, heard only with ``--verbose``: our error lines already say what failed.
LIBRARY_LOGGERS = ("distributed", "asyncio", "tornado", "bokeh", "tifffile", "zarr", "numcodecs")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """``--debug``, ``--verbose`` and ``--quiet``, on every command."""
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="also log what each stage does")
    loud.add_argument("-q", "--quiet", action="store_true", help="errors only (no warnings, no per-slide lines)")


def _log_level(args: argparse.Namespace) -> int:
    return logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("slides", nargs="+", help="slide files, folders of slides, or glob patterns")
    _add_processing_options(p)


def _add_processing_options(p: argparse.ArgumentParser) -> None:
    """The options of ``run``, ``qc`` and ``watch`` (all but what to read)."""
    p.add_argument("-o", "--out", required=True, help="output folder")
    add_arguments(p, RunOptions, "qc")
    p.add_argument("--scheduler", default=None,
                   help="where work runs: omitted = threads in this process, 'local' = a LocalCluster of "
                        "processes, or a scheduler address such as tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, default=None, help="worker processes for --scheduler local")
    p.add_argument("--force", action="store_true",
                   help="redo slides already completed in OUT (by default they are verified and skipped)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_output_options(p)


def _add_site_arguments(p: argparse.ArgumentParser, options: type, out_help: str) -> None:
    """What ``adapt`` and ``calibrate`` take: a site's slides, the folder to write, their options, a scheduler."""
    p.add_argument("slides", nargs="+", help="slide files, images, folders of them, or glob patterns")
    p.add_argument("-o", "--out", required=True, help=out_help)
    add_arguments(p, options, p.prog.split()[-1])
    p.add_argument("--scheduler", default=None, help="where the slides are classified: omitted = threads here, "
                                                     "'local' = a LocalCluster, or a scheduler address")
    p.add_argument("--workers", type=int, default=None, help="worker processes for --scheduler local")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    _add_output_options(p)


def _add_restore_options(p: argparse.ArgumentParser) -> None:
    """The options of restoration and of the restored image's files (``run``, ``watch --restore``)."""
    add_arguments(p, RunOptions, "restore")


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="wsi-deblur", description=__doc__.split(":")[1].strip())
    parser.add_argument("--version", action="version", version=f"wsi-deblur {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="blur QC and restoration: OME-Zarr, OME-TIFF, qc.json per slide")
    _add_run_options(run)
    _add_restore_options(run)

    qc = sub.add_parser("qc", help="blur QC only: qc.json and the per-tile blur map, no restored image")
    _add_run_options(qc)

    watch = sub.add_parser("watch", help="continuous QC: process each slide a scanner writes into a folder once "
                                         "it has stopped changing (Ctrl-C stops after the current slide)")
    watch.add_argument("folder", help="the folder the scanner writes slides into (not its sub-folders)")
    _add_processing_options(watch)
    watch.add_argument("--restore", action="store_true",
                       help="also restore each slide as `run` does (default: QC only, as `qc`)")
    watch.add_argument("--once", action="store_true",
                       help="process the slides there now (waiting for those still being written), then exit")
    watch.add_argument("--settle", type=float, default=10.0,
                       help="seconds a slide's files must be unchanged before it is taken (default 10)")
    watch.add_argument("--poll", type=float, default=2.0, help="seconds between scans of the folder (default 2)")
    watch.add_argument("--retry-after", type=float, default=600.0,
                       help="seconds after which a slide that failed on a system error (a full disk) is tried "
                            "again (default 600; a bad slide is not, until its file changes)")
    _add_restore_options(watch)

    classify = sub.add_parser("classify", help="blur type and severity of whole images (JSON lines)")
    classify.add_argument("images", nargs="+", help="image or slide files")
    classify.add_argument("--classifier", default="neural", **choice_flag(CLASSIFIERS),
                          help="neural (default: BlurNet) or classical (baseline)")
    classify.add_argument("--mpp", type=float, help="micrometres per pixel of the images, if not in their metadata")
    classify.add_argument("--weights", metavar="DIR",
                          help="a folder written by `wsi-deblur adapt`: its networks replace the shipped ones "
                               "(those it lacks stay shipped, with a warning)")
    _add_output_options(classify)

    restore = sub.add_parser("restore", help="deblur whole images (fields, tiles) into DIR/<stem>.png")
    restore.add_argument("images", nargs="+", help="image files")
    restore.add_argument("-o", "--out", required=True, help="output folder")
    restore.add_argument("--restorer", "--model", dest="model", default="hybrid",
                         **choice_flag(RESTORERS),
                         help=restorer_help() + "; default hybrid")
    restore.add_argument("--blur-type", **choice_flag(BLUR_CLASSES),
                         help="force the route instead of detecting the blur type")
    restore.add_argument("--classifier", default="neural", **choice_flag(CLASSIFIERS),
                         help="what detects each image's blur type: neural (default: BlurNet) or classical")
    restore.add_argument("--device", help="torch device for the networks (default: cuda if present, else cpu)")
    restore.add_argument("--mpp", type=float, help="micrometres per pixel, if not in the images' metadata "
                                                   "(the result depends on it; 0.5 is assumed when neither gives one)")
    restore.add_argument("--weights", metavar="DIR",
                         help="a folder written by `wsi-deblur adapt`: its networks replace the shipped ones "
                              "(those it lacks stay shipped, with a warning)")
    restore.add_argument("--no-guard", action="store_true",
                         help="keep the restorer's output even where it contradicts the optics")
    _add_output_options(restore)

    adapt = sub.add_parser("adapt", help="fine-tune the networks to a site's own slides (no ground truth) "
                                         "into a weights folder for --weights")
    _add_site_arguments(adapt, AdaptOptions, "weights folder to write (safetensors and a model card)")
    calibrate = sub.add_parser("calibrate", help="set where tiles are called blurred from a site's own slides (no "
                                                 "ground truth) into a weights folder for --weights")
    _add_site_arguments(calibrate, CalibrateOptions, "weights folder to write detection.json and detection.md into "
                                                     "(an `adapt` folder's BlurNet is used and kept)")

    info = sub.add_parser("info", help="size, levels, pixel size and reader of slides (JSON lines)")
    info.add_argument("slides", nargs="+")
    info.add_argument("--mpp", type=float, help="micrometres per pixel, when the file has none (or to override it)")
    _add_output_options(info)

    demo = sub.add_parser("demo", help="make the built-in example slide and run on it")
    demo.add_argument("-o", "--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_output_options(demo)
    return parser


def _options(args: argparse.Namespace, restore: bool) -> RunOptions:
    """The run's options from its flags (restoration's from their defaults where the command has none)."""
    return from_arguments(RunOptions, args, restore=restore, weights=_checked_weights(args.option_weights))


def _error_reporter(debug: bool):
    """One line per failed file; with ``debug`` the traceback first (call it inside ``except``)."""

    def report(exc: SlideError) -> None:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr, flush=True)

    return report


def _report_done(result) -> None:
    from wsi_deblur.report.html import reason  # deferred
    from wsi_deblur.report.verdict import VerdictThresholds  # deferred

    s = result.summary
    fractions = ", ".join(f"{k} {v:.1%}" for k, v in s["blur_fractions_of_tissue"].items())
    settings = s.get("settings", {})  # the thresholds the verdict was given (run, watch and demo alike)
    why = reason(s, VerdictThresholds(**{k: settings[k] for k in ("review_fraction", "rescan_fraction")
                                         if k in settings}))
    print(f"{result.slide}: {s['verdict'].upper()} ({why}); tissue {s['tissue_fraction']:.1%} of slide; "
          f"of tissue tiles: {fractions}; {s['restored_tiles']} tiles restored", flush=True)
    for path in result.outputs:
        print(f"  {path}", flush=True)


def _report_batch_files(out) -> None:
    """The batch's own outputs, after the slides' (those that exist)."""
    from wsi_deblur.write.location import output_path  # deferred

    folder = output_path(out)
    names = [n for n in BATCH_OUTPUTS if (folder / n).exists()]
    if names:
        print("batch: " + ", ".join(str(folder / n) for n in names), flush=True)


def _report_skip(result) -> None:
    print(f"{result.slide}: already complete in the output folder, skipped (--force to redo)", flush=True)


def _cmd_run(args: argparse.Namespace, restore: bool) -> int:
    options = _options(args, restore)  # checked before the heavy imports: an option error is told at once
    from wsi_deblur.pipeline.batch import BatchHooks, process_batch  # deferred
    from wsi_deblur.pipeline.scheduler import use_scheduler  # deferred

    said = {} if args.quiet else {"on_done": _report_done, "on_skip": _report_skip}
    hooks = BatchHooks(on_error=_error_reporter(args.debug), **said)
    with _terminate_as_interrupt(), use_scheduler(args.scheduler, n_workers=args.workers):
        outcome = process_batch(args.slides, args.out, options, force=args.force,
                                progress=not args.no_progress and sys.stderr.isatty(), hooks=hooks)
    if not args.quiet:
        _report_batch_files(args.out)
    if outcome.failures:
        total = len(outcome.failures) + len(outcome.results) + len(outcome.skipped)
        print(f"{len(outcome.failures)} of {total} slides failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (``kill``, a scheduler ending the job) handled as Ctrl-C: the slide in progress left resumable,
    the manifest and tables saying so, exit 130.
    """
    import signal

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stamped(report, stream):
    """``report`` with the date and time written first on ``stream``: a watch runs for days."""
    import time

    def stamped(item) -> None:
        print(time.strftime("[%Y-%m-%d %H:%M:%S] "), end="", file=stream, flush=True)
        report(item)

    return stamped


def _cmd_watch(args: argparse.Namespace) -> int:
    options = _options(args, args.restore)
    import signal
    import threading

    from wsi_deblur.pipeline.batch import BatchHooks  # deferred
    from wsi_deblur.pipeline.scheduler import use_scheduler  # deferred
    from wsi_deblur.pipeline.watch import WatchSchedule, check_watch, watch_folder  # deferred

    schedule = WatchSchedule(settle_s=args.settle, poll_s=args.poll, retry_s=args.retry_after, once=args.once)
    check_watch(args.folder, args.out)
    hooks = BatchHooks(on_error=_stamped(_error_reporter(args.debug), sys.stderr),
                       on_done=_stamped(_report_done, sys.stdout), on_skip=_stamped(_report_skip, sys.stdout),
                       on_waiting=lambda path: logger.info("%s: waiting until it stops changing", path))
    stop = threading.Event()

    def stop_after_this_slide(signum, frame) -> None:
        if stop.is_set():  # the second Ctrl-C: stop now, the slide in progress left resumable
            raise KeyboardInterrupt
        stop.set()
        print("stopping after the current slide (Ctrl-C again to stop now; the slide is then resumed next time)",
              file=sys.stderr, flush=True)

    handlers = {sig: signal.signal(sig, stop_after_this_slide) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not args.once:
            print(f"watching {args.folder}: each slide is taken once unchanged for {args.settle:g} s; "
                  "Ctrl-C to stop", file=sys.stderr, flush=True)
        with use_scheduler(args.scheduler, n_workers=args.workers):
            outcome = watch_folder(args.folder, args.out, options, schedule=schedule, stop=stop, force=args.force,
                                   progress=not args.no_progress and sys.stderr.isatty(), hooks=hooks)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    _report_batch_files(args.out)
    n = len(outcome.results) + len(outcome.skipped) + len(outcome.failures)
    done = "stopped" if stop.is_set() else "done"
    print(f"{done}: {n} slide{'' if n == 1 else 's'} ({len(outcome.results)} processed, "
          f"{len(outcome.skipped)} already complete, {len(outcome.failures)} failed)", file=sys.stderr)
    return EXIT_FAILED if outcome.failures else EXIT_OK


def _warn_if_assumed(result: dict) -> None:
    """One warning when an image's pixel size was assumed: the result depends on it."""
    if result.get("mpp_source") == "assumed":
        logger.warning("%s: no pixel size in the file; %s um/px assumed (pass --mpp; a 40x scan is about 0.25)",
                       result["path"], result["mpp"])


def _checked_weights(weights: str | None) -> str | None:
    """``--weights`` checked before any work (ValueError: a usage error), as an absolute path."""
    if weights is None:
        return None

    return str(check_weights_dir(weights).resolve())


def _cmd_classify(args: argparse.Namespace) -> int:
    from wsi_deblur.classify.image import classify_image  # deferred

    weights = _checked_weights(args.weights)
    classifier = make_classifier(args.classifier, threads=usable_cpus(), weights_dir=weights)
    status = EXIT_OK
    for path in args.images:
        try:
            result = {**classify_image(path, classifier, mpp=args.mpp), "weights": weights}
            print(json.dumps(result), flush=True)
            _warn_if_assumed(result)
        except SlideError as exc:
            _error_reporter(args.debug)(exc)
            status = EXIT_FAILED
    return status


def _cmd_restore(args: argparse.Namespace) -> int:
    from wsi_deblur.io.slide import slide_stem  # deferred
    from wsi_deblur.restore.image import restore_image, uses_classifier  # deferred

    if args.blur_type is not None:
        check_choice("--blur-type", args.blur_type, BLUR_CLASSES)
    weights = _checked_weights(args.weights)
    restorer = make_restorer(args.model, device=args.device, threads=usable_cpus(), weights_dir=weights)
    classifier = (make_classifier(args.classifier, threads=usable_cpus(), weights_dir=weights)
                  if uses_classifier(args.blur_type) else None)
    status = EXIT_OK
    stems: dict[str, str] = {}
    for path in args.images:
        try:
            stem = slide_stem(path)
            if stem in stems:
                raise SlideError(path, f"its output would overwrite that of {stems[stem]} (same name {stem!r})")
            stems[stem] = path
            result = {**restore_image(path, args.out, restorer, classifier=classifier, blur_type=args.blur_type,
                                      mpp=args.mpp, guard=not args.no_guard), "weights": weights}
            print(json.dumps(result), flush=True)
            _warn_if_assumed(result)
        except SlideError as exc:
            _error_reporter(args.debug)(exc)
            status = EXIT_FAILED
    return status


def _site_hooks(args: argparse.Namespace, command: str):
    """What ``adapt`` and ``calibrate`` are told as they read a site's slides: the failures (each said in one
    line, and kept), and progress lines prefixed by ``command``.
    """
    failures: list[SlideError] = []

    def on_error(exc: SlideError) -> None:
        failures.append(exc)
        _error_reporter(args.debug)(exc)

    def say(line: str) -> None:
        if not args.no_progress:
            print(f"{command}: {line}", file=sys.stderr, flush=True)

    return failures, on_error, say


def _run_on_site(args: argparse.Namespace, command: str, job):
    """``job(on_error, say)`` on the command's scheduler; its result, or None (said) when no slide could be used."""
    from wsi_deblur.pipeline.scheduler import use_scheduler  # deferred

    failures, on_error, say = _site_hooks(args, command)
    try:
        with use_scheduler(args.scheduler, n_workers=args.workers):
            return job(on_error, say), failures
    except ValueError as exc:
        if not failures:
            raise  # a usage error
        print(f"error: {exc}", file=sys.stderr)
        return None, failures


def _cmd_adapt(args: argparse.Namespace) -> int:
    from wsi_deblur.adaptation.job import adapt  # deferred

    options = from_arguments(AdaptOptions, args)
    result, failures = _run_on_site(args, "adapt", lambda on_error, say: adapt(
        args.slides, args.out, options, on_progress=say, on_error=on_error))
    if result is None:
        return EXIT_FAILED
    for entry in result.report["networks"].values():
        print(f"{entry['file']}: {'adapted' if entry['kept'] else 'shipped kept'} ({entry.get('reason', '')})",
              flush=True)
    for path in result.outputs:
        print(f"  {path}", flush=True)
    return EXIT_FAILED if failures else EXIT_OK


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from wsi_deblur.adaptation.calibration import calibrate  # deferred
    from wsi_deblur.pipeline.batch import expand_inputs  # deferred

    options = from_arguments(CalibrateOptions, args)
    result, failures = _run_on_site(args, "calibrate", lambda on_error, say: calibrate(
        expand_inputs(args.slides), args.out, options, on_error=on_error, on_progress=say))
    if result is None:
        return EXIT_FAILED
    print(f"blurred from P(blurred) >= {result.threshold:.4f}: finds {result.recall:.1%} of "
          f"{options.defocus_um} um defocus (shipped decision {result.shipped_recall:.1%}), calls "
          f"{result.false_alarms:.1%} of the in-focus tiles blurred", flush=True)
    print(f"  {Path(args.out) / 'detection.json'}", flush=True)
    return EXIT_FAILED if failures else EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from wsi_deblur.io import open_slide  # deferred
    from wsi_deblur.pipeline.batch import slides_in_folder  # deferred

    status = EXIT_OK
    paths = []  # a folder's slides, as qc and run take them; files as given
    for item in args.slides:
        folder = Path(item).is_dir() and not item.lower().endswith(".ome.zarr")
        paths.extend(slides_in_folder(Path(item)) if folder else [item])
    for path in paths:
        try:
            slide = open_slide(path, mpp_fallback=args.mpp)
            h, w = slide.shape
            print(json.dumps({"path": path, "reader": slide.backend_name, "width_px": w, "height_px": h,
                              "levels": [list(s[::-1]) for s in slide.level_shapes], "mpp": slide.mpp,
                              "vendor": slide.properties.get("openslide.vendor")}), flush=True)
        except SlideError as exc:
            _error_reporter(args.debug)(exc)
            status = EXIT_FAILED
    return status


def _cmd_demo(args: argparse.Namespace) -> int:
    from wsi_deblur.pipeline.batch import BatchHooks, process_batch  # deferred
    from wsi_deblur.synthetic import demo_slide  # deferred

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    example = demo_slide().write(out / "example-slide.ome.tif")
    print(f"example slide (IHC tissue with a defocused and a motion-blurred patch): {example}", flush=True)
    hooks = BatchHooks(on_error=_error_reporter(args.debug), on_done=_report_done)
    outcome = process_batch([example], out / "results", RunOptions(),
                            progress=not args.no_progress and sys.stderr.isatty(), hooks=hooks)
    _report_batch_files(out / "results")
    if outcome.ok:
        print(f"outputs are in {out / 'results'}: open report.html in a browser")
    return EXIT_OK if outcome.ok else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.INFO, "info")
    logging.addLevelName(logging.ERROR, "error")
    logging.basicConfig(level=_log_level(args), format="%(levelname)s: %(message)s")
    if not args.verbose:  # the libraries' own lines (tracebacks of a lost connection, ...) only with --verbose
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda record: not record.name.startswith(LIBRARY_LOGGERS))
    commands = {"run": lambda a: _cmd_run(a, restore=True), "qc": lambda a: _cmd_run(a, restore=False),
                "watch": _cmd_watch, "info": _cmd_info, "classify": _cmd_classify, "restore": _cmd_restore,
                "adapt": _cmd_adapt, "calibrate": _cmd_calibrate, "demo": _cmd_demo}
    try:
        return commands[args.command](args)
    except (ValueError, OSError) as exc:  # SlideError and OptionError among them (wsi_deblur.errors)
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        bad_option = isinstance(exc, ValueError) and not isinstance(exc, SlideError)
        refused = bad_option or isinstance(exc, RefusedBeforeWork)
        return EXIT_USAGE if refused else EXIT_FAILED  # refused before any work: 2
    except KeyboardInterrupt:
        print("interrupted; completed slides are in place, the slide in progress left nothing under its final "
              "names (run the same command again to resume it)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
