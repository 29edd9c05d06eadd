"""The Dask graphs of the pipeline, built in this one place.

- :func:`blurmap_tasks` classifies tissue tiles, one task per chunk of tiles;
- :func:`restored_level0` is level 0 after restoration as a lazy Dask array:
  one *restore* task per chunk restores the windows of its blurred tiles (the
  step a GPU worker runs), and one *blend* task per chunk reads the input,
  gathers the restored windows of its own and neighbouring chunks, and blends
  them. Chunks with nothing to restore just read the input;
- :func:`guard_reports` is what the consistency guard decided in each
  restore task, computed with the writes so that each task runs once.
"""

from __future__ import annotations

import json

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE, BlurMap
from wsi_deblur.classify.base import BlurClassifier
from wsi_deblur.classify.tiles import classify_tiles
from wsi_deblur.io.slide import Slide
from wsi_deblur.restore.base import Restorer
from wsi_deblur.restore.windows import restore_windows
from wsi_deblur.tiling.blend import blend_region
from wsi_deblur.tiling.grid import TileGrid, chunk_sizes
from wsi_deblur.working_scale import working_downsample
from wsi_deblur.write.checkpoints import Checkpoints

#: Name prefix of the restore layer of :func:`restored_level0`'s graph.
RESTORE_LAYER = "restore-windows-"


