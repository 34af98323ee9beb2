"""A tiny regression MLP on a synthetic dataset: the smallest real model that exercises the training stack.

It exists to prove DDP, multi-node, checkpoint/resume and config handling on a CPU, not to learn anything
interesting. Each sample returns its index so a test can check that DDP ranks saw disjoint shards.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from worldgen.config import ExperimentConfig
from worldgen.data.loaders import make_loader
from worldgen.lit.optim import OptimConfig, WarmupCosineStep, configure_adamw


@dataclass
class ToyModelConfig:
    in_dim: int = 16  # input features
    hidden: int = 64  # hidden width
    depth: int = 2  # hidden layers


@dataclass
class ToyDataConfig:
    n_train: int = 512  # training samples
    n_val: int = 64  # validation samples
    batch_size: int = 16  # per device
    noise: float = 0.1  # std of the label noise
    seed: int = 1234  # seed of the synthetic data (independent of the run seed)

    def __post_init__(self):
        if self.n_train < 1 or self.n_val < 0:
            raise ValueError(f"data.n_train must be >= 1 and data.n_val >= 0, got {self.n_train} and {self.n_val}")


@dataclass
class Config(ExperimentConfig):
    task: str = "toy"
    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    data: ToyDataConfig = field(default_factory=ToyDataConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-2, warmup_steps=5))
    slow_step_s: float = 0.0  # sleep per training step (lets tests kill a run mid-way)
    record_dir: str = ""  # when set, each rank writes the sample indices it saw here


class ToyMLP(nn.Module):
    def __init__(self, cfg: ToyModelConfig):
        super().__init__()
        layers, d = [], cfg.in_dim
        for _ in range(cfg.depth):
            layers += [nn.Linear(d, cfg.hidden), nn.GELU()]
            d = cfg.hidden
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        mse = (self(x) - y).pow(2).mean()
        return mse, {"mse": mse.detach()}


class ToyDataset(Dataset):
    def __init__(self, n: int, in_dim: int, noise: float, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, in_dim, generator=g)
        w = torch.randn(in_dim, generator=torch.Generator().manual_seed(seed + 1))
        self.y = torch.tanh(self.x @ w / in_dim**0.5) + noise * torch.randn(n, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i], i


class ToyDataModule(L.LightningDataModule):
    def __init__(self, cfg: ToyDataConfig, in_dim: int):
        super().__init__()
        self.cfg, self.in_dim = cfg, in_dim

    def setup(self, stage: str | None = None) -> None:
        c = self.cfg
        self.train_set = ToyDataset(c.n_train, self.in_dim, c.noise, c.seed)
        self.val_set = ToyDataset(c.n_val, self.in_dim, c.noise, c.seed + 100)

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.train_set, self.cfg.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.cfg.batch_size)


class ToyModule(WarmupCosineStep, L.LightningModule):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = ToyMLP(cfg.model)
        self.seen: list[int] = []

    def training_step(self, batch, batch_idx):
        x, y, idx = batch
        if self.cfg.slow_step_s:
            time.sleep(self.cfg.slow_step_s)
        loss, logs = self.model.loss(x, y)
        self.seen.extend(idx.tolist())
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, _ = batch
        _, logs = self.model.loss(x, y)
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, sync_dist=True)

    def configure_optimizers(self):
        return configure_adamw(self.model, self.cfg.optim, self.cfg.trainer.max_steps)

    def on_train_end(self) -> None:
        if self.cfg.record_dir:
            from worldgen.io import write_json

            rank = self.global_rank
            write_json(Path(self.cfg.record_dir) / f"seen_rank{rank}.json", {"rank": rank, "indices": self.seen})
            from worldgen.io import save_weights

            save_weights(Path(self.cfg.record_dir) / f"weights_rank{rank}.safetensors", self.model.state_dict())


def build(cfg: Config):
    return ToyModule(cfg), ToyDataModule(cfg.data, cfg.model.in_dim)
