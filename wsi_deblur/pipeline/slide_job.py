"""One slide, end to end: read -> tissue -> classify -> restore -> blend -> write."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np

from wsi_deblur.blurmap import BlurMap
from wsi_deblur.classify.by_name import make_classifier
from wsi_deblur.errors import SlideError
from wsi_deblur.io import Slide, open_slide
from wsi_deblur.nets.cpu_path import cached_cpu_path
from wsi_deblur.nets.files import CLASSIFIER_WEIGHTS, weights_digest, weights_record
from wsi_deblur.pipeline.graph import (
    blurmap_tasks,
    guard_reports,
    kept_guard_reports,
    restore_chunks_of,
    restored_level0,
)
from wsi_deblur.pipeline.manifest import file_identity, settings_hash
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.preload import preload
from wsi_deblur.pipeline.scheduler import compute, current_client
from wsi_deblur.report.focus_surface import fit_focus_surface, write_focus_png
from wsi_deblur.report.geojson import write_blur_geojson
from wsi_deblur.report.overlay import write_overlay_png
from wsi_deblur.report.qc_json import RunRecord, SlideFacts, qc_summary, write_qc_json
from wsi_deblur.report.review import write_review_crops
from wsi_deblur.report.tiles_csv import write_tiles_csv
from wsi_deblur.restore.by_name import make_restorer, restorer_networks
from wsi_deblur.restore.reference import slide_reference
from wsi_deblur.tiling.grid import TileGrid
from wsi_deblur.tissue import blank_reason, fluorescence_reason, tile_tissue_fraction, tissue_mask
from wsi_deblur.working_scale import working_grid
from wsi_deblur.write import ome_tiff, ome_zarr
from wsi_deblur.write.checkpoints import Checkpoints
from wsi_deblur.write.location import OutputPath, remove
from wsi_deblur.write.outputs import SlideOutputs
from wsi_deblur.write.staging import StagedOutputs


@dataclass
class SlideQC:
    """Tissue and blur of one slide, and the thumbnail they were shown on.

    Attributes
    ----------
    blurmap : BlurMap
    thumbnail : ndarray, shape (h, w, 3), uint8
    downsample : float
        Level-0 pixels per thumbnail pixel.
    tissue_area_fraction : float
        Share of the slide's area that is tissue.
    """

    blurmap: BlurMap
    thumbnail: np.ndarray
    downsample: float
    tissue_area_fraction: float


@dataclass
class SlideResult:
    """What processing one slide produced."""

    slide: str
    stem: str
    outputs: list[OutputPath] = field(default_factory=list)
    blurmap: BlurMap | None = None
    summary: dict = field(default_factory=dict)


def open_for_processing(path: str | Path, options: RunOptions) -> Slide:
    """Open a slide and check it has what processing needs (a pixel size)."""
    given = {"mpp": options.mpp} if options.force_mpp else {"mpp_fallback": options.mpp}
    slide = open_slide(path, backend=options.reader, **given)
    if slide.mpp is None:
        raise SlideError(path, "pixel size unknown (no microns-per-pixel in the metadata); pass --mpp")
    return slide


#: Longest slide name (bytes) whose outputs fit a 255-byte file name: ``.<stem>.blurmap.geojson.partial-<8>``.
MAX_STEM_BYTES = 255 - len(".blurmap.geojson.partial-12345678") - 1


def tile_grid(slide: Slide, options: RunOptions) -> TileGrid:
    """The slide's tiles and restore windows (:func:`wsi_deblur.working_scale.working_grid` of ``options``)."""
    return working_grid(slide.shape, slide.mpp, tile_size=options.tile_size, halo=options.halo)


