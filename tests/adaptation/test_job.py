"""``adapt`` end to end on a small synthetic slide: a weights folder ``--weights`` can use, never the shipped one changed."""

import json
import logging

import numpy as np
import pytest

from wsi_deblur import RunOptions, adapt, process_slide
from wsi_deblur.adaptation.options import AdaptOptions
from wsi_deblur.errors import OptionError, SlideError
from wsi_deblur.nets.files import shipped_dir
from wsi_deblur.nets.provenance import sha256_of

#: Few steps and pairs: what is tested is the job, not the figures (benchmarks/adapt.py measures those).
QUICK = AdaptOptions(steps=4, max_tiles=12, tile_size=256, pairs=48, batch=4, max_iterations=2)


def _shipped_digests():
    return {p.name: sha256_of(p) for p in sorted(shipped_dir().glob("*.safetensors"))}


@pytest.fixture(scope="module")
def adapted(small_slide, tmp_path_factory):
    before = _shipped_digests()
    out = tmp_path_factory.mktemp("weights") / "site"
    lines = []
    result = adapt([small_slide], out, QUICK, on_progress=lines.append)
    return result, out, lines, before


def test_adapt_writes_a_card_and_only_the_networks_it_kept(adapted):
    result, out, lines, before = adapted
    report = json.loads((out / "adaptation.json").read_text())
    assert report == result.report
    assert report["tiles"]["in_focus"] > 0 and report["tiles"]["blurred"] > 0
    assert report["sources"][0]["sha256"] and report["sources"][0]["name"] == "small.ome.tif"
    for name, entry in report["networks"].items():
        assert (out / entry["file"]).is_file() == entry["kept"], name
        assert entry["reason"]
    card = (out / "adaptation.md").read_text()
    assert "small.ome.tif" in card and "| DL_defocus |" in card and "BlurNet" in card
    for entry in report["networks"].values():
        if entry["kept"]:
            assert sha256_of(out / entry["file"]) in card
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".wsi-deblur.lock"]  # no staging
    assert any("DL_defocus: step 4/4" in line for line in lines)


def test_adapt_never_changes_the_shipped_weights(adapted):
    *_, before = adapted
    assert _shipped_digests() == before


def test_defocus_is_judged_one_level_down_on_the_scanned_blur(adapted):
    result, *_ = adapted
    defocus = result.report["networks"]["defocus"]
    assert defocus["further_degraded_pairs"] > 0  # DeepContrast pairs from the slide's own blurred tiles
    down = defocus["one_level_down"]
    held_defocus = result.report["tiles"]["held_out_blurred"] and down["n"] > 0
    # with held-back defocused tiles: the shipped network once, the adapted one up to max_iterations; else nothing
    assert len(down["shipped"]) == (1 if held_defocus else 0)
    assert (1 <= len(down["adapted"]) <= QUICK.max_iterations) if held_defocus else down["adapted"] == []
    assert 1 <= defocus["iterations"] <= max(1, len(down["adapted"]))


def test_a_run_with_the_adapted_weights_records_which_ran(adapted, small_slide, tmp_path, caplog):
    result, out, *_ = adapted
    (out / "deblur_fast_motion.safetensors").unlink(missing_ok=True)  # one network the folder lacks
    with caplog.at_level(logging.WARNING):
        run = process_slide(small_slide, tmp_path, RunOptions(tile_size=256, tiff=False, weights=str(out)))
    models = run.summary["models"]
    assert models["deblur_fast_motion.safetensors"]["source"] == "shipped"
    assert any("has no " in r.getMessage() and "deblur_fast_motion.safetensors" in r.getMessage()
               for r in caplog.records)
    for name, entry in result.report["networks"].items():
        if entry["kept"] and entry["file"] in models:
            assert models[entry["file"]]["source"] == "adapted"
            assert models[entry["file"]]["sha256"] == sha256_of(out / entry["file"])
    assert json.loads((tmp_path / "small.qc.json").read_text())["settings"]["weights"] == str(out)


def _decisions(report: dict) -> dict:
    """What an adaptation decided and measured, without its timings."""
    return {name: {k: v for k, v in entry.items() if not k.endswith("seconds")}
            for name, entry in report["networks"].items()}


