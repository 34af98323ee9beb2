"""The one optimizer config and learning-rate schedule of the LightningModules: AdamW, linear warm-up, cosine decay.

``OptimConfig`` is every task's ``optim:`` section (each task only changes its defaults: the paper's values).
``configure_adamw(module, cfg, total_steps)`` is a ``configure_optimizers`` dict: AdamW over ``param_groups`` (no
decay on biases, norms and other 1-d parameters; GPT-2/nanoGPT practice) and timm's ``CosineLRScheduler`` stepped
per optimizer step:

    lr(t) = lr (s + (1 - s) t / W)                                      t <  W   (s = warmup_start)
    lr(t) = lr_min + (lr - lr_min) (1 + cos(pi (t - W) / (T - W))) / 2   W <= t <= T,  lr_min = min_lr_ratio lr
    lr(t) = lr_min                                                      t >  T

with W the warm-up steps (``warmup_steps``, or ``warmup_frac`` of ``trainer.max_steps``) and T = ``trainer.max_steps``;
without a step budget (T <= 0) the peak lr is held after the warm-up. Optimizer step t (0-based) trains at lr(t + 1),
so the first warm-up step is not a wasted lr-0 step (with s = 0 step t trains at (t + 1) / W of lr). timm's
schedulers are pure functions of the step count, so a resumed run continues the schedule exactly; Lightning hands
them the count through ``WarmupCosineStep.lr_scheduler_step`` (mix it into the LightningModule).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from timm.scheduler import CosineLRScheduler
from torch import nn


@dataclass
class OptimConfig:
    lr: float = 1e-4  # peak AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay on >= 2-d parameters (1-d parameters are never decayed)
    betas: list = field(default_factory=lambda: [0.9, 0.95])  # AdamW (beta1, beta2)
    warmup_steps: int = 1000  # optimizer steps of linear warm-up
    warmup_frac: float = 0.0  # > 0: warm up for this fraction of trainer.max_steps instead of warmup_steps
    warmup_start: float = 0.0  # lr at the start of the warm-up, as a fraction of lr
    min_lr_ratio: float = 0.1  # the cosine decays to this fraction of lr at trainer.max_steps


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only; biases, norms and embeddings' 1-d params are not decayed (GPT-2/nanoGPT practice)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_length(cfg: OptimConfig, total_steps: int) -> int:
    if cfg.warmup_frac > 0:
        return max(1, int(total_steps * cfg.warmup_frac)) if total_steps > 0 else 1
    return cfg.warmup_steps


def warmup_cosine(opt: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int) -> CosineLRScheduler:
    """timm's per-step warm-up + cosine schedule for ``opt`` (see the module docstring), set for step 0."""
    warm = warmup_length(cfg, total_steps)
    decay = total_steps - warm if total_steps > 0 else 0
    hold = decay <= 0  # no step budget (or none left after the warm-up): hold the peak lr, i.e. "decay" to lr
    sched = CosineLRScheduler(opt, t_initial=2 if hold else decay, lr_min=cfg.lr if hold else cfg.lr * cfg.min_lr_ratio,
                              warmup_t=warm, warmup_lr_init=cfg.lr * cfg.warmup_start, warmup_prefix=True,
                              t_in_epochs=False)  # (t_initial 2 when holding: timm warns about 1-step cycles)
    sched.step_update(1)
    return sched


def configure_adamw(model: nn.Module, cfg: OptimConfig, total_steps: int) -> dict:
    """Lightning ``configure_optimizers`` dict: AdamW over ``model`` + the per-step warm-up/cosine schedule."""
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": warmup_cosine(opt, cfg, total_steps), "interval": "step"}}


class WarmupCosineStep:
    """LightningModule mixin: Lightning cannot step timm schedulers itself; after optimizer step ``global_step`` the
    next step's lr is the schedule's value at ``global_step + 1``."""

    def lr_scheduler_step(self, scheduler, metric=None) -> None:
        scheduler.step_update(self.global_step + 1)


__all__ = ["OptimConfig", "param_groups", "warmup_length", "warmup_cosine", "configure_adamw", "WarmupCosineStep"]
