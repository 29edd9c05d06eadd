"""The names of what a run writes, in one place: per slide (:class:`SlideOutputs`) and per batch.

Examples
--------
>>> out = SlideOutputs("slide-1")
>>> out.qc_json, out.ome_zarr, out.review
('slide-1.qc.json', 'slide-1.ome.zarr', 'slide-1.review')
>>> out.qc_files()
['slide-1.qc.json', 'slide-1.blurmap.csv', 'slide-1.blurmap.geojson', 'slide-1.blurmap.png']
>>> is_output_name("slide-1.blurmap.png"), is_output_name("slide-1.svs")
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

#: Each per-slide output: its attribute and the suffix after ``<stem>``, in the order a run lists them.
SLIDE_SUFFIXES = {
    "ome_zarr": ".ome.zarr", "ome_tiff": ".ome.tif", "qc_json": ".qc.json", "tiles_csv": ".blurmap.csv",
    "geojson": ".blurmap.geojson", "blurmap_png": ".blurmap.png", "focus_png": ".focus.png", "review": ".review",
}
#: What labels each output in the report, for those it links.
REPORT_LABELS = {"qc_json": "qc.json", "tiles_csv": "tiles CSV", "geojson": "GeoJSON", "blurmap_png": "blur map",
                 "focus_png": "focus map", "ome_zarr": "OME-Zarr", "ome_tiff": "OME-TIFF"}

#: The batch's own outputs, in ``OUT/``.
QC_CSV, REPORT_HTML, MANIFEST = "qc.csv", "report.html", "manifest.json"
BATCH_OUTPUTS = (QC_CSV, REPORT_HTML, MANIFEST)


@dataclass(frozen=True)
class SlideOutputs:
    """The file names of one slide's outputs (relative to the output folder)."""

    stem: str

    def __getattr__(self, name: str) -> str:
        if name in SLIDE_SUFFIXES:
            return self.stem + SLIDE_SUFFIXES[name]
        raise AttributeError(name)

    def all_names(self) -> list[str]:
        """Every per-slide output name, whichever a run writes."""
        return [self.stem + suffix for suffix in SLIDE_SUFFIXES.values()]

    def qc_files(self) -> list[str]:
        """What every run writes: qc.json, the tiles CSV, the GeoJSON and the blur-map PNG."""
        return [self.qc_json, self.tiles_csv, self.geojson, self.blurmap_png]

    def report_links(self) -> list[tuple[str, str]]:
        """``(label, file name)`` of each output the report links, in its order."""
        return [(label, getattr(self, key)) for key, label in REPORT_LABELS.items()]


def is_output_name(name: str) -> bool:
    """Whether a file name ends as one of our per-slide outputs (never taken as an input slide)."""
    return any(name.endswith(suffix) for key, suffix in SLIDE_SUFFIXES.items() if key not in ("ome_zarr", "ome_tiff"))
