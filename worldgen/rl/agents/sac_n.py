"""SAC-N and EDAC: soft actor-critic with N critics and the ensemble-diversity term.

Papers: Haarnoja et al. 2018 (SAC, with automatic entropy tuning, "SAC: Algorithms and Applications" eq. 18) and
An et al. 2021 ("Uncertainty-Based Offline RL with Diversified Q-Ensemble"): SAC-N takes the minimum over N
critics in the target, ``y = r + gamma (1 - d) (min_j Q'_j(s', a') - alpha log pi(a'|s'))``, ``a' ~ pi(s')``;
EDAC adds ``eta / (N - 1) * sum_{i != j} <grad_a Q_i, grad_a Q_j> / (|grad_a Q_i| |grad_a Q_j|)`` (eq. 6; pairwise
cosine similarity of the critics' action-gradients at dataset actions) to the critic loss. RAVL (Sims et al. 2024)
uses this agent unchanged inside model rollouts; its "Base" is ``eta = 0, N = 2``.

The critic loss is the per-critic MSE averaged over the batch and summed over critics, and the actor loss uses the
minimum over critics, as in the CORL implementation. Update order per step: alpha, actor, critics, target.

Batches are dicts of float tensors with D4RL names: ``observations b o``, ``actions b a``, ``rewards b``,
``next_observations b o``, ``terminals b`` (1.0 where the episode truly ended; time-outs are not terminals). Optional ``oracle_mask b`` and
``oracle_value b`` replace the bootstrapped next value where the mask is 1 (RAVL's oracle edge-of-reach patch); an
optional ``penalty b`` is subtracted from the reward in the target (MOPO / MOBILE, ``worldgen.rl.penalties``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from einops import rearrange, repeat
from torch import nn

from worldgen.rl.nets import ActorConfig, CriticConfig, TanhGaussianActor, VectorizedCritic

BATCH_KEYS = ("observations", "actions", "rewards", "next_observations", "terminals")


@dataclass
class SACNConfig:
    num_critics: int = 10  # N, size of the Q-ensemble (RAVL/EDAC 10; Base 2)
    eta: float = 1.0  # weight of the EDAC diversity term (0 = SAC-N)
    hidden: list = field(default_factory=lambda: [256, 256, 256])  # actor and critic hidden widths
    actor_lr: float = 3e-4  # Adam learning rate of the policy
    critic_lr: float = 3e-4  # Adam learning rate of the critics
    alpha_lr: float = 3e-4  # Adam learning rate of log(alpha)
    gamma: float = 0.99  # discount
    tau: float = 5e-3  # Polyak rate of the target critics
    auto_alpha: bool = True  # tune alpha toward target_entropy; False keeps alpha = exp(init_log_alpha)
    init_log_alpha: float = 0.0  # log of the initial entropy temperature
    target_entropy: Optional[float] = None  # None = -act_dim
    max_action: float = 1.0  # actions lie in [-max_action, max_action]


def edac_diversity(critic: VectorizedCritic, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """EDAC eq. 6: mean over the batch of ``sum_{i != j} cos(grad_a Q_i, grad_a Q_j) / (N - 1)``.

    Differentiable w.r.t. the critic parameters (``create_graph=True``).
    """
    k = critic.num_critics
    a = repeat(actions, "b a -> k b a", k=k).detach().requires_grad_(True)
    q = critic(repeat(obs, "b o -> k b o", k=k), a)
    grads = torch.autograd.grad(q.sum(), a, create_graph=True)[0]
    grads = grads / (grads.norm(dim=-1, keepdim=True) + 1e-10)
    grads = rearrange(grads, "k b a -> b k a")
    cos = grads @ grads.transpose(1, 2)  # b k k
    off_diag = 1 - torch.eye(k, device=cos.device)
    return (cos * off_diag).sum(dim=(1, 2)).mean() / max(k - 1, 1)


class SACN(nn.Module):
    """The agent: actor, N critics, their Polyak targets, log(alpha) and three Adam optimisers."""

    def __init__(self, cfg: SACNConfig, obs_dim: int, act_dim: int, device: str | torch.device = "cpu"):
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.actor = TanhGaussianActor(ActorConfig(obs_dim, act_dim, list(cfg.hidden), cfg.max_action))
        self.critic = VectorizedCritic(CriticConfig(obs_dim, act_dim, list(cfg.hidden), cfg.num_critics))
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(float(cfg.init_log_alpha)))
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.to(device)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)

    @property
    def device(self) -> torch.device:
        return self.log_alpha.device

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    # ---- losses -------------------------------------------------------------------------------------------------
    def alpha_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        with torch.no_grad():
            _, log_prob = self.actor(obs)
        loss = -(self.log_alpha * (log_prob + self.target_entropy)).mean()
        return loss, {"alpha_loss": loss.detach(), "entropy": -log_prob.mean()}

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        action, log_prob = self.actor(obs)
        q_min = self.critic(obs, action).min(dim=0).values
        loss = (self.alpha * log_prob - q_min).mean()
        return loss, {"actor_loss": loss.detach()}

    @torch.no_grad()
    def target_q(self, batch: dict) -> torch.Tensor:
        next_action, next_log_prob = self.actor(batch["next_observations"])
        q_next = self.target_critic(batch["next_observations"], next_action).min(dim=0).values
        q_next = q_next - self.alpha * next_log_prob
        if "oracle_mask" in batch:  # RAVL's oracle patch: true values at edge-of-reach next states
            q_next = torch.where(batch["oracle_mask"] > 0.5, batch["oracle_value"], q_next)
        reward = batch["rewards"] - batch["penalty"] if "penalty" in batch else batch["rewards"]
        return reward + self.cfg.gamma * (1 - batch["terminals"]) * q_next

    def critic_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        target = self.target_q(batch)
        q = self.critic(batch["observations"], batch["actions"])  # k b
        td = (q - target.unsqueeze(0)).pow(2).mean(dim=1).sum(dim=0)
        diversity = torch.zeros((), device=q.device)
        if self.cfg.eta > 0:
            diversity = edac_diversity(self.critic, batch["observations"], batch["actions"])
        loss = td + self.cfg.eta * diversity
        logs = {
            "critic_loss": loss.detach(), "td_loss": td.detach(), "diversity": diversity.detach(),
            "q_mean": q.mean().detach(), "q_std": q.std(dim=0).mean().detach() if q.shape[0] > 1 else q.new_zeros(()),
            "target_mean": target.mean(),
        }
        return loss, logs

    # ---- steps --------------------------------------------------------------------------------------------------
    def _batch_to_device(self, batch: dict) -> dict:
        missing = [k for k in BATCH_KEYS if k not in batch]
        if missing:
            raise KeyError(f"SAC-N batch is missing {missing}; expected keys {list(BATCH_KEYS)}")
        return {k: torch.as_tensor(v, dtype=torch.float32, device=self.device) for k, v in batch.items()}

    def update(self, batch: dict) -> dict[str, float]:
        """One gradient step on alpha, actor and critics, then the Polyak target update; returns float logs."""
        batch = self._batch_to_device(batch)
        logs: dict = {}
        if self.cfg.auto_alpha:
            loss, l = self.alpha_loss(batch["observations"])
            self.alpha_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.alpha_opt.step()
            logs.update(l)
        loss, l = self.actor_loss(batch["observations"])
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_opt.step()
        logs.update(l)
        loss, l = self.critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        logs.update(l)
        self.soft_update()
        logs["alpha"] = self.alpha
        return {k: float(v) for k, v in logs.items()}

    @torch.no_grad()
    def soft_update(self) -> None:
        torch._foreach_lerp_(list(self.target_critic.parameters()), list(self.critic.parameters()), self.cfg.tau)

    @torch.no_grad()
    def q_values(self, obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """``k b`` critic values at ``(obs, actions)``; with ``actions=None`` at the policy's mode action."""
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if actions is None:
            actions = self.actor(obs, deterministic=True, need_log_prob=False)[0]
        return self.critic(obs, torch.as_tensor(actions, dtype=torch.float32, device=self.device))

    def act(self, obs, deterministic: bool = False) -> np.ndarray:
        """numpy observation(s) in, numpy action(s) out (for env interaction and evaluation)."""
        return self.actor.act(obs, deterministic=deterministic)

    # ---- checkpoints (state_dict() is the nn.Module one: actor.*, critic.*, target_critic.*, log_alpha) --------------------------------------------------------------------------------------------
    def optimizer_state(self) -> dict:
        return {"actor": self.actor_opt.state_dict(), "critic": self.critic_opt.state_dict(),
                "alpha": self.alpha_opt.state_dict()}


__all__ = ["SACNConfig", "SACN", "edac_diversity", "BATCH_KEYS"]
