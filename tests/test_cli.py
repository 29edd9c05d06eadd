"""The command line as users run it: real subprocesses, real files."""

import csv
import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import zarr
from PIL import Image


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "wsi_deblur.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


SMALL = ["--tile-size", "256", "--halo", "16", "--chunk", "512"]


def test_bad_inputs_get_one_line_each_and_the_batch_goes_on(tmp_path, small_slide):
    (tmp_path / "empty.svs").write_bytes(b"")
    (tmp_path / "text.svs").write_text("not a slide\n")
    cut = tmp_path / "cut.ome.tif"
    cut.write_bytes(small_slide.read_bytes()[:5000])
    out = tmp_path / "out"
    r = cli("qc", tmp_path / "missing.svs", tmp_path / "empty.svs", tmp_path / "text.svs", cut, small_slide,
            "-o", out, *SMALL)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, r.stderr
    for name, reason in [("missing.svs", "no such file"), ("empty.svs", "empty"), ("text.svs", "can read"),
                         ("cut.ome.tif", "")]:
        assert any(name in e and reason in e for e in errors), (name, errors)
    assert "Traceback" not in r.stderr
    # the good slide still produced its outputs; the bad ones left nothing
    outputs = sorted(p.name for p in out.iterdir() if p.name != ".wsi-deblur.lock")  # the lock stays: see write/lock
    assert outputs == ["manifest.json", "qc.csv", "report.html", "small.blurmap.csv", "small.blurmap.geojson",
                       "small.blurmap.png", "small.focus.png", "small.qc.json"]
    rows = list(csv.DictReader(open(out / "qc.csv")))
    assert [r["status"] for r in rows] == ["failed"] * 4 + ["ok"]
    assert "no such file" in rows[0]["error"] and rows[4]["verdict"] in ("review", "rescan")


@pytest.mark.parametrize("command", ["qc", "info"])
def test_debug_shows_the_traceback_and_only_then(tmp_path, command):
    out = ["-o", tmp_path / "out"] if command == "qc" else []
    plain = cli(command, tmp_path / "missing.svs", *out)
    debug = cli(command, tmp_path / "missing.svs", *out, "--debug")
    assert plain.returncode == debug.returncode == 1
    assert "no such file" in plain.stderr and "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr and "no such file" in debug.stderr


def test_run_end_to_end_on_a_field_with_mpp(tmp_path):
    from wsi_deblur.synthetic import SyntheticSlide

    rgb = SyntheticSlide((600, 700), tissue=False).render(0, 0, 600, 700)
    Image.fromarray(rgb).save(tmp_path / "field.png")
    r = cli("run", tmp_path / "field.png", "-o", tmp_path / "out", "--mpp", "0.25", *SMALL)
    assert r.returncode == 0, r.stderr
    qc = json.loads((tmp_path / "out" / "field.qc.json").read_text())
    assert qc["mpp"] == 0.25 and qc["reader"] == "pillow"
    level0 = zarr.open_group(str(tmp_path / "out" / "field.ome.zarr"), mode="r")["0"][:].transpose(1, 2, 0)
    assert level0.shape == (600, 700, 3)


def test_info_prints_json_lines(small_slide):
    r = cli("info", small_slide)
    assert r.returncode == 0
    info = json.loads(r.stdout.splitlines()[0])
    assert info["width_px"] == 1300 and info["height_px"] == 1100 and info["mpp"] == 0.5
    assert info["vendor"] == "ome-tiff"  # an OME-TIFF (ours too) is one, not OpenSlide's "generic-tiff"
    r = cli("info", small_slide.parent)  # a folder, as qc and run take it
    assert r.returncode == 0 and small_slide.name in {Path(json.loads(line)["path"]).name
                                                      for line in r.stdout.splitlines()}


def test_same_stem_twice_is_refused_for_the_second(tmp_path, small_slide):
    other = tmp_path / "b"
    other.mkdir()
    (other / "small.ome.tif").write_bytes(small_slide.read_bytes())
    r = cli("qc", small_slide, other / "small.ome.tif", "-o", tmp_path / "out", *SMALL)
    assert r.returncode == 1 and "would overwrite" in r.stderr


