"""Synthetic slides with known blur, for the demo, tests and benchmarks.

Tissue texture comes from scikit-image's immunohistochemistry image (a real
IHC field, shipped with scikit-image), mirrored to cover any size without
seams. Tissue lies on white glass inside a smooth blob-shaped outline, and
chosen rectangles are blurred with a known PSF. The slide is written as a tiled
OME-TIFF one tile at a time, so a slide of any size costs the same memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from wsi_deblur._shared.block_mean import block_mean
from wsi_deblur.blur.psf import psf_for


@dataclass(frozen=True)
class BlurRegion:
    """A rectangle ``[y0, y1) x [x0, x1)`` of level 0 blurred with a known PSF."""

    y0: int
    x0: int
    y1: int
    x1: int
    label: str = "defocus"
    defocus_sigma_px: float = 0.0
    motion_length_px: float = 0.0
    motion_angle_deg: float = 0.0

    def psf(self) -> np.ndarray:
        return psf_for(self.label, defocus_sigma_px=self.defocus_sigma_px, motion_length_px=self.motion_length_px,
                       motion_angle_deg=self.motion_angle_deg)


@lru_cache(maxsize=1)
def _texture() -> np.ndarray:
    from skimage.data import immunohistochemistry

    return immunohistochemistry().astype(np.float32)


def texture_region(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    """Tissue texture over any rectangle: the IHC image mirrored periodically."""
    tex = _texture()
    n = tex.shape[0]
    ys = np.arange(y0, y1) % (2 * n)
    xs = np.arange(x0, x1) % (2 * n)
    ys = np.where(ys < n, ys, 2 * n - 1 - ys)
    xs = np.where(xs < n, xs, 2 * n - 1 - xs)
    return tex[ys][:, xs]


def _outline(shape: tuple[int, int], seed: int, cell: int = 256) -> np.ndarray:
    """A smooth tissue outline on a coarse grid (one value per ``cell`` px)."""
    rng = np.random.default_rng(seed)
    gh, gw = -(-shape[0] // cell) + 2, -(-shape[1] // cell) + 2
    field = ndi.gaussian_filter(rng.normal(size=(gh, gw)), 1.5)
    yy, xx = np.mgrid[0:gh, 0:gw]
    centre = 1.0 - (((yy - gh / 2) / (gh / 2)) ** 2 + ((xx - gw / 2) / (gw / 2)) ** 2)
    return (centre + 2.0 * field).astype(np.float32)


def tissue_alpha(y0: int, x0: int, y1: int, x1: int, coarse: np.ndarray, cell: int = 256) -> np.ndarray:
    """Tissue opacity in [0, 1] over a rectangle, from the coarse outline."""
    ys = (np.arange(y0, y1) + 0.5) / cell + 0.5
    xs = (np.arange(x0, x1) + 0.5) / cell + 0.5
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    value = ndi.map_coordinates(coarse, [yy, xx], order=1, mode="nearest")
    return np.clip((value - 0.15) * 8.0, 0.0, 1.0)


def pixel_noise(y0: int, x0: int, y1: int, x1: int, seed: int, *, std: float) -> np.ndarray:
    """Sensor-like noise that depends only on each pixel's position and ``seed``.

    Uniform noise of standard deviation ``std`` from an integer hash, so any
    tiling of the slide renders the same pixels.
    """
    y = np.arange(y0, y1, dtype=np.uint64)[:, None, None]
    x = np.arange(x0, x1, dtype=np.uint64)[None, :, None]
    c = np.arange(3, dtype=np.uint64)[None, None, :]
    h = (y * np.uint64(0x9E3779B1) + x * np.uint64(0x85EBCA77) + c * np.uint64(0xC2B2AE3D)
         + np.uint64(seed * 0x27D4EB2F + 1)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(12)
    u = h.astype(np.float64) / 2.0**32 - 0.5
    return (u * std * np.sqrt(12.0)).astype(np.float32)


class SyntheticSlide:
    """A procedural slide: any rectangle of it can be rendered on demand.

    Parameters
    ----------
    shape : (int, int)
        Level-0 ``(height, width)`` in pixels.
    regions : sequence of BlurRegion
        Blurred rectangles (the rest is in focus).
    tissue : bool
        Put tissue inside a blob outline on white glass; otherwise tissue
        everywhere.
    seed : int
        Outline and noise seed.
    """

    def __init__(self, shape: tuple[int, int], regions: Sequence[BlurRegion] = (), *, tissue: bool = True,
                 seed: int = 0) -> None:
        self.shape = tuple(shape)
        self.regions = list(regions)
        self.tissue = tissue
        self.seed = seed
        self._coarse = _outline(self.shape, seed) if tissue else None

    def _sharp(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        img = texture_region(y0, x0, y1, x1)
        if self._coarse is not None:
            a = tissue_alpha(y0, x0, y1, x1, self._coarse)[:, :, None]
            img = a * img + (1 - a) * np.float32(242.0)
        return img

    def render(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        """Pixels of ``[y0, y1) x [x0, x1)`` as ``(y, x, 3)`` uint8 (with sensor noise)."""
        from scipy.signal import fftconvolve  # imported here: scipy.signal takes 0.5 s to import

        img = self._sharp(y0, x0, y1, x1)
        for r in self.regions:
            iy0, ix0, iy1, ix1 = max(y0, r.y0), max(x0, r.x0), min(y1, r.y1), min(x1, r.x1)
            if iy1 <= iy0 or ix1 <= ix0:
                continue
            psf = r.psf()
            m = max(psf.shape) // 2 + 1
            src = self._sharp(iy0 - m, ix0 - m, iy1 + m, ix1 + m)
            blurred = np.stack([fftconvolve(src[:, :, c], psf, mode="same") for c in range(3)], axis=2)
            img[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = blurred[m:-m, m:-m]
        img = img + pixel_noise(y0, x0, y1, x1, self.seed, std=1.5)
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)

    def tiles(self, tile: int) -> Iterator[np.ndarray]:
        h, w = self.shape
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                block = np.full((tile, tile, 3), 0, dtype=np.uint8)
                part = self.render(y, x, min(y + tile, h), min(x + tile, w))
                block[:part.shape[0], :part.shape[1]] = part
                yield block

    def write(self, path: str | Path, *, mpp: float = 0.5, tile: int = 512, compression: str = "jpeg",
              pyramid: bool = False) -> Path:
        """Write the slide as a tiled OME-TIFF with ``mpp`` µm/px.

        With ``pyramid``, reduced levels follow in SubIFDs, each 4x smaller
        than the one before down to 1024 px or less, as a scanner writes them
        (Aperio's steps); they are block means of level 0, gathered while it
        is written (memory: 1/16 of level 0). Without, one level.
        """
        h, w = self.shape
        codec = {"jpeg": ("jpeg", {"level": 92}), "deflate": ("zlib", {"level": 6}), "none": (None, None)}[compression]
        shapes = [(h, w)]
        while pyramid and max(shapes[-1]) > 1024:
            shapes.append((-(-shapes[-1][0] // 4), -(-shapes[-1][1] // 4)))
        reduced = np.zeros((*shapes[1], 3), np.float32) if len(shapes) > 1 else None
        options = dict(dtype=np.uint8, photometric="rgb", compression=codec[0], compressionargs=codec[1],
                       resolutionunit="CENTIMETER")
        with tifffile.TiffWriter(str(path), bigtiff=h * w * 3 > 2**31, ome=True) as tif:
            tif.write(self._tiles_reducing(tile, reduced), shape=(h, w, 3), tile=(tile, tile),
                      subifds=len(shapes) - 1, resolution=(1e4 / mpp, 1e4 / mpp),
                      metadata={"axes": "YXS", "PhysicalSizeX": mpp, "PhysicalSizeXUnit": "µm",
                                "PhysicalSizeY": mpp, "PhysicalSizeYUnit": "µm"}, **options)
            level = reduced
            for k, (lh, lw) in enumerate(shapes[1:], start=1):
                if k > 1:
                    level = _mean_4x4(level, (lh, lw))
                pixels = np.clip(np.rint(level), 0, 255).astype(np.uint8)
                tif.write(pixels, tile=(min(tile, 256), min(tile, 256)), subfiletype=1,
                          resolution=(1e4 / (mpp * 4 ** k), 1e4 / (mpp * 4 ** k)), **options)
        return Path(path)

    def _tiles_reducing(self, tile: int, reduced: np.ndarray | None) -> Iterator[np.ndarray]:
        """:meth:`tiles`, adding each tile's 4 x 4 block means into ``reduced`` (level 1) on the way."""
        h, w = self.shape
        k = 0
        cols = -(-w // tile)
        for block in self.tiles(tile):
            if reduced is not None:
                y, x = (k // cols) * tile, (k % cols) * tile
                part = block[:min(tile, h - y), :min(tile, w - x)].astype(np.float32)
                ph, pw = -(-part.shape[0] // 4), -(-part.shape[1] // 4)
                reduced[y // 4:y // 4 + ph, x // 4:x // 4 + pw] = _mean_4x4(part, (ph, pw))
            k += 1
            yield block


def _mean_4x4(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Means of 4 x 4 blocks of ``image`` (its edge replicated), ``shape`` rows and columns of them."""
    h, w = shape
    padded = np.pad(image, ((0, 4 * h - image.shape[0]), (0, 4 * w - image.shape[1]), (0, 0)), mode="edge")
    return block_mean(padded, 4)


def demo_slide(shape: tuple[int, int] = (3072, 4096)) -> SyntheticSlide:
    """The built-in example: a defocused patch and a motion-blurred patch in tissue."""
    h, w = shape
    cy, cx = (h // 2) // 512 * 512, (w // 2) // 512 * 512
    regions = [
        BlurRegion(cy - 512, cx - 1536, cy + 512, cx - 512, "defocus", defocus_sigma_px=3.0),
        BlurRegion(cy - 1024, cx + 512, cy, cx + 1536, "motion", motion_length_px=21, motion_angle_deg=0.0),
    ]
    return SyntheticSlide(shape, regions, seed=7)
