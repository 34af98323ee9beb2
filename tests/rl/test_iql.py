"""IQL: the expectile loss, value/critic/actor losses and learning on a tiny dataset."""
from __future__ import annotations

import pytest
import torch

from worldgen.rl.agents.iql import IQL, IQLConfig, expectile_loss

OBS, ACT = 3, 2




def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS, generator=g)
    return {"observations": obs, "actions": 0.8 * torch.tanh(obs[:, :ACT]), "rewards": obs[:, 0],
            "next_observations": torch.randn(n, OBS, generator=g), "terminals": torch.zeros(n)}


def test_expectile_loss_is_asymmetric():
    d = torch.tensor([1.0, -1.0])
    assert expectile_loss(d[:1], 0.7) == pytest.approx(0.7)
    assert expectile_loss(d[1:], 0.7) == pytest.approx(0.3)
    assert expectile_loss(d, 0.5) == pytest.approx(0.5)


def test_value_tracks_an_upper_expectile_of_q():
    torch.manual_seed(0)
    agent = IQL(IQLConfig(hidden=[32, 32], expectile=0.9), OBS, ACT)
    for p in agent.target_critic.parameters():
        torch.nn.init.normal_(p, std=0.5)  # Q varies strongly with the action
    opt = torch.optim.Adam(agent.value.parameters(), lr=1e-2)
    b = _batch(n=256)
    b["observations"] = b["observations"][:1].expand(256, OBS)  # one state, many actions
    b["actions"] = torch.rand(256, ACT, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for _ in range(300):
        loss, _ = agent.value_loss(b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    q = agent.target_critic(b["observations"], b["actions"]).min(0).values
    v = agent.v(b["observations"][:1]).item()
    assert v > q.mean().item() and (q < v).float().mean() > 0.6


def test_training_raises_dataset_log_likelihood_and_fits_critic():
    torch.manual_seed(0)
    agent = IQL(IQLConfig(hidden=[32, 32]), OBS, ACT)
    opts = {k: torch.optim.Adam(p, lr=lr * 3) for k, (p, lr) in agent.param_groups().items()}

    def step(name, loss):
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()
    b = _batch()
    first_lp = agent.actor.log_prob(b["observations"], b["actions"]).mean().item()
    first_q = agent.critic_loss(b)[0].item()
    for i in range(200):
        logs = agent.train_step(b, i, step)
    assert agent.actor.log_prob(b["observations"], b["actions"]).mean().item() > first_lp + 1.0
    assert logs["critic_loss"] < first_q and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
