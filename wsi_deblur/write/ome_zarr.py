"""Pyramidal OME-Zarr (NGFF 0.4 on Zarr v2 by default, 0.5 on Zarr v3 as an option).

Conventions (see DESIGN.md §3): RGB uint8 with axes ``c, y, x``; one ``scale``
per level in micrometres, then a ``translation`` that puts each pixel's centre
where the level-0 pixels it averages are; an ``omero`` block rendering R/G/B;
Blosc (zstd) or zlib compression, which QuPath reads. Level 0 is written by
regions from a Dask array whose chunks are multiples of the store's chunks;
every further level is computed from the *stored* level above it, so nothing
ever holds a whole level.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr

from wsi_deblur._shared.block_mean import block_mean
from wsi_deblur.blur.classes import LABEL_COLORS, LABEL_VALUES
from wsi_deblur.write.checkpoints import Checkpoints
from wsi_deblur.write.location import output_path, zarr_store
from wsi_deblur.write.ngff_format import COMPRESSIONS, FormatV04, ngff_format

CHANNEL_COLORS = (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))


def pyramid_shapes(shape: tuple[int, int], *, min_size: int = 1024) -> list[tuple[int, int]]:
    """``(height, width)`` of each level, halving until the long side <= ``min_size``."""
    shapes = [tuple(shape)]
    while max(shapes[-1]) > min_size:
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes  # type: ignore[return-value]


def _axes(with_channel: bool) -> list[dict]:
    space = [{"name": "y", "type": "space", "unit": "micrometer"},
             {"name": "x", "type": "space", "unit": "micrometer"}]
    return ([{"name": "c", "type": "channel"}] if with_channel else []) + space


def _transforms(mpp: float, factor: float, with_channel: bool) -> list[dict]:
    scale = [mpp * factor, mpp * factor]
    shift = [(factor - 1) / 2 * mpp] * 2
    lead = [1.0] if with_channel else []
    out = [{"type": "scale", "scale": lead + scale}]
    if factor != 1:
        out.append({"type": "translation", "translation": ([0.0] if with_channel else []) + shift})
    return out


def _multiscales(name: str, n_levels: int, mpp: float, fmt: FormatV04, *, with_channel: bool = True,
                 base_factor: float = 1.0, method: str = "mean") -> dict:
    return fmt.versioned({
        "name": name,
        "axes": _axes(with_channel),
        "datasets": [{"path": str(k), "coordinateTransformations": _transforms(mpp, base_factor * 2 ** k, with_channel)}
                     for k in range(n_levels)],
        "type": method,
    })


def _omero(name: str) -> dict:
    return {
        "name": name,
        "channels": [{"label": label, "color": color, "active": True, "coefficient": 1.0, "family": "linear",
                      "inverted": False, "window": {"start": 0, "end": 255, "min": 0, "max": 255}}
                     for label, color in CHANNEL_COLORS],
        "rdefs": {"model": "color", "defaultT": 0, "defaultZ": 0},
    }


@dataclass(frozen=True)
class ZarrLayout:
    """How an OME-Zarr pyramid is stored.

    Attributes
    ----------
    version : {"0.4", "0.5"}
        NGFF version: 0.4 on Zarr v2 (QuPath, Fiji) or 0.5 on Zarr v3.
    compression : {"blosc", "zlib", "none"}
    chunk : int
        Chunk edge in pixels (all three channels in one chunk).
    shard : int, optional
        Shard edge in pixels (0.5 only; a multiple of ``chunk``).
    """

    version: str = "0.4"
    compression: str = "blosc"
    chunk: int = 512
    shard: int | None = None


def create_ome_zarr(path: str | Path, *, shape: tuple[int, int], mpp: float, name: str,
                    layout: ZarrLayout = ZarrLayout(), min_size: int = 1024) -> list[zarr.Array]:
    """Create an empty RGB image pyramid and return its level arrays ``(c, y, x)``.

    Parameters
    ----------
    path : str or Path
        Directory of the new store (``*.ome.zarr``), local or an fsspec URL;
        must not exist.
    shape : (int, int)
        Level-0 ``(height, width)`` in pixels.
    mpp : float
        Micrometres per pixel at level 0.
    layout : ZarrLayout
        NGFF version, compression, chunk and shard.
    min_size : int
        Smallest level's long side is at most this many pixels.
    """
    version, compression, chunk, shard = layout.version, layout.compression, layout.chunk, layout.shard
    fmt = ngff_format(version)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if shard is not None and (not fmt.shards or shard % chunk):
        raise ValueError("shards need NGFF 0.5 and a shard size that is a multiple of the chunk size")
    shapes = pyramid_shapes(shape, min_size=min_size)
    group = zarr.open_group(zarr_store(output_path(path)), mode="w-", zarr_format=fmt.zarr_format)
    fmt.set_attrs(group, {"multiscales": [_multiscales(name, len(shapes), mpp, fmt)], "omero": _omero(name)})
    return [fmt.create_array(group, str(k), (3, h, w), (3, chunk, chunk), compression=compression,
                             dimension_names=["c", "y", "x"], shards=(3, shard, shard) if shard else None)
            for k, (h, w) in enumerate(shapes)]


def store_level0(image: da.Array, level0: zarr.Array, *, checkpoints: Checkpoints | None = None,
                 compute: bool = True, **compute_kwargs):
    """Write a ``(y, x, c)`` Dask array into the ``(c, y, x)`` level-0 array.

    One task per Dask chunk writes its own region; chunks must be multiples
    of the store's.

    Parameters
    ----------
    image : dask.array.Array, shape (y, x, 3), uint8
    level0 : zarr.Array, shape (3, y, x)
    checkpoints : Checkpoints, optional
        Regions marked done there (``level0-<row>-<col>``, in Dask chunks) are
        skipped, and each region written is marked: a run that was killed
        writes only what it had not finished.
    compute : bool
        Write now (returns the number of regions written), or return a
        ``Delayed`` that does.
    """
    zy, zx = level0.chunks[1], level0.chunks[2]
    if any(c % zy for c in image.chunks[0][:-1]) or any(c % zx for c in image.chunks[1][:-1]):
        raise ValueError(f"Dask chunks {image.chunksize[:2]} are not multiples of the Zarr chunk {(zy, zx)}")
    if image.shape[:2] != level0.shape[1:]:
        raise ValueError(f"image of {image.shape[:2]} px does not fit level 0 of {level0.shape[1:]} px")
    blocks = image.to_delayed(optimize_graph=False)
    y_starts = np.cumsum((0,) + image.chunks[0][:-1])
    x_starts = np.cumsum((0,) + image.chunks[1][:-1])
    writes = []
    for ci, y0 in enumerate(y_starts):
        for cj, x0 in enumerate(x_starts):
            name = f"level0-{ci}-{cj}"
            if checkpoints is not None and checkpoints.done(name):
                continue
            writes.append(dask.delayed(_write_region, pure=False)(blocks[ci, cj, 0], level0, int(y0), int(x0),
                                                                   checkpoints, name))
    total = dask.delayed(_count, pure=False)(writes)
    return total.compute(**compute_kwargs) if compute else total


def _write_region(block: np.ndarray, target: zarr.Array, y0: int, x0: int, checkpoints: Checkpoints | None,
                  name: str) -> int:
    h, w = block.shape[:2]
    target[:, y0:y0 + h, x0:x0 + w] = np.moveaxis(block, -1, 0)
    if checkpoints is not None:
        checkpoints.mark(name)
    return 1


def _count(written: list[int]) -> int:
    return sum(written)


def _halve(block: np.ndarray) -> np.ndarray:
    """2x2 mean of a ``(c, y, x)`` uint8 block, the odd edge replicated, rounded half up."""
    return block_mean(block, 2, axis=1)


def downsample_level(source: zarr.Array, target: zarr.Array, *, chunk: int = 2048, **compute_kwargs):
    """Fill ``target`` with the 2x2 mean of the stored ``source``, by regions.

    Reads ``chunk``-px regions and writes ``chunk / 2``-px regions; ``chunk``
    is rounded up to a multiple of twice the target's chunk, so that no two
    tasks ever write into the same stored chunk.
    """
    step = 2 * max(target.chunks[1:])
    chunk = -(-chunk // step) * step
    src = da.from_zarr(source, chunks=(3, chunk, chunk))
    out_chunks = (src.chunks[0], tuple(-(-c // 2) for c in src.chunks[1]), tuple(-(-c // 2) for c in src.chunks[2]))
    small = src.map_blocks(_halve, chunks=out_chunks, dtype=np.uint8)
    return da.store(small, target, lock=False, **compute_kwargs)


def write_label_image(path: str | Path, labels: np.ndarray, *, mpp: float, tile_size: int, name: str = "blur",
                      n_levels: int = 1, version: str = "0.4",
                      classes: dict[str, int] = LABEL_VALUES) -> None:
    """Add a per-tile label image under ``labels/<name>`` of an OME-Zarr image.

    Parameters
    ----------
    labels : ndarray, shape (tile rows, tile columns), uint8
        Label value per tile (see :data:`wsi_deblur.blurmap.LABEL_VALUES`).
    mpp : float
        Micrometres per level-0 pixel; each label pixel is ``tile_size`` of them.
    n_levels : int
        Levels of the label pyramid: as many as the image has (NGFF 0.5 asks it).
    """
    fmt = ngff_format(version)
    root = zarr.open_group(zarr_store(output_path(path)), mode="r+")
    group = root.require_group("labels")
    fmt.set_attrs(group, {"labels": [name]})
    lab = group.create_group(name, overwrite=True)  # a run that resumes may find a half-written one
    shapes = [labels.shape]
    while len(shapes) < n_levels:
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    ms = _multiscales(name, len(shapes), mpp, fmt, with_channel=True, base_factor=tile_size, method="mode")
    image_label = fmt.versioned({
        "colors": [{"label-value": v, "rgba": list(LABEL_COLORS[v])} for v in sorted(classes.values())],
        "properties": [{"label-value": v, "class": k} for k, v in sorted(classes.items(), key=lambda kv: kv[1])],
        "source": {"image": "../../"},
    })
    fmt.set_attrs(lab, {"multiscales": [ms], "image-label": image_label})
    level = labels[None].astype(np.uint8)
    for k, (h, w) in enumerate(shapes):
        arr = fmt.create_array(lab, str(k), (1, h, w), (1, min(h, 1024), min(w, 1024)), compression="blosc",
                               dimension_names=["c", "y", "x"])
        arr[:] = level
        level = label_mode_2x2(level)


def label_mode_2x2(labels: np.ndarray) -> np.ndarray:
    """The most frequent label of each 2 x 2 block of ``(c, y, x)`` labels (ties: the highest), odd edge replicated.

    Labels are categories, never averaged; a zoomed-out pixel covers its whole
    block, so the pyramid's translations (those of a 2 x 2 mean) put it there.

    Examples
    --------
    >>> label_mode_2x2(np.array([[[1, 1, 2], [3, 1, 2]]], np.uint8))
    array([[[1, 2]]], dtype=uint8)
    """
    _, h, w = labels.shape
    padded = np.pad(labels, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    block = np.stack([padded[:, i::2, j::2] for i in (0, 1) for j in (0, 1)])  # (4, c, h/2, w/2)
    counts = (block[:, None] == block[None]).sum(axis=1)
    best = np.argmax(counts.astype(np.int32) * 256 + block, axis=0)
    return np.take_along_axis(block, best[None], axis=0)[0]


def levels_of(path: str | Path, *, mode: str = "r") -> list[zarr.Array]:
    """The image arrays of an OME-Zarr written here, full resolution first.

    ``mode="r+"`` opens them for writing (a run that resumes).
    """
    group = zarr.open_group(zarr_store(output_path(path)), mode=mode)
    attrs = dict(group.attrs)
    ms = attrs.get("ome", attrs)["multiscales"][0]
    return [group[d["path"]] for d in ms["datasets"]]

