"""Image mode: ``wsi-deblur restore IMAGE... -o DIR`` and its Python API."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.data import immunohistochemistry
from skimage.metrics import structural_similarity as ssim

from wsi_deblur.blur import BlurEstimate
from wsi_deblur.blur.simulate import BlurParams, Optics, simulate
from wsi_deblur.io import open_slide
from wsi_deblur.restore.image import restore_slide_region
from wsi_deblur.restore.neural import NeuralRestorer

SHARP = immunohistochemistry()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "wsi_deblur.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def defocused(seed=0):
    params = BlurParams(label="defocus", defocus_um=3.0, photons=2000.0, read_noise=0.5,
                        optics=Optics(numerical_aperture=0.75, mpp=0.5))
    return simulate(SHARP, params, np.random.default_rng(seed))


def moved(seed=0):
    """The field moved 15 px at 120 deg during exposure, with camera noise."""
    params = BlurParams(label="motion", motion_length_px=15.0, motion_angle_deg=120.0, photons=2000.0,
                        read_noise=0.5, optics=Optics(numerical_aperture=0.75, mpp=0.5))
    return simulate(SHARP, params, np.random.default_rng(seed))


def test_restore_writes_one_png_per_image_and_reports_bad_files(tmp_path):
    Image.fromarray(defocused()).save(tmp_path / "blurred.png")
    Image.fromarray(SHARP).save(tmp_path / "sharp.tif")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "restored"
    r = cli("restore", tmp_path / "blurred.png", tmp_path / "broken.png", tmp_path / "sharp.tif", "-o", out)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.png" in errors[0], r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["class"] for line in lines] == ["defocus", "in_focus"]
    assert [(line["mpp"], line["mpp_source"]) for line in lines] == [(0.5, "assumed")] * 2  # PNG/TIFF: no pixel size
    assert lines[0]["restorer"] == "wiener"  # no pixel size: the networks would restore structure of a wrong scale
    assert lines[0]["guard"]["restorer"] + lines[0]["guard"]["pulled back"] >= 1 and lines[1]["guard"] is None
    assert sorted(p.name for p in out.iterdir()) == ["blurred.png", "sharp.png"]  # nothing half-written
    restored = np.asarray(Image.open(out / "blurred.png"))
    # Wiener (disc PSF) on the simulator's pupil blur: +0.043 (the networks told the pixel size: +0.1)
    assert ssim(restored, SHARP, channel_axis=2) > ssim(defocused(), SHARP, channel_axis=2) + 0.03
    np.testing.assert_array_equal(np.asarray(Image.open(out / "sharp.png")), SHARP)  # in focus: untouched


def test_forced_blur_type_and_model(tmp_path):
    Image.fromarray(SHARP).save(tmp_path / "field.png")
    r = cli("restore", tmp_path / "field.png", "-o", tmp_path / "out", "--blur-type", "defocus", "--model", "dbmid",
            "--mpp", "0.5")
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert line["class"] == "defocus" and line["detected"] is False and line["restorer"] == "dbmid"
    r = cli("restore", tmp_path / "field.png", "-o", tmp_path / "out2", "--blur-type", "defocus", "--mpp", "0.5")
    assert json.loads(r.stdout)["mpp_source"] == "option" and json.loads(r.stdout)["restorer"] == "hybrid"
    out = np.asarray(Image.open(tmp_path / "out" / "field.png"))  # the network ran: not the input, but close
    assert not np.array_equal(out, SHARP) and ssim(out, SHARP, channel_axis=2) >= 0.95


@pytest.mark.parametrize("arch", ["fast", "bcr"])
@pytest.mark.parametrize("estimate, blurred", [(BlurEstimate("defocus", defocus_sigma_px=2.95), defocused),
                                                (BlurEstimate("motion", motion_angle_deg=120.0, motion_length_px=15.0),
                                                 moved)],
                         ids=["defocus", "motion"])
def test_windowed_restoration_has_no_seams(tmp_path, estimate, blurred, arch):
    """Tiles of 128 px with 64 px of context (the default halo) equal one pass over the whole image, but at
    the edges of the networks' receptive field (62 px to each side): no visible seam where windows meet
    (DL_motion folds every window the same way; bcr's Fourier filters see each window's edges as periodic and
    smooth parts, so none rings). The outer 64 px are left out: there the whole pass and the edge windows are
    padded differently.
    """
    from wsi_deblur.restore.neural import psf_conditions

    image = blurred()
    Image.fromarray(image).save(tmp_path / "f.png")
    slide = open_slide(tmp_path / "f.png", mpp=0.5)
    restorer = NeuralRestorer(arch)
    whole = restorer.restore_as(image[None], estimate.label, [estimate.motion_angle_deg],
                                psf=psf_conditions([estimate]))[0].astype(float)
    tiled = restore_slide_region(slide, estimate, restorer, tile_size=128, halo=64).astype(float)
    diff = np.abs(whole - tiled).mean(axis=2)[64:-64, 64:-64]
    assert diff.mean() < 0.25
    seams = [63, 64, 191, 192, 319, 320]  # 127, 128, ... in the image
    assert max(diff[seams].mean(), diff[:, seams].mean()) < 0.5
    assert ssim(tiled.astype(np.uint8), SHARP, channel_axis=2) > ssim(image, SHARP, channel_axis=2) + 0.05


@pytest.mark.parametrize("blur_type", [None, "motion"])
def test_motion_blur_is_restored_along_its_detected_direction(tmp_path, blur_type):
    # detected, or forced: either way the route takes the direction the classifier found (at 0 deg it loses SSIM)
    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.restore.image import restore_image

    params = BlurParams(label="motion", motion_length_px=21.0, motion_angle_deg=120.0, photons=5000.0,
                        read_noise=0.5, jpeg_quality=90, optics=Optics(numerical_aperture=0.75, mpp=0.5))
    blurred = simulate(SHARP, params, np.random.default_rng(1))
    Image.fromarray(blurred).save(tmp_path / "moved.png")
    result = restore_image(tmp_path / "moved.png", tmp_path / "out", NeuralRestorer("fast"),
                           classifier=NeuralBlurClassifier(), blur_type=blur_type, mpp=0.5)
    assert result["class"] == "motion" and result["detected"] is (blur_type is None)
    restored = np.asarray(Image.open(result["output"]))
    assert ssim(restored, SHARP, channel_axis=2) > ssim(blurred, SHARP, channel_axis=2) + 0.03


def test_a_40x_field_with_wide_defocus_is_restored_at_the_working_pixel_size(tmp_path):
    """5 um of defocus on a 0.25-um/px field is wider than DL_defocus learned at level 0; the image still gains."""
    import tifffile
    from scipy import ndimage as ndi

    from wsi_deblur.classify.neural import NeuralBlurClassifier
    from wsi_deblur.restore.image import restore_image

    sharp = np.clip(ndi.zoom(SHARP[64:320, 64:320].astype(np.float32), (2, 2, 1), order=3), 0, 255).astype(np.uint8)
    blurred = simulate(sharp, BlurParams(label="defocus", defocus_um=5.0, photons=5000.0, jpeg_quality=90,
                                         optics=Optics(numerical_aperture=0.75, mpp=0.25)), np.random.default_rng(0))
    tifffile.imwrite(tmp_path / "x40.tif", blurred, photometric="rgb", resolution=(4e4, 4e4),
                     resolutionunit="CENTIMETER")
    result = restore_image(tmp_path / "x40.tif", tmp_path / "out", NeuralRestorer("fast", threads=2),
                           classifier=NeuralBlurClassifier())
    restored = np.asarray(Image.open(result["output"]))
    assert result["class"] == "defocus"
    assert ssim(restored, sharp, channel_axis=2) > ssim(blurred, sharp, channel_axis=2) + 0.05


@pytest.mark.parametrize("command", [["classify"], ["restore", "--blur-type", "defocus"], ["restore"]])
def test_classify_and_restore_refuse_a_fluorescence_image_as_qc_does(tmp_path, command):
    dapi = ((255 - SHARP.astype(np.int32)) // 4).astype(np.uint8)  # bright nuclei on black
    Image.fromarray(dapi).save(tmp_path / "dapi.png")
    r = cli(command[0], tmp_path / "dapi.png", *(["-o", tmp_path / "out"] if command[0] == "restore" else []),
            *command[1:], "--mpp", "0.5")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'dapi.png'}: a dark background (thumbnail median "
                                             f"{r.stderr.split('median ')[1].split(' ')[0]} of 255): a fluorescence "
                                             "scan, not brightfield; wsi-deblur reads brightfield images only"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
