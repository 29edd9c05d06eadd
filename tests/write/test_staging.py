import pytest

from wsi_deblur.write.staging import StagedOutputs


def test_failure_leaves_nothing_under_final_names(tmp_path):
    with pytest.raises(RuntimeError):
        with StagedOutputs(tmp_path, "s") as staged:
            staged.path("s.qc.json").write_text("{}")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_commit_moves_and_replaces(tmp_path):
    (tmp_path / "s.qc.json").write_text("old")
    with StagedOutputs(tmp_path, "s") as staged:
        staged.path("s.qc.json").write_text("new")
        staged.path("s.ome.zarr").mkdir()
        staged.commit()
    assert (tmp_path / "s.qc.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.ome.zarr", "s.qc.json"]


def test_interrupted_resumable_staging_is_kept_and_resumed(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with StagedOutputs(tmp_path, "s", resume_key="k1") as staged:
            assert not staged.resumed
            staged.path("part.bin").write_bytes(b"x")
            raise KeyboardInterrupt
    again = StagedOutputs(tmp_path, "s", resume_key="k1")
    assert again.resumed and again.path("part.bin").read_bytes() == b"x"
    other = StagedOutputs(tmp_path, "s", resume_key="k2")  # other settings: the old folder cannot be resumed
    assert not other.resumed and not again.staging.exists()


def test_resumable_staging_is_removed_on_error(tmp_path):
    with pytest.raises(ValueError):
        with StagedOutputs(tmp_path, "s", resume_key="k1") as staged:
            staged.path("s.qc.json").write_text("{}")
            raise ValueError("bad slide")
    assert list(tmp_path.iterdir()) == []


def test_hidden_bookkeeping_is_not_committed(tmp_path):
    with StagedOutputs(tmp_path, "s", resume_key="k1") as staged:
        staged.path(".resume").mkdir()
        staged.path("s.qc.json").write_text("{}")
        assert staged.commit() == [tmp_path / "s.qc.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.qc.json"]
