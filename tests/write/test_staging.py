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
        staged.commit(["s.ome.zarr", "s.qc.json"], commit_point="s.qc.json")
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
        assert staged.commit(["s.qc.json"]) == [tmp_path / "s.qc.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.qc.json"]


def test_only_the_named_outputs_are_committed_whatever_their_names(tmp_path):
    with StagedOutputs(tmp_path, ".x") as staged:  # a slide named ".x.svs": its outputs start with a dot too
        staged.path(".x.qc.json").write_text("{}")
        staged.path(".x.blurmap.csv").write_text("")
        staged.path("stray.tmp").write_text("")
        committed = staged.commit([".x.blurmap.csv", ".x.qc.json"], commit_point=".x.qc.json")
    assert committed == [tmp_path / ".x.blurmap.csv", tmp_path / ".x.qc.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.blurmap.csv", ".x.qc.json"]


def test_an_output_that_was_not_made_is_an_error_and_nothing_moves(tmp_path):
    with StagedOutputs(tmp_path, "s") as staged:
        staged.path("s.qc.json").write_text("{}")
        with pytest.raises(FileNotFoundError, match="s.ome.tif"):
            staged.commit(["s.ome.tif", "s.qc.json"], commit_point="s.qc.json")
    assert not (tmp_path / "s.qc.json").exists()


def test_a_commit_killed_midway_leaves_no_commit_point_and_is_not_resumed(tmp_path, monkeypatch):
    import wsi_deblur.write.staging as staging

    (tmp_path / "s.qc.json").write_text("old")
    (tmp_path / "s.ome.tif").write_text("old")
    (tmp_path / "s.blurmap.csv").write_text("old")
    real_move, moves = staging.move, []

    def killed_on_second_move(source, target):
        moves.append(target.name)
        if len(moves) == 3:  # old tif aside, new tif in, then the kill
            raise KeyboardInterrupt
        real_move(source, target)

    monkeypatch.setattr(staging, "move", killed_on_second_move)
    with pytest.raises(KeyboardInterrupt):
        with StagedOutputs(tmp_path, "s", resume_key="k") as staged:
            for name in ("s.ome.tif", "s.blurmap.csv", "s.qc.json"):
                staged.path(name).write_text("new")
            staged.commit(["s.ome.tif", "s.blurmap.csv", "s.qc.json"], commit_point="s.qc.json")
    monkeypatch.setattr(staging, "move", real_move)
    assert not (tmp_path / "s.qc.json").exists()  # no commit point: the set reads as incomplete
    again = StagedOutputs(tmp_path, "s", resume_key="k")
    assert not again.resumed  # its commit was interrupted: started over
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name]  # what the kill left aside is gone


def test_an_atomic_write_that_fails_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    from pathlib import Path

    from wsi_deblur.write.location import write_text_atomic

    (tmp_path / "manifest.json").write_text("old")

    def full_disk(self, text, *args, **kwargs):
        Path.write_bytes(self, text[:3].encode())  # part of it, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(tmp_path / "manifest.json", "new contents")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert (tmp_path / "manifest.json").read_text() == "old"