def test_folder_input_takes_its_slides(tmp_path, small_slide):
    folder = tmp_path / "slides"
    folder.mkdir()
    (folder / "a.ome.tif").write_bytes(small_slide.read_bytes())
    (folder / "notes.txt").write_text("not a slide")
    r = cli("qc", folder, "-o", tmp_path / "out", *SMALL)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "a.qc.json").exists()


@pytest.mark.shared_data
def test_real_slide_end_to_end(tmp_path, real_svs):
    from ome_zarr_models import open_ome_zarr

    r = cli("run", real_svs, "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    group = zarr.open_group(str(tmp_path / "CMU-1-Small-Region.ome.zarr"), mode="r")
    open_ome_zarr(group)
    shapes = [group[k].shape for k in sorted(group.array_keys(), key=int)]
    assert len(shapes) >= 3 and shapes[0] == (3, 2967, 2220)
    import tifffile

    with tifffile.TiffFile(tmp_path / "CMU-1-Small-Region.ome.tif") as tif:
        assert len(tif.series[0].levels) == len(shapes)
        assert tif.series[0].levels[0].shape == (2967, 2220, 3)
    qc = json.loads((tmp_path / "CMU-1-Small-Region.qc.json").read_text())
    assert 0.2 < qc["tissue_fraction"] < 0.6 and qc["mpp"] == pytest.approx(0.499)
    # a sharp scan: nearly all tissue in focus, so level 0 is the input where nothing was restored
    assert qc["blur_fractions_of_tissue"]["in_focus"] >= 0.9
    if qc["restored_tiles"] == 0:
        from wsi_deblur.io import open_slide

        np.testing.assert_array_equal(group["0"][:].transpose(1, 2, 0),
                                      open_slide(real_svs).read_region(0, 0, 2967, 2220))


def test_adapt_then_classify_and_run_with_the_weights(tmp_path, small_slide):
    weights = tmp_path / "site"
    r = cli("adapt", small_slide, "-o", weights, "--steps", "2", "--max-tiles", "6", "--tile-size", "256",
            "--pairs", "24")
    assert r.returncode == 0, r.stderr
    assert "adapt: sampled" in r.stderr and "Traceback" not in r.stderr
    assert (weights / "adaptation.md").is_file() and (weights / "adaptation.json").is_file()
    assert sum(line.endswith(")") and ".safetensors: " in line for line in r.stdout.splitlines()) == 4
    c = cli("classify", small_slide, "--weights", weights)
    assert c.returncode == 0, c.stderr
    assert json.loads(c.stdout.splitlines()[0])["weights"] == str(weights.resolve())
    missing = cli("run", small_slide, "-o", tmp_path / "out", "--weights", tmp_path / "nowhere", *SMALL)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"error: {tmp_path / 'nowhere'}: --weights needs a folder "
                                                   "written by `wsi-deblur adapt`, and this is not a folder"]
    assert not (tmp_path / "out").exists()


def test_an_empty_folder_or_a_glob_matching_nothing_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "empty" / "*.svs"):
        r = cli("qc", target, "-o", tmp_path / "out")
        assert r.returncode == 2 and r.stderr.startswith("error: no slides in"), r.stderr
    assert not (tmp_path / "out").exists()


def test_restore_refuses_a_second_input_with_the_same_name(tmp_path):
    from wsi_deblur.synthetic import SyntheticSlide

    rgb = SyntheticSlide((200, 200), tissue=False).render(0, 0, 200, 200)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.fromarray(rgb).save(tmp_path / folder / "field.png")
    r = cli("restore", tmp_path / "a" / "field.png", tmp_path / "b" / "field.png", "-o", tmp_path / "out",
            "--mpp", "0.5", "--blur-type", "in_focus")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'b' / 'field.png'}: its output would overwrite that "
                                             f"of {tmp_path / 'a' / 'field.png'} (same name 'field')"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["field.png"]


