"""Optimizer + learning-rate schedule shared by the LightningModules (AdamW, linear warm-up, cosine decay)."""
from __future__ import annotations

import math

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only; biases, norms and embeddings' 1-d params are not decayed (GPT-2/nanoGPT practice)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw_warmup_cosine(model: nn.Module, lr: float, weight_decay: float, warmup_steps: int, total_steps: int,
                        betas=(0.9, 0.95), min_ratio: float = 0.1) -> dict:
    """Lightning ``configure_optimizers`` dict: AdamW + per-step warm-up/cosine schedule (constant if no total)."""
    opt = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        if total_steps <= 0:
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
