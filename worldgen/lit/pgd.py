"""Task ``pgd``: train the policy-guided-diffusion trajectory model (Jackson et al., 2024) on a D4RL-layout dataset.

The LightningModule is thin: it calls ``TrajectoryDiffusion.loss`` (EDM, ``worldgen.diffusion``), steps Adam with
linear warm-up (10% of the steps, from 0.1 lr as in the PGD code) then cosine decay, and updates the EMA weights every
``model.ema_every`` steps. ``export`` writes ``pgd.json`` (model config, sizes, source dataset, its reference returns)
beside the weights so ``worldgen.rl.pgd.load_trajectory_model(DIR)`` (``worldgen pgd sample --ckpt DIR``) can rebuild
the model without Lightning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import TensorDataset

from worldgen.config import ExperimentConfig
from worldgen.data.offline_rl import load_dataset
from worldgen.lit.optim import OptimConfig, WarmupCosineStep, configure_adamw
from worldgen.rl.pgd import Normalizer, PGDModelConfig, TrajectoryDiffusion, load_trajectory_model, make_windows


@dataclass
class PGDDataConfig:
    path: str = ""  # D4RL-layout HDF5 file or local Minari folder
    env_id: str = ""  # checks observation/action sizes; "" = the file's own env_id
    batch_size: int = 32  # windows per step (PGD code: 32)
    num_workers: int = 0  # data-loader workers


@dataclass
class Config(ExperimentConfig):
    task: str = "pgd"
    data: PGDDataConfig = field(default_factory=PGDDataConfig)
    model: PGDModelConfig = field(default_factory=PGDModelConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(  # PGD code: optax Adam, warmup_cosine_decay
        lr=2e-3, betas=[0.9, 0.999], warmup_frac=0.1, warmup_start=0.1, min_lr_ratio=0.0))


class PGDModule(WarmupCosineStep, L.LightningModule):
    def __init__(self, cfg: Config, model: TrajectoryDiffusion):
        super().__init__()
        self.cfg, self.model = cfg, model

    def training_step(self, batch, batch_idx):
        loss, logs = self.model.loss(batch[0])
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        step = self.global_step
        if step % self.cfg.model.ema_every == 0:
            self.model.update_ema()

    def configure_optimizers(self):
        return configure_adamw(self.model.denoiser, self.cfg.optim, self.cfg.trainer.max_steps)


class WindowDataModule(L.LightningDataModule):
    def __init__(self, windows: np.ndarray, cfg: PGDDataConfig):
        super().__init__()
        self.windows, self.cfg = torch.as_tensor(windows, dtype=torch.float32), cfg

    def train_dataloader(self):
        from worldgen.data.loaders import make_loader

        bs = min(self.cfg.batch_size, len(self.windows))
        return make_loader(TensorDataset(self.windows), bs, shuffle=True, drop_last=True,
                           num_workers=self.cfg.num_workers)


def _source(cfg: Config):
    if not cfg.data.path:
        raise ValueError("data.path: set the D4RL-layout dataset to train on")
    return load_dataset(cfg.data.path, env_id=cfg.data.env_id or None)


def build(cfg: Config):
    ds = _source(cfg)
    raw = make_windows(ds, cfg.model.horizon, cfg.model.stride)
    norm = Normalizer.fit(raw)
    model = TrajectoryDiffusion(cfg.model, ds.obs_dim, ds.act_dim, norm)
    return PGDModule(cfg, model), WindowDataModule(norm.normalize(raw), cfg.data)


def export(cfg: Config, module: PGDModule, out_dir) -> None:
    from worldgen.config import to_dict
    from worldgen.io import write_json

    ds = _source(cfg)
    m = ds.metadata
    write_json(Path(out_dir) / "pgd.json", {
        "obs_dim": module.model.obs_dim, "act_dim": module.model.act_dim, "horizon": cfg.model.horizon,
        "dataset": cfg.data.path, "env_id": m.get("env_id", cfg.data.env_id),
        "ref_min_score": m.get("ref_min_score"), "ref_max_score": m.get("ref_max_score"),
        "source_kind": m.get("kind"), "model": to_dict(cfg.model),
    })


load_pgd = load_trajectory_model  # the model rebuilds from pgd.json alone (worldgen.rl.pgd)


__all__ = ["Config", "PGDDataConfig", "PGDModule", "build", "export", "load_pgd"]
