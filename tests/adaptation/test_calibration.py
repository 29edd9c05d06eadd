"""``calibrate``: a site's threshold from its own slides, written into a weights folder that qc then uses."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from wsi_deblur.adaptation.calibration import CalibrateOptions, calibrate
from wsi_deblur.blur.classes import LABEL_VALUES
from wsi_deblur.errors import OptionError, SlideError
from wsi_deblur.io import open_slide
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.slide_job import compute_blurmap


@pytest.fixture(scope="module")
def calibrated(tissue_slide, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    return calibrate([str(tissue_slide)], out, CalibrateOptions(max_tiles=16)), out


def test_calibrate_writes_its_threshold_and_a_card(calibrated):
    result, out = calibrated
    saved = json.loads((out / "detection.json").read_text())
    assert saved["threshold"] == result.threshold and 0 < result.threshold <= 0.5
    assert result.degraded_tiles > 0 and result.in_focus_tiles > 0
    assert f"{result.threshold:.4f}" in (out / "detection.md").read_text()
    assert not list(out.glob(".*partial*"))


def test_qc_with_the_folder_calls_blurred_exactly_the_tiles_at_or_above_the_threshold(calibrated, tissue_slide):
    result, out = calibrated
    blurmap = compute_blurmap(open_slide(tissue_slide), RunOptions(weights=str(out))).blurmap
    tissue = blurmap.is_tissue
    called = blurmap.label[tissue] != LABEL_VALUES["in_focus"]
    assert np.array_equal(called, blurmap.blur_probability[tissue] >= np.float32(result.threshold))
    given = compute_blurmap(open_slide(tissue_slide), RunOptions(weights=str(out), blur_threshold=0.999)).blurmap
    assert (given.label[tissue] != LABEL_VALUES["in_focus"]).sum() <= called.sum()  # the option wins


def test_a_one_scale_calibration_is_not_applied_to_a_two_scale_decision(calibrated):
    """--both-scales decides on the mean of two scales' P(blurred); the folder's threshold was set on one."""
    _, out = calibrated
    with pytest.raises(OptionError, match="both-scales"):
        RunOptions(weights=str(out), both_scales=True)
    assert RunOptions(weights=str(out), both_scales=True, blur_threshold=0.5).both_scales  # a threshold given


@pytest.fixture(scope="module")
def calibrated_40x(tmp_path_factory):
    """A 40x slide (0.25 um/px) calibrated for ``--both-scales``."""
    from wsi_deblur.synthetic import BlurRegion, SyntheticSlide

    slide = SyntheticSlide((1536, 2048), [BlurRegion(512, 512, 1024, 1024, "defocus", defocus_sigma_px=4.0)], seed=7)
    path = slide.write(tmp_path_factory.mktemp("slides") / "x40.ome.tif", mpp=0.25, tile=512, compression="deflate")
    out = tmp_path_factory.mktemp("site40")
    return calibrate([str(path)], out, CalibrateOptions(max_tiles=16, both_scales=True)), out, path


def test_a_two_scale_calibration_sets_the_threshold_qc_both_scales_decides_with(calibrated_40x):
    result, out, path = calibrated_40x
    assert json.loads((out / "detection.json").read_text())["options"]["both_scales"] is True
    assert "both pixel sizes" in (out / "detection.md").read_text()
    blurmap = compute_blurmap(open_slide(path), RunOptions(weights=str(out), both_scales=True)).blurmap
    tissue = blurmap.is_tissue
    called = blurmap.label[tissue] != LABEL_VALUES["in_focus"]
    assert np.array_equal(called, blurmap.blur_probability[tissue] >= np.float32(result.threshold))
    with pytest.raises(OptionError, match="set on two scales .* run with --both-scales"):
        RunOptions(weights=str(out))  # a two-scale threshold is not applied to one scale's probabilities


def test_a_slide_it_cannot_read_is_reported_and_the_others_used(tissue_slide, tmp_path):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide")
    errors = []
    result = calibrate([str(bad), str(tissue_slide)], tmp_path / "w", CalibrateOptions(max_tiles=8),
                       on_error=errors.append)
    assert len(errors) == 1 and isinstance(errors[0], SlideError) and "broken.svs" in str(errors[0])
    assert "error" in result.slides[0] and result.degraded_tiles > 0
    with pytest.raises(SlideError, match="broken.svs"):
        calibrate([str(bad)], tmp_path / "w2")
    assert not (tmp_path / "w2" / "detection.json").exists()


def test_a_damaged_calibration_is_refused_before_any_work(tmp_path, tissue_slide):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "detection.json").write_text('{"threshold": "high"}')
    with pytest.raises(OptionError, match="detection.json"):
        RunOptions(weights=str(folder))
    done = subprocess.run([sys.executable, "-m", "wsi_deblur.cli", "qc", str(tissue_slide), "-o",
                           str(tmp_path / "qc"), "--weights", str(folder)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 2 and "detection.json" in done.stderr


def test_the_command_says_what_it_set(tissue_slide, tmp_path):
    done = subprocess.run([sys.executable, "-m", "wsi_deblur.cli", "calibrate", str(tissue_slide), "-o",
                           str(tmp_path / "w"), "--max-tiles", "8", "--no-progress"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "blurred from P(blurred) >=" in done.stdout and (tmp_path / "w" / "detection.json").is_file()
    assert RunOptions(weights=str(tmp_path / "w")).weights  # a folder --weights takes
