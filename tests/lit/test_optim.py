"""The one optimizer config and warm-up cosine schedule: the closed form, the no-budget case, a real Lightning fit,
and that every task's ``optim:`` section is that one ``OptimConfig``."""
import math
from pathlib import Path

import lightning as L
import pytest
import torch

from worldgen.lit.optim import OptimConfig, configure_adamw, warmup_cosine
from worldgen.lit.train import fit
from worldgen.registry import TASKS, load_experiment, task_module

ROOT = Path(__file__).resolve().parents[2]


def expected_lr(t: int, cfg: OptimConfig, warm: int, total: int) -> float:
    """The documented schedule, written out: step t trains at lr(t + 1)."""
    u = t + 1
    if u < warm:
        return cfg.lr * (cfg.warmup_start + (1 - cfg.warmup_start) * u / warm)
    lo = cfg.lr * cfg.min_lr_ratio
    return lo + (cfg.lr - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, (u - warm) / (total - warm))))


def run_schedule(cfg: OptimConfig, total: int, steps: int) -> list[float]:
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=cfg.lr)
    sched = warmup_cosine(opt, cfg, total)
    lrs = []
    for t in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step_update(t + 1 + 1)  # what WarmupCosineStep does after optimizer step t (global_step = t + 1)
    return lrs


@pytest.mark.parametrize("cfg", [OptimConfig(lr=1e-3, warmup_steps=10),
                                 OptimConfig(lr=2e-3, warmup_frac=0.1, warmup_start=0.1, min_lr_ratio=0.0)])
def test_schedule_matches_closed_form(cfg):
    total = 100
    warm = 10
    lrs = run_schedule(cfg, total, total + 5)
    for t, lr in enumerate(lrs):
        assert lr == pytest.approx(expected_lr(t, cfg, warm, total), rel=1e-9, abs=1e-12), t
    assert lrs[0] > 0 and max(lrs) == pytest.approx(cfg.lr)
    assert lrs[-1] == pytest.approx(cfg.lr * cfg.min_lr_ratio, abs=1e-12)  # held at the floor past the budget


def test_no_step_budget_holds_peak_after_warmup():
    lrs = run_schedule(OptimConfig(lr=1e-3, warmup_steps=4), total=-1, steps=20)
    assert lrs[:3] == pytest.approx([2.5e-4, 5e-4, 7.5e-4]) and lrs[3:] == pytest.approx([1e-3] * 17)


def test_param_groups_skip_decay_on_1d_params():
    out = configure_adamw(torch.nn.Linear(3, 2), OptimConfig(weight_decay=0.1, betas=[0.5, 0.9]), 10)
    groups = out["optimizer"].param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0] and groups[0]["betas"] == (0.5, 0.9)
    assert out["lr_scheduler"]["interval"] == "step"


class RecordLR(L.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_lightning_steps_the_schedule_once_per_optimizer_step(tmp_path, monkeypatch):
    cfg = load_experiment(ROOT / "configs/toy/mlp.yaml", [f"out_dir={tmp_path}", "trainer.progress_bar=false",
                                                          "trainer.max_steps=12", "optim.warmup_steps=4",
                                                          "trainer.loggers=[csv]"])
    rec = RecordLR()
    import worldgen.lit.trainer as T

    build = T.build_trainer
    monkeypatch.setattr(T, "build_trainer", lambda *a, **k: _with_callback(build(*a, **k), rec))
    fit(cfg, task_module(cfg.task))
    assert rec.lrs == pytest.approx([expected_lr(t, cfg.optim, 4, 12) for t in range(12)], rel=1e-9)


def _with_callback(trainer, cb):
    trainer.callbacks.append(cb)
    return trainer


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_uses_the_one_optim_config(task):
    from dataclasses import fields

    Config = task_module(task).Config
    optim = [f for f in fields(Config) if f.name == "optim"]
    if optim:
        assert optim[0].default_factory().__class__ is OptimConfig
