"""The Trainer factory: config checks, atomic checkpoint I/O, resume resolution, a real single-process fit."""
from pathlib import Path

import pytest
import torch

from worldgen import config as C
from worldgen.lit.toy import Config as ToyConfig
from worldgen.commands.train import load_experiment, main as train_main
from worldgen.lit.trainer import AtomicCheckpointIO, build_trainer, resolve_resume

ROOT = Path(__file__).resolve().parents[2]


def test_rejects_unknown_strategy_precision_logger(tmp_path):
    for field, value, match in [("strategy", "horovod", "strategy"), ("precision", "8", "precision"),
                                ("loggers", ["wandb"], "loggers")]:
        cfg = C.TrainerConfig(**{field: value})
        with pytest.raises(C.ConfigError, match=match):
            build_trainer(cfg, tmp_path)


def test_atomic_checkpoint_io_round_trip_and_no_temp_left(tmp_path):
    io = AtomicCheckpointIO()
    state = {"state_dict": {"w": torch.arange(4.0)}, "global_step": 3}
    io.save_checkpoint(state, tmp_path / "a.ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]
    back = io.load_checkpoint(tmp_path / "a.ckpt")
    assert back["global_step"] == 3 and torch.equal(back["state_dict"]["w"], state["state_dict"]["w"])


def test_checkpoint_failing_mid_write_keeps_old_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"v": 1}, tmp_path / "a.ckpt")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        io.save_checkpoint({"v": 2}, tmp_path / "a.ckpt")
    monkeypatch.undo()
    assert io.load_checkpoint(tmp_path / "a.ckpt")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"]


class Evil:
    """An arbitrary class: loading it would mean executing pickle code paths."""


def test_loading_refuses_pickled_objects(tmp_path):
    torch.save({"obj": Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(Exception, match="[Ww]eights.only"):
        AtomicCheckpointIO().load_checkpoint(tmp_path / "evil.ckpt")


def test_resolve_resume(tmp_path):
    assert resolve_resume(C.TrainerConfig(resume=None), tmp_path) is None
    assert resolve_resume(C.TrainerConfig(resume="last"), tmp_path) is None  # nothing yet: fresh start
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt/last.ckpt").write_bytes(b"x")
    assert resolve_resume(C.TrainerConfig(resume="last"), tmp_path).endswith("last.ckpt")
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        resolve_resume(C.TrainerConfig(resume=str(tmp_path / "nope.ckpt")), tmp_path)


def test_single_process_fit_writes_outputs_and_learns(tmp_path):
    cfg = load_experiment(ROOT / "configs/toy/mlp.yaml", [f"out_dir={tmp_path}", "trainer.progress_bar=false",
                                                          "trainer.max_steps=48", "trainer.loggers=[csv,tensorboard]"])
    module = train_main(cfg)
    for name in ["config.yaml", "model.safetensors", "card.json", "ckpt/last.ckpt", "logs/version_0/metrics.csv"]:
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    import csv
    rows = [r for r in csv.DictReader(open(tmp_path / "logs/version_0/metrics.csv")) if r.get("train/mse")]
    assert float(rows[-1]["train/mse"]) < 0.5 * float(rows[0]["train/mse"])
    assert isinstance(load_experiment(tmp_path / "config.yaml"), ToyConfig)
    assert module.trainer.global_step == 48


def test_bf16_mixed_precision_fit_on_cpu(tmp_path):
    cfg = load_experiment(ROOT / "configs/toy/mlp.yaml", [f"out_dir={tmp_path}", "trainer.progress_bar=false",
                                                          "trainer.max_steps=8", "trainer.precision=bf16-mixed"])
    module = train_main(cfg)
    assert module.trainer.precision == "bf16-mixed" and module.trainer.global_step == 8
    assert all(torch.isfinite(p).all() for p in module.model.parameters())
