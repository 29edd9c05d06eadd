"""``wsi-deblur``: the command line, a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE
from wsi_deblur.classify.by_name import CLASSIFIERS
from wsi_deblur.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, SlideError
from wsi_deblur.pipeline.options import NGFF_VERSIONS, READERS, TIFF_COMPRESSIONS, ZARR_COMPRESSIONS
from wsi_deblur.restore.by_name import RESTORERS, restorer_help
from wsi_deblur.write.outputs import BATCH_OUTPUTS

logger = logging.getLogger("wsi_deblur.cli")

#: Loggers of the libraries underneath, heard only with ``--verbose``: our error lines already say what failed.
LIBRARY_LOGGERS = ("distributed", "asyncio", "tornado", "bokeh", "tifffile", "zarr", "numcodecs")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """``--debug``, ``--verbose`` and ``--quiet``, on every command."""
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="also log what each stage does")
    loud.add_argument("-q", "--quiet", action="store_true", help="errors only (no warnings)")


def _log_level(args: argparse.Namespace) -> int:
    return logging.INFO if args.verbose else logging.ERROR if args.quiet else logging.WARNING


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("slides", nargs="+", help="slide files, folders of slides, or glob patterns")
    _add_processing_options(p)


def _add_processing_options(p: argparse.ArgumentParser) -> None:
    """The options of ``run``, ``qc`` and ``watch`` (all but what to read)."""
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--mpp", type=float, help="micrometres per pixel, when the file has none (or to override it)")
    p.add_argument("--reader", default="auto", choices=READERS,
                   help="force a reader (default: the fastest that reads it)")
    p.add_argument("--tile-size", type=int, default=512, help="tile edge in pixels (default 512)")
    p.add_argument("--halo", type=int, default=64,
                   help="restoration context and half-overlap in pixels at about 0.5 um/px, doubled on a 40x scan "
                        "(default 64: the fast networks see 62 px to each side)")
    p.add_argument("--chunk", type=int, default=2048, help="Dask chunk edge in pixels (default 2048)")
    p.add_argument("--min-tissue", type=float, default=0.25, help="tissue share for a tile to count (default 0.25)")
    p.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                   help="probability that a tile is blurred (1 - P(in focus)) needed to restore it "
                        f"(default {DEFAULT_MIN_CONFIDENCE})")
    p.add_argument("--classifier", default="neural", choices=CLASSIFIERS,
                   help="blur classifier: neural (BlurNet, default) or classical (baseline)")
    p.add_argument("--review-fraction", type=float, default=0.05,
                   help="blurred share of tissue from which a slide is flagged for review (default 0.05)")
    p.add_argument("--rescan-fraction", type=float, default=0.20,
                   help="blurred share of tissue from which a slide should be rescanned (default 0.20)")
    p.add_argument("--weights", metavar="DIR",
                   help="a folder written by `wsi-deblur adapt`: its networks replace the shipped ones "
                        "(those it lacks stay shipped, with a warning)")
    p.add_argument("--scheduler", default=None,
                   help="where work runs: omitted = threads in this process, 'local' = a LocalCluster of "
                        "processes, or a scheduler address such as tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, default=None, help="worker processes for --scheduler local")
    p.add_argument("--force", action="store_true",
                   help="redo slides already completed in OUT (by default they are verified and skipped)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_output_options(p)


def _add_restore_options(p: argparse.ArgumentParser) -> None:
    """The options of restoration and of the restored image's files (``run``, ``watch --restore``)."""
    p.add_argument("--restorer", default="fast", choices=RESTORERS, help=restorer_help() + "; default fast")
    p.add_argument("--gpu", action="store_true", help="place restoration on workers with a GPU resource")
    p.add_argument("--no-guard", action="store_true",
                   help="keep every restoration as the restorer made it (default: a restoration that contradicts "
                        "the optics is pulled back toward its input)")
    p.add_argument("--ngff-version", default="0.4", choices=NGFF_VERSIONS,
                   help="0.4 (Zarr v2, QuPath/Fiji; default) or 0.5 (Zarr v3)")
    p.add_argument("--zarr-compression", default="blosc", choices=ZARR_COMPRESSIONS,
                   help="blosc (zstd; default), zlib or none: QuPath reads all three")
    p.add_argument("--tiff-compression", default="jpeg", choices=TIFF_COMPRESSIONS,
                   help="jpeg (default), deflate (lossless) or none")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality of the OME-TIFF, 1-100 (default 90)")
    p.add_argument("--no-tiff", action="store_true", help="skip the OME-TIFF")


