"""IQL (Kostrikov, Nair & Levine, 2022, "Offline Reinforcement Learning with Implicit Q-Learning"), Eq. 5-7.

    value:   L_V = E[ L2^tau(min_j Q'_j(s, a) - V(s)) ],  L2^tau(u) = |tau - 1(u < 0)| u^2,  tau = 0.7
    critic:  L_Q = E[ (r + gamma (1 - d) V(s') - Q_j(s, a))^2 ]  for both critics
    actor:   L_pi = -E[ exp(beta (min_j Q'_j(s, a) - V(s))) log pi(a | s) ],  beta = 3, weights clipped at 100

with Polyak targets for the critics (tau 5e-3). Networks from ``worldgen.rl.nets``: a squashed-Gaussian actor (its
``log_prob`` of dataset actions, also used by policy guidance), a 2-member vectorised critic and an MLP value.

Deliberate deviations: the actor is the tanh-squashed Gaussian shared with SAC (IQL's reference uses a Gaussian with
a tanh mean) and the learning rates stay constant (the reference decays the actor's with a cosine); rewards are used
as given (IQL rescales locomotion rewards by 1000 / return range).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from worldgen.rl.nets import ActorConfig, CriticConfig, TanhGaussianActor, VectorizedCritic, mlp

Stepper = Callable[[str, torch.Tensor], None]
EXP_ADV_MAX = 100.0


@dataclass
class IQLConfig:
    hidden: list = field(default_factory=lambda: [256, 256])  # widths of actor, critics and value (IQL: 2x256)
    actor_lr: float = 3e-4  # Adam learning rates
    critic_lr: float = 3e-4
    value_lr: float = 3e-4
    gamma: float = 0.99  # discount
    tau: float = 5e-3  # Polyak rate of the target critics
    expectile: float = 0.7  # tau of the expectile value loss
    beta: float = 3.0  # inverse temperature of advantage weighting


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    w = torch.where(diff > 0, expectile, 1 - expectile)
    return (w * diff.pow(2)).mean()


class IQL(nn.Module):
    def __init__(self, cfg: IQLConfig, obs_dim: int, act_dim: int):
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.actor = TanhGaussianActor(ActorConfig(obs_dim, act_dim, list(cfg.hidden)))
        self.critic = VectorizedCritic(CriticConfig(obs_dim, act_dim, list(cfg.hidden), num_critics=2))
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.value = mlp(obs_dim, 1, list(cfg.hidden))

    def param_groups(self) -> dict[str, tuple[list, float]]:
        c = self.cfg
        return {"value": (list(self.value.parameters()), c.value_lr),
                "critic": (list(self.critic.parameters()), c.critic_lr),
                "actor": (list(self.actor.parameters()), c.actor_lr)}

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs).squeeze(-1)

    def value_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        with torch.no_grad():
            q = self.target_critic(batch["observations"], batch["actions"]).min(dim=0).values
        v = self.v(batch["observations"])
        loss = expectile_loss(q - v, self.cfg.expectile)
        return loss, {"value_loss": loss.detach(), "v_mean": v.mean().detach()}

    def critic_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        with torch.no_grad():
            y = batch["rewards"] + self.cfg.gamma * (1 - batch["terminals"]) * self.v(batch["next_observations"])
        q = self.critic(batch["observations"], batch["actions"])
        loss = (q - y.unsqueeze(0)).pow(2).mean(dim=1).sum()
        return loss, {"critic_loss": loss.detach(), "q_mean": q.mean().detach()}

    def actor_loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        with torch.no_grad():
            q = self.target_critic(batch["observations"], batch["actions"]).min(dim=0).values
            weight = torch.exp(self.cfg.beta * (q - self.v(batch["observations"]))).clamp(max=EXP_ADV_MAX)
        log_prob = self.actor.log_prob(batch["observations"], batch["actions"])
        loss = -(weight * log_prob).mean()
        return loss, {"actor_loss": loss.detach(), "adv_weight": weight.mean(), "log_prob": log_prob.mean().detach()}

    @torch.no_grad()
    def soft_update(self) -> None:
        for p, tp in zip(self.critic.parameters(), self.target_critic.parameters()):
            tp.lerp_(p, self.cfg.tau)

    def train_step(self, batch: dict, step: int, stepper: Stepper,
                   generator: Optional[torch.Generator] = None) -> dict:
        logs: dict = {}
        for name, fn in (("value", self.value_loss), ("actor", self.actor_loss), ("critic", self.critic_loss)):
            loss, l = fn(batch)
            stepper(name, loss)
            logs.update(l)
        self.soft_update()
        return logs

    @property
    def policy(self) -> nn.Module:
        return self.actor


__all__ = ["IQLConfig", "IQL", "expectile_loss"]
