"""Readers behind :class:`~wsi_deblur.io.slide.Slide`, one class per library.

- :class:`TiffBackend` reads TIFF-family slides (Aperio SVS, generic tiled
  TIFF, OME-TIFF, plain TIFF) through tifffile's Zarr store: the fast path.
- :class:`OpenSlideBackend` reads every format OpenSlide knows (Hamamatsu,
  MIRAX, Philips, Leica, Ventana, DICOM, ...): the fallback.
- :class:`PillowBackend` reads plain camera images (PNG, JPEG, BMP) whole;
  they are small fields, not gigapixel slides.
- :class:`OmeZarrBackend` reads OME-Zarr (NGFF 0.4 and 0.5) images, such as
  the restored pyramids ``wsi-deblur run`` writes.

Each converts its pixels to 8-bit RGB (RGBA is composited on white, grayscale
is replicated) or refuses them with a :class:`~wsi_deblur.errors.SlideError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from wsi_deblur.errors import SlideError

#: OpenSlide vendors whose pixels tifffile reproduces exactly (tested on SVS).
FAST_PATH_VENDORS = ("aperio", "generic-tiff")

# A TIFF level is read through Zarr (tifffile's ``aszarr``), which decodes a region's tiles as tasks of its own
# event loop. When one tile cannot be decoded (a corrupt or zeroed tile) the read fails, and we say so in one line
# (``Slide.read_region``), but the tiles not yet started are left to that loop: at exit Python warns that each
# was never awaited (150 lines after the error, the hostile probe's item 16). They did nothing; say nothing.
warnings.filterwarnings("ignore", message=r"coroutine 'concurrent_map\.<locals>\.run' was never awaited",
                        category=RuntimeWarning)

#: Largest plain image (PNG, JPEG, ...) decoded whole: 16384 x 16384 px, 0.8 GB as RGB. Checked on the
#: header, before decoding: a 150 KB PNG can declare 30000 x 30000 px.
MAX_PLAIN_IMAGE_PIXELS = 16384 * 16384
#: Largest level 0 of a slide without reduced levels: its thumbnail and tissue mask read all of it.
MAX_UNPYRAMIDED_PIXELS = 4 * 2 ** 30


def _mpx(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f} Mpx"


def _not_8bit(kind: object) -> str:
    return f"{kind} pixels are not supported; wsi-deblur reads 8-bit brightfield RGB (convert the image to 8-bit first)"


def _not_rgb(channels: int) -> str:
    return f"{channels} channels are not supported; wsi-deblur reads RGB brightfield images"


def to_rgb8(pixels: np.ndarray, path: str) -> np.ndarray:
    """Convert ``(y, x)`` or ``(y, x, c)`` pixels to ``(y, x, 3)`` uint8 RGB.

    RGBA is composited over white, grayscale is replicated to three channels;
    anything else (16-bit, float, more channels) raises :class:`SlideError`.
    """
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype != np.uint8:
        raise SlideError(path, _not_8bit(pixels.dtype))
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    channels = pixels.shape[2]
    if channels == 3:
        return pixels
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if channels == 2:  # grayscale + alpha
        pixels = np.concatenate([np.repeat(pixels[:, :, :1], 3, axis=2), pixels[:, :, 1:]], axis=2)
        channels = 4
    if channels == 4:
        rgb = pixels[:, :, :3].astype(np.uint16)
        alpha = pixels[:, :, 3:4].astype(np.uint16)
        return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    raise SlideError(path, _not_rgb(channels))


class TiffBackend:
    """TIFF-family slides read tile by tile through tifffile's Zarr store."""

    name = "tifffile"

    def __init__(self, path: str) -> None:
        import tifffile
        import zarr

        self.path = path
        try:
            with _quiet_tifffile():
                self._tif = tifffile.TiffFile(path)
                series = self._tif.series[0]
        except Exception as exc:  # tifffile raises many kinds
            cut = _tiff_truncation(path)
            raise SlideError(path, cut or f"not a readable TIFF ({_short(exc)})") from exc
        try:
            self._axes = series.axes
            if series.dtype != np.uint8:
                raise SlideError(path, _not_8bit(series.dtype))
            self._check_axes(series)
            _check_complete(self._tif, path)
            self._levels = [zarr.open(series.aszarr(level=i), mode="r") for i in range(len(series.levels))]
        except SlideError:
            self._tif.close()
            raise
        except Exception as exc:
            self._tif.close()
            raise SlideError(path, f"cannot read TIFF image data ({_short(exc)})") from exc
        self.level_shapes = [self._yx(level.shape) for level in self._levels]
        self._series = series
        self._drafts: dict[int, object] = {}
        vendor = _openslide_vendor(path)
        self.properties = {"tiff.series": series.kind or "generic",
                           # an OME-TIFF (ours among them) is one, whatever OpenSlide's generic reader calls it
                           "openslide.vendor": "ome-tiff" if self._tif.is_ome and vendor in (None, "generic-tiff")
                           else vendor or "tiff"}
        self.mpp = _tiff_mpp(self._tif)

    def _check_axes(self, series) -> None:
        axes = series.axes
        if axes not in ("YXS", "YX", "CYX", "SYX"):
            raise SlideError(self.path, f"TIFF axes {axes!r} are not a 2-D RGB image")
        if axes in ("CYX", "SYX") and series.shape[0] not in (3, 4):
            raise SlideError(self.path, _not_rgb(series.shape[0]))

    def _yx(self, shape: tuple[int, ...]) -> tuple[int, int]:
        if self._axes in ("CYX", "SYX"):
            return int(shape[1]), int(shape[2])
        return int(shape[0]), int(shape[1])

    def read(self, level: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        arr = self._levels[level]
        if self._axes in ("CYX", "SYX"):
            pixels = np.moveaxis(arr[:, y:y + height, x:x + width], 0, -1)
        else:
            pixels = arr[y:y + height, x:x + width]
        return to_rgb8(np.asarray(pixels), self.path)

    def draft_tiles(self, level: int):
        """The level's JPEG tiles decodable at 1/2-1/8 scale (:class:`~wsi_deblur.io.jpeg_draft.DraftTiles`), or
        None (not JPEG-tiled, or a reduced decode that would not be faithful). Looked at once per level.
        """
        if level not in self._drafts:
            from wsi_deblur.io.jpeg_draft import DraftTiles

            pages = self._series.levels[level].pages
            single = self._axes == "YXS" and len(pages) == 1 and pages[0] is not None
            self._drafts[level] = DraftTiles.of(self.path, pages[0].keyframe) if single else None
        return self._drafts[level]

    def close(self) -> None:
        for draft in self._drafts.values():
            if draft is not None:
                draft.close()
        self._tif.close()


class OmeZarrBackend:
    """OME-Zarr (NGFF 0.4 or 0.5) multiscale images: axes ``c, y, x`` (or with ``t`` and ``z`` of size 1), uint8."""

    name = "ome-zarr"

    def __init__(self, path: str) -> None:
        import zarr

        self.path = path
        try:
            group = zarr.open_group(path, mode="r")
            attrs = dict(group.attrs)
            meta = attrs.get("ome", attrs)
            multiscale = meta["multiscales"][0]
            self._levels = [group[d["path"]] for d in multiscale["datasets"]]
        except (KeyError, IndexError, TypeError) as exc:
            raise SlideError(path, "not an OME-Zarr image (no multiscales in its attributes)") from exc
        except Exception as exc:
            raise SlideError(path, f"not a readable Zarr group ({_short(exc)})") from exc
        axes = [a["name"] if isinstance(a, dict) else a for a in multiscale.get("axes", ["c", "y", "x"])]
        _check_ome_zarr_rgb(path, axes, self._levels[0])
        _check_ome_zarr_complete(path, self._levels[0], axes)
        self._axes = axes
        self.level_shapes = [(int(a.shape[axes.index("y")]), int(a.shape[axes.index("x")])) for a in self._levels]
        self.properties = {"openslide.vendor": "ome-zarr", "ome-zarr.version": str(meta.get("version") or
                                                                                  multiscale.get("version", ""))}
        self.mpp = _ngff_mpp(multiscale, axes)

    def read(self, level: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        arr = self._levels[level]
        index = tuple(slice(y, y + height) if a == "y" else slice(x, x + width) if a == "x" else
                      slice(None) if a == "c" else 0 for a in self._axes)
        kept = [a for a in self._axes if a in ("c", "y", "x")]
        pixels = np.asarray(arr[index]).transpose([kept.index(a) for a in ("y", "x", "c")])
        return to_rgb8(pixels, self.path)

    def close(self) -> None:
        pass


#: Most chunks an OME-Zarr level may have (a 200k x 200k slide in 64-px chunks is 10 million).
MAX_ZARR_CHUNKS = 10_000_000
#: Smallest chunk edge (px) of an OME-Zarr level larger than that: 1-px chunks make a 1 Mpx image a million
#: reads (minutes of qc for a field that decodes in milliseconds).
MIN_ZARR_CHUNK_EDGE = 16


def _check_ome_zarr_complete(path: str, base, axes: list[str]) -> None:
    """Refuse a level 0 with chunks missing inside its extent (an interrupted copy reads as fill values: a verdict
    on black holes), or with chunks so small or so many that reading it would take hours.
    """
    expected = int(base.nchunks)
    (cy, sy), (cx, sx) = ((base.chunks[axes.index(a)], base.shape[axes.index(a)]) for a in ("y", "x"))
    if (cy < MIN_ZARR_CHUNK_EDGE and sy > cy) or (cx < MIN_ZARR_CHUNK_EDGE and sx > cx):
        raise SlideError(path, f"level 0 is stored in chunks of {cy} x {cx} px ({expected} of them): far too "
                               "many reads; rewrite it with chunks of 256 px or more")
    if expected > MAX_ZARR_CHUNKS:
        raise SlideError(path, f"level 0 is stored in {expected} chunks of {base.chunks}; rewrite it with chunks "
                               "of 256 px or more")
    present = int(base.nchunks_initialized)
    if present < expected:
        raise SlideError(path, f"level 0 holds {present} of its {expected} chunks: a truncated or interrupted "
                               "copy (copy it again)")


def _check_ome_zarr_rgb(path: str, axes: list[str], base) -> None:
    """Refuse (:class:`SlideError`) an OME-Zarr level that is not one 8-bit RGB(A) plane with axes ``c, y, x``."""
    if not {"c", "y", "x"} <= set(axes) or set(axes) - {"t", "c", "z", "y", "x"}:
        raise SlideError(path, f"OME-Zarr axes {axes} are not an RGB image (c, y, x)")
    if base.dtype != np.uint8:
        raise SlideError(path, _not_8bit(base.dtype))
    extra = [base.shape[axes.index(a)] for a in ("t", "z") if a in axes]
    if any(n != 1 for n in extra):
        raise SlideError(path, "OME-Zarr with more than one time point or z plane; give a 2-D RGB image")
    if base.shape[axes.index("c")] not in (3, 4):
        raise SlideError(path, _not_rgb(base.shape[axes.index("c")]))


def _ngff_mpp(multiscale: dict, axes: list[str]) -> float | None:
    """Micrometres per pixel of the first dataset's ``scale`` along y, when its axis unit says micrometres."""
    units = {a["name"]: a.get("unit") for a in multiscale.get("axes", []) if isinstance(a, dict)}
    if units.get("y") not in ("micrometer", "micron"):
        return None
    for t in multiscale["datasets"][0].get("coordinateTransformations", []):
        if t.get("type") == "scale":
            value = float(t["scale"][axes.index("y")])
            return value if value > 0 else None
    return None


def is_ome_zarr(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding a Zarr group (v2 ``.zattrs`` / ``.zgroup`` or v3 ``zarr.json``)."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in (".zattrs", ".zgroup", "zarr.json"))


@contextlib.contextmanager
def _quiet_tifffile():
    """tifffile logs each malformed tag; we report one line per file instead."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_complete(tif, path: str) -> None:
    """Refuse a truncated file: every tile/strip must lie inside the file."""
    size = os.path.getsize(path)
    for page in tif.pages:
        offsets = getattr(page, "dataoffsets", ())
        counts = getattr(page, "databytecounts", ())
        if len(offsets) and max(o + c for o, c in zip(offsets, counts)) > size:
            raise SlideError(path, f"file is truncated (image data runs past its end at {size} bytes)")


def _tiff_truncation(path: str) -> str | None:
    """Why a TIFF is cut short (its first image directory lies past its end), or None.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> cut = pathlib.Path(tempfile.mkdtemp()) / "cut.tif"
    >>> _ = cut.write_bytes(b"II*" + bytes(1) + (5000).to_bytes(4, "little") + bytes(100))
    >>> _tiff_truncation(str(cut))
    'truncated: its first image directory is at byte 5000 but the file ends at byte 108 (copy it again)'
    """
    try:
        with open(path, "rb") as f:
            head = f.read(16)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    order = {b"II": "little", b"MM": "big"}.get(head[:2])
    if order is None or len(head) < 8:
        return None
    version = int.from_bytes(head[2:4], order)
    offset = int.from_bytes(head[4:8], order) if version == 42 else (
        int.from_bytes(head[8:16], order) if version == 43 and len(head) == 16 else None)
    if offset is None or offset < size:
        return None
    return f"truncated: its first image directory is at byte {offset} but the file ends at byte {size} (copy it again)"


def _tiff_mpp(tif) -> float | None:
    """Micrometres per pixel from OME-XML, an Aperio description or resolution tags."""
    if tif.is_ome:
        found = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', tif.ome_metadata or "")
        unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', tif.ome_metadata or "")
        if found:
            value = float(found.group(1))
            scale = {"nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6}.get(unit.group(1) if unit else "µm", 1.0)
            return value * scale
    page = tif.pages.first
    description = page.description or ""
    found = re.search(r"MPP\s*=\s*([0-9.]+)", description)
    if found:
        return float(found.group(1))
    tags = page.tags
    if "XResolution" in tags and "ResolutionUnit" in tags:
        num, den = tags["XResolution"].value
        unit = int(tags["ResolutionUnit"].value)
        per_unit = num / den if den else 0
        um_per_unit = {2: 25400.0, 3: 10000.0}.get(unit)
        if per_unit > 0 and um_per_unit:
            mpp = um_per_unit / per_unit
            if 0.05 <= mpp <= 50:  # a microscope, not a 72-dpi screen default
                return mpp
    return None


class OpenSlideBackend:
    """Any format OpenSlide reads, through ``read_region`` (RGBA on white)."""

    name = "openslide"

    def __init__(self, path: str) -> None:
        import openslide

        self.path = path
        try:
            self._slide = openslide.OpenSlide(path)
            h, w = self._slide.dimensions[1], self._slide.dimensions[0]
            # Read the far corner now: a truncated file fails here, not mid-run.
            self._slide.read_region((max(w - 1, 0), max(h - 1, 0)), 0, (1, 1))
        except openslide.OpenSlideError as exc:
            raise SlideError(path, f"OpenSlide cannot read it ({_short(exc)})") from exc
        self.level_shapes = [(h, w) for (w, h) in self._slide.level_dimensions]
        self.properties = dict(self._slide.properties)
        self.mpp = _openslide_mpp(self.properties)

    def read(self, level: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        ds = self._slide.level_downsamples[level]
        region = self._slide.read_region((int(round(x * ds)), int(round(y * ds))), level, (width, height))
        return to_rgb8(np.asarray(region), self.path)

    def close(self) -> None:
        self._slide.close()


def _openslide_mpp(properties: dict[str, str]) -> float | None:
    try:
        mx = float(properties["openslide.mpp-x"])
        my = float(properties.get("openslide.mpp-y", mx))
        return (mx + my) / 2
    except (KeyError, ValueError):
        return None


def _libpng_pixels(path: str) -> np.ndarray | None:
    """An 8-bit RGB(A) PNG decoded by libpng (imagecodecs; about twice Pillow's speed), else None."""
    import imagecodecs

    with open(path, "rb") as f:
        pixels = imagecodecs.png_decode(f.read())
    if pixels.dtype != np.uint8:  # 48- or 64-bit: Pillow would silently keep 8 of the 16 bits
        raise SlideError(path, _not_8bit(pixels.dtype))
    return pixels if pixels.ndim == 3 else None


def _decoded(path: str, image):
    """The pixels of an opened Pillow image (libpng's for an RGB(A) PNG), and the image in a mode we read."""
    pixels = _libpng_pixels(path) if image.format == "PNG" and image.mode in ("RGB", "RGBA") else None
    if pixels is None:
        image.load()
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise SlideError(path, _not_8bit(image.mode))
    if image.mode == "P":
        image = image.convert("RGBA")
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGB")
    return (np.asarray(image) if pixels is None else pixels), image


def _check_jpeg_holds_its_size(path: str, image_format: str | None, width: int, height: int) -> None:
    """Refuse a JPEG too small for the size its header claims: libjpeg fills what is missing with grey, silently.

    Every 8 x 8 block of a JPEG costs at least a bit (its DC difference and end-of-block codes); a file with
    fewer bytes than one bit per block cannot hold its picture (a 631-byte file claiming 16000 x 16000 px was
    judged, on the filler, blurred).
    """
    if image_format != "JPEG":
        return
    blocks = -(-width // 8) * -(-height // 8)
    size = os.path.getsize(path)
    if size * 8 < blocks:
        raise SlideError(path, f"a JPEG of {size} bytes cannot hold the {width} x {height} px its header claims "
                               "(truncated or damaged)")


class PillowBackend:
    """A plain RGB image (PNG, JPEG, BMP, ...) held whole: a camera field."""

    name = "pillow"

    def __init__(self, path: str) -> None:
        from PIL import Image

        self.path = path
        Image.MAX_IMAGE_PIXELS = 2 * MAX_PLAIN_IMAGE_PIXELS  # Pillow's own bomb check; ours comes first
        try:
            with warnings.catch_warnings():  # Pillow warns of sizes our own check below refuses
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)
            with image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > MAX_PLAIN_IMAGE_PIXELS:
                    raise SlideError(path, f"a plain image of {width} x {height} px ({_mpx(width * height)}) is more "
                                           f"than the {_mpx(MAX_PLAIN_IMAGE_PIXELS)} read whole; save it as a "
                                           "tiled, pyramidal TIFF")
                _check_jpeg_holds_its_size(path, image.format, width, height)
                pixels, image = _decoded(path, image)
                dpi = image.info.get("dpi")
        except SlideError:
            raise
        except Image.DecompressionBombError as exc:
            raise SlideError(path, "image is too large for a plain image reader; save it as a tiled TIFF") from exc
        except Image.UnidentifiedImageError as exc:
            raise SlideError(path, "not a slide or image that OpenSlide, tifffile or Pillow can read") from exc
        except Exception as exc:
            raise SlideError(path, f"not a readable image ({_short(exc)})") from exc
        self._pixels = to_rgb8(pixels, path)
        self.level_shapes = [self._pixels.shape[:2]]
        self.properties = {}
        self.mpp = None
        if dpi and dpi[0] and 25400.0 / float(dpi[0]) < 50:
            self.mpp = 25400.0 / float(dpi[0])

    def read(self, level: int, y: int, x: int, height: int, width: int) -> np.ndarray:
        return self._pixels[y:y + height, x:x + width]

    def close(self) -> None:
        pass


def open_backend(path: str, backend: str = "auto"):
    """Open ``path`` with the named backend, or pick one (``"auto"``).

    ``auto`` uses tifffile for TIFF-family slides whose pixels it reproduces
    (Aperio, generic tiled TIFF, OME-TIFF, plain TIFF), OpenSlide for other
    slide formats, Pillow for plain images, and the OME-Zarr reader for a
    folder holding a Zarr group.
    """
    p = Path(path)
    if not p.exists():
        raise SlideError(path, "no such file")
    if backend in ("auto", "ome-zarr") and is_ome_zarr(p):
        return OmeZarrBackend(path)
    if backend == "ome-zarr":
        raise SlideError(path, "not an OME-Zarr folder (no .zattrs, .zgroup or zarr.json)")
    if p.is_dir():
        raise SlideError(path, "is a directory, not a slide file (nor an OME-Zarr folder)")
    if p.stat().st_size == 0:
        raise SlideError(path, "file is empty")
    if backend == "tifffile":
        return _checked_size(TiffBackend(path), path)
    if backend == "openslide":
        return _checked_size(OpenSlideBackend(path), path)
    if backend == "pillow":
        return PillowBackend(path)
    if backend != "auto":
        raise ValueError(f"unknown backend {backend!r}; use auto, tifffile, openslide, pillow or ome-zarr")

    return _checked_size(_auto_backend(path), path)


def _auto_backend(path: str):
    vendor = _openslide_vendor(path)
    if vendor is not None and vendor not in FAST_PATH_VENDORS:
        return OpenSlideBackend(path)
    if _looks_like_tiff(path):
        return TiffBackend(path)
    if vendor is not None:
        return OpenSlideBackend(path)
    return PillowBackend(path)


def _checked_size(handle, path: str):
    """``handle``, unless its level 0 is too large to read whole for want of reduced levels (then closed)."""
    h, w = handle.level_shapes[0]
    if len(handle.level_shapes) == 1 and h * w > MAX_UNPYRAMIDED_PIXELS:
        handle.close()
        raise SlideError(path, f"level 0 is {w} x {h} px ({_mpx(h * w)}) with no reduced levels: its thumbnail "
                               f"alone would read all of it; save it with a pyramid (e.g. `vips tiffsave --pyramid "
                               "--tile`)")
    return handle


def _openslide_vendor(path: str) -> str | None:
    try:
        import openslide

        return openslide.OpenSlide.detect_format(path)
    except Exception:
        return None


def _looks_like_tiff(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] in (b"II", b"MM") and head[2:4] in (b"*\x00", b"\x00*", b"+\x00", b"\x00+")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]

