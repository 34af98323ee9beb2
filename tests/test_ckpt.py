"""``worldgen.ckpt``, the one checkpoint-folder loader: a round trip, and every refusal names what is wrong."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from worldgen import ckpt
from worldgen.io import save_weights, write_text


@dataclass
class TinyConfig:
    width: int = 4  # input features


class Tiny(nn.Module):
    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.cfg = cfg
        self.lin = nn.Linear(cfg.width, 2)
        self.drop = nn.Dropout(0.5)


def write_folder(folder, width: int = 3, task: str = "tiny", weights_width: int | None = None, seed: int = 0):
    torch.manual_seed(seed)
    module = Tiny(TinyConfig(weights_width or width))
    write_text(folder / ckpt.CONFIG, OmegaConf.to_yaml(OmegaConf.create({"task": task, "model": {"width": width}})))
    save_weights(folder / ckpt.WEIGHTS, module.state_dict())
    return module


def test_round_trip_builds_loads_strictly_and_evals(tmp_path):
    saved = write_folder(tmp_path / "run")
    loaded = ckpt.load(tmp_path / "run", TinyConfig, Tiny, task="tiny")
    assert loaded.cfg == TinyConfig(width=3) and loaded.raw["task"] == "tiny" and not loaded.module.training
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), loaded.module.state_dict().values()))
    assert loaded.folder == tmp_path / "run"


def test_pickles_and_missing_files_are_refused(tmp_path):
    write_folder(tmp_path / "run")
    (tmp_path / "run" / "last.ckpt").write_bytes(b"not allowed")
    with pytest.raises(ckpt.CheckpointError, match="pickled"):
        ckpt.load(tmp_path / "run", TinyConfig, Tiny)
    with pytest.raises(ckpt.CheckpointError, match="pickled weights are refused"):
        ckpt.load_state(Tiny(TinyConfig()), tmp_path / "run" / "last.ckpt")
    (tmp_path / "half").mkdir()
    write_text(tmp_path / "half" / ckpt.CONFIG, "task: tiny\nmodel: {width: 3}\n")
    with pytest.raises(FileNotFoundError, match="missing model.safetensors"):  # CheckpointNotFound is both
        ckpt.load(tmp_path / "half", TinyConfig, Tiny)
    with pytest.raises(ckpt.CheckpointNotFound, match="nope: checkpoint folder not found"):
        ckpt.load(tmp_path / "nope", TinyConfig, Tiny)


def test_names_cannot_escape_the_root_and_urls_are_refused(tmp_path, monkeypatch):
    root, outside = tmp_path / "checkpoints", tmp_path / "outside"
    write_folder(root / "good")
    write_folder(outside)
    (root / "evil").symlink_to(outside, target_is_directory=True)
    assert ckpt.resolve("good", root) == (root / "good").resolve()
    with pytest.raises(ckpt.CheckpointError, match="outside"):
        ckpt.resolve("evil", root)
    monkeypatch.chdir(root / "good")  # "../outside" is not a name, and from here not a local folder either
    for bad in ("../outside", "https://example.org/model", "no-such-model"):
        with pytest.raises(ckpt.CheckpointError, match="not a folder"):
            ckpt.resolve(bad, tmp_path / "elsewhere")
    assert ckpt.resolve(str(outside), root) == outside.resolve()  # an explicit local folder is allowed


def test_a_config_or_weights_that_do_not_fit_name_the_file(tmp_path):
    write_folder(tmp_path / "other", task="drivingworld")
    with pytest.raises(ckpt.CheckpointError, match="task is 'drivingworld', expected 'tiny'"):
        ckpt.load(tmp_path / "other", TinyConfig, Tiny, task="tiny")
    write_folder(tmp_path / "shape", width=3, weights_width=5)
    with pytest.raises(ckpt.CheckpointError, match=r"shape.model\.safetensors: weights do not fit"):
        ckpt.load(tmp_path / "shape", TinyConfig, Tiny)
    write_folder(tmp_path / "keys")
    write_text(tmp_path / "keys" / ckpt.CONFIG, "task: tiny\nmodel: {width: 3, depth: 2}\n")
    with pytest.raises(ckpt.CheckpointError, match=r"config\.yaml: unknown key 'depth'"):
        ckpt.load(tmp_path / "keys", TinyConfig, Tiny)
