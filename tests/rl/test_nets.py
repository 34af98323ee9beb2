"""Ensemble layer, actors and the vectorised critic (worldgen/rl/nets.py)."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from worldgen.rl.nets import (ActorConfig, CriticConfig, DeterministicActor, TanhGaussianActor, VectorizedCritic,
                              VectorizedLinear, mlp)


def test_mlp_shapes():
    net = mlp(5, 3, [8, 8])
    assert net(torch.randn(4, 5)).shape == (4, 3)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 3


def test_vectorized_linear_matches_separate_layers():
    torch.manual_seed(0)
    layer = VectorizedLinear(4, 3, ensemble_size=5)
    x = torch.randn(5, 7, 4)
    y = layer(x)
    assert y.shape == (5, 7, 3)
    for i in range(5):
        ref = x[i] @ layer.weight[i] + layer.bias[i]
        torch.testing.assert_close(y[i], ref)
    with pytest.raises(ValueError, match="k=5"):
        layer(torch.randn(4, 7, 4))


def test_vectorized_critic_members_differ_and_broadcast():
    torch.manual_seed(0)
    critic = VectorizedCritic(CriticConfig(obs_dim=3, act_dim=2, hidden=[16, 16], num_critics=4))
    obs, act = torch.randn(6, 3), torch.randn(6, 2)
    q = critic(obs, act)
    assert q.shape == (4, 6)
    assert not torch.allclose(q[0], q[1])
    q3 = critic(obs.expand(4, 6, 3), act.expand(4, 6, 2))
    torch.testing.assert_close(q, q3)
    torch.testing.assert_close(critic(obs, act.expand(4, 6, 2)), q)


def _actor(max_action=1.0):
    torch.manual_seed(0)
    actor = TanhGaussianActor(ActorConfig(obs_dim=3, act_dim=2, hidden=[16, 16], max_action=max_action))
    # make the distribution non-trivial (the paper init puts mu ~ 0, std ~ 1)
    with torch.no_grad():
        actor.mu.weight.normal_(0, 0.5)
        actor.log_std.bias.fill_(-0.7)
    return actor


@pytest.mark.parametrize("max_action", [1.0, 2.0])
def test_tanh_gaussian_log_prob_matches_change_of_variables(max_action):
    actor = _actor(max_action)
    obs = torch.randn(5, 3)
    action, log_prob = actor(obs)
    assert action.shape == (5, 2) and log_prob.shape == (5,)
    assert action.abs().max() <= max_action
    # independent formula: log N(u) - sum log(d a / d u), a = m tanh(u)
    d = actor.dist(obs)
    u = torch.atanh(action / max_action)
    ref = d.log_prob(u).sum(-1) - torch.log(max_action * (1 - torch.tanh(u) ** 2)).sum(-1)
    torch.testing.assert_close(log_prob, ref, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(actor.log_prob(obs, action), log_prob, atol=1e-3, rtol=1e-3)


def test_tanh_gaussian_density_integrates_to_one():
    actor = TanhGaussianActor(ActorConfig(obs_dim=1, act_dim=1, hidden=[8]))
    with torch.no_grad():
        actor.mu.bias.fill_(0.4)
        actor.log_std.bias.fill_(-0.5)
    grid = torch.linspace(-0.9999, 0.9999, 20001).unsqueeze(-1)
    obs = torch.zeros(len(grid), 1)
    with torch.no_grad():
        actor.mu.weight.zero_()
        actor.log_std.weight.zero_()
        density = actor.log_prob(obs, grid).exp()
    mass = torch.trapezoid(density, grid.squeeze(-1))
    assert abs(float(mass) - 1.0) < 1e-2


def test_log_prob_gradient_wrt_action_points_to_mode():
    actor = _actor()
    obs = torch.randn(4, 3)
    mode, _ = actor(obs, deterministic=True)
    a = (mode + 0.3).clamp(-0.99, 0.99).detach().requires_grad_(True)
    actor.log_prob(obs, a).sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all()
    # a small step along the gradient raises log pi
    with torch.no_grad():
        before = actor.log_prob(obs, a)
        after = actor.log_prob(obs, (a + 1e-3 * a.grad).clamp(-0.999, 0.999))
    assert (after > before).all()


def test_deterministic_mode_and_act_numpy():
    actor = _actor()
    obs = torch.randn(3, 3)
    a1, _ = actor(obs, deterministic=True)
    a2, _ = actor(obs, deterministic=True)
    torch.testing.assert_close(a1, a2)
    single = actor.act(np.zeros(3, dtype=np.float32), deterministic=True)
    assert single.shape == (2,) and isinstance(single, np.ndarray)
    assert actor.act(np.zeros((4, 3))).shape == (4, 2)


def test_deterministic_actor_log_prob_is_unit_gaussian():
    torch.manual_seed(0)
    actor = DeterministicActor(ActorConfig(obs_dim=3, act_dim=2, hidden=[8]))
    obs = torch.randn(5, 3)
    a = torch.rand(5, 2) * 2 - 1
    ref = Normal(actor(obs), 1.0).log_prob(a).sum(-1)
    torch.testing.assert_close(actor.log_prob(obs, a), ref)
    assert actor(obs).abs().max() <= 1.0
    assert actor.act(np.zeros(3)).shape == (2,)
