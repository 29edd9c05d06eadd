"""The OME-NGFF versions we write, one small class each (as ome-zarr-py's ``format.py``).

Each says how its metadata is placed and versioned and how its arrays are
created; :mod:`wsi_deblur.write.ome_zarr` writes through them and never
branches on the version.

Examples
--------
>>> ngff_format("0.4").zarr_format, ngff_format("0.5").zarr_format
(2, 3)
>>> ngff_format("0.4").versioned({"type": "mean"}), ngff_format("0.5").versioned({"type": "mean"})
({'version': '0.4', 'type': 'mean'}, {'type': 'mean'})
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsi_deblur.errors import check_choice

if TYPE_CHECKING:
    import zarr


class FormatV04:
    """NGFF 0.4 on Zarr v2: metadata at the top of the attributes, a ``version`` in each multiscale and label
    image, numcodecs compressors (QuPath and Fiji read Blosc, zlib or none), ``/``-separated chunk keys.
    """

    version = "0.4"
    zarr_format = 2
    shards = False

    def versioned(self, block: dict) -> dict:
        """A multiscales or image-label block as this version writes it."""
        return {"version": self.version, **block}

    def set_attrs(self, group: zarr.Group, attrs: dict) -> None:
        """Put the OME metadata ``attrs`` on ``group``."""
        group.attrs.update(attrs)

    def create_array(self, group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], *,
                     compression: str, dimension_names: list[str],
                     shards: tuple[int, ...] | None = None) -> zarr.Array:
        """A uint8 array of ``shape`` under ``group`` (0 where unwritten)."""
        import numcodecs  # deferred: the CLI names the versions without loading zarr

        compressor = {"blosc": numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE),
                      "zlib": numcodecs.Zlib(level=6), "none": None}[compression]
        return group.create_array(name, shape=shape, chunks=chunks, dtype="uint8", fill_value=0,
                                  compressors=compressor, chunk_key_encoding={"name": "v2", "separator": "/"})


class FormatV05(FormatV04):
    """NGFF 0.5 on Zarr v3: metadata under ``attributes.ome`` with one ``version``, Zarr v3 codecs,
    dimension names, optional shards (napari, Neuroglancer).
    """

    version = "0.5"
    zarr_format = 3
    shards = True

    def versioned(self, block: dict) -> dict:
        return dict(block)

    def set_attrs(self, group: zarr.Group, attrs: dict) -> None:
        group.attrs.update({"ome": {"version": self.version, **attrs}})

    def create_array(self, group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], *,
                     compression: str, dimension_names: list[str],
                     shards: tuple[int, ...] | None = None) -> zarr.Array:
        from zarr.codecs import BloscCodec, GzipCodec  # deferred, as numcodecs above

        codec = {"blosc": BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"), "zlib": GzipCodec(level=6),
                 "none": None}[compression]
        return group.create_array(name, shape=shape, chunks=chunks, shards=shards, dtype="uint8", fill_value=0,
                                  compressors=codec, dimension_names=dimension_names)


#: Compressions of the stored chunks (QuPath reads all three in Zarr v2).
COMPRESSIONS = ("blosc", "zlib", "none")
#: Compressions of the OME-TIFF's tiles (:mod:`wsi_deblur.write.ome_tiff`; kept here, where naming them loads
#: no tifffile).
TIFF_COMPRESSIONS = ("jpeg", "deflate", "none")
#: Where the OME-TIFF's reduced levels go: SubIFDs of level 0 (the OME-TIFF way: QuPath, Bio-Formats), or the
#: main IFD chain (what OpenSlide's generic TIFF reader and viewers built on it read as a pyramid).
TIFF_LAYOUTS = ("subifds", "openslide")

#: Each version we write, by its name.
FORMATS = {f.version: f for f in (FormatV04(), FormatV05())}
NGFF_VERSIONS = tuple(FORMATS)


def ngff_format(version: str) -> FormatV04:
    """The format of NGFF ``version`` (``"0.4"`` or ``"0.5"``); OptionError naming the choices otherwise."""
    check_choice("NGFF version", version, tuple(FORMATS))
    return FORMATS[version]
