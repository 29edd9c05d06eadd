"""Shared fixtures: real data from ../shared (skipped when absent) and synthetic slides."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The CPU path each network takes (wsi_deblur.nets.cpu_path) is measured into a cache of this test session,
# not the user's: inherited by the CLI subprocesses and cluster workers the tests start.
os.environ.setdefault("WSI_DEBLUR_CACHE", tempfile.mkdtemp(prefix="wsi-deblur-test-cache-"))

from pipelines.shared_data import find_shared_data
from wsi_deblur.io import forget_open_slides
from wsi_deblur.synthetic import BlurRegion, SyntheticSlide


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = find_shared_data()
    if path is None:
        pytest.skip("real data not found: set WSI_DEBLUR_SHARED_DATA or put shared/data beside the checkout")
    return path


@pytest.fixture(scope="session")
def real_svs(shared_data: Path) -> Path:
    path = shared_data / "wsi" / "CMU-1-Small-Region.svs"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(autouse=True)
def _fresh_handles():
    yield
    forget_open_slides()


#: A small slide: defocus in tiles (1, 1)-(1, 2), motion in tile (2, 3) of a 256-px grid.
SMALL_REGIONS = (
    BlurRegion(256, 256, 512, 768, "defocus", defocus_sigma_px=3.5),
    BlurRegion(512, 768, 768, 1024, "motion", motion_length_px=25, motion_angle_deg=0.0),
)


@pytest.fixture(scope="session")
def small_slide_model() -> SyntheticSlide:
    return SyntheticSlide((1100, 1300), SMALL_REGIONS, tissue=False, seed=3)


@pytest.fixture(scope="session")
def small_slide(tmp_path_factory, small_slide_model) -> Path:
    """A 1300 x 1100 px lossless OME-TIFF, tissue everywhere, two blurred areas."""
    path = tmp_path_factory.mktemp("slides") / "small.ome.tif"
    return small_slide_model.write(path, mpp=0.5, tile=256, compression="deflate")


@pytest.fixture(scope="session")
def tissue_slide(tmp_path_factory) -> Path:
    """A 2048 x 1536 px slide with tissue on glass and one defocused block."""
    slide = SyntheticSlide((1536, 2048), [BlurRegion(512, 512, 1024, 1024, "defocus", defocus_sigma_px=3.0)], seed=7)
    return slide.write(tmp_path_factory.mktemp("slides") / "tissue.ome.tif", mpp=0.5, tile=512,
                       compression="deflate")


def ssim_gray(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a.astype(np.float64).mean(-1), b.astype(np.float64).mean(-1),
                                       data_range=255.0))
