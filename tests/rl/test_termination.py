"""Termination functions against the simulators' own ``terminated`` flags (worldgen/rl/termination.py)."""
import gymnasium as gym
import numpy as np
import pytest
import torch

from worldgen.rl import pointmass as pm
from worldgen.rl.termination import get_termination_fn


def _flags(env_id, steps, seed, scale):
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs_list, flags = [], []
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        obs, _, term, trunc, _ = env.step((rng.uniform(-1, 1, env.action_space.shape) * scale).astype(np.float32))
        obs_list.append(obs)
        flags.append(term)
        if term or trunc:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    return np.asarray(obs_list), np.asarray(flags)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5", "HalfCheetah-v5"])
def test_matches_simulator(env_id):
    obs, flags = _flags(env_id, steps=600, seed=0, scale=1.0)
    done = get_termination_fn(env_id)(obs)
    if env_id != "HalfCheetah-v5":
        assert flags.sum() >= 3, "the random policy should fall several times"
    np.testing.assert_array_equal(done, flags)
    torch.testing.assert_close(get_termination_fn(env_id)(torch.as_tensor(obs)), torch.as_tensor(flags))


def test_non_finite_is_terminal_and_unknown_env_errors():
    bad = np.full((1, 11), np.nan, dtype=np.float32)
    assert get_termination_fn("hopper-medium")(bad).all()
    assert get_termination_fn("halfcheetah")(np.full((1, 17), np.inf)).all()
    with pytest.raises(ValueError, match="no termination function"):
        get_termination_fn("Ant-v5")


def test_pointmass_matches_env():
    cfg = pm.PointMassConfig(goal_radius=0.3)
    env, rng = pm.PointMassEnv(cfg), np.random.default_rng(0)
    fn = get_termination_fn("pointmass", cfg)
    hits = 0
    for _ in range(300):
        env.set_state(rng.uniform(0.5, 1.5, 2))
        obs, _, term, _, _ = env.step(rng.uniform(-1, 1, 2))
        assert bool(fn(obs[None])[0]) == term
        hits += term
    assert hits > 0