def compute_blurmap(slide: Slide, options: RunOptions, *, progress: bool = False,
                    checkpoints: Checkpoints | None = None) -> SlideQC:
    """Tissue detection and blur classification of every tissue tile.

    With ``checkpoints``, a blur map saved there by an interrupted run is
    reused instead of classifying again, and a new one is saved.
    """
    grid = tile_grid(slide, options)
    small, downsample = slide.lazy_thumbnail(max_size=1024)
    (thumb,) = compute(small)  # a scheduler lost here is SchedulerLost (one line, resumable) as everywhere
    blank = blank_reason(thumb)
    if blank:
        raise SlideError(slide.path, blank)
    fluorescence = fluorescence_reason(thumb, slide.properties)
    if fluorescence:  # its dark background would count as tissue and be "restored" by brightfield networks
        raise SlideError(slide.path, f"{fluorescence}; wsi-deblur reads brightfield slides only")
    mask = tissue_mask(thumb)
    if checkpoints is not None and checkpoints.done("blurmap"):
        blurmap = BlurMap.load(checkpoints.path("blurmap.npz"), grid)
        return SlideQC(blurmap, thumb, downsample, float(mask.mean()))
    fraction = tile_tissue_fraction(mask, downsample, grid.grid_shape, grid.tile_size)
    blurmap = BlurMap(grid, fraction, fraction >= options.min_tissue)
    classifier = make_classifier(options.classifier, weights_dir=options.weights,
                                 blur_threshold=options.blur_threshold, both_scales=options.both_scales)
    tasks = blurmap_tasks(slide, grid, blurmap.is_tissue, classifier, chunk=options.chunk)
    for results in compute(*tasks, progress=progress, label=f"{slide.stem}: classifying tiles"):
        for ij, estimate in results:
            blurmap.set_estimate(ij, estimate)
    if checkpoints is not None:
        blurmap.save(checkpoints.path("blurmap.npz"))
        checkpoints.mark("blurmap")
    return SlideQC(blurmap, thumb, downsample, float(mask.mean()))


def resume_key(path: str | Path, options: RunOptions) -> str:
    """Digest of what the outputs depend on: the slide file, the settings, the weights.

    An interrupted run is resumed only by a run with the same key, so new
    weights (shipped or adapted) never finish a slide that older ones began.
    """
    try:
        identity = file_identity(path)
    except OSError:
        identity = None
    return settings_hash({**options.as_dict(), "file": identity,
                          "models": weights_digest(options.weights)})


def models_used(options: RunOptions) -> dict[str, dict[str, str]]:
    """The weights files a run's networks load: source (shipped or adapted), path, sha256 (for qc.json)."""
    names = [CLASSIFIER_WEIGHTS] if options.classifier == "neural" else []
    restorers = []
    if options.restore:
        restorers = restorer_networks(options.restorer)
    record = weights_record(names + restorers, options.weights)
    for name in names + restorers:  # the precision a CPU of this machine runs it in (wsi_deblur.nets.cpu_path)
        record[name]["cpu_path"] = cached_cpu_path(record[name]["sha256"]) or "not run on this machine's CPU"
    return record