def chunk_tiles(grid: TileGrid, chunk: int) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Tiles of each chunk of ``chunk`` pixels (a multiple of the tile size)."""
    if chunk % grid.tile_size:
        raise ValueError(f"chunk ({chunk} px) must be a multiple of tile_size ({grid.tile_size} px)")
    k = chunk // grid.tile_size
    rows, cols = grid.grid_shape
    return {(ci, cj): [(i, j) for i in range(ci * k, min((ci + 1) * k, rows))
                       for j in range(cj * k, min((cj + 1) * k, cols))]
            for ci in range(-(-rows // k)) for cj in range(-(-cols // k))}


def blurmap_tasks(slide: Slide, grid: TileGrid, is_tissue: np.ndarray, classifier: BlurClassifier,
                  *, chunk: int = 2048) -> list:
    """Delayed classification of every tissue tile, one task per chunk.

    Tiles are judged at the working resolution (see :func:`working_downsample`).
    """
    downsample = working_downsample(slide.mpp)
    tasks = []
    for tiles in chunk_tiles(grid, chunk).values():
        todo = [ij for ij in tiles if is_tissue[ij]]
        if todo:
            tasks.append(dask.delayed(classify_tiles, pure=True)(slide, grid, todo, classifier,
                                                                 downsample=downsample))
    return tasks


def _restore_chunk(slide: Slide, grid: TileGrid, tiles: list, estimates: list, restorer: Restorer, guard: bool,
                   reference: np.ndarray | None):
    return restore_windows(slide, grid, tiles, estimates, restorer, guard=guard, reference=reference)


def _blend_chunk(slide: Slide, rect: tuple[int, int, int, int], grid: TileGrid, restored: np.ndarray,
                 ramp: int, *window_sets: dict) -> np.ndarray:
    y0, x0, y1, x1 = rect
    original = slide.read_region(y0, x0, y1 - y0, x1 - x0)
    windows: dict = {}
    for ws in window_sets:
        windows.update(ws)
    return blend_region(original, rect, grid, restored, windows, ramp=ramp)


def restored_level0(slide: Slide, blurmap: BlurMap, restorer: Restorer, *, chunk: int = 2048,
                    min_confidence: float = DEFAULT_MIN_CONFIDENCE, gpu: bool = False, guard: bool = True,
                    reference: np.ndarray | None = None) -> da.Array:
    """Level 0 with blurred tiles restored and blended, as a ``(y, x, c)`` Dask array.

    Parameters
    ----------
    slide : Slide
    blurmap : BlurMap
        Which tiles are blurred, and how.
    restorer : Restorer
        Made for the working pixel size (about 0.5 um/px; see
        :func:`~wsi_deblur.restore.windows.restore_windows`).
    chunk : int
        Chunk edge in pixels; a multiple of the tile size and of the chunk
        of the store the result is written to.
    min_confidence : float
        Blurred tiles with a lower class probability are left untouched.
    gpu : bool
        Annotate the restore tasks with ``resources={"GPU": 1}`` so a
        distributed scheduler places them on GPU workers only.
    guard : bool
        Check every restored window against the optics
        (:mod:`wsi_deblur.restore.guard`); :func:`guard_reports` gives what it did.
    reference : ndarray, optional
        The slide's in-focus ring amplitudes
        (:func:`~wsi_deblur.restore.reference.slide_reference`), which cap what
        a restoration adds where the PSF passes little.
    """
    grid = blurmap.grid
    ramp = grid.halo  # the blend's width into untouched tiles: a window's context
    restored = blurmap.restore_mask(min_confidence=min_confidence)
    per_chunk = chunk_tiles(grid, chunk)
    token = dask.base.tokenize(slide.source, grid, restored, blurmap.label, blurmap.defocus_sigma_px,
                               blurmap.motion_length_px, blurmap.motion_angle_deg, restorer, chunk, ramp, guard,
                               reference)
    restore_name, blend_name = f"{RESTORE_LAYER}{token}", f"blend-{token}"

    restore_layer = {}
    for (ci, cj), tiles in per_chunk.items():
        todo = [ij for ij in tiles if restored[ij]]
        if todo:
            estimates = [blurmap.estimate(ij) for ij in todo]
            restore_layer[(restore_name, ci, cj)] = (_restore_chunk, slide, grid, todo, estimates, restorer, guard,
                                                     reference)

    h, w = grid.shape
    blend_layer = {}
    for (ci, cj) in per_chunk:
        rect = (ci * chunk, cj * chunk, min((ci + 1) * chunk, h), min((cj + 1) * chunk, w))
        deps = [(restore_name, ci + di, cj + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1)
                if (restore_name, ci + di, cj + dj) in restore_layer]
        blend_layer[(blend_name, ci, cj, 0)] = (_blend_chunk, slide, rect, grid, restored, ramp, *deps)

    annotations = {"resources": {"GPU": 1}} if gpu else None
    graph = HighLevelGraph(
        {restore_name: MaterializedLayer(restore_layer, annotations=annotations),
         blend_name: MaterializedLayer(blend_layer)},
        {restore_name: set(), blend_name: {restore_name}},
    )
    chunks = (chunk_sizes(h, chunk), chunk_sizes(w, chunk), (3,))
    return da.Array(graph, blend_name, chunks=chunks, dtype=np.uint8)


def _reports(windows) -> dict:
    return dict(windows.reports)


def guard_reports(image: da.Array, *, skip: set[tuple[int, int]] = frozenset(),
                  keep: Checkpoints | None = None) -> list[Delayed]:
    """The guard's reports of every restore task of :func:`restored_level0`'s ``image``.

    One ``Delayed`` per restore chunk (a dict of tile to
    :class:`~wsi_deblur.restore.guard.GuardReport`), leaving out the chunks in
    ``skip`` (``(ci, cj)``: nothing of theirs is written again). With
    ``keep``, each chunk's reports are also saved there as soon as they are
    known, so that a resumed run records what the guard did in the chunks an
    interrupted one wrote (:func:`kept_guard_reports`).
    """
    names = [name for name in image.dask.layers if name.startswith(RESTORE_LAYER)]
    out = []
    for name in names:
        for key in image.dask.layers[name]:
            if tuple(key[1:]) in skip:
                continue
            reports = dask.delayed(_reports, pure=True)(Delayed(key, image.dask, layer=name))
            if keep is not None:
                reports = dask.delayed(_kept, pure=True)(reports, keep, _record_name(tuple(key[1:])))
            out.append(reports)
    return out


def _record_name(chunk: tuple[int, int]) -> str:
    return f"guard-{chunk[0]}-{chunk[1]}.json"


def _kept(reports: dict, checkpoints: Checkpoints, name: str) -> dict:
    rows = [[int(i), int(j), r.action, float(r.consistency), bool(r.capped), float(r.kept)]
            for (i, j), r in reports.items()]
    checkpoints.save_text(name, json.dumps(rows))
    return reports


def kept_guard_reports(checkpoints: Checkpoints, chunks) -> tuple[dict, set[tuple[int, int]]]:
    """The reports an earlier run kept for ``chunks`` (``(ci, cj)``), and the chunks it kept none for."""
    from wsi_deblur.restore.guard import GuardReport

    found, lost = {}, set()
    for chunk in chunks:
        path = checkpoints.path(_record_name(chunk))
        try:
            rows = json.loads(path.read_text())
            found.update({(i, j): GuardReport(action, consistency, capped, kept)
                          for i, j, action, consistency, capped, kept in rows})
        except (OSError, ValueError, TypeError):  # none, or damaged: not recorded
            lost.add(tuple(chunk))
    return found, lost


def restore_chunks_of(image: da.Array) -> list[tuple[int, int]]:
    """The ``(ci, cj)`` of every restore task of :func:`restored_level0`'s ``image``."""
    return [tuple(key[1:]) for name in image.dask.layers if name.startswith(RESTORE_LAYER)
            for key in image.dask.layers[name]]
