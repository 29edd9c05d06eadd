"""The restoration training pipeline end to end on a tiny dataset (the full run is by hand)."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from pipelines.blur_data import save_splits
from wsi_deblur.blur.estimate import BLUR_CLASSES
from wsi_deblur.blur.simulate import sample_params, simulate
from wsi_deblur.nets.runtime import load_deblur_network
from wsi_deblur.restore.neural import NeuralRestorer, default_weights
from wsi_deblur.synthetic import SyntheticSlide


def tiny_pairs(n, size, rng):
    field = SyntheticSlide((512, 512), tissue=False).render(0, 0, 512, 512)
    out = {"blurred": [], "sharp": [], "stage": [], "kind": [], "params": []}
    for k in range(n):
        kind = BLUR_CLASSES[k % 4]
        y, x = rng.integers(0, 512 - size, 2)
        sharp = field[y:y + size, x:x + size]
        p = sample_params(kind, rng)
        out["blurred"].append(simulate(sharp, p, rng))
        out["sharp"].append(sharp)
        out["stage"].append(sharp)
        out["kind"].append(k % 4)
        out["params"].append([p.defocus_um, p.motion_length_px, p.motion_angle_deg, 0.75, 0.0])
    return {k: np.array(v) for k, v in out.items()}


def tiny_dataset(folder, n_train, n_test, seed):
    """A pairs file as ``pipelines.restore_data`` writes it: train 48-px and test 64-px pairs."""
    rng = np.random.default_rng(seed)
    train, test = tiny_pairs(n_train, 48, rng), tiny_pairs(n_test, 64, rng)
    data = folder / "pairs.npz"
    command = f"python -m pipelines.restore_data --n-train {n_train} --seed {seed} --out '{data}'"
    save_splits(data, train, test, {"train": ["a.png"], "test": ["b.png"]}, command=command)
    return data, test


def test_a_failed_save_keeps_the_complete_pairs_file_it_would_replace(tmp_path):
    data, test = tiny_dataset(tmp_path, 8, 4, seed=2)

    class Unwritable:  # fails half-way through the archive, after the train arrays are in
        def __array__(self, *args, **kwargs):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_splits(data, {"blurred": test["blurred"]}, {"blurred": Unwritable()}, {"train": [], "test": []})
    with np.load(data) as kept:  # still the earlier, complete file
        np.testing.assert_array_equal(kept["test_blurred"], test["blurred"])
        assert "--seed 2" in str(kept["command"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.npz"]  # no partial file left behind


def test_training_writes_loadable_safetensors_and_a_card(tmp_path):
    data, test = tiny_dataset(tmp_path, 16, 8, seed=0)
    weights = tmp_path / "deblur_fast_defocus.safetensors"
    r = subprocess.run([sys.executable, "-m", "pipelines.train_restorer", "--arch", "fast", "--blur", "defocus",
                        "--data", data, "--steps", "3", "--batch", "4", "--loss", "l1+ssim", "--out", weights],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    net = load_deblur_network(str(weights))
    assert type(net).__name__ == "FastDeblurNet"
    card = weights.with_suffix(".md").read_text()
    assert hashlib.sha256(weights.read_bytes()).hexdigest() in card
    assert "| defocus | 2 |" in card and "| in_focus | 2 |" in card  # the held-out rows it was scored on
    assert "L1+SSIM loss" in card and "--loss l1+ssim" in card
    restored = NeuralRestorer("fast", weights_dir=str(tmp_path)).restore_as(test["blurred"][:1], "defocus")
    assert restored.shape == test["blurred"][:1].shape


def test_bcr_trains_one_network_for_every_blur_told_the_psf(tmp_path):
    from wsi_deblur.blur.estimate import BlurEstimate

    data, test = tiny_dataset(tmp_path, 16, 8, seed=1)
    weights = tmp_path / "deblur_bcr_all.safetensors"
    r = subprocess.run([sys.executable, "-m", "pipelines.train_restorer", "--arch", "bcr", "--blur", "all",
                        "--data", data, "--steps", "3", "--batch", "4", "--out", weights],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert type(load_deblur_network(str(weights))).__name__ == "BCRNet"
    card = weights.with_suffix(".md").read_text()
    assert all(f"| {kind} | 2 |" in card for kind in BLUR_CLASSES)  # one network scored on every kind
    assert "L1+SSIM+FOURIER loss" in card and "told the PSF" in card
    restorer = NeuralRestorer("bcr", weights_dir=str(tmp_path))
    out = restorer.restore(test["blurred"][:2], [BlurEstimate("defocus", defocus_sigma_px=2.0),
                                                 BlurEstimate("motion", motion_length_px=12.0, motion_angle_deg=40.0)])
    assert out.shape == test["blurred"][:2].shape
    r = subprocess.run([sys.executable, "-m", "pipelines.train_restorer", "--arch", "bcr", "--blur", "defocus",
                        "--data", data, "--steps", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--arch bcr trains all, not --blur defocus" in r.stderr


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    from safetensors.torch import load_file

    data, _ = tiny_dataset(tmp_path, 8, 4, seed=1)
    init = default_weights("fast", "motion")
    weights = tmp_path / "deblur_fast_motion.safetensors"
    r = subprocess.run([sys.executable, "-m", "pipelines.train_restorer", "--arch", "fast", "--blur", "motion",
                        "--data", data, "--steps", "1", "--batch", "2", "--lr", "1e-12", "--init", init,
                        "--out", weights], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    start, tuned = load_file(str(init)), load_file(str(weights))
    assert start.keys() == tuned.keys()
    for name in start:  # one step at a vanishing learning rate: still the shipped network
        np.testing.assert_allclose(tuned[name].numpy(), start[name].numpy(), atol=1e-6)
    card = weights.with_suffix(".md").read_text()
    assert f"sha256 {hashlib.sha256(init.read_bytes()).hexdigest()[:16]}" in card and "--init" in card
    assert load_deblur_network(str(weights)).directional and "folded by direction" in card  # fast DL_motion
    # The card names the pairs file and the command that wrote it, so the training can be repeated.
    assert f"--data {data} " in card and f"python -m pipelines.restore_data --n-train 8 --seed 1 --out '{data}'" in card


def test_each_network_learns_its_kinds_towards_its_target():
    from pipelines.train_restorer import select

    rng = np.random.default_rng(4)
    pairs = tiny_pairs(8, 16, rng)
    pairs["stage"] = pairs["sharp"] // 2  # tell the two targets apart
    data = {f"train_{k}": v for k, v in pairs.items()}
    kinds = {blur: select(data, "train", blur)[2] for blur in ("defocus", "motion", "mixed")}
    named = {blur: {BLUR_CLASSES[k] for k in v} for blur, v in kinds.items()}
    assert named == {"defocus": {"in_focus", "defocus"}, "motion": {"in_focus", "motion", "mixed"},
                     "mixed": {"in_focus", "mixed"}}
    for blur, target in (("defocus", "sharp"), ("motion", "stage"), ("mixed", "sharp")):
        keep = np.isin(pairs["kind"], kinds[blur])
        np.testing.assert_array_equal(select(data, "train", blur)[1], pairs[target][keep])


def test_mixed_pairs_teach_dl_motion_to_leave_the_defocus(shared_data):
    from pipelines.blur_data import source_images
    from pipelines.restore_data import make_pair

    path = str(shared_data / source_images(shared_data)["train"][0])
    rng = np.random.default_rng(3)
    made = {}
    for kind in ("in_focus", "mixed"):
        while kind not in made:
            made[kind] = make_pair(path, 64, rng, kind) or made.get(kind)
            if made[kind] is None:
                del made[kind]
    blurred, sharp, stage, params = made["mixed"]
    assert blurred.shape == sharp.shape == stage.shape == (64, 64, 3)
    assert not np.array_equal(stage, sharp)  # the defocus is still in DL_motion's target
    err_stage = np.abs(stage.astype(float) - sharp).mean()
    assert err_stage > 1.0 and params[4] >= 1.2
    _, sharp_f, stage_f, params_f = made["in_focus"]
    np.testing.assert_array_equal(stage_f, sharp_f)
    assert params_f[4] <= 0.5


def test_a_three_level_network_grows_from_two_level_weights(tmp_path):
    import json

    import torch
    from safetensors.torch import load_file, save_file

    from wsi_deblur.nets.fast import FastDeblurNet

    data, test = tiny_dataset(tmp_path, 8, 4, seed=2)
    torch.manual_seed(0)
    two = FastDeblurNet((32, 96))
    init = tmp_path / "two" / "deblur_fast_defocus.safetensors"
    init.parent.mkdir()
    save_file(two.state_dict(), str(init), metadata={"config": json.dumps(
        {"architecture": "fast", "widths": [32, 96], "blur": "defocus"}), "format": "pt"})
    weights = tmp_path / "three" / "deblur_fast_defocus.safetensors"
    r = subprocess.run([sys.executable, "-m", "pipelines.train_restorer", "--arch", "fast", "--blur", "defocus",
                        "--data", data, "--steps", "1", "--batch", "2", "--lr", "1e-12", "--widths", "32", "96", "96",
                        "--init", init, "--out", weights], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    grown = load_deblur_network(str(weights))
    assert grown.widths == (32, 96, 96) and "--widths 32 96 96" in weights.with_suffix(".md").read_text()
    assert set(load_file(str(weights))) > set(load_file(str(init)))
    before = NeuralRestorer("fast", weights_dir=str(init.parent)).restore_as(test["blurred"], "defocus")
    after = NeuralRestorer("fast", weights_dir=str(weights.parent)).restore_as(test["blurred"], "defocus")
    assert np.abs(after.astype(int) - before.astype(int)).max() <= 1  # the new level starts as a no-op


def test_start_weights_of_another_architecture_are_refused(tmp_path):
    data, _ = tiny_dataset(tmp_path, 8, 4, seed=3)
    r = subprocess.run([sys.executable, "-m", "pipelines.train_restorer", "--arch", "fast", "--blur", "defocus",
                        "--data", data, "--steps", "1", "--batch", "2", "--init", default_weights("dbmid", "defocus"),
                        "--out", tmp_path / "w.safetensors"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "deblur_dbmid_defocus.safetensors: weights of another architecture" in r.stderr
    assert not (tmp_path / "w.safetensors").exists()


def test_each_pair_records_the_field_it_was_cut_from(tmp_path):
    import tifffile

    from pipelines.restore_data import _worker

    texture = SyntheticSlide((256, 256), tissue=False).render(0, 0, 256, 256).astype(float)
    paths = []
    for name, keep in (("reddish", (1.0, 0.6, 0.3)), ("bluish", (0.3, 0.6, 1.0))):
        paths.append(str(tmp_path / f"{name}.tif"))
        tifffile.imwrite(paths[-1], (texture * keep).astype(np.uint8))
    pairs = _worker((paths, 16, 32, 5))

    assert set(pairs["field"]) == {0, 1} and len(pairs["field"]) == len(pairs["kind"]) == 16
    red_over_blue = pairs["sharp"][..., 0].mean(axis=(1, 2)) > pairs["sharp"][..., 2].mean(axis=(1, 2))
    np.testing.assert_array_equal(red_over_blue, pairs["field"] == 0)
