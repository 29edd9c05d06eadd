"""The training pipeline's pieces on a few real steps (the full run is by hand)."""

import numpy as np
import pytest
import torch

from pipelines.train_classifier import confusion_matrix, evaluate
from wsi_deblur.blur.simulate import sample_params, simulate
from wsi_deblur.nets.blurnet import BlurNet
from wsi_deblur.synthetic import SyntheticSlide
from wsi_deblur.training.batches import to_tensor
from wsi_deblur.training.losses import blurnet_loss as loss_fn


def small_dataset(n=48, size=64, seed=0):
    rng = np.random.default_rng(seed)
    field = SyntheticSlide((512, 512), tissue=False).render(0, 0, 512, 512)
    images, labels, severity = [], [], []
    for k in range(n):
        label = ("in_focus", "defocus", "motion", "mixed")[k % 4]
        y, x = rng.integers(0, 512 - size, 2)
        p = sample_params(label, rng)
        images.append(simulate(field[y:y + size, x:x + size], p, rng))
        labels.append(k % 4)
        severity.append([p.defocus_um, p.motion_length_px, p.motion_angle_deg, 0.75])
    return np.stack(images), np.array(labels), np.array(severity, np.float32)


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    images, labels, severity = small_dataset()
    net = BlurNet(widths=(8, 8, 16, 16, 16, 16))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y, s = to_tensor(images), torch.from_numpy(labels), torch.from_numpy(severity)
    first = loss_fn(net(x), y, s).item()
    for _ in range(30):
        loss = loss_fn(net(x), y, s)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
    metrics = evaluate(net, images, labels, severity)
    confusion = np.array(metrics["confusion"])
    assert confusion.sum() == len(labels)
    assert metrics["accuracy"] == np.trace(confusion) / len(labels)


def test_per_field_accuracy_adds_up_to_the_whole():
    images, labels, severity = small_dataset(n=24)
    fields = np.arange(len(labels)) % 3
    net = BlurNet(widths=(8, 8, 16, 16, 16, 16))
    metrics = evaluate(net, images, labels, severity, fields=fields, sources=["a.png", "b.png", "c.png"])
    per_field = metrics["per_field"]
    assert sorted(per_field) == ["a.png", "b.png", "c.png"]
    assert sum(v["n"] for v in per_field.values()) == len(labels)
    weighted = sum(v["accuracy"] * v["n"] for v in per_field.values()) / len(labels)
    assert np.isclose(weighted, metrics["accuracy"])


def test_confusion_matrix_counts_each_true_predicted_pair():
    rng = np.random.default_rng(0)
    labels, pred = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    expected = np.zeros((4, 4), int)
    for t, p in zip(labels, pred):
        expected[t, p] += 1
    m = confusion_matrix(labels, pred)
    np.testing.assert_array_equal(m, expected)
    assert np.trace(m) == (labels == pred).sum()


@pytest.mark.parametrize("steps", [1, 2, 10, 19])
def test_a_short_run_of_any_length_trains_without_error(steps):
    """`wsi-deblur adapt --steps 10` died in the one-cycle schedule after minutes of work."""
    from wsi_deblur.training.loops import Schedule, fit_blurnet

    images, labels, severity = small_dataset()
    net = BlurNet(widths=(8, 8, 16, 16, 16, 16))
    fit_blurnet(net, images, labels, severity, Schedule(steps, 4, 1e-3), np.random.default_rng(0))
    assert all(torch.isfinite(p).all() for p in net.parameters())
