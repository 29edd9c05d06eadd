"""Batches: the manifest, verified skipping of completed slides, failures recorded."""

from dataclasses import replace
import json
import os
import shutil

import pytest

from wsi_deblur.pipeline import RunOptions, process_batch

SMALL = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False)


def test_rerun_skips_verified_slides_and_redoes_changed_ones(tmp_path, small_slide):
    slides = tmp_path / "slides"
    slides.mkdir()
    a, b = slides / "a.ome.tif", slides / "b.ome.tif"
    shutil.copy(small_slide, a)
    shutil.copy(small_slide, b)
    (slides / "bad.svs").write_text("not a slide")
    out = tmp_path / "out"

    first = process_batch([slides], out, replace(SMALL, restore=False))
    assert len(first.results) == 2 and len(first.failures) == 1
    manifest = json.loads((out / "manifest.json").read_text())["slides"]
    assert manifest["a"]["status"] == manifest["b"]["status"] == "done"
    assert manifest["bad"]["status"] == "failed" and "can read" in manifest["bad"]["error"]
    stamp = os.stat(out / "a.qc.json").st_mtime_ns

    second = process_batch([slides], out, replace(SMALL, restore=False))
    assert sorted(r.stem for r in second.skipped) == ["a", "b"] and not second.results
    assert len(second.failures) == 1  # failed slides are retried
    assert os.stat(out / "a.qc.json").st_mtime_ns == stamp
    assert len(list(csv_rows(out))) == 3  # the batch table still lists every slide

    os.utime(b, (1_000_000, 1_000_000))  # the slide changed
    (out / "a.blurmap.png").unlink()  # an output went missing
    third = process_batch([slides], out, replace(SMALL, restore=False))
    assert sorted(r.stem for r in third.results) == ["a", "b"] and not third.skipped

    other = process_batch([slides], out, RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False,
                                                    rescan_fraction=0.5, restore=False))
    assert len(other.results) == 2  # other settings: redone

    forced = process_batch([a], out, replace(SMALL, restore=False), force=True)
    assert len(forced.results) == 1


def csv_rows(out):
    import csv

    with open(out / "qc.csv") as f:
        yield from csv.DictReader(f)


def test_a_slide_named_with_a_leading_dot_gets_visible_outputs_and_hidden_files_are_not_slides(tmp_path,
                                                                                                small_slide):
    slides = tmp_path / "slides"
    slides.mkdir()
    shutil.copy(small_slide, slides / ".x.ome.tif")
    (slides / "._y.svs").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # what macOS leaves beside copied files
    out = tmp_path / "out"
    named = process_batch([slides / ".x.ome.tif"], out, SMALL)
    assert not named.failures and [r.stem for r in named.results] == ["x"]
    listed = json.loads((out / "manifest.json").read_text())["slides"]["x"]["outputs"]
    assert listed and all((out / os.path.basename(p)).exists() for p in listed)
    assert (out / "x.qc.json").is_file() and (out / "x.ome.zarr").is_dir()
    with pytest.raises(ValueError, match="no slides in"):  # the folder holds only hidden files
        process_batch([slides], tmp_path / "out2", replace(SMALL, restore=False))
    assert not (tmp_path / "out2").exists()


@pytest.mark.parametrize("damage", ['[1, 2]', '{"stem": "a", "verdict": null}', "not json",
                                    '{"stem": "a", "outputs": "a.qc.json", "verdict": "pass"}'])
def test_a_damaged_qc_json_or_manifest_makes_the_slide_be_redone_not_the_batch_crash(tmp_path, small_slide, damage):
    slides = tmp_path / "slides"
    slides.mkdir()
    shutil.copy(small_slide, slides / "a.ome.tif")
    shutil.copy(small_slide, slides / "b.ome.tif")
    out = tmp_path / "out"
    options = replace(SMALL, restore=False)
    first = process_batch([slides], out, options)
    (out / "a.qc.json").write_text(damage)
    again = process_batch([slides], out, options)
    assert [r.stem for r in again.results] == ["a"] and [r.stem for r in again.skipped] == ["b"]
    (out / "manifest.json").write_text(damage)
    assert len(process_batch([slides], out, options).results) == len(first.results)


def test_a_restored_image_of_the_output_folder_is_refused_as_input(tmp_path, small_slide):
    out = tmp_path / "out"
    process_batch([small_slide], out, replace(SMALL, tiff=False))
    outcome = process_batch([out / "small.ome.zarr"], out, replace(SMALL, tiff=False))
    assert len(outcome.failures) == 1 and "an output of this folder" in outcome.failures[0].reason


def test_a_slide_that_failed_and_then_worked_counts_once_by_its_last_outcome(tmp_path, small_slide):
    """A watch retries a slide after a full disk is freed: the batch must not end with "1 failed"."""
    from wsi_deblur.pipeline.batch import Batch

    path = tmp_path / "slide.ome.tif"
    path.write_text("not yet a slide")
    with Batch(tmp_path / "out", replace(SMALL, restore=False)) as batch:
        batch.process(str(path))
        assert len(batch.outcome.failures) == 1
        shutil.copy(small_slide, path)
        batch.process(str(path))
    assert not batch.outcome.failures and len(batch.outcome.results) == 1


def test_a_slide_name_too_long_for_its_outputs_is_refused_and_the_batch_goes_on(tmp_path, small_slide):
    slides = tmp_path / "slides"
    slides.mkdir()
    shutil.copy(small_slide, slides / ("x" * 240 + ".ome.tif"))
    shutil.copy(small_slide, slides / "short.ome.tif")
    outcome = process_batch([slides], tmp_path / "out", replace(SMALL, restore=False))
    assert [r.stem for r in outcome.results] == ["short"]
    assert len(outcome.failures) == 1 and "240 bytes long" in outcome.failures[0].reason


def test_the_tables_are_rewritten_at_most_every_few_seconds_and_always_complete_at_the_end(tmp_path, small_slide,
                                                                                        monkeypatch):
    """20000 slides' tables rewritten after each slide were hours of a batch: throttled, and whole at the end."""
    import shutil

    from wsi_deblur.pipeline import batch as batch_module
    from wsi_deblur.report import batch_csv

    copies = [shutil.copy(small_slide, tmp_path / f"s{k}.ome.tif") for k in range(3)]
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"not a slide")
    writes = []
    original = batch_csv.write_batch_csv
    monkeypatch.setattr(batch_module, "write_batch_csv", lambda path, rows: (writes.append(len(rows)),
                                                                             original(path, rows)))
    monkeypatch.setattr(batch_module, "TABLES_MIN_INTERVAL_S", 3600.0)
    outcome = process_batch([*copies, bad], tmp_path / "out", RunOptions(restore=False, tile_size=256))
    assert len(outcome.results) == 3 and len(outcome.failures) == 1
    assert writes == [1, 4]  # the first slide's, then none until the end of the batch
    assert len((tmp_path / "out" / "qc.csv").read_text().strip().splitlines()) == 1 + 4
