"""The shipped BlurNet weights: known synthetic blur of real fields, real sharp fields, the command."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.data import immunohistochemistry

from wsi_deblur.blur.simulate import BlurParams, Optics, simulate
from wsi_deblur.classify.neural import NeuralBlurClassifier, default_weights, most_textured_crop
from wsi_deblur.nets.runtime import load_blurnet


def degraded(label, seed=0, field=None, **kw):
    """scikit-image's IHC field (a training field; new crops and degradations) unless ``field`` is given."""
    rng = np.random.default_rng(seed)
    sharp = immunohistochemistry() if field is None else field
    return simulate(sharp, BlurParams(label, optics=Optics(numerical_aperture=0.75), jpeg_quality=85, **kw), rng)


def test_weights_ship_as_safetensors_with_a_model_card():
    path = default_weights()
    assert path.suffix == ".safetensors" and path.exists()
    card = path.with_suffix(".md").read_text()
    assert "sha256" in card and "accuracy" in card.lower()
    import hashlib

    assert hashlib.sha256(path.read_bytes()).hexdigest() in card
    net, meta = load_blurnet(str(path))
    assert meta["widths"] and meta["strides"]  # the config that builds it, from the header


@pytest.mark.parametrize("label,kw", [
    ("in_focus", dict(defocus_um=0.2)),
    ("defocus", dict(defocus_um=3.0)),
    ("defocus", dict(defocus_um=6.0)),
    ("motion", dict(defocus_um=0.2, motion_length_px=25, motion_angle_deg=30)),
    ("mixed", dict(defocus_um=2.5, motion_length_px=30, motion_angle_deg=120)),
])
def test_classifies_blur_of_an_unseen_field(label, kw):
    est = NeuralBlurClassifier().classify(degraded(label, **kw)[None])[0]
    assert est.label == label, est
    if label == "defocus":
        assert est.defocus_um == pytest.approx(kw["defocus_um"], abs=1.5)
    if label == "motion":
        assert abs((est.motion_angle_deg - kw["motion_angle_deg"] + 90) % 180 - 90) < 20
        assert est.motion_length_px == pytest.approx(kw["motion_length_px"], rel=0.4)


HELD_OUT = ["fields/he/template4.png", "fields/he/torchstain-target.png",
            "tiles/tissue-level0-7352-11762-7864-12274.png"]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", HELD_OUT)
def test_fields_never_seen_in_training(shared_data, name):
    from wsi_deblur.io import open_slide

    slide = open_slide(shared_data / name)
    field = slide.read_region(0, 0, *slide.shape)[:512, :512]
    clf = NeuralBlurClassifier()
    assert clf.classify(field[None])[0].label == "in_focus"  # a real sharp scan
    for label, kw in (("defocus", dict(defocus_um=4.0)),
                      ("motion", dict(defocus_um=0.1, motion_length_px=30, motion_angle_deg=60))):
        assert clf.classify(degraded(label, field=field, **kw)[None])[0].label == label


def test_a_whole_slide_is_sent_to_qc(tmp_path):
    import tifffile

    from wsi_deblur.classify.image import MAX_PIXELS, classify_image
    from wsi_deblur.errors import SlideError

    side = int(MAX_PIXELS ** 0.5) + 256
    path = tmp_path / "big.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:  # written as empty tiles: no pixels in memory
        tif.write(shape=(side, side, 3), dtype=np.uint8, tile=(512, 512), photometric="rgb")
    with pytest.raises(SlideError, match="qc"):
        classify_image(path, NeuralBlurClassifier())


def test_bf16_agrees_with_fp32():
    tiles = np.stack([degraded("defocus", defocus_um=4.0), degraded("in_focus", defocus_um=0.0)])
    a = [e.label for e in NeuralBlurClassifier(precision="fp32").classify(tiles)]
    b = [e.label for e in NeuralBlurClassifier(precision="bf16").classify(tiles)]
    assert a == b == ["defocus", "in_focus"]