def test_an_interrupted_adaptation_resumes_where_it_stopped(adapted, small_slide, tmp_path):
    class Stop(KeyboardInterrupt):
        pass

    def stop_at_motion(line):
        if line.startswith("DL_motion"):
            raise Stop

    with pytest.raises(Stop):
        adapt([small_slide], tmp_path, QUICK, on_progress=stop_at_motion)
    staging = [p for p in tmp_path.iterdir() if p.name.startswith(".adapt.partial-")]
    assert len(staging) == 1 and not (tmp_path / "adaptation.json").exists()
    lines = []
    result = adapt([small_slide], tmp_path, QUICK, on_progress=lines.append)
    assert "sampled tiles: reused from the interrupted run" in lines
    assert "DL_defocus: reused from the interrupted run" in lines
    assert not any(line.startswith("DL_defocus: step") for line in lines)
    assert (tmp_path / "adaptation.json").is_file() and result.report["networks"]["motion"]["reason"]
    # resumed, it decides and measures what an uninterrupted run does
    assert _decisions(result.report) == _decisions(adapted[0].report)


def test_a_slide_it_cannot_read_is_reported_and_the_others_used(small_slide, tmp_path):
    bad = tmp_path / "broken.svs"
    bad.write_bytes(b"not a slide")
    errors = []
    result = adapt([bad, small_slide], tmp_path / "w", QUICK, on_error=errors.append)
    assert len(errors) == 1 and isinstance(errors[0], SlideError) and "broken.svs" in str(errors[0])
    assert [s["name"] for s in result.report["sources"]] == ["broken.svs", "small.ome.tif"]
    assert "error" in result.report["sources"][0]
    with pytest.raises(SlideError, match="broken.svs"):
        adapt([bad], tmp_path / "w2", QUICK)
    assert not (tmp_path / "w2" / "adaptation.json").exists()


@pytest.mark.parametrize("bad, message", [
    (dict(steps=0), "steps must be a whole number of at least 1"), (dict(held_out=1.0), "held_out is a share in"),
    (dict(crop=100), "crop must be a multiple of 8"), (dict(tile_size=64), "tile_size .* must be at least crop"),
    (dict(pairs=10**9), "pairs must be a whole number of at least 1 and at most 65536"),
    (dict(reader="bioformat"), "reader 'bioformat' is not one of"), (dict(mpp=500), "mpp must be a pixel size"),
])
def test_options_are_checked_when_made(bad, message):
    with pytest.raises(OptionError, match=message):
        AdaptOptions(**bad)


@pytest.mark.parametrize("bad", [dict(mpp=500), dict(mpp=-1), dict(reader="bioformat")])
def test_run_and_adapt_options_agree_on_what_they_refuse(bad):
    for options in (RunOptions, AdaptOptions):
        with pytest.raises(OptionError):
            options(**bad)


def test_no_slides_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no slides or images"):
        adapt([str(tmp_path / "*.svs")], tmp_path / "w")


@pytest.mark.timeout(300)
def test_adapted_weights_give_the_same_run_on_a_local_cluster_as_in_threads(adapted, small_slide, tmp_path):
    import zarr

    from wsi_deblur.pipeline.scheduler import use_scheduler

    _, out, *_ = adapted
    options = RunOptions(tile_size=256, halo=16, chunk=512, zarr_chunk=256, tiff=False, weights=str(out))
    with use_scheduler(None):
        a = process_slide(small_slide, tmp_path / "threads", options)
    with use_scheduler("local", n_workers=1):
        b = process_slide(small_slide, tmp_path / "cluster", options)
    assert a.summary["models"] == b.summary["models"]
    np.testing.assert_array_equal(a.blurmap.label, b.blurmap.label)
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "threads" / "small.ome.zarr"), mode="r")["0"][:],
                                  zarr.open_group(str(tmp_path / "cluster" / "small.ome.zarr"), mode="r")["0"][:])


def test_adapt_into_a_used_folder_leaves_no_earlier_network_or_calibration(small_slide, tmp_path):
    """--weights loads what the folder holds: an earlier run's networks that this one did not keep must go."""
    from wsi_deblur.nets.fast import FastDeblurNet
    from wsi_deblur.nets.files import save_network

    out = tmp_path / "site"
    out.mkdir()
    for blur in ("defocus", "motion", "mixed"):
        save_network(FastDeblurNet((8, 16)), out / f"deblur_fast_{blur}.safetensors", "fast", blur=blur)
    (out / "detection.json").write_text('{"threshold": 0.3}')
    result = adapt([small_slide], out, QUICK)
    kept = {e["file"] for e in result.report["networks"].values() if e["kept"]}
    assert {p.name for p in out.glob("*.safetensors")} == kept
    assert not (out / "detection.json").exists()
