"""What model cards record about how weights and data came to be."""

import shlex

from pipelines.provenance import command_line


def test_the_recorded_command_splits_back_into_the_arguments_given():
    argv = ["--out", "out/data/my pairs.npz", "--n-train", "24000", "--seed", "1"]
    command = command_line("pipelines.restore_data", argv)
    assert command.startswith("python -m pipelines.restore_data ")
    assert shlex.split(command)[3:] == argv  # a path with a space survives a copy and paste into a shell
    assert command_line("pipelines.restore_data", []) == "python -m pipelines.restore_data"


def test_a_training_run_knows_where_it_writes_before_it_trains(tmp_path):
    """--out as a folder writes the shipped name inside it; a file's missing folder is made at the start, and one
    that cannot be made stops the run there (a 30-minute training once died at its last line on a folder given
    as --out)."""
    import pytest

    from pipelines.provenance import weights_out

    default = tmp_path / "models" / "deblur_dbmid_motion.safetensors"
    assert weights_out(tmp_path, default) == tmp_path / "deblur_dbmid_motion.safetensors"
    assert weights_out(tmp_path / "w.safetensors", default) == tmp_path / "w.safetensors"
    assert weights_out(tmp_path / "new" / "w.safetensors", default).parent.is_dir()
    assert weights_out(None, default) == default and default.parent.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit, match="cannot make folder"):
        weights_out(tmp_path / "file" / "w.safetensors", default)