def process_slide(path: str | Path, out_dir: str | Path, options: RunOptions = RunOptions(), *,
                  progress: bool = False) -> SlideResult:
    """Process one slide and write its outputs into ``out_dir``.

    Always the QC files: ``<stem>.qc.json``, ``<stem>.blurmap.csv`` (per
    tile), ``<stem>.blurmap.geojson`` (blurred regions for QuPath) and
    ``<stem>.blurmap.png`` (thumbnail with overlay). With ``options.restore`` (the
    ``run`` command) also ``<stem>.ome.zarr`` (restored pyramid, blur map
    under ``labels/blur``), ``<stem>.ome.tif`` and, when tiles were restored,
    ``<stem>.review/`` (before/after crops of the most blurred ones,
    :mod:`wsi_deblur.report.review`). Outputs appear under their
    final names only when all are complete.

    A run that was killed or interrupted leaves ``OUT/.<stem>.partial-<key>/``;
    calling this again with the same slide and settings resumes it: the blur
    map, the level-0 regions, pyramid levels and files it finished are not
    computed again (qc.json's ``resumed`` says what was reused).

    Raises
    ------
    SlideError
        The slide cannot be read or processed; nothing is left in ``out_dir``.

    Examples
    --------
    A small built-in slide, its left two thirds defocused, QC only:

    >>> import tempfile, pathlib
    >>> from wsi_deblur.synthetic import BlurRegion, SyntheticSlide
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> slide = SyntheticSlide((1024, 1536), [BlurRegion(0, 0, 1024, 1024, "defocus", defocus_sigma_px=3.0)],
    ...                        tissue=False, seed=1).write(folder / "example.ome.tif", mpp=0.5)
    >>> result = process_slide(slide, folder / "out", RunOptions(restore=False))
    >>> result.summary["verdict"], result.summary["blur_fractions_of_tissue"]["defocus"]
    ('rescan', 0.666667)
    >>> sorted(path.name for path in result.outputs)
    ['example.blurmap.csv', 'example.blurmap.geojson', 'example.blurmap.png', 'example.focus.png', 'example.qc.json']
    >>> result.blurmap.class_fractions()["in_focus"]  # the BlurMap: per tile class, severity, guard
    0.3333333333333333
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    restorer = options.restorer if options.restore else None
    if current_client() is not None:  # workers load the networks as they start (distributed imported only then)
        from wsi_deblur.pipeline.worker_models import register_preloader  # deferred: distributed

        register_preloader(options.classifier, restorer, options.weights)
    else:  # so here: qc.json then records every network's CPU path alike, whichever tiles ran through which
        preload(options.classifier, restorer, options.weights)
    slide = open_for_processing(path, options)
    stem = slide.stem
    if len(stem.encode()) > MAX_STEM_BYTES:  # the file system's 255-byte names: refused, not failed mid-way
        raise SlideError(path, f"its name is {len(stem.encode())} bytes long; the outputs named after it "
                               f"(and their temporary names) need at most {MAX_STEM_BYTES}: rename the file")

    with StagedOutputs(out_dir, stem, resume_key=resume_key(path, options)) as staged:
        checkpoints = Checkpoints(staged.staging)
        resumed = {"blurmap": checkpoints.done("blurmap"),
                   "level0_regions": len(checkpoints.names("level0-"))} if staged.resumed else None
        qc = compute_blurmap(slide, options, progress=progress, checkpoints=checkpoints)
        blurmap = qc.blurmap
        timings["open_tissue_classify"] = time.perf_counter() - t0
        restore_mask = blurmap.restore_mask(min_confidence=options.min_confidence)
        restored_tiles = int(restore_mask.sum()) if options.restore else 0
        files = SlideOutputs(stem)
        names = files.qc_files()
        if options.restore:
            t1 = time.perf_counter()
            zarr_path = staged.path(files.ome_zarr)
            _write_restored(slide, blurmap, options, zarr_path, checkpoints, progress=progress)
            timings["restore_write_zarr"] = time.perf_counter() - t1
            names.insert(0, files.ome_zarr)
            if options.tiff:
                t2 = time.perf_counter()
                _write_tiff(slide, options, zarr_path, staged.path(files.ome_tiff), checkpoints,
                            progress=progress)
                timings["write_tiff"] = time.perf_counter() - t2
                names.insert(1, files.ome_tiff)
        review = []
        if restored_tiles:  # the worst restored tiles, before and after, for the report
            review = write_review_crops(staged.path(files.review), slide,
                                        ome_zarr.levels_of(staged.path(files.ome_zarr))[0], blurmap,
                                        blurmap.restore_mask(min_confidence=options.min_confidence))
            names.append(files.review)
        timings["total"] = time.perf_counter() - t0
        surface = fit_focus_surface(blurmap, slide.mpp)
        if surface is not None:
            write_focus_png(staged.path(files.focus_png), surface)
            names.append(files.focus_png)
        write_tiles_csv(staged.path(files.tiles_csv), blurmap, None if surface is None else surface.per_tile_um)
        write_blur_geojson(staged.path(files.geojson), blurmap, mpp=slide.mpp)
        facts = SlideFacts(str(path), stem, slide.shape, slide.mpp, len(slide.level_shapes), slide.backend_name)
        record = RunRecord(qc.tissue_area_fraction, restored_tiles, timings, names, resumed=resumed,
                           models=models_used(options),
                           review_crops=[{**r, "file": f"{files.review}/{r['file']}"} for r in review],
                           focus_surface=None if surface is None else surface.summary())
        summary = qc_summary(facts, blurmap, record, thresholds=options.thresholds(), settings=options.as_dict())
        write_overlay_png(staged.path(files.blurmap_png), qc.thumbnail, qc.downsample, blurmap,
                          title=f"{stem}: {summary['verdict']}, {summary['blurred_fraction_of_tissue']:.1%} "
                                f"of tissue blurred")
        write_qc_json(staged.path(files.qc_json), summary)
        outputs = staged.commit(names, commit_point=files.qc_json, replaces=files.all_names())
    return SlideResult(str(path), stem, outputs, blurmap, summary)


def _write_restored(slide: Slide, blurmap: BlurMap, options: RunOptions, zarr_path: OutputPath,
                    checkpoints: Checkpoints, *, progress: bool) -> None:
    """Restored level 0 by regions, then the pyramid from the store, then labels.

    Each finished piece is marked in ``checkpoints`` and skipped when resuming.
    """
    levels = _created_pyramid(slide, options, zarr_path, checkpoints)
    restored = blurmap.restore_mask(min_confidence=options.min_confidence)
    reference = slide_reference(slide, blurmap) if options.guard and restored.any() else None
    restorer = make_restorer(options.restorer, weights_dir=options.weights)
    image = restored_level0(slide, blurmap, restorer, chunk=options.chunk,
                            min_confidence=options.min_confidence, gpu=options.gpu, guard=options.guard,
                            reference=reference)
    written = _chunks_written_before(image, checkpoints)
    _, *reports = compute(ome_zarr.store_level0(image, levels[0], checkpoints=checkpoints, compute=False),
                          *guard_reports(image, skip=written, keep=checkpoints), progress=progress,
                          label=f"{slide.stem}: restoring and writing level 0")
    per_chunk = options.chunk // blurmap.grid.tile_size
    earlier, lost = kept_guard_reports(checkpoints, written)  # what the guard did in an interrupted run's chunks
    blurmap.set_guard({**earlier, **{ij: r for part in reports for ij, r in part.items()}},
                      unrecorded=[tuple(ij) for ij in np.argwhere(restored)
                                  if (ij[0] // per_chunk, ij[1] // per_chunk) in lost])
    for k, (source, target) in enumerate(zip(levels[:-1], levels[1:]), start=1):
        if not checkpoints.done(f"level{k}"):
            compute(ome_zarr.downsample_level(source, target, chunk=options.chunk, compute=False))
            checkpoints.mark(f"level{k}")
    if not checkpoints.done("labels"):
        ome_zarr.write_label_image(zarr_path, blurmap.label, mpp=slide.mpp, tile_size=blurmap.grid.tile_size,
                                   n_levels=len(levels), version=options.ngff_version)
        checkpoints.mark("labels")


def _created_pyramid(slide: Slide, options: RunOptions, zarr_path: OutputPath, checkpoints: Checkpoints) -> list:
    """The level arrays of the slide's OME-Zarr: created empty, or as a killed run left them."""
    if checkpoints.done("zarr-created"):
        return ome_zarr.levels_of(zarr_path, mode="r+")
    remove(zarr_path)  # half-created by a killed run
    layout = ome_zarr.ZarrLayout(options.ngff_version, options.zarr_compression, options.zarr_chunk)
    levels = ome_zarr.create_ome_zarr(zarr_path, shape=slide.shape, mpp=slide.mpp, name=slide.stem, layout=layout)
    checkpoints.mark("zarr-created")
    return levels


