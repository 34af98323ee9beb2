"""Probabilistic dynamics ensemble (PETS/MBPO, as used by RAVL, Sims et al. 2024).

``k`` Gaussian MLPs (default 7, 4x200, SiLU) each predict ``(delta_state, reward)`` mean and log-variance from
``(state, action)``. All members run in one batched matmul per layer (``worldgen.rl.nets.VectorizedLinear``).

- **Normalisation**: inputs and targets are z-scored with dataset statistics stored as buffers (saved with the
  weights); predictions are mapped back.
- **Learned log-variance bounds** (Chua et al. 2018, appendix A.1): ``logvar = max - softplus(max - raw)``,
  ``logvar = min + softplus(logvar - min)``, with ``max``/``min`` learned and the loss term
  ``logvar_bound_coef * (sum max - sum min)`` keeping them tight.
- **Loss**: Gaussian NLL ``mean((mu - y)^2 exp(-logvar) + logvar)`` summed over members, plus weight decay.
- **Training**: each member sees its own bootstrap resample of the training split; a holdout split (20%, at most
  ``max_holdout``) measures per-member MSE; early stopping when no member improved by more than 1% for
  ``patience`` epochs; each member keeps its best weights; the ``num_elites`` members with the lowest holdout MSE
  are the elites (OfflineRL-Kit's procedure).
- **Sampling**: each row picks a random elite and draws from its Gaussian; termination comes from the
  hand-written functions in ``worldgen.rl.termination``.

Deliberate deviation: one weight-decay value for all layers (MBPO/OfflineRL-Kit use 2.5e-5 ... 1e-4 per layer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from worldgen.rl.nets import VectorizedLinear, vectorized_mlp


@dataclass
class DynamicsConfig:
    ensemble_size: int = 7  # members trained
    num_elites: int = 5  # members used for rollouts (lowest holdout MSE)
    hidden: list = field(default_factory=lambda: [200, 200, 200, 200])  # hidden widths
    act: str = "silu"  # hidden activation
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 5e-5  # L2 on the weights (added to the loss)
    batch_size: int = 256  # per-member minibatch
    holdout_ratio: float = 0.2  # fraction of transitions held out for validation and elite selection
    max_holdout: int = 1000  # cap on the holdout size
    patience: int = 5  # epochs without a >1% improvement before stopping
    max_epochs: int = 0  # hard cap on training epochs; 0 = until early stopping
    logvar_bound_coef: float = 0.01  # weight of the (max - min) log-variance bound term


class EnsembleDynamics(nn.Module):
    """``(obs b o, act b a) -> mean, logvar k b (o + 1)`` in normalised target space; ``step`` samples."""

    def __init__(self, cfg: DynamicsConfig, obs_dim: int, act_dim: int):
        super().__init__()
        if not 0 < cfg.num_elites <= cfg.ensemble_size:
            raise ValueError(f"dynamics.num_elites must be in 1..{cfg.ensemble_size}, got {cfg.num_elites}")
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        out = obs_dim + 1
        self.net = vectorized_mlp(obs_dim + act_dim, 2 * out, cfg.hidden, cfg.ensemble_size, cfg.act)
        self.max_logvar = nn.Parameter(torch.full((out,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((out,), -10.0))
        self.register_buffer("in_mean", torch.zeros(obs_dim + act_dim))
        self.register_buffer("in_std", torch.ones(obs_dim + act_dim))
        self.register_buffer("out_mean", torch.zeros(out))
        self.register_buffer("out_std", torch.ones(out))
        self.register_buffer("elites", torch.arange(cfg.num_elites))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.cat([obs, act], dim=-1) - self.in_mean) / self.in_std
        if x.dim() == 2:
            x = x.expand(self.cfg.ensemble_size, *x.shape)
        mean, raw = self.net(x).chunk(2, dim=-1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - raw)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return mean, logvar

    def set_normalizer(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.in_mean.copy_(inputs.mean(0))
        self.in_std.copy_(inputs.std(0).clamp_min(1e-6))
        self.out_mean.copy_(targets.mean(0))
        self.out_std.copy_(targets.std(0).clamp_min(1e-6))

    def loss(self, obs, act, target) -> tuple[torch.Tensor, dict]:
        """``obs/act/target k b *`` (one minibatch per member); target = (delta_obs, reward), unnormalised."""
        mean, logvar = self(obs, act)
        y = (target - self.out_mean) / self.out_std
        nll = ((mean - y).pow(2) * torch.exp(-logvar) + logvar).mean(dim=(1, 2)).sum()
        decay = sum(m.weight.pow(2).sum() for m in self.net if isinstance(m, VectorizedLinear))
        bound = self.max_logvar.sum() - self.min_logvar.sum()
        loss = nll + self.cfg.weight_decay * 0.5 * decay + self.cfg.logvar_bound_coef * bound
        return loss, {"nll": nll.detach(), "bound": bound.detach()}

    @torch.no_grad()
    def holdout_mse(self, obs, act, target) -> torch.Tensor:
        """Per-member MSE in normalised target space (``k``)."""
        mean, _ = self(obs, act)
        y = (target - self.out_mean) / self.out_std
        return (mean - y).pow(2).mean(dim=(1, 2))

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator | None = None):
        """Next observation and reward from a random elite per row: ``(b o, b)``."""
        mean, logvar = self(obs, act)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        draw = (mean + noise * (0.5 * logvar).exp()) * self.out_std + self.out_mean  # k b (o+1)
        pick = self.elites[torch.randint(len(self.elites), (obs.shape[0],), generator=generator,
                                         device=mean.device)]
        row = draw[pick, torch.arange(obs.shape[0], device=mean.device)]
        return obs + row[:, :-1], row[:, -1]


class LearnedDynamics:
    """Rollout interface ``step(obs np, act np) -> (next_obs, reward, terminal)`` over a trained ensemble.

    The uncertainty penalties (``worldgen.rl.penalties``) read the elites through ``members`` (each elite's mean
    prediction) and ``uncertainty`` (MOPO's ``max_i ||sigma_i||`` or ``max_i ||mu_i - mean_j mu_j||``), in raw
    (unnormalised) target units.
    """

    def __init__(self, model: EnsembleDynamics, termination: Callable, seed: int = 0):
        self.model, self.termination = model, termination
        device = next(model.parameters()).device
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def step(self, obs: np.ndarray, act: np.ndarray):
        device = next(self.model.parameters()).device
        o = torch.as_tensor(obs, dtype=torch.float32, device=device)
        a = torch.as_tensor(act, dtype=torch.float32, device=device)
        nxt, rew = self.model.sample(o, a, self.generator)
        return nxt.cpu().numpy(), rew.cpu().numpy(), np.asarray(self.termination(nxt).cpu().numpy(), dtype=bool)

    @torch.no_grad()
    def _elite_moments(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Elites' raw ``(delta_obs, reward)`` means and stds, ``e b (o + 1)``."""
        mean, logvar = self.model(obs, act)
        m = self.model
        idx = m.elites.to(mean.device)
        return mean[idx] * m.out_std + m.out_mean, (0.5 * logvar[idx]).exp() * m.out_std

    @torch.no_grad()
    def members(self, obs: torch.Tensor, act: torch.Tensor):
        """Each elite's mean next state, reward and terminal flag: ``(e b o, e b, e b)`` torch tensors."""
        mean, _ = self._elite_moments(obs, act)
        nxt = obs.unsqueeze(0) + mean[..., :-1]
        term = self.termination(nxt.reshape(-1, nxt.shape[-1])).reshape(nxt.shape[:2]).float()
        return nxt, mean[..., -1], term

    @torch.no_grad()
    def uncertainty(self, obs: np.ndarray, act: np.ndarray, kind: str = "aleatoric") -> np.ndarray:
        """MOPO's ``u(s, a)`` per row: ``aleatoric`` = max over elites of the Frobenius norm of the predicted std
        (Yu et al. 2020, sec. 4.3); ``disagreement`` = max over elites of the distance of its mean from theirs."""
        device = next(self.model.parameters()).device
        o = torch.as_tensor(obs, dtype=torch.float32, device=device)
        a = torch.as_tensor(act, dtype=torch.float32, device=device)
        mean, std = self._elite_moments(o, a)
        if kind == "aleatoric":
            u = std.norm(dim=-1).amax(dim=0)
        elif kind == "disagreement":
            u = (mean - mean.mean(dim=0, keepdim=True)).norm(dim=-1).amax(dim=0)
        else:
            raise ValueError(f"penalty.mopo_uncertainty must be aleatoric or disagreement, got '{kind}'")
        return u.cpu().numpy().astype(np.float32)


def _split(n: int, cfg: DynamicsConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    n_hold = min(int(n * cfg.holdout_ratio), cfg.max_holdout)
    return perm[n_hold:], perm[:n_hold]


def train_dynamics(
    model: EnsembleDynamics, data: dict[str, np.ndarray], seed: int = 0, progress: bool = True
) -> dict[str, object]:
    """Fit the ensemble on D4RL-layout arrays; returns logs (epochs, per-member holdout MSE, elites)."""
    cfg, k = model.cfg, model.cfg.ensemble_size
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)  # noqa: E731
    obs, act = t(data["observations"]), t(data["actions"])
    target = torch.cat([t(data["next_observations"]) - obs, t(data["rewards"]).unsqueeze(-1)], dim=-1)
    train_idx, hold_idx = _split(len(obs), cfg, rng)
    if len(hold_idx) == 0:
        raise ValueError(f"dynamics training needs a holdout split; {len(obs)} transitions is too few")
    model.set_normalizer(torch.cat([obs, act], -1)[train_idx], target[train_idx])
    boot = rng.integers(0, len(train_idx), size=(k, len(train_idx)))  # a bootstrap resample per member
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hold = (obs[hold_idx], act[hold_idx], target[hold_idx])
    best = model.holdout_mse(*hold).clone()
    best_state = {n: p.detach().clone() for n, p in model.state_dict().items()}
    epoch, stale = 0, 0
    bar = tqdm(desc="dynamics", disable=not progress, unit="epoch")
    while stale < cfg.patience and (cfg.max_epochs <= 0 or epoch < cfg.max_epochs):
        _train_epoch(model, opt, obs, act, target, train_idx[boot[:, rng.permutation(boot.shape[1])]])
        mse = model.holdout_mse(*hold)
        improved = (best - mse) / best.clamp_min(1e-12) > 0.01
        _keep_best_members(model, best_state, improved)
        best = torch.where(improved, mse, best)
        stale = 0 if improved.any() else stale + 1
        epoch += 1
        bar.update(1)
        bar.set_postfix(holdout_mse=float(best.mean()))
    bar.close()
    model.load_state_dict(best_state)
    model.elites.copy_(torch.argsort(best)[: cfg.num_elites].to(model.elites))
    return {"epochs": epoch, "holdout_mse": best.cpu().tolist(), "elites": model.elites.cpu().tolist()}


def _train_epoch(model, opt, obs, act, target, member_idx: np.ndarray) -> None:
    """One pass over each member's bootstrap sample (``member_idx k n``) in minibatches."""
    bs = model.cfg.batch_size
    for start in range(0, member_idx.shape[1], bs):
        idx = torch.as_tensor(member_idx[:, start:start + bs], device=obs.device)
        loss, _ = model.loss(obs[idx], act[idx], target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@torch.no_grad()
def _keep_best_members(model: EnsembleDynamics, best_state: dict, improved: torch.Tensor) -> None:
    """Copy the improved members' slices of every ensemble weight into ``best_state``; shared tensors follow."""
    for name, p in model.state_dict().items():
        if p.dim() >= 1 and p.shape[0] == model.cfg.ensemble_size and name.startswith("net."):
            best_state[name][improved] = p[improved]
        elif improved.any():
            best_state[name] = p.detach().clone()


__all__ = ["DynamicsConfig", "EnsembleDynamics", "LearnedDynamics", "train_dynamics"]
