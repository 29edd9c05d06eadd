"""``<stem>.blurmap.geojson``: blurred tissue as polygons QuPath imports.

Adjacent blurred tiles of one class are merged into polygons (with holes where
they enclose other tiles), in level-0 pixel coordinates (x right, y down), one
Feature per polygon, with ``properties.classification.name`` the blur class
and the region's mean severity and confidence as measurements.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Polygon, box, mapping
from shapely.ops import unary_union

from wsi_deblur.blur.classes import CLASS_COLORS, DEFOCUSED, MOVING
from wsi_deblur.blur.estimate import mean_direction_deg
from wsi_deblur.blurmap import GUARD_ACTIONS, LABEL_VALUES, BlurMap
from wsi_deblur.report.verdict import BLURRED_CLASSES
from wsi_deblur.write.location import output_path


def _tiles_in(polygon: Polygon, blurmap: BlurMap, mask: np.ndarray) -> list[tuple[int, int]]:
    grid = blurmap.grid
    out = []
    for i, j in zip(*np.nonzero(mask)):
        y0, x0, y1, x1 = grid.tile_bounds(i, j)
        if polygon.contains(box(x0, y0, x1, y1).centroid):
            out.append((int(i), int(j)))
    return out


def blur_features(blurmap: BlurMap, *, mpp: float) -> list[dict[str, Any]]:
    """GeoJSON Features of merged blurred regions, one per polygon."""
    grid = blurmap.grid
    features = []
    for name in BLURRED_CLASSES:
        mask = blurmap.is_tissue & (blurmap.label == LABEL_VALUES[name])
        if not mask.any():
            continue
        boxes = []
        for i, j in zip(*np.nonzero(mask)):
            y0, x0, y1, x1 = grid.tile_bounds(i, j)
            boxes.append(box(x0, y0, x1, y1))
        merged = unary_union(boxes)
        polygons = list(merged.geoms) if isinstance(merged, MultiPolygon) else [merged]
        for polygon in polygons:
            tiles = _tiles_in(polygon, blurmap, mask)
            idx = tuple(np.array(tiles).T)
            measurements = {
                "tiles": len(tiles),
                "area_um2": round(polygon.area * mpp * mpp, 1),
                "mean_confidence": round(float(blurmap.confidence[idx].mean()), 4),
            }
            restored = blurmap.guard_action[idx] > 0
            if restored.any():
                checked = blurmap.guard_consistency[idx][np.isfinite(blurmap.guard_consistency[idx])]
                measurements["restored_tiles"] = int(restored.sum())
                pulled_back = blurmap.guard_action[idx] == GUARD_ACTIONS.index("pulled back")
                measurements["pulled_back_tiles"] = int(pulled_back.sum())
                if checked.size:
                    measurements["min_guard_consistency"] = round(float(checked.min()), 4)
            if name in DEFOCUSED:
                measurements["mean_defocus_sigma_px"] = round(float(blurmap.defocus_sigma_px[idx].mean()), 3)
                measurements["mean_defocus_sigma_um"] = round(float(blurmap.defocus_sigma_px[idx].mean()) * mpp, 4)
            if name in MOVING:
                measurements["mean_motion_length_px"] = round(float(blurmap.motion_length_px[idx].mean()), 3)
                measurements["mean_motion_angle_deg"] = round(mean_direction_deg(blurmap.motion_angle_deg[idx]), 1)
            features.append({
                "type": "Feature",
                "geometry": mapping(polygon.buffer(0)),
                "properties": {
                    "objectType": "annotation",
                    "name": f"{name} blur",
                    "classification": {"name": name, "color": list(CLASS_COLORS[name])},
                    "measurements": measurements,
                },
            })
    return features


def write_blur_geojson(path: str | os.PathLike, blurmap: BlurMap, *, mpp: float) -> None:
    """Write the FeatureCollection of blurred regions."""
    collection = {"type": "FeatureCollection", "features": blur_features(blurmap, mpp=mpp)}
    output_path(path).write_text(json.dumps(collection, separators=(",", ":")) + "\n")
