"""Environment construction, action rescaling and state restoration (the basis of the dynamics-error diagnostic)."""
from __future__ import annotations

import numpy as np
import pytest

from worldgen.rl.envs import CHEAP_ENV, env_dims, make_env, step_from


def test_cheap_env_actions_are_rescaled_to_unit_box():
    env = make_env(CHEAP_ENV, seed=0)
    assert np.allclose(env.action_space.low, -1) and np.allclose(env.action_space.high, 1)
    assert env_dims(env) == (3, 1)
    env.reset(seed=0)
    # +1 in the wrapped space is the raw maximum torque 2
    assert env.unwrapped.max_torque == 2.0


@pytest.mark.parametrize("env_id", [CHEAP_ENV, "Hopper-v5"])
def test_state_restored_from_an_observation_reproduces_the_step(env_id):
    env = make_env(env_id, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    a = np.full(env.action_space.shape, 0.3, np.float32)
    true_next, true_r, *_ = env.step(a)
    other = make_env(env_id)
    other.reset(seed=123)  # a different state, overwritten from the observation
    nxt, r, _ = step_from(other, obs, a)
    np.testing.assert_allclose(nxt, true_next, atol=1e-4)
    assert r == pytest.approx(true_r, abs=1e-4)


def test_unknown_env_is_a_clear_error():
    with pytest.raises(ValueError, match="NoSuchEnv"):
        make_env("NoSuchEnv-v0")
