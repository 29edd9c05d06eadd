"""Settings of a run, with the defaults a facility would start from."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE
from wsi_deblur.errors import OptionError, check_choice
from wsi_deblur.report.verdict import VerdictThresholds

#: The allowed values of the string options (the CLI's choices come from here too).
NGFF_VERSIONS = ("0.4", "0.5")
ZARR_COMPRESSIONS = ("blosc", "zlib", "none")
TIFF_COMPRESSIONS = ("jpeg", "deflate", "none")
READERS = ("auto", "tifffile", "openslide", "pillow", "ome-zarr")


@dataclass(frozen=True)
class RunOptions:
    """How a slide is processed.

    Attributes
    ----------
    tile_size : int
        Tile edge in level-0 pixels: the unit of classification and of the
        restore decision.
    halo : int
        Context around each tile given to the restorer, and half the overlap
        of neighbouring windows, in pixels of the working pixel size (about
        0.5 um: a 40x scan gets twice as many level-0 pixels; see
        :mod:`wsi_deblur.working_scale`).
    chunk : int
        Edge of a Dask chunk and of a written region (pixels); a multiple of
        ``tile_size`` and of ``zarr_chunk``.
    min_tissue : float
        Tiles with a smaller tissue share are background.
    min_confidence : float
        Blurred tiles with a smaller probability of being blurred (1 - P(in
        focus)) are not restored.
    classifier, restorer : str
        Names from :mod:`wsi_deblur.restore.by_name` and :mod:`wsi_deblur.classify.by_name`.
    ngff_version : {"0.4", "0.5"}
    zarr_compression : {"blosc", "zlib", "none"}
    zarr_chunk : int
    tiff : bool
        Also write the pyramidal OME-TIFF.
    tiff_compression : {"jpeg", "deflate", "none"}
    jpeg_quality : int
    mpp : float, optional
        Micrometres per pixel, overriding the file's metadata.
    reader : {"auto", "tifffile", "openslide", "pillow", "ome-zarr"}
    gpu : bool
        Place restore tasks on workers with a ``GPU`` resource.
    guard : bool
        Check every restored window against the optics and pull it back toward
        its input where it contradicts them (:mod:`wsi_deblur.restore.guard`).
    weights : str, optional
        A folder written by ``wsi-deblur adapt``: its networks replace the
        shipped ones (those it lacks stay shipped, with a warning).
    review_fraction, rescan_fraction : float
        Blurred share of tissue tiles from which a slide's verdict is
        ``review`` or ``rescan`` (see :class:`~wsi_deblur.report.verdict.VerdictThresholds`).
    """

    tile_size: int = 512
    halo: int = 64
    chunk: int = 2048
    min_tissue: float = 0.25
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    classifier: str = "neural"
    restorer: str = "fast"
    ngff_version: str = "0.4"
    zarr_compression: str = "blosc"
    zarr_chunk: int = 512
    tiff: bool = True
    tiff_compression: str = "jpeg"
    jpeg_quality: int = 90
    mpp: float | None = None
    reader: str = "auto"
    gpu: bool = False
    guard: bool = True
    weights: str | None = None
    review_fraction: float = 0.05
    rescan_fraction: float = 0.20

    def __post_init__(self) -> None:
        from wsi_deblur.classify.by_name import CLASSIFIERS
        from wsi_deblur.restore.by_name import RESTORERS

        for name, allowed in (("classifier", CLASSIFIERS), ("restorer", RESTORERS), ("ngff_version", NGFF_VERSIONS),
                              ("zarr_compression", ZARR_COMPRESSIONS), ("tiff_compression", TIFF_COMPRESSIONS),
                              ("reader", READERS)):
            check_choice(name, getattr(self, name), allowed)
        for name, low in (("tile_size", 64), ("chunk", 64), ("zarr_chunk", 16), ("halo", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise OptionError(f"{name} must be a whole number of pixels of at least {low}, not {value!r}")
        for name in ("min_tissue", "min_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                hint = f" ({value:g} -> {value / 100:g}?)" if 1.0 < value <= 100.0 else ""
                raise OptionError(f"{name} is a share in [0, 1], not {value!r}{hint}")
        if not 1 <= self.jpeg_quality <= 100:
            raise OptionError(f"jpeg_quality must be in 1-100, not {self.jpeg_quality!r}")
        if self.mpp is not None and not (math.isfinite(self.mpp) and 0.0 < self.mpp < 1000.0):
            raise OptionError(f"mpp must be a pixel size in micrometres (0.25 for a 40x scan), not {self.mpp!r}")
        self.thresholds()  # validates them
        if self.weights is not None:
            from wsi_deblur.nets.files import check_weights_dir

            check_weights_dir(self.weights)
        if self.chunk % self.tile_size or self.chunk % self.zarr_chunk:
            raise OptionError(f"chunk ({self.chunk}) must be a multiple of tile_size ({self.tile_size}) "
                             f"and of zarr_chunk ({self.zarr_chunk})")

    def thresholds(self) -> VerdictThresholds:
        return VerdictThresholds(review_fraction=self.review_fraction, rescan_fraction=self.rescan_fraction)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
