"""Atomic writes and safe weight files."""
import pytest
import torch

from worldgen import io


def test_save_weights_handles_tied_tensors_and_round_trips(tmp_path):
    w = torch.randn(4, 3)
    io.save_weights(tmp_path / "m.safetensors", {"a": w, "b": w, "c": w[:2]}, {"note": "tied"})
    back = io.load_weights(tmp_path / "m.safetensors")
    assert torch.equal(back["a"], w) and torch.equal(back["b"], w) and torch.equal(back["c"], w[:2])


def test_corrupt_and_missing_weight_files_are_named(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        io.load_weights(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match="gone.safetensors"):
        io.load_weights(tmp_path / "gone.safetensors")


def test_atomic_path_leaves_old_file_on_error(tmp_path):
    target = tmp_path / "x.json"
    io.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert io.read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_dir_refuses_to_overwrite(tmp_path):
    with io.atomic_dir(tmp_path / "ep") as d:
        (d / "a.txt").write_text("1")
    assert (tmp_path / "ep/a.txt").read_text() == "1"
    with pytest.raises(FileExistsError):
        with io.atomic_dir(tmp_path / "ep") as d:
            (d / "a.txt").write_text("2")
    assert (tmp_path / "ep/a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ep"]


def test_written_files_get_normal_permissions(tmp_path):
    import os
    io.write_text(tmp_path / "a.txt", "x")
    with io.atomic_dir(tmp_path / "d"):
        pass
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask
