"""JPEG tiles decoded at 1/2, 1/4 or 1/8 of their size in the DCT domain: thumbnails without a full decode.

libjpeg(-turbo) can decode a JPEG straight to a reduced scale by keeping only
the low-frequency DCT coefficients of each 8 x 8 block (Pillow's
``Image.draft``, libvips' shrink-on-load). For a slide stored without reduced
levels, whose thumbnail (and so its tissue mask) would otherwise need every
level-0 pixel decoded, that is most of ``qc``'s time. Each tile's bytes are
read with ``os.pread`` (no shared file position: safe from Dask's threads),
joined with the page's shared JPEG tables, and decoded at the scale asked.

A level is only read this way after one of its tiles decoded so agrees with
tifffile's full decode, block-averaged, within :data:`MAX_MEAN_ERROR` grey
levels (a colour space Pillow would guess wrong, say); otherwise ``None`` is
offered and the full decode stays.
"""

from __future__ import annotations

import io
import os

import numpy as np

#: The scales libjpeg decodes at directly (1/8, 1/4, 1/2).
DRAFT_SCALES = (8, 4, 2)
#: Mean absolute difference (grey levels) to tifffile's decode, block-averaged, that a level may show.
MAX_MEAN_ERROR = 3.0
#: TIFF compression code of JPEG ("new-style", with shared tables).
TIFF_JPEG = 7


class DraftTiles:
    """The JPEG tiles of one TIFF page, decodable at reduced scale.

    Build with :meth:`of`, which returns None for a page it cannot read so
    (not tiled, not 8-bit 3-sample JPEG, tiles not a multiple of 8 px, or a
    decode that disagrees with tifffile's).
    """

    def __init__(self, path: str, page) -> None:
        self.path = path
        self.tile_h, self.tile_w = int(page.tilelength), int(page.tilewidth)
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        self.columns = -(-self.width // self.tile_w)
        self.offsets = [int(v) for v in page.dataoffsets]
        self.counts = [int(v) for v in page.databytecounts]
        tables = page.jpegtables
        self.tables = bytes(tables) if tables is not None else b""
        self._fd: int | None = None

    @classmethod
    def of(cls, path: str, page) -> DraftTiles | None:
        """The page's tiles, or None where a reduced decode is not available or not faithful."""
        tiled = page.is_tiled and page.tilelength % 8 == 0 and page.tilewidth % 8 == 0
        if not (tiled and page.compression == TIFF_JPEG and page.samplesperpixel == 3 and page.bitspersample == 8
                and page.planarconfig == 1 and len(page.dataoffsets) == len(page.databytecounts)):
            return None
        tiles = cls(path, page)
        try:
            agrees = tiles._agrees_with(page)
        except Exception:  # any decoder trouble: keep the full decode
            agrees = False
        if not agrees:
            tiles.close()
            return None
        return tiles

    def _agrees_with(self, page) -> bool:
        """Tile 0 at 1/8 scale against tifffile's full decode block-averaged by 8."""
        full = np.asarray(page.decode(self._bytes(0), 0, jpegtables=page.jpegtables)[0])
        full = full.reshape(self.tile_h, self.tile_w, 3).astype(np.float64)
        expected = full.reshape(self.tile_h // 8, 8, self.tile_w // 8, 8, 3).mean(axis=(1, 3))
        got = self.tile(0, 8).astype(np.float64)
        return got.shape == expected.shape and float(np.abs(got - expected).mean()) <= MAX_MEAN_ERROR

    def _bytes(self, index: int) -> bytes:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        return os.pread(self._fd, self.counts[index], self.offsets[index])

    def tile(self, index: int, scale: int) -> np.ndarray:
        """Tile ``index`` (row-major) decoded at ``1 / scale``: ``(tile_h / scale, tile_w / scale, 3)`` uint8."""
        from PIL import Image

        data = self._bytes(index)
        stream = self.tables[:-2] + data[2:] if self.tables else data  # tables' SOI..(no EOI) + tile after SOI
        image = Image.open(io.BytesIO(stream))
        image.draft("RGB", (self.tile_w // scale, self.tile_h // scale))
        return np.asarray(image.convert("RGB"))

    def read(self, y: int, x: int, height: int, width: int, scale: int) -> np.ndarray:
        """The region (level pixels, ``y``/``x`` multiples of ``scale``) at ``1 / scale``: ``ceil`` of its size."""
        out = np.empty((-(-height // scale), -(-width // scale), 3), np.uint8)
        th, tw = self.tile_h, self.tile_w
        for row in range(y // th, (y + height - 1) // th + 1):
            for col in range(x // tw, (x + width - 1) // tw + 1):
                tile = self.tile(row * self.columns + col, scale)
                ty, tx = row * th, col * tw
                y0, y1 = max(y, ty), min(y + height, ty + th)
                x0, x1 = max(x, tx), min(x + width, tx + tw)
                src = tile[(y0 - ty) // scale:-(-(y1 - ty) // scale), (x0 - tx) // scale:-(-(x1 - tx) // scale)]
                out[(y0 - y) // scale:(y0 - y) // scale + src.shape[0],
                    (x0 - x) // scale:(x0 - x) // scale + src.shape[1]] = src
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
