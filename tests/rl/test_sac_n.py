"""SAC-N / EDAC agent (worldgen/rl/agents/sac_n.py)."""
import math

import numpy as np
import pytest
import torch

from worldgen.io import load_weights, save_weights
from worldgen.rl.agents.sac_n import SACN, SACNConfig, edac_diversity
from worldgen.rl.nets import CriticConfig, VectorizedCritic




def _linear_critic(action_weights):
    """Q_i(s, a) = w_i . a (no hidden layer), so grad_a Q_i = w_i exactly."""
    k = len(action_weights)
    critic = VectorizedCritic(CriticConfig(obs_dim=1, act_dim=2, hidden=[], num_critics=k))
    with torch.no_grad():
        layer = critic.net[-1]
        layer.weight.zero_()
        layer.bias.zero_()
        for i, w in enumerate(action_weights):
            layer.weight[i, 1:, 0] = torch.tensor(w, dtype=torch.float32)
    return critic


def test_edac_diversity_hand_computed():
    obs, act = torch.randn(4, 1), torch.randn(4, 2)
    # two critics with gradients (1, 0) and (1, 1): cos = 1/sqrt(2); sum over i != j = 2/sqrt(2); / (N-1) = sqrt(2)
    assert edac_diversity(_linear_critic([[1, 0], [1, 1]]), obs, act).item() == pytest.approx(math.sqrt(2), abs=1e-5)
    # three critics (1,0), (1,1), (0,1): pair cosines 1/sqrt2, 0, 1/sqrt2 -> 2 * sqrt(2) / 2 = sqrt(2)
    three = _linear_critic([[1, 0], [1, 1], [0, 1]])
    assert edac_diversity(three, obs, act).item() == pytest.approx(math.sqrt(2), abs=1e-5)
    # opposite gradients: cos = -1 -> -2 / 1
    assert edac_diversity(_linear_critic([[1, 0], [-3, 0]]), obs, act).item() == pytest.approx(-2.0, abs=1e-5)


def test_edac_diversity_is_differentiable_in_critic_params():
    torch.manual_seed(0)
    critic = VectorizedCritic(CriticConfig(obs_dim=3, act_dim=2, hidden=[16], num_critics=3))
    loss = edac_diversity(critic, torch.randn(8, 3), torch.randn(8, 2))
    loss.backward()
    assert critic.net[0].weight.grad is not None and critic.net[0].weight.grad.abs().sum() > 0


def _batch(n=32, obs_dim=3, act_dim=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "observations": torch.randn(n, obs_dim, generator=g),
        "actions": torch.rand(n, act_dim, generator=g) * 2 - 1,
        "rewards": torch.randn(n, generator=g),
        "next_observations": torch.randn(n, obs_dim, generator=g),
        "terminals": (torch.rand(n, generator=g) < 0.1).float(),
    }


def _agent(**kw):
    torch.manual_seed(0)
    cfg = SACNConfig(num_critics=3, eta=1.0, hidden=[16, 16], **kw)
    return SACN(cfg, obs_dim=3, act_dim=2)


def test_target_uses_min_over_critics_and_terminals():
    agent = _agent(auto_alpha=False, init_log_alpha=math.log(0.5))
    batch = _batch()
    torch.manual_seed(1)
    target = agent.target_q(batch)
    torch.manual_seed(1)
    a, logp = agent.actor(batch["next_observations"])
    q = agent.target_critic(batch["next_observations"], a).min(0).values - 0.5 * logp
    ref = batch["rewards"] + 0.99 * (1 - batch["terminals"]) * q
    torch.testing.assert_close(target, ref)
    done = batch["terminals"] == 1
    torch.testing.assert_close(target[done], batch["rewards"][done])


def test_update_changes_params_and_returns_logs():
    agent = _agent()
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    logs = agent.update(_batch())
    for key in ["critic_loss", "actor_loss", "alpha_loss", "alpha", "diversity", "q_mean", "q_std", "entropy"]:
        assert key in logs and np.isfinite(logs[key]), key
    after = agent.state_dict()
    for prefix in ["actor.", "critic.", "target_critic.", "log_alpha"]:
        changed = any(not torch.equal(before[k], after[k]) for k in after if k.startswith(prefix))
        assert changed, prefix
    with pytest.raises(KeyError, match="terminals"):
        agent.update({k: v for k, v in _batch().items() if k != "terminals"})


def test_critics_fit_a_constant_reward_bandit():
    """With gamma = 0 every critic must converge to the reward, whatever the action."""
    torch.manual_seed(0)
    agent = SACN(SACNConfig(num_critics=2, eta=0.0, hidden=[32, 32], gamma=0.0, critic_lr=1e-2), 3, 2)
    batch = _batch(64)
    batch["rewards"] = torch.full((64,), 2.5)
    for _ in range(120):
        logs = agent.update(batch)
    assert logs["q_mean"] == pytest.approx(2.5, abs=0.1)


def test_state_dict_round_trip_through_safetensors(tmp_path):
    agent = _agent()
    agent.update(_batch())
    save_weights(tmp_path / "agent.safetensors", agent.state_dict())
    other = _agent(init_log_alpha=1.0)
    other.load_state_dict(load_weights(tmp_path / "agent.safetensors"))
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(agent.act(obs, deterministic=True), other.act(obs, deterministic=True))
    torch.testing.assert_close(agent.q_values(torch.as_tensor(obs)), other.q_values(torch.as_tensor(obs)))
    assert float(other.alpha) == pytest.approx(float(agent.alpha))
