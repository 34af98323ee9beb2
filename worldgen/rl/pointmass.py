"""A 2D point mass that must reach a goal: the small continuous environment of RAVL's edge-of-reach analysis.

Sims et al. 2024 ("The Edge-of-Reach Problem in Offline Model-Based RL", section 4) illustrate the failure on a
simple 2D environment with known dynamics. worldgen's version (exact constants are its own choice):

- state ``s = (x, y)`` in the box ``[-bound, bound]^2``; action ``a`` in ``[-1, 1]^2``;
- dynamics ``s' = clip(s + step_size * a, -bound, bound)`` (deterministic, so the "true model" is exact);
- reward ``r = -|s' - goal|`` (a distance penalty: every true Q-value is <= 0, so positive Q is overestimation);
- terminated when ``|s' - goal| < goal_radius``; truncated after ``max_steps``; starts uniform in
  ``[-start_range, start_range]^2``.

``step_batch`` is the one implementation of the dynamics; the Gymnasium env and the true-dynamics model both call
it. Because the box-constrained action minimising the next distance is ``clip((goal - s) / step_size, -1, 1)`` and
every coordinate distance is then minimal at every step, that greedy policy is optimal; ``optimal_value`` rolls it
out to give the true value ``V*(s)`` used by the oracle edge-of-reach patch and as the expert reference return.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np


@dataclass
class PointMassConfig:
    bound: float = 10.0  # the state box is [-bound, bound]^2
    step_size: float = 0.1  # displacement per unit action per step
    goal: list = field(default_factory=lambda: [1.0, 1.0])  # goal position
    goal_radius: float = 0.1  # terminated when closer than this to the goal
    start_range: float = 1.0  # starts are uniform in [-start_range, start_range]^2
    max_steps: int = 50  # episode length (truncation)


def step_batch(cfg: PointMassConfig, states: np.ndarray, actions: np.ndarray):
    """``(b 2, b 2) -> (next b 2, reward b, terminal b)``; actions are clipped to [-1, 1]."""
    actions = np.clip(actions, -1.0, 1.0)
    nxt = np.clip(states + cfg.step_size * actions, -cfg.bound, cfg.bound)
    dist = np.linalg.norm(nxt - np.asarray(cfg.goal, dtype=nxt.dtype), axis=-1)
    return nxt.astype(np.float32), (-dist).astype(np.float32), dist < cfg.goal_radius


def terminal_fn(cfg: PointMassConfig, next_obs: np.ndarray) -> np.ndarray:
    return np.linalg.norm(next_obs - np.asarray(cfg.goal, dtype=next_obs.dtype), axis=-1) < cfg.goal_radius


def greedy_action(cfg: PointMassConfig, states: np.ndarray) -> np.ndarray:
    """The optimal action: the box-clipped displacement toward the goal."""
    return np.clip((np.asarray(cfg.goal) - states) / cfg.step_size, -1.0, 1.0).astype(np.float32)


def optimal_value(cfg: PointMassConfig, states: np.ndarray, gamma: float, horizon: int = 0) -> np.ndarray:
    """``V*(s) = sum_t gamma^t r_t`` under the optimal policy until termination (``horizon`` 0 = until gamma^t < 1e-4).

    Infinite-horizon discounted value (no time limit), which is what a bootstrapped critic estimates.
    """
    horizon = horizon or int(np.ceil(np.log(1e-4) / np.log(gamma)))
    s = np.asarray(states, dtype=np.float64)
    value, alive, disc = np.zeros(len(s)), np.ones(len(s), dtype=bool), 1.0
    for _ in range(horizon):
        s, r, term = step_batch(cfg, s, greedy_action(cfg, s))
        s = s.astype(np.float64)
        value += disc * r * alive
        alive &= ~term
        disc *= gamma
        if not alive.any():
            break
    return value


def policy_returns(cfg: PointMassConfig, policy, n: int, seed: int) -> np.ndarray:
    """Undiscounted episode returns of ``policy(states b 2) -> actions b 2`` from ``n`` seeded starts (vectorised)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(-cfg.start_range, cfg.start_range, size=(n, 2)).astype(np.float32)
    ret, alive = np.zeros(n), np.ones(n, dtype=bool)
    for _ in range(cfg.max_steps):
        s, r, term = step_batch(cfg, s, policy(s))
        ret += r * alive
        alive &= ~term
        if not alive.any():
            break
    return ret


class PointMassEnv(gym.Env):
    """Gymnasium API around ``step_batch``; ``set_state`` puts the mass anywhere (true-dynamics rollouts)."""

    metadata = {"render_modes": []}

    def __init__(self, cfg: PointMassConfig | None = None):
        self.cfg = cfg or PointMassConfig()
        b = self.cfg.bound
        self.observation_space = gym.spaces.Box(-b, b, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.state = np.zeros(2, dtype=np.float32)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        r = self.cfg.start_range
        if options and "state" in options:
            self.state = np.asarray(options["state"], dtype=np.float32).copy()
        else:
            self.state = self.np_random.uniform(-r, r, size=2).astype(np.float32)
        self.t = 0
        return self.state.copy(), {}

    def set_state(self, state) -> None:
        self.state = np.asarray(state, dtype=np.float32).copy()

    def step(self, action):
        nxt, r, term = step_batch(self.cfg, self.state[None], np.asarray(action, dtype=np.float32)[None])
        self.state, self.t = nxt[0], self.t + 1
        return self.state.copy(), float(r[0]), bool(term[0]), self.t >= self.cfg.max_steps, {}


def collect_dataset(cfg: PointMassConfig, n_episodes: int, seed: int, noise: float = 1.0) -> dict[str, np.ndarray]:
    """D4RL-layout transitions of a uniform-random policy (``noise`` scales the action range)."""
    env, rng = PointMassEnv(cfg), np.random.default_rng(seed)
    rows: dict[str, list] = {k: [] for k in
                             ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    for ep in range(n_episodes):
        obs, _ = env.reset(seed=seed * 100_003 + ep)
        for _ in range(cfg.max_steps):
            a = (rng.uniform(-1, 1, size=2) * noise).astype(np.float32)
            nxt, r, term, trunc, _ = env.step(a)
            for k, v in zip(rows, (obs, a, r, nxt, term, trunc and not term)):
                rows[k].append(v)
            obs = nxt
            if term or trunc:
                break
    return {k: np.asarray(v, dtype=np.float32) for k, v in rows.items()}


__all__ = ["PointMassConfig", "PointMassEnv", "step_batch", "terminal_fn", "greedy_action", "optimal_value",
           "policy_returns", "collect_dataset"]
