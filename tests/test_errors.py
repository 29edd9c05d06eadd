"""The error family: each error of the package is a WsiDeblurError and the built-in of its kind."""

import pytest

from wsi_deblur.errors import EXIT_FAILED, EXIT_USAGE, OptionError, SlideError, WsiDeblurError
from wsi_deblur.io import open_slide
from wsi_deblur.pipeline.options import RunOptions
from wsi_deblur.pipeline.scheduler import SchedulerLost
from wsi_deblur.write.lock import OutputInUse


@pytest.mark.parametrize("error, builtin", [(SlideError, ValueError), (OptionError, ValueError),
                                            (OutputInUse, OSError), (SchedulerLost, ConnectionError)])
def test_every_error_is_ours_and_a_builtin(error, builtin):
    assert issubclass(error, WsiDeblurError) and issubclass(error, builtin)


def test_a_bad_option_is_an_option_error_naming_the_closest_choice():
    with pytest.raises(OptionError, match="did you mean 'bcr'"):
        RunOptions(restorer="bcn")


def test_an_unreadable_file_keeps_its_cause(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + b"\x00" * 64)
    with pytest.raises(ValueError) as info:  # callers may catch the built-in
        open_slide(path)
    assert isinstance(info.value, SlideError) and str(path) in str(info.value)
    assert info.value.__cause__ is not None  # --debug shows what the reader said


def test_the_command_exits_1_for_a_bad_slide_and_2_for_a_bad_option(tmp_path):
    from wsi_deblur.cli import main

    (tmp_path / "x.svs").write_bytes(b"not a slide")
    assert main(["info", str(tmp_path / "x.svs")]) == EXIT_FAILED
    assert main(["qc", str(tmp_path / "x.svs"), "-o", str(tmp_path / "out"), "--tile-size", "0"]) == EXIT_USAGE