def test_the_machines_precision_keeps_the_probabilities(monkeypatch):
    from wsi_deblur.nets import cpu_path
    from wsi_deblur.nets.runtime import blurnet_logits, load_blurnet

    net, _ = load_blurnet(str(default_weights()))
    figures = cpu_path.measure(lambda images, p: blurnet_logits(net, images, bf16=p == "bf16"),
                               agreement=cpu_path.logit_agreement)
    assert figures["max_probability_difference"] <= cpu_path.MAX_PROBABILITY_DIFFERENCE
    assert figures["max_severity_difference"] <= cpu_path.MAX_SEVERITY_DIFFERENCE
    assert NeuralBlurClassifier().cpu_precision() in cpu_path.CPU_PATHS
    monkeypatch.setenv("WSI_DEBLUR_CPU_PATH", "fp32")
    assert NeuralBlurClassifier(precision="bf16").cpu_precision() == "bf16"  # given beats forced beats measured
    with pytest.raises(ValueError, match="precision"):
        NeuralBlurClassifier(precision="fp16")


def test_most_textured_crop_avoids_empty_glass():
    tile = np.full((512, 512, 3), 240, np.uint8)
    tile[256:, 256:] = immunohistochemistry()[:256, :256]
    crop = most_textured_crop(tile)
    assert crop.shape == (256, 256, 3) and crop.std() > 20


def test_classify_command_prints_json_lines_and_reports_bad_files(tmp_path):
    Image.fromarray(degraded("defocus", defocus_um=4.0)).save(tmp_path / "soft.png")
    Image.fromarray(degraded("in_focus", defocus_um=0.0)).save(tmp_path / "sharp.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "tiny.png")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.zeros((100, 100), np.uint16)).save(tmp_path / "deep.png")
    files = ["soft.png", "tiny.png", "notes.png", "empty.jpg", "deep.png", "sharp.png"]
    r = subprocess.run([sys.executable, "-m", "wsi_deblur.cli", "classify", *files], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["path"], d["class"]) for d in lines] == [("soft.png", "defocus"), ("sharp.png", "in_focus")]
    assert set(lines[0]["probabilities"]) == {"in_focus", "defocus", "motion", "mixed"}
    assert {"defocus_um", "motion_length_px", "motion_angle_deg"} <= set(lines[0]["severity"])
    assert all(d["mpp"] == 0.5 and d["mpp_source"] == "assumed" for d in lines)  # PNGs carry no pixel size
    errors = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning:")]
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2 and all("pass --mpp" in w for w in warnings)  # the two PNGs classified
    assert len(errors) == 4 and "Traceback" not in r.stderr
    for name, reason in (("tiny.png", "too small"), ("notes.png", "can read"), ("empty.jpg", "empty"),
                         ("deep.png", "8-bit")):
        assert any(name in e and reason in e for e in errors), (name, errors)


def test_the_pixel_size_used_is_reported_with_where_it_came_from(tmp_path, small_slide):
    from wsi_deblur.classify.image import classify_image

    Image.fromarray(degraded("defocus", defocus_um=4.0)).save(tmp_path / "soft.png")
    assert classify_image(tmp_path / "soft.png", NeuralBlurClassifier(), mpp=0.25)["mpp_source"] == "option"
    found = classify_image(small_slide, NeuralBlurClassifier())
    assert (found["mpp"], found["mpp_source"]) == (0.5, "file")


def test_a_blur_threshold_moves_the_decision_and_keeps_the_probabilities():
    """Mild defocus: called blurred from a low threshold, in focus from a high one; same probabilities."""
    tile = degraded("defocus", defocus_um=1.0)[None]
    low, high = (NeuralBlurClassifier(blur_threshold=t).classify(tile)[0] for t in (1e-4, 1 - 1e-4))
    shipped = NeuralBlurClassifier().classify(tile)[0]
    assert low.probabilities == high.probabilities == shipped.probabilities
    assert low.label != "in_focus" and low.label == max(("defocus", "motion", "mixed"),
                                                        key=low.probabilities.get)
    assert high.label == "in_focus" or 1 - high.probabilities["in_focus"] >= 1 - 1e-4
    with pytest.raises(ValueError, match="blur_threshold is a probability"):
        NeuralBlurClassifier(blur_threshold=1.5)
