"""What model cards record about how weights and data came to be."""

import shlex

from pipelines.provenance import command_line


def test_the_recorded_command_splits_back_into_the_arguments_given():
    argv = ["--out", "out/data/my pairs.npz", "--n-train", "24000", "--seed", "1"]
    command = command_line("pipelines.restore_data", argv)
    assert command.startswith("python -m pipelines.restore_data ")
    assert shlex.split(command)[3:] == argv  # a path with a space survives a copy and paste into a shell
    assert command_line("pipelines.restore_data", []) == "python -m pipelines.restore_data"
