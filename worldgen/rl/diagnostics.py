"""PGD's synthetic-data diagnostics (Jackson et al., 2024, Sec. 5.3 / Fig. 4-5).

- **Dynamics error**: load each synthetic state into the simulator, apply the synthetic action, and compare the
  simulator's next state with the synthetic next state (mean squared error over observation dimensions).
- **Target-policy likelihood**: mean ``log pi(a|s)`` of the synthetic actions under the target policy (a
  deterministic actor scored as ``N(mu(s), I)``).
- **Baseline**: a PETS-style autoregressive ensemble world model (``worldgen.rl.dynamics``, shared with RAVL) trained
  on the real data and rolled out for the same horizon from real start states under the target policy; the same two
  measures are computed on its trajectories. PGD's claim: lower dynamics error than the autoregressive model at
  similar likelihood, because errors do not compound over the trajectory.

Deliberate limits: velocities the environment clipped in its observation (Hopper/Walker2d clip qvel at 10) cannot
be restored, so such states carry a floor of error for every method; the MSE is in raw observation units.
``worldgen eval offline-rl`` prints the comparison as JSON.
"""
from __future__ import annotations


import numpy as np
import torch

from worldgen.data.offline_rl import OfflineDataset, make_dataset
from worldgen.rl.envs import make_env, step_from
from worldgen.rl.pgd import mean_log_likelihood


def dynamics_error(ds: OfflineDataset, env_id: str, max_transitions: int = 2000, seed: int = 0) -> dict:
    """Simulator-checked error of ``ds``'s transitions: MSE(next_obs, sim(obs, action)) per transition."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ds), size=min(max_transitions, len(ds)), replace=False)
    env = make_env(env_id, seed=seed)
    env.reset(seed=seed)
    err = np.empty(len(idx))
    for j, i in enumerate(idx):
        nxt, _, _ = step_from(env, ds.observations[i], np.clip(ds.actions[i], -1, 1))
        err[j] = float(np.mean((nxt - ds.next_observations[i]) ** 2))
    env.close()
    return {"dynamics_mse": float(err.mean()), "dynamics_mse_median": float(np.median(err)), "n": int(len(idx))}


def train_ensemble(real: OfflineDataset, env_id: str, seed: int = 0, max_epochs: int = 0, hidden=None,
                   progress: bool = False):
    """Fit the shared probabilistic ensemble on the real data; returns a ``LearnedDynamics`` rollout interface."""
    from worldgen.rl.dynamics import DynamicsConfig, EnsembleDynamics, LearnedDynamics, train_dynamics

    cfg = DynamicsConfig(max_epochs=max_epochs)
    if hidden:
        cfg.hidden = list(hidden)
    torch.manual_seed(seed)
    model = EnsembleDynamics(cfg, real.obs_dim, real.act_dim)
    logs = train_dynamics(model, real.arrays(), seed=seed, progress=progress)
    return LearnedDynamics(model.eval(), _termination(env_id), seed=seed), logs


def _termination(env_id: str):
    from worldgen.rl.termination import get_termination_fn

    try:
        return get_termination_fn(env_id)
    except ValueError:  # environments without terminal states (the cheap Pendulum task)
        return lambda nxt: np.zeros(len(nxt), bool) if isinstance(nxt, np.ndarray) else torch.zeros(len(nxt), dtype=torch.bool)


def ensemble_rollouts(dynamics, policy, real: OfflineDataset, n_traj: int, horizon: int, seed: int = 0,
                      deterministic: bool = False) -> OfflineDataset:
    """Autoregressive model rollouts under ``policy`` from random real start states (one episode per rollout)."""
    rng = np.random.default_rng(seed)
    obs = real.observations[rng.integers(0, len(real), n_traj)]
    alive = np.ones(n_traj, bool)
    steps = []
    for t in range(horizon - 1):  # horizon rows = horizon - 1 transitions, as a decoded PGD window
        act = np.clip(policy.act(obs, deterministic=deterministic), -1, 1).astype(np.float32)
        nxt, rew, term = dynamics.step(obs, act)
        steps.append((obs, act, rew, nxt, term & alive, alive.copy()))
        alive &= ~term
        obs = nxt.astype(np.float32)
    return _rollouts_to_dataset(steps, n_traj)


def _rollouts_to_dataset(steps: list, n_traj: int) -> OfflineDataset:
    eps = []
    for k in range(n_traj):
        rows = [(o[k], a[k], r[k], n[k], te[k]) for o, a, r, n, te, al in steps if al[k]]
        o, a, r, n, te = (np.asarray(x) for x in zip(*rows))
        tout = np.zeros(len(rows), bool)
        tout[-1] = not te[-1]
        eps.append((o, a, r, n, te, tout))
    cat = [np.concatenate(x) for x in zip(*eps)]
    return make_dataset(observations=cat[0], actions=cat[1], rewards=cat[2], next_observations=cat[3],
                        terminals=cat[4], timeouts=cat[5])


def compare(datasets: dict[str, OfflineDataset], policy, env_id: str, max_transitions: int = 2000,
            seed: int = 0, surrogate: str = "none") -> dict:
    """{name: {dynamics_mse, ..., target_log_likelihood, transitions}} for each synthetic dataset."""
    out = {}
    for name, ds in datasets.items():
        res = dynamics_error(ds, env_id, max_transitions, seed)
        res["target_log_likelihood"] = mean_log_likelihood(policy, ds, surrogate)
        res["transitions"] = len(ds)
        out[name] = res
    return out


__all__ = ["dynamics_error", "train_ensemble", "ensemble_rollouts", "compare"]
