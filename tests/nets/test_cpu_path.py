import json
from pathlib import Path

import numpy as np
import pytest

from wsi_deblur.nets import cpu_path
from wsi_deblur.nets.files import file_sha256
from wsi_deblur.nets.runtime import load_deblur_network, run_network
from wsi_deblur.restore.neural import NeuralRestorer


def test_bf16_is_kept_only_where_it_agrees_with_fp32_and_pays():
    fast = {"agrees": True, "speedup": 2.7}
    assert cpu_path.choose(fast) == "bf16"
    assert cpu_path.choose({**fast, "speedup": 0.1}) == "fp32"  # an AVX2-only CPU
    assert cpu_path.choose({**fast, "agrees": False}) == "fp32"


def test_agreement_of_images_and_of_classifier_outputs():
    a = np.full((2, 8, 8, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] += 3
    assert cpu_path.image_agreement(a, b)["agrees"]
    b[0, 0, 0, 0] += 6
    assert not cpu_path.image_agreement(a, b)["agrees"]  # one pixel 9 grey levels off
    assert not cpu_path.image_agreement(a, a + 1)["agrees"]  # every pixel 1 off: 1 on average
    logits = np.array([[2.0, 0.0, -1.0, 0.5, 0.3, 0.1, 0.0, 1.0]])
    assert cpu_path.logit_agreement(logits, logits + 0.01)["agrees"]
    assert not cpu_path.logit_agreement(logits, logits + np.eye(8)[0] * 0.5)["agrees"]  # P(in focus) moves 0.07
    assert not cpu_path.logit_agreement(logits, logits + np.eye(8)[5] * 0.1)["agrees"]  # a severity moves 0.1


def run_of(net, **extra):
    return lambda images, precision: run_network(net, images, precision=precision,
                                                 **{k: v[:len(images)] for k, v in extra.items()})


def test_the_measured_bf16_output_is_within_the_tolerance_on_this_cpu():
    net = NeuralRestorer("fast").network("motion")
    figures = cpu_path.measure(run_of(net, angles_deg=np.array([10.0, 30.0, 60.0, 120.0])))
    # what bf16 autocast does to the output, whichever path this CPU takes (the tolerance is what `choose` asks)
    assert figures["mean_grey_difference"] <= cpu_path.MAX_MEAN_GREY_DIFFERENCE
    assert figures["max_grey_difference"] <= cpu_path.MAX_GREY_DIFFERENCE


def test_the_choice_is_made_once_per_machine_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("WSI_DEBLUR_CACHE", str(tmp_path))
    monkeypatch.delenv("WSI_DEBLUR_CPU_PATH", raising=False)
    from wsi_deblur.restore.neural import default_weights

    weights = str(default_weights("fast", "defocus"))
    net = load_deblur_network.__wrapped__(weights)  # a fresh load, as a new process does
    sha = file_sha256(Path(weights))
    cached = json.loads((tmp_path / "cpu-paths.json").read_text())
    assert cached == {f"{cpu_path.cpu_identity()} | {sha}": net.cpu_precision}
    assert cpu_path.cached_cpu_path(sha) == net.cpu_precision
    again = load_deblur_network.__wrapped__(weights)  # the next process reads the choice instead of measuring
    assert again.cpu_precision == net.cpu_precision


def test_a_forced_path_is_taken_and_a_bad_one_refused(monkeypatch):
    net = NeuralRestorer("fast").network("defocus")
    monkeypatch.setenv("WSI_DEBLUR_CPU_PATH", "fp32")
    assert cpu_path.cpu_path(run_of(net), "any") == "fp32"
    monkeypatch.setenv("WSI_DEBLUR_CPU_PATH", "fp16")
    with pytest.raises(ValueError, match="WSI_DEBLUR_CPU_PATH='fp16'"):
        cpu_path.cpu_path(run_of(net), "any")
    with pytest.raises(ValueError, match="WSI_DEBLUR_CPU_PATH='fp16'"):  # what qc.json would record, alike
        cpu_path.cached_cpu_path("any")


def test_bf16_and_fp32_restorations_differ_by_at_most_a_few_grey_levels():
    from skimage.data import immunohistochemistry

    image = immunohistochemistry()[:256, :256][None]
    net = NeuralRestorer("fast").network("defocus")
    a, b = (run_network(net, image, precision=p) for p in ("fp32", "bf16"))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= cpu_path.MAX_GREY_DIFFERENCE


def test_processes_starting_together_measure_once_and_agree(tmp_path, monkeypatch):
    import threading
    import time

    monkeypatch.setenv("WSI_DEBLUR_CACHE", str(tmp_path))
    monkeypatch.delenv("WSI_DEBLUR_CPU_PATH", raising=False)
    calls = []

    def run(images, precision):  # a network that takes a while, as the workers of a cluster all load one at once
        calls.append(precision)
        time.sleep(0.05)
        return images

    choices = []
    threads = [threading.Thread(target=lambda: choices.append(cpu_path.cpu_path(run, "same-weights")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(choices) == 3 and len(set(choices)) == 1
    assert len(calls) == 2 * 3  # one measurement: a warm-up and two timed runs per path, by one of them
