"""TD3+BC: target with policy smoothing and terminals, the BC-regularised actor loss, and learning on a tiny dataset."""
from __future__ import annotations

import torch

from worldgen.rl.agents.td3bc import TD3BC, TD3BCConfig

OBS, ACT = 3, 2




def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS, generator=g)
    act = torch.tanh(obs[:, :ACT])  # a deterministic behaviour policy the BC term can fit
    return {"observations": obs, "actions": act, "rewards": obs[:, 0], "next_observations": torch.randn(n, OBS, generator=g),
            "terminals": (torch.arange(n) % 5 == 0).float()}


def _stepper(agent):
    opts = {k: torch.optim.Adam(p, lr=lr) for k, (p, lr) in agent.param_groups().items()}

    def step(name, loss):
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()
    return step


def test_target_ignores_the_future_at_terminals():
    torch.manual_seed(0)
    agent = TD3BC(TD3BCConfig(hidden=[16, 16]), OBS, ACT)
    b = _batch()
    b["terminals"] = torch.ones(64)
    torch.testing.assert_close(agent.target_q(b), b["rewards"])
    b["terminals"] = torch.zeros(64)
    assert not torch.allclose(agent.target_q(b), b["rewards"])


def test_actor_loss_is_lambda_q_plus_bc():
    torch.manual_seed(0)
    agent = TD3BC(TD3BCConfig(hidden=[16, 16], alpha=2.5), OBS, ACT)
    b = _batch()
    loss, logs = agent.actor_loss(b)
    pi = agent.actor(b["observations"])
    q = agent.critic(b["observations"], pi)[0]
    expected = -(2.5 / q.abs().mean()) * q.mean() + (pi - b["actions"]).pow(2).mean()
    torch.testing.assert_close(loss, expected)
    assert logs["bc_mse"] > 0


def test_training_reduces_critic_and_bc_error_and_updates_targets_with_delay():
    torch.manual_seed(0)
    agent = TD3BC(TD3BCConfig(hidden=[32, 32], alpha=0.1), OBS, ACT)  # small alpha: BC dominates
    step = _stepper(agent)
    b = _batch()
    first = agent.critic_loss(b)[0].item(), agent.actor_loss(b)[1]["bc_mse"].item()
    t0 = [p.clone() for p in agent.target_actor.parameters()]
    agent.train_step(b, 1, step)  # odd step: no actor / target update
    assert all(torch.equal(a, p) for a, p in zip(t0, agent.target_actor.parameters()))
    for i in range(301):  # ends on an even step, so the last logs include the actor's
        logs = agent.train_step(b, i, step, torch.Generator().manual_seed(i))
    assert logs["critic_loss"] < first[0] and logs["bc_mse"] < 0.5 * first[1]
    assert not all(torch.equal(a, p) for a, p in zip(t0, agent.target_actor.parameters()))