def build_parser() -> argparse.ArgumentParser:
    from wsi_deblur import __version__

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
    classify.add_argument("--classifier", default="neural", choices=CLASSIFIERS,
                          help="neural (default: BlurNet) or classical (baseline)")
    classify.add_argument("--mpp", type=float, help="micrometres per pixel of the images, if not in their metadata")
    classify.add_argument("--weights", metavar="DIR",
                          help="a folder written by `wsi-deblur adapt`: its networks replace the shipped ones "
                               "(those it lacks stay shipped, with a warning)")
    _add_output_options(classify)

    restore = sub.add_parser("restore", help="deblur whole images (fields, tiles) into DIR/<stem>.png")
    restore.add_argument("images", nargs="+", help="image files")
    restore.add_argument("-o", "--out", required=True, help="output folder")
    restore.add_argument("--restorer", "--model", dest="model", default="fast", choices=RESTORERS,
                         help=restorer_help() + "; default fast")
    restore.add_argument("--blur-type", choices=BLUR_CLASSES,
                         help="force the route instead of detecting the blur type")
    restore.add_argument("--classifier", default="neural", choices=CLASSIFIERS,
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
    adapt.add_argument("slides", nargs="+", help="slide files, images, folders of them, or glob patterns")
    adapt.add_argument("-o", "--out", required=True, help="weights folder to write (safetensors and a model card)")
    adapt.add_argument("--steps", type=int, default=300, help="training steps per network (default 300)")
    adapt.add_argument("--max-tiles", type=int, default=128,
                       help="in-focus and blurred tiles sampled (each), over all slides (default 128)")
    adapt.add_argument("--pairs", type=int, default=1024,
                       help="simulated training pairs per network, and half as many further-degraded (default 1024)")
    adapt.add_argument("--tile-size", type=int, default=512,
                       help="tile edge in pixels at about 0.5 um/px (default 512; 256 for small images)")
    adapt.add_argument("--mpp", type=float, help="micrometres per pixel, for files without one")
    adapt.add_argument("--reader", default="auto", choices=READERS, help="force a reader")
    adapt.add_argument("--seed", type=int, default=0, help="seed of the sampling and training (default 0)")
    adapt.add_argument("--device", help="torch device to train on (default: cuda if present, else cpu)")
    adapt.add_argument("--scheduler", default=None,
                       help="where the slides are classified: omitted = threads here, 'local' = a LocalCluster, "
                            "or a scheduler address")
    adapt.add_argument("--workers", type=int, default=None, help="worker processes for --scheduler local")
    adapt.add_argument("--no-progress", action="store_true", help="no progress lines")
    _add_output_options(adapt)

    info = sub.add_parser("info", help="size, levels, pixel size and reader of slides (JSON lines)")
    info.add_argument("slides", nargs="+")
    info.add_argument("--mpp", type=float, help="micrometres per pixel, when the file has none (or to override it)")
    _add_output_options(info)

    demo = sub.add_parser("demo", help="make the built-in example slide and run on it")
    demo.add_argument("-o", "--out", default="out/demo", help="output folder (default out/demo)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_output_options(demo)
    return parser


def _options(args: argparse.Namespace, restore: bool):
    from wsi_deblur.pipeline.options import RunOptions

    extra = {}
    if restore:
        extra = dict(restorer=args.restorer, gpu=args.gpu, guard=not args.no_guard, ngff_version=args.ngff_version,
                     zarr_compression=args.zarr_compression, tiff=not args.no_tiff,
                     tiff_compression=args.tiff_compression, jpeg_quality=args.jpeg_quality)
    return RunOptions(tile_size=args.tile_size, halo=args.halo, chunk=args.chunk, min_tissue=args.min_tissue,
                      min_confidence=args.min_confidence, classifier=args.classifier, mpp=args.mpp,
                      reader=args.reader, review_fraction=args.review_fraction,
                      rescan_fraction=args.rescan_fraction, weights=_checked_weights(args.weights), **extra)


def _error_reporter(debug: bool):
    """One line per failed file; with ``debug`` the traceback first (call it inside ``except``)."""

    def report(exc: SlideError) -> None:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr, flush=True)

    return report


def _report_done(result) -> None:
    s = result.summary
    fractions = ", ".join(f"{k} {v:.1%}" for k, v in s["blur_fractions_of_tissue"].items())
    print(f"{result.slide}: {s['verdict'].upper()}; tissue {s['tissue_fraction']:.1%} of slide; "
          f"of tissue tiles: {fractions}; {s['restored_tiles']} tiles restored", flush=True)
    for path in result.outputs:
        print(f"  {path}", flush=True)


def _report_batch_files(out) -> None:
    """The batch's own outputs, after the slides' (those that exist)."""
    from wsi_deblur.write.location import output_path

    folder = output_path(out)
    names = [n for n in BATCH_OUTPUTS if (folder / n).exists()]
    if names:
        print("batch: " + ", ".join(str(folder / n) for n in names), flush=True)


def _report_skip(result) -> None:
    print(f"{result.slide}: already complete in the output folder, skipped (--force to redo)", flush=True)


def _cmd_run(args: argparse.Namespace, restore: bool) -> int:
    options = _options(args, restore)  # checked before the heavy imports: an option error is told at once
    from wsi_deblur.pipeline.batch import process_batch
    from wsi_deblur.pipeline.scheduler import use_scheduler

    with use_scheduler(args.scheduler, n_workers=args.workers):
        outcome = process_batch(args.slides, args.out, options, restore=restore, force=args.force,
                                progress=not args.no_progress and sys.stderr.isatty(),
                                on_error=_error_reporter(args.debug), on_done=_report_done,
                                on_skip=_report_skip)
    _report_batch_files(args.out)
    if outcome.failures:
        total = len(outcome.failures) + len(outcome.results) + len(outcome.skipped)
        print(f"{len(outcome.failures)} of {total} slides failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


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

    from wsi_deblur.pipeline.scheduler import use_scheduler
    from wsi_deblur.pipeline.watch import check_watch, watch_folder

    check_watch(args.folder, args.out, settle_s=args.settle, poll_s=args.poll, retry_s=args.retry_after)
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
            outcome = watch_folder(args.folder, args.out, options, restore=args.restore, once=args.once,
                                   settle_s=args.settle, poll_s=args.poll, retry_s=args.retry_after, stop=stop,
                                   force=args.force,
                                   progress=not args.no_progress and sys.stderr.isatty(),
                                   on_error=_stamped(_error_reporter(args.debug), sys.stderr),
                                   on_done=_stamped(_report_done, sys.stdout),
                                   on_skip=_stamped(_report_skip, sys.stdout),
                                   on_waiting=lambda path: logger.info("%s: waiting until it stops changing", path))
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
    from wsi_deblur.nets.files import check_weights_dir

    return str(check_weights_dir(weights).resolve())


def _cmd_classify(args: argparse.Namespace) -> int:
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.classify.image import classify_image

    weights = _checked_weights(args.weights)
    classifier = make_classifier(args.classifier, threads=os.cpu_count() or 1, weights_dir=weights)
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
    from wsi_deblur.classify.by_name import make_classifier
    from wsi_deblur.io.slide import slide_stem
    from wsi_deblur.restore.by_name import make_restorer
    from wsi_deblur.restore.image import restore_image, uses_classifier

    weights = _checked_weights(args.weights)
    restorer = make_restorer(args.model, device=args.device, threads=os.cpu_count() or 1, weights_dir=weights)
    classifier = (make_classifier(args.classifier, threads=os.cpu_count() or 1, weights_dir=weights)
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


def _cmd_adapt(args: argparse.Namespace) -> int:
    from wsi_deblur.adaptation.job import AdaptOptions, adapt
    from wsi_deblur.pipeline.scheduler import use_scheduler

    options = AdaptOptions(steps=args.steps, max_tiles=args.max_tiles, pairs=args.pairs, tile_size=args.tile_size,
                           mpp=args.mpp, reader=args.reader, seed=args.seed, device=args.device)
    failures = []

    def on_error(exc: SlideError) -> None:
        failures.append(exc)
        _error_reporter(args.debug)(exc)

    def say(line: str) -> None:
        if not args.no_progress:
            print(f"adapt: {line}", file=sys.stderr, flush=True)

    try:
        with use_scheduler(args.scheduler, n_workers=args.workers):
            result = adapt(args.slides, args.out, options, on_progress=say, on_error=on_error)
    except ValueError as exc:
        if not failures:
            raise  # a usage error
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for entry in result.report["networks"].values():
        print(f"{entry['file']}: {'adapted' if entry['kept'] else 'shipped kept'} ({entry.get('reason', '')})",
              flush=True)
    for path in result.outputs:
        print(f"  {path}", flush=True)
    return EXIT_FAILED if failures else EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from wsi_deblur.io import open_slide

    status = EXIT_OK
    for path in args.slides:
        try:
            slide = open_slide(path, mpp=args.mpp)
            h, w = slide.shape
            print(json.dumps({"path": path, "reader": slide.backend_name, "width_px": w, "height_px": h,
                              "levels": [list(s[::-1]) for s in slide.level_shapes], "mpp": slide.mpp,
                              "vendor": slide.properties.get("openslide.vendor")}), flush=True)
        except SlideError as exc:
            _error_reporter(args.debug)(exc)
            status = EXIT_FAILED
    return status


def _cmd_demo(args: argparse.Namespace) -> int:
    from wsi_deblur.pipeline.batch import process_batch
    from wsi_deblur.pipeline.options import RunOptions
    from wsi_deblur.synthetic import demo_slide

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    example = demo_slide().write(out / "example-slide.ome.tif")
    print(f"example slide (IHC tissue with a defocused and a motion-blurred patch): {example}", flush=True)
    outcome = process_batch([example], out / "results", RunOptions(), progress=not args.no_progress and
                            sys.stderr.isatty(), on_error=_error_reporter(args.debug), on_done=_report_done)
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
    try:
        if args.command == "run":
            return _cmd_run(args, restore=True)
        if args.command == "qc":
            return _cmd_run(args, restore=False)
        if args.command == "watch":
            return _cmd_watch(args)
        if args.command == "info":
            return _cmd_info(args)
        if args.command == "classify":
            return _cmd_classify(args)
        if args.command == "restore":
            return _cmd_restore(args)
        if args.command == "adapt":
            return _cmd_adapt(args)
        return _cmd_demo(args)
    except (ValueError, OSError) as exc:  # SlideError and OptionError among them (wsi_deblur.errors)
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ValueError) and not isinstance(exc, SlideError) else EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; completed slides are in place, the slide in progress left nothing under its final "
              "names (run the same command again to resume it)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
