"""Policy evaluation in the simulator and dataset collection by rolling a policy out.

``evaluate`` runs full episodes (seeded resets, deterministic actions by default) and reports the mean return and the
D4RL normalised score ``100 (R - R_random) / (R_expert - R_random)`` (Fu et al., 2020). ``rollout_dataset`` steps an
environment under a policy and records transitions the D4RL way: ``terminals`` only for true MDP terminations,
``timeouts`` for time-limit truncations, and the collection's unfinished last episode marked as a timeout.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from worldgen.data.offline_rl import OfflineDataset, make_dataset, normalized_score
from worldgen.rl.envs import make_env

PolicyFn = Callable[[np.ndarray], np.ndarray]


def evaluate(policy_fn: PolicyFn, env_id: str, n_episodes: int = 10, seed: int = 0,
             ref: Optional[tuple[float, float]] = None, max_episode_steps: Optional[int] = None) -> dict:
    """Mean/std return over ``n_episodes`` (reset seeds ``seed + k``), and the normalised score when ``ref`` given."""
    env = make_env(env_id, seed=seed, max_episode_steps=max_episode_steps)
    returns, lengths = [], []
    for k in range(n_episodes):
        obs, _ = env.reset(seed=seed + k)
        done, ret, n = False, 0.0, 0
        while not done:
            obs, r, term, trunc, _ = env.step(np.asarray(policy_fn(np.asarray(obs, np.float32)), np.float32))
            ret, n, done = ret + float(r), n + 1, term or trunc
        returns.append(ret)
        lengths.append(n)
    env.close()
    out = {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
           "length_mean": float(np.mean(lengths)), "episodes": n_episodes}
    if ref is not None:
        out["normalized_score"] = float(normalized_score(out["return_mean"], ref))
    return out


def actor_fn(actor, deterministic: bool = True) -> PolicyFn:
    """numpy policy function from a ``worldgen.rl.nets`` actor."""
    return lambda obs: actor.act(obs, deterministic=deterministic)


def random_fn(env) -> PolicyFn:
    return lambda obs: env.action_space.sample()


def rollout_dataset(policy_fn: PolicyFn | None, env_id: str, n_steps: int, seed: int = 0,
                    metadata: dict | None = None) -> OfflineDataset:
    """Collect ``n_steps`` transitions; ``policy_fn=None`` = uniform random actions."""
    env = make_env(env_id, seed=seed)
    act = policy_fn or random_fn(env)
    buf = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    obs, _ = env.reset(seed=seed)
    episode = 0
    for t in range(n_steps):
        a = np.clip(np.asarray(act(np.asarray(obs, np.float32)), np.float32), -1, 1)
        nxt, r, term, trunc, _ = env.step(a)
        last = t == n_steps - 1
        for k, v in zip(buf, (obs, a, r, nxt, term, (trunc or last) and not term)):
            buf[k].append(v)
        obs = nxt
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
    env.close()
    return make_dataset(**{k: np.asarray(v) for k, v in buf.items()}, metadata=metadata)


__all__ = ["evaluate", "actor_fn", "random_fn", "rollout_dataset"]
