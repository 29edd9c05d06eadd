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
