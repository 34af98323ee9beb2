"""TD3+BC (Fujimoto & Gu, 2021, "A Minimalist Approach to Offline Reinforcement Learning"), Eq. 3.

    critic:  y = r + gamma (1 - d) min_j Q'_j(s', clip(pi'(s') + clip(eps, -c, c), -1, 1)),  eps ~ N(0, 0.2^2), c 0.5
    actor:   max  lambda Q_1(s, pi(s)) - (pi(s) - a)^2,   lambda = alpha / mean |Q_1(s, pi(s))|,  alpha = 2.5

updated every ``policy_freq`` = 2 critic steps, with Polyak targets (tau 5e-3) for actor and critics. The networks
come from ``worldgen.rl.nets`` (deterministic tanh actor, a 2-member vectorised critic). For policy-guided diffusion
the actor is scored as ``N(pi(s), I)`` (``DeterministicActor.log_prob``), the paper's deterministic-actor surrogate.

Deliberate deviations: no state normalisation (the PGD code's default), so real and synthetic data share one input
scale; losses are returned as ``(loss, logs)`` and stepped by the caller (Lightning manual optimisation or
``update``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from worldgen.rl.nets import ActorConfig, CriticConfig, DeterministicActor, VectorizedCritic

Stepper = Callable[[str, torch.Tensor], None]


@dataclass
class TD3BCConfig:
    hidden: list = field(default_factory=lambda: [256, 256])  # actor and critic widths (TD3+BC: 2x256)
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = 3e-4  # Adam learning rate of the critics
    gamma: float = 0.99  # discount
    tau: float = 5e-3  # Polyak rate of the targets
    alpha: float = 2.5  # BC trade-off (lambda = alpha / mean|Q|)
    policy_noise: float = 0.2  # target policy smoothing noise std
    noise_clip: float = 0.5  # clip of that noise
    policy_freq: int = 2  # critic steps per actor step


class TD3BC(nn.Module):
    def __init__(self, cfg: TD3BCConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.actor = DeterministicActor(ActorConfig(obs_dim, act_dim, list(cfg.hidden)))
        self.critic = VectorizedCritic(CriticConfig(obs_dim, act_dim, list(cfg.hidden), num_critics=2))
        self.target_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)

    def param_groups(self) -> dict[str, tuple[list, float]]:
        """Optimiser name -> (parameters, learning rate), in the order the steps use them."""
        return {"critic": (list(self.critic.parameters()), self.cfg.critic_lr),
                "actor": (list(self.actor.parameters()), self.cfg.actor_lr)}

    @torch.no_grad()
    def target_q(self, batch: dict, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        c = self.cfg
        nxt = batch["next_observations"]
        a_next = self.target_actor(nxt)
        noise = torch.randn(a_next.shape, generator=generator).to(a_next) * c.policy_noise
        a_next = (a_next + noise.clamp(-c.noise_clip, c.noise_clip)).clamp(-1, 1)
        q_next = self.target_critic(nxt, a_next).min(dim=0).values
        return batch["rewards"] + c.gamma * (1 - batch["terminals"]) * q_next

    def critic_loss(self, batch: dict, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        y = self.target_q(batch, generator)
        q = self.critic(batch["observations"], batch["actions"])  # k b
        loss = (q - y.unsqueeze(0)).pow(2).mean(dim=1).sum()
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach()}

    def actor_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        pi = self.actor(batch["observations"])
        q = self.critic(batch["observations"], pi)[0]
        lmbda = self.cfg.alpha / q.abs().mean().detach().clamp_min(1e-6)
        bc = (pi - batch["actions"]).pow(2).mean()
        loss = -lmbda * q.mean() + bc
        return loss, {"actor_loss": loss.detach(), "bc_mse": bc.detach(), "lambda": lmbda}

    @torch.no_grad()
    def soft_update(self) -> None:
        for net, tgt in ((self.critic, self.target_critic), (self.actor, self.target_actor)):
            for p, tp in zip(net.parameters(), tgt.parameters()):
                tp.lerp_(p, self.cfg.tau)

    def train_step(self, batch: dict, step: int, stepper: Stepper,
                   generator: Optional[torch.Generator] = None) -> dict:
        """One critic step; every ``policy_freq`` steps also an actor step and the target update."""
        loss, logs = self.critic_loss(batch, generator)
        stepper("critic", loss)
        if step % self.cfg.policy_freq == 0:
            loss, alogs = self.actor_loss(batch)
            stepper("actor", loss)
            logs.update(alogs)
            self.soft_update()
        return logs

    @property
    def policy(self) -> nn.Module:
        return self.actor


__all__ = ["TD3BCConfig", "TD3BC"]
