"""Uncertainty-penalised model-based offline RL, MOPO and MOBILE, as the baselines of RAVL's edge-of-reach argument.

Both methods subtract ``lambda * u(s, a)`` from the reward of *model* transitions (real ones are not penalised):

- **MOPO** (Yu et al. 2020, "MOPO: Model-based Offline Policy Optimization", sec. 4.3): ``u`` is the largest
  predicted standard deviation over the ensemble, ``max_i ||Sigma_i(s, a)||_F`` (``aleatoric``, the paper's
  heuristic), or the ensemble's disagreement ``max_i ||mu_i(s, a) - mean_j mu_j(s, a)||`` (``disagreement``). It
  depends only on the model, so it is computed once, when the rollout is made, and stored with the transition.
- **MOBILE** (Sun et al. 2023, "Model-Bellman Inconsistency for Model-based Offline RL", eq. 5-6): ``u`` is the
  standard deviation over ensemble members of the Bellman estimate
  ``r_i + gamma (1 - d_i) min_j Q'_j(s'_i, pi(s'_i))``; it depends on the current critics, so it is recomputed for
  every agent batch.

RAVL's point (Sims et al. 2024, sec. 5): these penalties measure *model* uncertainty. With the true dynamics every
member agrees, ``u = 0``, and both methods become their unpenalised base agent -- which still suffers the
edge-of-reach overestimation. A rollout model exposes ``uncertainty(obs, act, kind)`` (numpy, per row) and
``members(obs, act)`` (torch, one row per member); the exact models in ``worldgen.rl.ravl`` return zeros and a single
member.

Deliberate deviations: MOBILE's members are the elites' *mean* predictions and ``pi(s')`` is the policy's mode (the
paper draws several next states per member and samples actions), so the penalty is exactly zero when the members
agree; the standard deviation is the population one (``unbiased=False``). Both use the elites only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

KINDS = ("none", "mopo", "mobile")


@dataclass
class PenaltyConfig:
    kind: str = "none"  # none | mopo | mobile (RAVL and Base use none)
    coef: float = 1.0  # lambda, reward units per unit of uncertainty (MOPO D4RL: 0.5-5; MOBILE: 0.1-1.5)
    mopo_uncertainty: str = "aleatoric"  # aleatoric (max ||sigma_i||) | disagreement (max ||mu_i - mean mu||)


def check_penalty(cfg: PenaltyConfig) -> None:
    if cfg.kind not in KINDS:
        raise ValueError(f"penalty.kind must be one of {KINDS}, got '{cfg.kind}'")
    if cfg.mopo_uncertainty not in ("aleatoric", "disagreement"):
        raise ValueError(f"penalty.mopo_uncertainty must be aleatoric or disagreement, got '{cfg.mopo_uncertainty}'")
    if not np.isfinite(cfg.coef) or cfg.coef < 0:
        raise ValueError(f"penalty.coef must be a finite number >= 0, got {cfg.coef}")


def mopo_penalty(model, obs: np.ndarray, act: np.ndarray, cfg: PenaltyConfig) -> np.ndarray:
    """``lambda * u(s, a)`` per row (numpy ``b``), 0 for every kind but ``mopo``."""
    if cfg.kind != "mopo":
        return np.zeros(len(obs), np.float32)
    return (cfg.coef * model.uncertainty(obs, act, cfg.mopo_uncertainty)).astype(np.float32)


@torch.no_grad()
def mobile_uncertainty(agent, model, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """MOBILE's ``u(s, a)``: std over members of ``r_i + gamma (1 - d_i) min_j Q'_j(s'_i, mode pi(s'_i))`` (``b``)."""
    nxt, rew, term = model.members(obs, act)  # e b o, e b, e b
    if nxt.shape[0] < 2:
        return torch.zeros(obs.shape[0], device=obs.device)
    flat = rearrange(nxt, "e b o -> (e b) o")
    a_next = agent.actor(flat, deterministic=True, need_log_prob=False)[0]
    q = agent.target_critic(flat, a_next).min(dim=0).values
    y = rew + agent.cfg.gamma * (1 - term) * rearrange(q, "(e b) -> e b", e=nxt.shape[0])
    return y.std(dim=0, unbiased=False)


def batch_penalty(agent, model, batch: dict, cfg: PenaltyConfig) -> torch.Tensor | None:
    """The ``penalty`` column of an agent batch (``b``, 0 on real rows), or None when the method has none.

    MOPO's is stored with the model transitions; MOBILE's is computed here on the model rows."""
    if cfg.kind == "mopo":
        return batch["penalty"]
    if cfg.kind != "mobile":
        return None
    rows = batch["from_model"] > 0.5
    pen = torch.zeros_like(batch["rewards"])
    if rows.any():
        pen[rows] = cfg.coef * mobile_uncertainty(agent, model, batch["observations"][rows], batch["actions"][rows])
    return pen


__all__ = ["PenaltyConfig", "KINDS", "check_penalty", "mopo_penalty", "mobile_uncertainty", "batch_penalty"]