def test_warnings_are_logged_once_and_quiet_silences_them(tmp_path):
    from wsi_deblur.synthetic import SyntheticSlide

    Image.fromarray(SyntheticSlide((96, 96), tissue=False).render(0, 0, 96, 96)).save(tmp_path / "f.png")
    plain = cli("classify", tmp_path / "f.png")
    assert plain.returncode == 0
    assert [line for line in plain.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {tmp_path / 'f.png'}: no pixel size in the file; 0.5 um/px assumed (pass --mpp; a 40x scan is "
        "about 0.25)"]
    quiet = cli("classify", tmp_path / "f.png", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == plain.stdout


@pytest.fixture
def full_disk(tmp_path):
    """A 3 MB tmpfs: full after the first few Zarr chunks (needs root; skipped where mount is not allowed)."""
    import shutil
    import subprocess

    mount_point = tmp_path / "full"
    mount_point.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs",
                                                        str(mount_point)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], capture_output=True)


def test_a_full_disk_is_one_error_line_and_leaves_no_partial_output(full_disk, small_slide):
    out = full_disk / "out"
    r = cli("run", small_slide, "-o", out, "--no-progress")
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], r.stderr
    assert not [p.name for p in out.iterdir() if ".partial-" in p.name]
    assert json.loads((out / "manifest.json").read_text())["slides"]["small"]["status"] == "failed"


def test_every_option_of_every_command_says_what_it_does_and_version_prints():
    from wsi_deblur import __version__
    from wsi_deblur.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    silent = [(name, a.option_strings) for name, sub in commands.items() for a in sub._actions
              if a.option_strings and not a.help]
    assert not silent
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"wsi-deblur {__version__}"


def test_a_slide_given_by_a_relative_path_is_recorded_by_its_absolute_one(tmp_path, small_slide):
    (tmp_path / "rel.ome.tif").write_bytes(small_slide.read_bytes())
    r = cli("qc", "rel.ome.tif", "-o", "out", *SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where = str(tmp_path / "rel.ome.tif")
    assert json.loads((tmp_path / "out" / "rel.qc.json").read_text())["slide"] == where
    with open(tmp_path / "out" / "qc.csv", newline="") as f:
        assert next(csv.DictReader(f))["slide"] == where
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["slides"]["rel"]["slide"] == where


def test_the_demo_runs_and_lists_every_output(tmp_path, capsys):
    from wsi_deblur.cli import main

    assert main(["demo", "-o", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    results = tmp_path / "results"
    made = {p.name for p in results.iterdir() if not p.name.startswith(".")}  # the lock file stays hidden
    assert {"report.html", "qc.csv", "manifest.json", "example-slide.ome.zarr", "example-slide.ome.tif",
            "example-slide.review"} <= made
    listed = {name for name in made if str(results / name) in printed}
    assert listed == made, made - listed


def test_quiet_run_prints_nothing_but_errors(tmp_path, small_slide):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide")
    done = cli("qc", small_slide, bad, "-o", tmp_path / "out", "-q", "--no-progress", *SMALL)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines()[0].startswith(f"error: {bad}")
    assert (tmp_path / "out" / "small.qc.json").is_file()  # the good slide was done, silently


def test_a_weights_folder_without_networks_is_said_in_one_line(tmp_path, small_slide):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "adaptation.json").write_text("{}")  # an adaptation that kept no network
    done = cli("run", small_slide, "-o", tmp_path / "out", "--weights", folder, "--no-progress", "--no-tiff", *SMALL)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "blur_classifier.safetensors, deblur_fast_defocus.safetensors" in warnings[0]


def test_the_result_line_says_why_a_slide_has_its_verdict(tmp_path):
    """An image without tissue gets REVIEW, and the line says why (not a bare verdict)."""
    Image.fromarray(np.full((600, 800, 3), 245, np.uint8)).save(tmp_path / "glass.png")
    done = cli("qc", tmp_path / "glass.png", "-o", tmp_path / "out", "--mpp", "0.5", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "REVIEW (0 tissue tiles: too little tissue to judge)" in done.stdout
