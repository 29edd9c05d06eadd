"""The QC outputs people read: verdict, GeoJSON regions, overlay PNG, batch CSV."""

import json

import numpy as np
import pytest
from PIL import Image
from shapely.geometry import shape

from wsi_deblur.blur.estimate import BlurEstimate
from wsi_deblur.blurmap import BlurMap
from wsi_deblur.report.geojson import blur_features
from wsi_deblur.report.overlay import overlay_image, write_overlay_png
from wsi_deblur.report.verdict import VerdictThresholds, severity_statistics, verdict
from wsi_deblur.tiling import TileGrid


def make_blurmap(labels: list[str], shape_=(4, 5), tile=100, tissue=None):
    grid = TileGrid((shape_[0] * tile - 30, shape_[1] * tile - 10), tile, 10)
    t = np.ones(shape_, bool) if tissue is None else tissue
    bm = BlurMap(grid, t.astype(np.float32), t)
    for ij, name in zip(np.ndindex(shape_), labels):
        bm.set_estimate(ij, BlurEstimate(name, {name: 0.9}, defocus_sigma_px=2.0 if name in ("defocus", "mixed")
                                         else 0.0, motion_length_px=20.0 if name in ("motion", "mixed") else 0.0))
    return bm


def grid_of(rows):
    return [c for row in rows for c in row]


F, D, M, X = "in_focus", "defocus", "motion", "mixed"


def test_adjacent_tiles_merge_into_polygons_with_holes():
    labels = grid_of([[D, D, D, F, M],
                      [D, F, D, F, F],
                      [D, D, D, F, X],
                      [F, F, F, F, X]])
    features = blur_features(make_blurmap(labels), mpp=0.5)
    by_class = {}
    for f in features:
        by_class.setdefault(f["properties"]["classification"]["name"], []).append(f)
    assert sorted(by_class) == ["defocus", "mixed", "motion"]
    (ring,) = by_class["defocus"]
    poly = shape(ring["geometry"])
    assert len(poly.interiors) == 1 and poly.area == 8 * 100 * 100
    assert poly.bounds == (0, 0, 300, 300)
    assert ring["properties"]["measurements"]["tiles"] == 8
    assert ring["properties"]["measurements"]["mean_defocus_sigma_px"] == pytest.approx(2.0)
    (mixed,) = by_class["mixed"]
    assert shape(mixed["geometry"]).bounds == (400, 200, 490, 370)  # clipped to the image edge
    assert json.dumps(features)  # serialisable as is


def test_verdict_follows_the_thresholds():
    labels = grid_of([[D, F, F, F, F]] + [[F] * 5] * 3)  # 1 whole tile of 20, the last row and column partial: 5.5%
    bm = make_blurmap(labels)
    assert verdict(bm, VerdictThresholds(review_fraction=0.05, rescan_fraction=0.2)) == "review"
    assert verdict(bm, VerdictThresholds(review_fraction=0.10, rescan_fraction=0.2)) == "pass"
    assert verdict(bm, VerdictThresholds(review_fraction=0.01, rescan_fraction=0.05)) == "rescan"
    no_tissue = make_blurmap(labels, tissue=np.zeros((4, 5), bool))
    assert verdict(no_tissue) == "review"
    with pytest.raises(ValueError):
        VerdictThresholds(review_fraction=0.5, rescan_fraction=0.1)


def test_severity_statistics_in_pixels_and_micrometres():
    labels = grid_of([[D, D, M, X, F]] + [[F] * 5] * 3)
    stats = severity_statistics(make_blurmap(labels), mpp=0.5)
    assert stats["defocus_sigma_px"]["mean"] == pytest.approx(2.0)
    assert stats["defocus_sigma_um"]["mean"] == pytest.approx(1.0)
    assert stats["motion_length_um"]["max"] == pytest.approx(10.0)


def test_overlay_colours_only_tissue_tiles_by_class(tmp_path):
    labels = grid_of([[D, F, F, F, M]] + [[F] * 5] * 3)
    tissue = np.ones((4, 5), bool)
    tissue[3, :] = False
    bm = make_blurmap(labels, tissue=tissue)
    thumb = np.full((37, 49, 3), 200, np.uint8)  # downsample 10
    over = overlay_image(thumb, 10.0, bm)
    assert over[5, 5, 0] > over[5, 5, 2]  # defocus: red
    assert over[5, 45, 2] > over[5, 45, 0]  # motion: blue
    np.testing.assert_array_equal(over[33, 5], thumb[33, 5])  # background untouched
    write_overlay_png(tmp_path / "o.png", thumb, 10.0, bm, title="x")
    image = Image.open(tmp_path / "o.png")
    assert image.height > 37 and image.width >= 49  # thumbnail plus legend
