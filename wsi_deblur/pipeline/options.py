"""Settings of a run, with the defaults a facility would start from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from wsi_deblur._shared.options import check_fields, option
from wsi_deblur.blurmap import DEFAULT_MIN_CONFIDENCE
from wsi_deblur.classify.by_name import CLASSIFIERS
from wsi_deblur.errors import OptionError
from wsi_deblur.nets.files import check_weights_dir, read_calibration
from wsi_deblur.report.verdict import VerdictThresholds
from wsi_deblur.restore.by_name import RESTORERS, restorer_help
from wsi_deblur.write.ngff_format import COMPRESSIONS, NGFF_VERSIONS, TIFF_COMPRESSIONS, TIFF_LAYOUTS

#: The commands whose flags an option is: every processing command (``run``, ``qc``, ``watch``), and restoration.
QC, RESTORE = ("qc",), ("restore",)

#: The allowed values of the string options (the CLI's choices come from here too).
ZARR_COMPRESSIONS = COMPRESSIONS
READERS = ("auto", "tifffile", "openslide", "pillow", "ome-zarr")


@dataclass(frozen=True)
class RunOptions:
    """How a slide is processed: each field declares its default, its check and its flag once.

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
        Names from :mod:`wsi_deblur.classify.by_name` and :mod:`wsi_deblur.restore.by_name`.
    ngff_version : {"0.4", "0.5"}
    zarr_compression : {"blosc", "zlib", "none"}
    zarr_chunk : int
    tiff : bool
        Also write the pyramidal OME-TIFF.
    tiff_compression : {"jpeg", "deflate", "none"}
    jpeg_quality : int
    tiff_layout : {"subifds", "openslide"}
        Where the OME-TIFF's reduced levels go (:data:`~wsi_deblur.write.ngff_format.TIFF_LAYOUTS`).
    mpp : float, optional
        Micrometres per pixel of files whose metadata has none.
    force_mpp : bool
        Use ``mpp`` for every file, overriding the pixel size of those that have one.
    reader : {"auto", "tifffile", "openslide", "pillow", "ome-zarr"}
    gpu : bool
        Place restore tasks on workers with a ``GPU`` resource.
    guard : bool
        Check every restored window against the optics and pull it back toward
        its input where it contradicts them (:mod:`wsi_deblur.restore.guard`).
    weights : str, optional
        A folder written by ``wsi-deblur adapt`` or ``calibrate``: its networks
        replace the shipped ones (those it lacks stay shipped, with a
        warning), its calibrated threshold the shipped decision.
    blur_threshold : float, optional
        P(blurred) from which a tile is called blurred; default the
        ``weights`` folder's calibration, else the most probable class.
    both_scales : bool
        Judge a finer scan's tiles (40x) at the working pixel size and at their
        own, deciding on the mean probabilities (BlurNet only).
    restore : bool
        Restore the blurred tiles and write the restored pyramid (``run``);
        False: blur QC only (``qc``).
    review_fraction, rescan_fraction : float
        Blurred share of tissue tiles from which a slide's verdict is
        ``review`` or ``rescan`` (see :class:`~wsi_deblur.report.verdict.VerdictThresholds`).

    Examples
    --------
    >>> RunOptions(restorer="wiener", tiff=False).restorer
    'wiener'
    >>> RunOptions(restorer="fsat")
    Traceback (most recent call last):
    ...
    wsi_deblur.errors.OptionError: restorer 'fsat' is not one of fast, dbmid, bcr, wiener, hybrid; did you mean 'fast'?
    """

    tile_size: int = option(512, "tile edge in pixels", kind="pixels", low=64, groups=QC)
    halo: int = option(64, "restoration context and half-overlap in pixels at about 0.5 um/px, doubled on a 40x "
                           "scan (64: the fast networks see 62 px to each side)", kind="pixels", low=0, groups=QC)
    chunk: int = option(2048, "Dask chunk edge in pixels", kind="pixels", low=64, groups=QC)
    min_tissue: float = option(0.25, "tissue share for a tile to count", kind="share", groups=QC)
    min_confidence: float = option(DEFAULT_MIN_CONFIDENCE, "probability that a tile is blurred (1 - P(in focus)) "
                                   "needed to restore it", kind="share", groups=QC)
    classifier: str = option("neural", "blur classifier: neural (BlurNet) or classical (baseline)", kind="choice",
                             choices=CLASSIFIERS, groups=QC)
    blur_threshold: float | None = option(None, "P(blurred) from which a tile is called blurred (default: the "
                                          "--weights folder's `wsi-deblur calibrate` threshold, else the most "
                                          "probable class)", kind="probability", groups=QC, metavar="P")
    both_scales: bool = option(False, "judge a 40x slide's tiles also at their own pixels (finds one depth of field "
                                      "of defocus; on real sharp 40x tissue 2 false alarms in 33 tiles, not 1)",
                               kind="flag", groups=QC)
    restorer: str = option("hybrid", restorer_help(), kind="choice", choices=RESTORERS, groups=RESTORE)
    ngff_version: str = option("0.4", "0.4 (Zarr v2, QuPath/Fiji) or 0.5 (Zarr v3)", kind="choice",
                               choices=NGFF_VERSIONS, groups=RESTORE)
    zarr_compression: str = option("blosc", "blosc (zstd), zlib or none: QuPath reads all three", kind="choice",
                                   choices=ZARR_COMPRESSIONS, groups=RESTORE)
    zarr_chunk: int = option(512, "edge of a stored OME-Zarr chunk", kind="pixels", low=16)
    tiff: bool = option(True, "skip the OME-TIFF", kind="flag", groups=RESTORE)
    tiff_compression: str = option("jpeg", "jpeg, deflate (lossless) or none", kind="choice",
                                   choices=TIFF_COMPRESSIONS, groups=RESTORE)
    jpeg_quality: int = option(90, "JPEG quality of the OME-TIFF, 1-100", kind="percent", groups=RESTORE)
    tiff_layout: str = option("subifds", "the OME-TIFF's reduced levels: subifds (QuPath, Bio-Formats) or openslide "
                                         "(the main IFD chain, as OpenSlide-based viewers read a pyramid)",
                              kind="choice", choices=TIFF_LAYOUTS, groups=RESTORE)
    mpp: float | None = option(None, "micrometres per pixel of files without one (those with one keep theirs)",
                               kind="mpp", groups=QC)
    force_mpp: bool = option(False, "use --mpp for every file, also those whose metadata has a pixel size",
                             kind="flag", groups=QC)
    reader: str = option("auto", "force a reader (auto: the fastest that reads it)", kind="choice", choices=READERS,
                         groups=QC)
    gpu: bool = option(False, "place restoration on workers with a GPU resource", kind="flag", groups=RESTORE)
    guard: bool = option(True, "keep every restoration as the restorer made it (by default a restoration that "
                               "contradicts the optics is pulled back toward its input)", kind="flag", groups=RESTORE)
    weights: str | None = option(None, "a folder written by `wsi-deblur adapt`: its networks replace the shipped "
                                       "ones (those it lacks stay shipped, with a warning)", kind="path",
                                 groups=QC, metavar="DIR")
    review_fraction: float = option(0.05, "blurred share of tissue from which a slide is flagged for review",
                                    kind="share", groups=QC)
    rescan_fraction: float = option(0.20, "blurred share of tissue from which a slide should be rescanned",
                                    kind="share", groups=QC)
    restore: bool = option(True, "restore the blurred tiles and write the restored pyramid", kind="flag")

    def __post_init__(self) -> None:
        check_fields(self)
        self.thresholds()  # validates them
        if self.weights is not None:
            check_weights_dir(self.weights)
            calibration = read_calibration(self.weights)
            if self.blur_threshold is None and calibration is not None and calibration[1] != self.both_scales:
                made, asked = ("two scales", "one") if calibration[1] else ("one scale", "two (--both-scales)")
                flag = "with --both-scales" if calibration[1] else "without --both-scales"
                raise OptionError(f"{self.weights}: its calibration was set on {made} and this run decides on "
                                  f"{asked}; give --blur-threshold, or run {flag}")
        if self.chunk % self.tile_size or self.chunk % self.zarr_chunk:
            raise OptionError(f"chunk ({self.chunk}) must be a multiple of tile_size ({self.tile_size}) "
                             f"and of zarr_chunk ({self.zarr_chunk})")

    def thresholds(self) -> VerdictThresholds:
        return VerdictThresholds(review_fraction=self.review_fraction, rescan_fraction=self.rescan_fraction)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
