"""One slide, end to end: read -> tissue -> classify -> restore -> blend -> write."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np

from wsi_deblur.blurmap import BlurMap
from wsi_deblur.errors import SlideError
from wsi_deblur.io import Slide, open_slide
from wsi_deblur.models import make_classifier, make_restorer
from wsi_deblur.pipeline.graph import blurmap_tasks, restored_level0
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import compute
from wsi_deblur.pipeline.worker_models import register_preloader
from wsi_deblur.report.geojson import write_blur_geojson
from wsi_deblur.report.overlay import write_overlay_png
from wsi_deblur.report.qc_json import qc_summary, write_qc_json
from wsi_deblur.report.tiles_csv import write_tiles_csv
from wsi_deblur.tiling.grid import TileGrid
from wsi_deblur.tissue import tile_tissue_fraction, tissue_mask
from wsi_deblur.write import ome_tiff, ome_zarr
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
    outputs: list[Path] = field(default_factory=list)
    blurmap: BlurMap | None = None
    summary: dict = field(default_factory=dict)


def open_for_processing(path: str | Path, options: RunOptions) -> Slide:
    """Open a slide and check it has what processing needs (a pixel size)."""
    slide = open_slide(path, mpp=options.mpp, backend=options.reader)
    if slide.mpp is None:
        raise SlideError(path, "pixel size unknown (no microns-per-pixel in the metadata); pass --mpp")
    return slide


def compute_blurmap(slide: Slide, options: RunOptions, *, progress: bool = False) -> SlideQC:
    """Tissue detection and blur classification of every tissue tile."""
    grid = TileGrid(slide.shape, options.tile_size, options.halo)
    thumb, downsample = slide.thumbnail(max_size=1024)
    mask = tissue_mask(thumb)
    fraction = tile_tissue_fraction(mask, downsample, grid.grid_shape, grid.tile_size)
    blurmap = BlurMap(grid, fraction, fraction >= options.min_tissue)
    classifier = make_classifier(options.classifier)
    tasks = blurmap_tasks(slide, grid, blurmap.is_tissue, classifier, chunk=options.chunk)
    for results in compute(*tasks, progress=progress, label=f"{slide.stem}: classifying tiles"):
        for ij, estimate in results:
            blurmap.set_estimate(ij, estimate)
    return SlideQC(blurmap, thumb, downsample, float(mask.mean()))


def process_slide(path: str | Path, out_dir: str | Path, options: RunOptions = RunOptions(), *,
                  restore: bool = True, progress: bool = False) -> SlideResult:
    """Process one slide and write its outputs into ``out_dir``.

    Always the QC files: ``<stem>.qc.json``, ``<stem>.blurmap.csv`` (per
    tile), ``<stem>.blurmap.geojson`` (blurred regions for QuPath) and
    ``<stem>.blurmap.png`` (thumbnail with overlay). With ``restore`` (the
    ``run`` command) also ``<stem>.ome.zarr`` (restored pyramid, blur map
    under ``labels/blur``) and ``<stem>.ome.tif``. Outputs appear under their
    final names only when all are complete.

    Raises
    ------
    SlideError
        The slide cannot be read or processed; nothing is left in ``out_dir``.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    register_preloader(options.classifier, options.restorer if restore else None)
    slide = open_for_processing(path, options)
    stem = slide.stem
    qc = compute_blurmap(slide, options, progress=progress)
    blurmap = qc.blurmap
    timings["open_tissue_classify"] = time.perf_counter() - t0
    restored_tiles = int(blurmap.restore_mask(min_confidence=options.min_confidence).sum()) if restore else 0

    with StagedOutputs(out_dir, stem) as staged:
        names = [f"{stem}.qc.json", f"{stem}.blurmap.csv", f"{stem}.blurmap.geojson", f"{stem}.blurmap.png"]
        if restore:
            t1 = time.perf_counter()
            zarr_path = staged.path(f"{stem}.ome.zarr")
            _write_restored(slide, blurmap, options, zarr_path, progress=progress)
            timings["restore_write_zarr"] = time.perf_counter() - t1
            names.insert(0, f"{stem}.ome.zarr")
            if options.tiff:
                t2 = time.perf_counter()
                # A task, so that on a cluster a worker (not this process) reads the
                # pixels from the store and writes the file.
                write = dask.delayed(ome_tiff.write_ome_tiff, pure=False)
                compute(write(staged.path(f"{stem}.ome.tif"), ome_zarr.levels_of(zarr_path), mpp=slide.mpp,
                              name=stem, compression=options.tiff_compression, quality=options.jpeg_quality,
                              tile=options.zarr_chunk, progress=progress))
                timings["write_tiff"] = time.perf_counter() - t2
                names.insert(1, f"{stem}.ome.tif")
        timings["total"] = time.perf_counter() - t0
        write_tiles_csv(staged.path(f"{stem}.blurmap.csv"), blurmap)
        write_blur_geojson(staged.path(f"{stem}.blurmap.geojson"), blurmap, mpp=slide.mpp)
        summary = qc_summary(slide_path=str(path), stem=stem, shape=slide.shape, mpp=slide.mpp,
                             n_levels=len(slide.level_shapes), backend=slide.backend_name, blurmap=blurmap,
                             tissue_area_fraction=qc.tissue_area_fraction, restored_tiles=restored_tiles,
                             thresholds=options.thresholds(),
                             settings={**options.as_dict(), "restore": restore}, timings_s=timings, outputs=names)
        write_overlay_png(staged.path(f"{stem}.blurmap.png"), qc.thumbnail, qc.downsample, blurmap,
                          title=f"{stem}: {summary['verdict']}, {summary['blurred_fraction_of_tissue']:.1%} "
                                f"of tissue blurred")
        write_qc_json(staged.path(f"{stem}.qc.json"), summary)
        outputs = staged.commit()
    return SlideResult(str(path), stem, outputs, blurmap, summary)


def _write_restored(slide: Slide, blurmap: BlurMap, options: RunOptions, zarr_path: Path, *,
                    progress: bool) -> None:
    """Restored level 0 by regions, then the pyramid from the store, then labels."""
    levels = ome_zarr.create_ome_zarr(zarr_path, shape=slide.shape, mpp=slide.mpp, name=slide.stem,
                                      version=options.ngff_version, compression=options.zarr_compression,
                                      chunk=options.zarr_chunk)
    image = restored_level0(slide, blurmap, make_restorer(options.restorer), chunk=options.chunk,
                            min_confidence=options.min_confidence, gpu=options.gpu)
    compute(ome_zarr.store_level0(image, levels[0], compute=False), progress=progress,
            label=f"{slide.stem}: restoring and writing level 0")
    for source, target in zip(levels[:-1], levels[1:]):
        compute(ome_zarr.downsample_level(source, target, chunk=options.chunk, compute=False))
    ome_zarr.write_label_image(zarr_path, blurmap.label, mpp=slide.mpp, tile_size=blurmap.grid.tile_size,
                               n_levels=len(levels), version=options.ngff_version)

