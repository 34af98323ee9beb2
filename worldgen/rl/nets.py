"""Networks shared by the offline-RL agents (SAC-N/EDAC, TD3+BC, IQL), policy-guided diffusion and RAVL.

- ``mlp``: a plain MLP builder.
- ``VectorizedLinear``: ``k`` independent linear layers applied with one batched matmul (``torch.baddbmm``), the
  ensemble layer of EDAC (An et al., 2021, "Uncertainty-Based Offline RL with Diversified Q-Ensemble") and of
  the RAVL dynamics ensemble (Sims et al., 2024). Input and output are ``k b d``.
- ``TanhGaussianActor``: SAC's squashed Gaussian policy (Haarnoja et al., 2018, appendix C, eq. 21):
  ``a = max_action * tanh(u)``, ``u ~ N(mu(s), sigma(s))``, ``log pi(a|s) = log N(u) - sum log(1 - tanh(u)^2)``
  (- d log max_action). ``log_prob(obs, action)`` evaluates given actions through ``atanh`` so that policy-guided
  diffusion (Jackson et al., 2024) can take the gradient of ``log pi(a|s)`` with respect to the action.
- ``DeterministicActor``: TD3's ``max_action * tanh(mlp(s))``; for guidance it is treated as ``N(mu(s), I)`` as in
  the PGD paper, so ``log_prob`` is a unit Gaussian log-density around ``mu(s)``.
- ``VectorizedCritic``: N Q-functions ``Q_i(s, a)`` in one module, returning ``k b``.

Initialisation follows the CORL single-file implementations of SAC-N/EDAC (hidden biases 0.1, output layers
uniform in +-3e-3 for critics and +-1e-3 for the actor heads), which the EDAC results were reproduced with.
Deliberate choice: log-std is clamped to [-5, 2] (CORL) rather than SAC's original [-20, 2].
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from einops import repeat
from torch import nn
from torch.distributions import Normal

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU}
ATANH_EPS = 1e-6  # actions are clipped to +-(1 - eps) * max_action before atanh


def mlp(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256, 256), act: str = "relu") -> nn.Sequential:
    """``Linear -> act`` for each hidden width, then a final ``Linear`` to ``out_dim`` (no output activation)."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), ACTIVATIONS[act]()]
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class VectorizedLinear(nn.Module):
    """``k`` linear layers with separate weights, applied to ``k b in`` in one ``baddbmm``."""

    def __init__(self, in_features: int, out_features: int, ensemble_size: int):
        super().__init__()
        self.in_features, self.out_features, self.ensemble_size = in_features, out_features, ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default init (kaiming-uniform with a = sqrt(5) reduces to U(+-1/sqrt(fan_in)))
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[0] != self.ensemble_size or x.shape[-1] != self.in_features:
            raise ValueError(
                f"VectorizedLinear expects (k={self.ensemble_size}, b, {self.in_features}), got {tuple(x.shape)}"
            )
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, k={self.ensemble_size}"


def vectorized_mlp(
    in_dim: int, out_dim: int, hidden: Sequence[int], ensemble_size: int, act: str = "relu"
) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers += [VectorizedLinear(d, h, ensemble_size), ACTIVATIONS[act]()]
        d = h
    layers.append(VectorizedLinear(d, out_dim, ensemble_size))
    return nn.Sequential(*layers)


@dataclass
class ActorConfig:
    obs_dim: int = 1  # observation features
    act_dim: int = 1  # action features
    hidden: list = field(default_factory=lambda: [256, 256, 256])  # hidden widths (EDAC/RAVL: 3x256)
    max_action: float = 1.0  # actions lie in [-max_action, max_action]
    log_std_min: float = -5.0  # clamp of the Gaussian log-std (CORL)
    log_std_max: float = 2.0


@dataclass
class CriticConfig:
    obs_dim: int = 1  # observation features
    act_dim: int = 1  # action features
    hidden: list = field(default_factory=lambda: [256, 256, 256])  # hidden widths (EDAC/RAVL: 3x256)
    num_critics: int = 10  # N, size of the Q-ensemble


def _as_tensor(obs, device: torch.device) -> tuple[torch.Tensor, bool]:
    single = np.ndim(obs) == 1
    t = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=device)
    return (t.unsqueeze(0) if single else t), single


