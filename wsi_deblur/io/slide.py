"""The :class:`Slide`: a lazy, multi-resolution RGB image read by regions.

Every reader (OpenSlide, tifffile, Pillow) is a *backend* that reads an
in-bounds rectangle of one level; :class:`Slide` adds what all of them share:
out-of-bounds padding, Dask arrays, thumbnails and pickling (handles are
reopened lazily in each process, so a Slide can be sent to Dask workers).

Axes are always ``(y, x, c)`` with ``c = 3`` (RGB, uint8). Coordinates are
pixels of the level being read; level 0 is full resolution.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import dask.array as da
import numpy as np

from wsi_deblur._shared.block_mean import block_mean
from wsi_deblur.errors import SlideError
from wsi_deblur.io.backends import open_backend
from wsi_deblur.io.jpeg_draft import DRAFT_SCALES
from wsi_deblur.tiling.grid import chunk_sizes

BACKGROUND = 255  # brightfield background: out-of-slide pixels read as white


class Backend(Protocol):
    """What a reader must provide; see :mod:`wsi_deblur.io.backends`."""

    name: str
    level_shapes: list[tuple[int, int]]
    mpp: float | None
    properties: dict[str, str]

    def read(self, level: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        """Read an in-bounds region as ``(height, width, 3)`` uint8."""
        ...  # pragma: no cover

    def close(self) -> None: ...  # pragma: no cover


@dataclass(frozen=True)
class SlideSource:
    """How to (re)open a slide: enough to rebuild it in another process."""

    path: str
    backend: str
    mpp_override: float | None = None
    mpp_fallback: float | None = None


_open_lock = threading.Lock()
_open_backends: dict[SlideSource, Backend] = {}


def _backend_for(source: SlideSource) -> Backend:
    """Open ``source`` once per process and keep the handle for later tasks."""
    with _open_lock:
        backend = _open_backends.get(source)
        if backend is None:

            backend = open_backend(source.path, source.backend)
            _open_backends[source] = backend
        return backend


def forget_open_slides() -> None:
    """Close every cached handle of this process (tests, long-lived workers)."""
    with _open_lock:
        for backend in _open_backends.values():
            backend.close()
        _open_backends.clear()


class Slide:
    """A whole-slide image or field, read lazily by regions.

    Use :func:`wsi_deblur.io.open_slide` to make one.

    Attributes
    ----------
    path : str
        The file as given.
    backend_name : str
        ``"tifffile"``, ``"openslide"`` or ``"pillow"``.
    level_shapes : list of (int, int)
        ``(height, width)`` in pixels of each level, level 0 first.
    mpp : float or None
        Micrometres per pixel at level 0 (mean of x and y), ``None`` if unknown.
    """

    def __init__(self, source: SlideSource, backend: Backend | None = None) -> None:
        self.source = source
        self._backend = backend

    # -- pickling: send the recipe, not the handle ---------------------------
    def __getstate__(self) -> dict:
        return {"source": self.source}

    def __setstate__(self, state: dict) -> None:
        self.source = state["source"]
        self._backend = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = _backend_for(self.source)
        return self._backend

    # -- metadata -------------------------------------------------------------
    @property
    def path(self) -> str:
        return self.source.path

    @property
    def stem(self) -> str:
        """File name without its extension (and without ``.ome`` of ``.ome.tif``)."""
        return slide_stem(self.source.path)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def level_shapes(self) -> list[tuple[int, int]]:
        return list(self.backend.level_shapes)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of level 0 in pixels."""
        return self.backend.level_shapes[0]

    @property
    def level_downsamples(self) -> list[float]:
        h0, w0 = self.shape
        return [((h0 / h) + (w0 / w)) / 2 for h, w in self.backend.level_shapes]

    @property
    def mpp(self) -> float | None:
        if self.source.mpp_override is not None:
            return self.source.mpp_override
        return self.backend.mpp if self.backend.mpp is not None else self.source.mpp_fallback

    @property
    def mpp_source(self) -> str:
        """Where :attr:`mpp` comes from: ``"option"`` (given by the caller: forced, or for a file without
        one), ``"file"`` (the metadata) or ``"assumed"`` (neither: the working pixel size, 0.5 um, is assumed).
        """
        if self.source.mpp_override is not None:
            return "option"
        if self.backend.mpp is not None:
            return "file"
        return "option" if self.source.mpp_fallback is not None else "assumed"

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.backend.properties)

    def __repr__(self) -> str:
        h, w = self.shape
        return (f"Slide({self.path!r}, {w}x{h} px, levels={len(self.level_shapes)}, "
                f"mpp={self.mpp}, backend={self.source.backend!r})")

    # -- pixels ---------------------------------------------------------------
    def read_region(self, y: int, x: int, height: int, width: int, *, level: int = 0) -> np.ndarray:
        """Read a rectangle of ``level`` as ``(height, width, 3)`` uint8.

        Parts outside the level are filled with white (255), as a scanner's
        background.
        """
        lh, lw = self.backend.level_shapes[level]
        out = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + height, lh), min(x + width, lw)
        if y1 > y0 and x1 > x0:
            try:
                pixels = self.backend.read(level, y0, x0, y1 - y0, x1 - x0)
            except SlideError:
                raise
            except Exception as exc:  # a corrupt tile deep inside the file
                raise SlideError(self.path, f"cannot read pixels of level {level} at x={x0}, y={y0} "
                                            f"({type(exc).__name__}: {str(exc).strip()[:150]})") from exc
            out[y0 - y:y1 - y, x0 - x:x1 - x] = pixels
        return out

    def read_window(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        """Read ``[y0, y1) x [x0, x1)`` of level 0, mirroring the image outside it.

        For restoration and classification windows at the slide's edge:
        mirrored content, unlike white padding, adds no false edges.
        """
        h, w = self.shape
        iy0, ix0, iy1, ix1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
        inner = self.read_region(iy0, ix0, iy1 - iy0, ix1 - ix0)
        pad = ((iy0 - y0, y1 - iy1), (ix0 - x0, x1 - ix1), (0, 0))
        return np.pad(inner, pad, mode="symmetric") if any(p != (0, 0) for p in pad) else inner

    def to_dask(self, *, level: int = 0, chunks: int = 2048) -> da.Array:
        """The level as a lazy ``(y, x, c)`` Dask array of square chunks."""
        h, w = self.backend.level_shapes[level]
        ychunks = chunk_sizes(h, chunks)
        xchunks = chunk_sizes(w, chunks)
        return da.map_blocks(
            _read_block, self, level, chunks, dtype=np.uint8,
            chunks=(ychunks, xchunks, (3,)), meta=np.empty((0, 0, 0), np.uint8),
        )

    def thumbnail(self, *, max_size: int = 1024) -> tuple[np.ndarray, float]:
        """A small RGB image of the whole slide, read in bounded memory.

        Reads the smallest level that is at least ``max_size`` on its longer
        side, chunk by chunk on the current Dask scheduler, and block-averages
        it down by an integer factor.

        Returns
        -------
        image : ndarray, shape (h, w, 3), uint8
        downsample : float
            Level-0 pixels per thumbnail pixel.
        """
        small, downsample = self.lazy_thumbnail(max_size=max_size)
        return small.compute(), downsample

    def lazy_thumbnail(self, *, max_size: int = 1024) -> tuple[da.Array, float]:
        """:meth:`thumbnail` not computed yet: a Dask array, and its downsample (for one's own compute helper)."""
        h0, w0 = self.shape
        target = max(1, int(np.ceil(max(h0, w0) / max_size)))
        level = 0
        for i, ds in enumerate(self.level_downsamples):
            if ds <= target + 1e-6:
                level = i
        ds_level = self.level_downsamples[level]
        factor = max(1, int(round(target / ds_level)))
        chunk = factor * max(1, 2048 // factor)
        draft = self._draft_scale(level, factor)
        if draft > 1:  # JPEG tiles decoded at 1/draft in the DCT domain, then averaged the rest of the way
            h, w = self.level_shapes[level]
            pixels = da.map_blocks(_read_draft_block, self, level, chunk, draft, dtype=np.uint8,
                                   chunks=tuple(tuple(-(-c // draft) for c in chunk_sizes(n, chunk)) for n in (h, w))
                                   + ((3,),), meta=np.empty((0, 0, 0), np.uint8))
            factor //= draft
        else:
            pixels, draft = self.to_dask(level=level, chunks=chunk), 1
        out_chunks = tuple(tuple(-(-c // factor) for c in cs) for cs in pixels.chunks[:2]) + ((3,),)
        small = pixels.map_blocks(_block_mean, factor, chunks=out_chunks, dtype=np.uint8)
        return small, ds_level * factor * draft

    def _draft_scale(self, level: int, factor: int) -> int:
        """The largest scale (8, 4, 2) dividing ``factor`` at which the level's JPEG tiles decode directly, or 1."""
        draft_tiles = getattr(self.backend, "draft_tiles", None)
        if factor < 2 or draft_tiles is None or draft_tiles(level) is None:
            return 1
        return next((s for s in DRAFT_SCALES if factor % s == 0), 1)

    def close(self) -> None:
        if self._backend is not None and self.source not in _open_backends:
            self._backend.close()
        self._backend = None


def _block_mean(block: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks, from at most 4 x 4 samples per block.

    Blocks are sampled on a regular sub-grid (every ``factor // 4``-th pixel
    when that divides ``factor``): plenty for a thumbnail, and 4-16x faster
    than summing every pixel. The slide's edge is extended by replication.
    """
    if factor == 1:
        return block
    step = max(d for d in range(1, max(factor // 4, 1) + 1) if factor % d == 0)
    return block_mean(block[::step, ::step], factor // step)


def _read_draft_block(slide: Slide, level: int, chunk: int, scale: int, block_info=None) -> np.ndarray:
    """One block of the level at ``1 / scale``, from its JPEG tiles decoded at that scale."""
    (y0, _), (x0, _), _ = block_info[None]["array-location"]
    y, x = y0 * scale, x0 * scale  # block locations are in reduced pixels; chunk edges are multiples of scale
    h, w = slide.level_shapes[level]
    return slide.backend.draft_tiles(level).read(y, x, min(chunk, h - y), min(chunk, w - x), scale)


def _read_block(slide: Slide, level: int, chunk: int, block_info=None) -> np.ndarray:
    (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
    return slide.read_region(y0, x0, y1 - y0, x1 - x0, level=level)


def slide_stem(path: str | Path) -> str:
    """The name a slide's outputs get: ``/a/b/CMU-1.svs`` -> ``CMU-1``; ``x.ome.tif`` -> ``x``; ``.x.svs`` -> ``x``.

    Leading dots are dropped: outputs named ``.x.qc.json`` would be hidden
    files, and names starting with a dot are the staging folder's.
    """
    name = Path(path).name.lstrip(".")
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem if "." in name else name
