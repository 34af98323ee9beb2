"""The 2D point-mass goal environment (worldgen/rl/pointmass.py)."""
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from worldgen.rl import pointmass as pm


def test_gymnasium_api_and_seeding():
    env = pm.PointMassEnv()
    check_env(env, skip_render_check=True)
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= env.cfg.start_range


def test_step_dynamics_reward_and_termination():
    cfg = pm.PointMassConfig(goal=[1.0, 0.0], goal_radius=0.1, step_size=0.1, max_steps=3)
    env = pm.PointMassEnv(cfg)
    env.reset(options={"state": [0.5, 0.0]})
    obs, r, term, trunc, _ = env.step(np.array([1.0, 5.0]))  # action clipped to [1, 1]
    np.testing.assert_allclose(obs, [0.6, 0.1], atol=1e-6)
    assert r == pytest.approx(-np.hypot(0.4, 0.1), abs=1e-6) and not term and not trunc
    env.set_state([0.95, 0.0])
    _, _, term, _, _ = env.step(np.array([0.0, 0.0]))
    assert term
    env.reset(options={"state": [-5.0, -5.0]})
    for _ in range(3):
        *_, trunc, _ = env.step(np.zeros(2))
    assert trunc
    env.set_state([9.95, 0.0])
    assert env.step(np.array([1.0, 0.0]))[0][0] == pytest.approx(10.0)  # the box bound


def test_greedy_policy_is_optimal_against_random_search():
    cfg = pm.PointMassConfig()
    s = np.array([[0.0, 0.0], [-0.7, 0.9]], dtype=np.float32)
    v_star = pm.optimal_value(cfg, s, gamma=0.99)
    rng = np.random.default_rng(0)
    for _ in range(20):  # no perturbed greedy policy does better
        noise = rng.normal(0, 0.5, size=2)
        state, value, disc, alive = s.copy(), np.zeros(2), 1.0, np.ones(2, bool)
        for _ in range(400):
            a = np.clip(pm.greedy_action(cfg, state) + noise, -1, 1)
            state, r, term = pm.step_batch(cfg, state, a)
            value += disc * r * alive
            alive &= ~term
            disc *= 0.99
        assert (value <= v_star + 1e-4).all()


def test_dataset_layout_and_reference_returns():
    cfg = pm.PointMassConfig(max_steps=20)
    data = pm.collect_dataset(cfg, n_episodes=5, seed=0)
    n = len(data["observations"])
    assert 5 <= n <= 100 and data["actions"].shape == (n, 2)
    np.testing.assert_allclose(data["next_observations"][:-1][data["terminals"][:-1] + data["timeouts"][:-1] == 0],
                               data["observations"][1:][data["terminals"][:-1] + data["timeouts"][:-1] == 0])
    np.testing.assert_array_equal(pm.collect_dataset(cfg, 5, 0)["actions"], data["actions"])
    rand = pm.policy_returns(cfg, lambda s: np.random.default_rng(1).uniform(-1, 1, s.shape), 200, 0).mean()
    best = pm.policy_returns(cfg, lambda s: pm.greedy_action(cfg, s), 200, 0).mean()
    assert best > rand