def _chunks_written_before(image, checkpoints: Checkpoints) -> set[tuple[int, int]]:
    """Restore chunks whose 3 x 3 neighbourhood of regions an earlier run wrote: not run again."""
    return {(ci, cj) for ci, cj in restore_chunks_of(image)
            if all(checkpoints.done(f"level0-{ci + di}-{cj + dj}") or not _region_exists(image, ci + di, cj + dj)
                   for di in (-1, 0, 1) for dj in (-1, 0, 1))}


def _region_exists(image, ci: int, cj: int) -> bool:
    return 0 <= ci < image.numblocks[0] and 0 <= cj < image.numblocks[1]


def _write_tiff(slide: Slide, options: RunOptions, zarr_path: OutputPath, tiff_path: OutputPath,
                checkpoints: Checkpoints, *, progress: bool) -> None:
    """The OME-TIFF from the stored pyramid, as one task (on a cluster a worker reads and writes)."""
    if checkpoints.done("tiff"):
        return
    write = dask.delayed(ome_tiff.write_ome_tiff, pure=False)
    compute(write(tiff_path, ome_zarr.levels_of(zarr_path), mpp=slide.mpp, name=slide.stem,
                  compression=options.tiff_compression, quality=options.jpeg_quality, tile=options.zarr_chunk,
                  progress=progress, layout=options.tiff_layout))
    checkpoints.mark("tiff")
