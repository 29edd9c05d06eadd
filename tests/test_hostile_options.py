"""Out-of-range and misspelt options, as a hostile probe tried them: each is refused once, in one line, with
exit status 2, before any slide is opened and before anything is written.
"""

import pytest

from wsi_deblur.cli import main

BAD_OPTIONS = [
    (["run", "--min-confidence", "80"], "min_confidence"),  # a percent for a probability
    (["run", "--min-tissue", "2"], "min_tissue"),
    (["run", "--jpeg-quality", "0"], "jpeg_quality"),
    (["run", "--jpeg-quality", "500"], "jpeg_quality"),
    (["run", "--mpp", "inf"], "mpp"),
    (["run", "--mpp", "-0.5"], "mpp"),
    (["qc", "--tile-size", "0"], "tile_size"),
    (["qc", "--chunk", "0"], "chunk"),
    (["run", "--halo", "-5"], "halo"),
    (["restore", "--device", "bogus"], "device"),
    (["run", "--scheduler", "local", "--workers", "0"], "--workers"),
]


@pytest.mark.parametrize("args, names", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, small_slide, args, names):
    out = tmp_path / "out"
    status = main([args[0], str(small_slide), "-o", str(out), *args[1:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1 and err[0].startswith("error: ") and names in err[0], err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("args, names", [(["--settle", "-1"], "--settle"), (["--poll", "0"], "--poll"),
                                         (["--poll", "nan"], "--poll"), (["--min-tissue", "2"], "min_tissue")])
def test_watch_refuses_bad_timing_in_one_line_before_watching(tmp_path, capsys, args, names):
    folder = tmp_path / "in"
    folder.mkdir()
    status = main(["watch", str(folder), "-o", str(tmp_path / "out"), "--once", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: ") and names in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, close", [(["run", "--restorer", "fsat"], "fast"),
                                         (["restore", "--restorer", "bcn"], "bcr"),
                                         (["run", "--tiff-compression", "jpg"], "jpeg"),
                                         (["restore", "--blur-type", "defcous"], "defocus"),
                                         (["classify", "--classifier", "nerual"], "neural")])
def test_a_misspelt_choice_is_refused_in_one_line_naming_the_choices_and_the_closest(tmp_path, capsys, small_slide,
                                                                                       args, close):
    command = [args[0], str(small_slide), *([] if args[0] == "classify" else ["-o", str(tmp_path / "out")])]
    status = main([*command, *args[1:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "is not one of" in err[0] and f"did you mean '{close}'?" in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage", ["garbage", "nan", "wrong-network", "fifo", "huge-widths"])
def test_a_bad_weights_folder_is_refused_in_one_line_before_any_work(tmp_path, capsys, small_slide, damage):
    """Checked once, before the batch: not one failure per slide, never a hang or a 300-TB allocation."""
    import json
    import os

    import torch
    from safetensors.torch import load_file, save_file

    from wsi_deblur.nets.files import read_config, shipped_dir

    weights = tmp_path / "w"
    weights.mkdir()
    target = weights / "blur_classifier.safetensors"
    shipped = shipped_dir() / "blur_classifier.safetensors"
    tensors, config = load_file(str(shipped)), read_config(shipped)
    if damage == "garbage":
        target.write_bytes(b"\x07" * 100)
    elif damage == "nan":
        save_file({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in tensors.items()},
                  str(target), metadata={"config": json.dumps(config)})
    elif damage == "wrong-network":
        target.write_bytes((shipped_dir() / "deblur_fast_defocus.safetensors").read_bytes())
    elif damage == "fifo":
        os.mkfifo(target)
    else:
        save_file(tensors, str(target), metadata={"config": json.dumps({**config, "widths": [10**9] * 6})})
    status = main(["qc", str(small_slide), "-o", str(tmp_path / "out"), "--weights", str(weights)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "blur_classifier.safetensors" in err[0], err
    assert not (tmp_path / "out").exists()


def test_gpu_without_a_gpu_worker_is_refused_before_any_work(tmp_path, capsys, small_slide):
    status = main(["run", str(small_slide), "-o", str(tmp_path / "out"), "--gpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "--gpu" in err[0] and "no cluster" in err[0], err
    assert not (tmp_path / "out").exists()