class TanhGaussianActor(nn.Module):
    """SAC policy ``a = max_action * tanh(u), u ~ N(mu(s), exp(log_std(s)))``."""

    def __init__(self, cfg: ActorConfig):
        super().__init__()
        self.cfg = cfg
        self.trunk = mlp(cfg.obs_dim, cfg.hidden[-1], cfg.hidden[:-1])
        self.trunk.append(nn.ReLU())
        self.mu = nn.Linear(cfg.hidden[-1], cfg.act_dim)
        self.log_std = nn.Linear(cfg.hidden[-1], cfg.act_dim)
        for layer in self.trunk:
            if isinstance(layer, nn.Linear):
                nn.init.constant_(layer.bias, 0.1)
        for head in (self.mu, self.log_std):
            nn.init.uniform_(head.weight, -1e-3, 1e-3)
            nn.init.uniform_(head.bias, -1e-3, 1e-3)

    def dist(self, obs: torch.Tensor) -> Normal:
        """The pre-tanh Gaussian ``N(mu(s), sigma(s))``."""
        h = self.trunk(obs)
        log_std = self.log_std(h).clamp(self.cfg.log_std_min, self.cfg.log_std_max)
        return Normal(self.mu(h), log_std.exp())

    def _squashed_log_prob(self, d: Normal, u: torch.Tensor) -> torch.Tensor:
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), the numerically stable form
        correction = 2 * (math.log(2) - u - nn.functional.softplus(-2 * u))
        log_prob = (d.log_prob(u) - correction).sum(-1)
        return log_prob - self.cfg.act_dim * math.log(self.cfg.max_action)

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False, need_log_prob: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sample (reparameterised) or take the mode; returns ``(action b a, log_prob b | None)``."""
        d = self.dist(obs)
        u = d.mean if deterministic else d.rsample()
        action = torch.tanh(u) * self.cfg.max_action
        return action, (self._squashed_log_prob(d, u) if need_log_prob else None)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``log pi(action | obs)`` for given actions (``b``), differentiable w.r.t. ``action``."""
        limit = 1 - ATANH_EPS
        u = torch.atanh((action / self.cfg.max_action).clamp(-limit, limit))
        return self._squashed_log_prob(self.dist(obs), u)

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False) -> np.ndarray:
        """numpy in, numpy out; a single observation ``(d,)`` gives a single action ``(a,)``."""
        device = next(self.parameters()).device
        t, single = _as_tensor(obs, device)
        action = self(t, deterministic=deterministic, need_log_prob=False)[0].cpu().numpy()
        return action[0] if single else action


class DeterministicActor(nn.Module):
    """TD3 policy ``a = max_action * tanh(mlp(s))``; ``log_prob`` treats it as ``N(mu(s), I)`` (PGD)."""

    def __init__(self, cfg: ActorConfig):
        super().__init__()
        self.cfg = cfg
        self.net = mlp(cfg.obs_dim, cfg.act_dim, cfg.hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)) * self.cfg.max_action

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        diff = action - self(obs)
        return -0.5 * diff.pow(2).sum(-1) - 0.5 * self.cfg.act_dim * math.log(2 * math.pi)

    @torch.no_grad()
    def act(self, obs, deterministic: bool = True) -> np.ndarray:
        device = next(self.parameters()).device
        t, single = _as_tensor(obs, device)
        action = self(t).cpu().numpy()
        return action[0] if single else action


class VectorizedCritic(nn.Module):
    """N Q-functions in one module: ``(obs b o | k b o, action b a | k b a) -> q k b``."""

    def __init__(self, cfg: CriticConfig):
        super().__init__()
        self.cfg = cfg
        self.num_critics = cfg.num_critics
        self.net = vectorized_mlp(cfg.obs_dim + cfg.act_dim, 1, cfg.hidden, cfg.num_critics)
        for layer in self.net:
            if isinstance(layer, VectorizedLinear):
                nn.init.constant_(layer.bias, 0.1)
        last = self.net[-1]
        nn.init.uniform_(last.weight, -3e-3, 3e-3)
        nn.init.uniform_(last.bias, -3e-3, 3e-3)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        if obs.dim() == 2 and action.dim() == 3:
            obs = repeat(obs, "b d -> k b d", k=action.shape[0])
        elif obs.dim() == 3 and action.dim() == 2:
            action = repeat(action, "b d -> k b d", k=obs.shape[0])
        x = torch.cat([obs, action], dim=-1)
        if x.dim() == 2:
            x = repeat(x, "b d -> k b d", k=self.num_critics)
        return self.net(x).squeeze(-1)


__all__ = [
    "mlp", "VectorizedLinear", "vectorized_mlp", "ActorConfig", "CriticConfig", "TanhGaussianActor",
    "DeterministicActor", "VectorizedCritic", "ACTIVATIONS",
]
