"""Environment construction for offline RL: Gymnasium MuJoCo locomotion tasks plus one cheap task for fast tests.

Every environment is wrapped so that actions live in ``[-1, 1]`` (``RescaleAction``): D4RL's locomotion tasks already
do, and PGD diffuses ``arctanh(action)`` (Jackson et al., 2024, Sec. 5), which needs that range. The cheap test task is
``Pendulum-v1`` (3-d observation, 1-d action, 200-step time limit, pure NumPy physics: thousands of steps a second).

``set_state_from_obs`` loads an observation back into the simulator, which the PGD dynamics-error diagnostic needs
("load a synthetic state, apply the synthetic action, compare the next state"). MuJoCo locomotion observations omit
the root x position (the dynamics are invariant to it), so it is set to 0; observations whose velocities were clipped
by the environment cannot be restored exactly (a documented limit of the diagnostic).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

CHEAP_ENV = "Pendulum-v1"


def make_env(env_id: str, seed: int | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """``gym.make(env_id)`` with actions rescaled to [-1, 1]; ``reset(seed=...)`` is the caller's job."""
    try:
        env = gym.make(env_id, max_episode_steps=max_episode_steps) if max_episode_steps else gym.make(env_id)
    except gym.error.Error as e:
        raise ValueError(f"unknown or unavailable environment '{env_id}': {e}") from None
    if not isinstance(env.action_space, gym.spaces.Box):
        raise ValueError(f"environment '{env_id}' must have continuous (Box) actions")
    low, high = env.action_space.low, env.action_space.high
    if not (np.allclose(low, -1) and np.allclose(high, 1)):
        env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def env_dims(env: gym.Env) -> tuple[int, int]:
    return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))


# ---------------------------------------------------------------------------------------------- state restoration
def _set_mujoco(env: gym.Env, obs: np.ndarray) -> None:
    u = env.unwrapped
    nq, nv = u.model.nq, u.model.nv
    skip = nq + nv - len(obs)  # root coordinates excluded from the observation (1 for the locomotion tasks)
    if skip < 0 or len(obs) < nv:
        raise ValueError(f"observation of size {len(obs)} does not fit qpos {nq} + qvel {nv}")
    qpos = np.concatenate([np.zeros(skip), obs[: nq - skip]])
    qvel = obs[nq - skip: nq - skip + nv]
    u.set_state(qpos, qvel)


def _set_pendulum(env: gym.Env, obs: np.ndarray) -> None:
    u = env.unwrapped
    u.state = np.array([np.arctan2(obs[1], obs[0]), obs[2]], dtype=np.float64)


def set_state_from_obs(env: gym.Env, obs: np.ndarray) -> None:
    """Put the simulator into the state ``obs`` describes (env must have been ``reset`` once)."""
    obs = np.asarray(obs, dtype=np.float64)
    u = env.unwrapped
    if hasattr(u, "set_state") and hasattr(u, "model"):
        return _set_mujoco(env, obs)
    if type(u).__name__ == "PendulumEnv":
        return _set_pendulum(env, obs)
    raise NotImplementedError(f"cannot restore state of {type(u).__name__} from an observation")


def step_from(env: gym.Env, obs: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Simulate one step from ``obs`` under ``action`` (in [-1, 1]); returns (next_obs, reward, terminated)."""
    set_state_from_obs(env, obs)
    nxt, rew, term, _, _ = env.step(np.asarray(action, dtype=np.float32))
    return np.asarray(nxt, np.float32), float(rew), bool(term)


__all__ = ["CHEAP_ENV", "make_env", "env_dims", "set_state_from_obs", "step_from"]
