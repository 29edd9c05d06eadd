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
