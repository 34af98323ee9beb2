"""Hand-written termination functions ``done(next_obs)`` for model rollouts (MBPO's ``static_fns``, used by RAVL).

A learned dynamics model predicts next state and reward; whether the episode ended is decided by these functions,
rewritten from Gymnasium's v5 MuJoCo ``is_healthy`` checks in observation space (positions excluded, so
``obs[0]`` is the torso height ``qpos[1]`` and ``obs[1]`` the torso angle ``qpos[2]``):

- Hopper: healthy iff every entry of ``obs[1:]`` is inside (-100, 100), ``z > 0.7`` and ``|angle| < 0.2``
  (Gymnasium checks ``state_vector()[2:]`` = ``qpos[2:]`` + ``qvel``; the observed velocities are clipped to +-10,
  so they never leave the range -- checking ``obs[1:]`` is equivalent).
- Walker2d: healthy iff ``0.8 < z < 2.0`` and ``-1 < angle < 1``.
- HalfCheetah: never terminates.
- Point mass: within ``goal_radius`` of the goal (``worldgen.rl.pointmass``).

Non-finite predictions count as terminal (a diverged model rollout must stop). Deliberate deviation from MBPO's
hopper function, which has a misplaced parenthesis (``np.abs(next_obs[:, 1:] < 100)``) and so never checks -100.
Tested against the simulators' own ``terminated`` flags.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(x).all(dim=-1)


def hopper(next_obs: torch.Tensor) -> torch.Tensor:
    z, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (next_obs[..., 1:].abs() < 100).all(dim=-1) & (z > 0.7) & (angle.abs() < 0.2) & _finite(next_obs)
    return ~healthy


def walker2d(next_obs: torch.Tensor) -> torch.Tensor:
    z, angle = next_obs[..., 0], next_obs[..., 1]
    healthy = (z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0) & _finite(next_obs)
    return ~healthy


def halfcheetah(next_obs: torch.Tensor) -> torch.Tensor:
    return ~_finite(next_obs)


def make_pointmass(goal, goal_radius: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def pointmass(next_obs: torch.Tensor) -> torch.Tensor:
        g = torch.as_tensor(goal, dtype=next_obs.dtype, device=next_obs.device)
        return ((next_obs - g).norm(dim=-1) < goal_radius) | ~_finite(next_obs)
    return pointmass


TERMINATION_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "hopper": hopper,
    "walker2d": walker2d,
    "halfcheetah": halfcheetah,
}


def get_termination_fn(env_id: str, pointmass_cfg=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``"Hopper-v5"`` / ``"hopper-medium"`` / ``"pointmass"`` -> a function of ``next_obs`` (tensor or array)."""
    family = env_id.split("-")[0].lower()
    if family == "pointmass":
        from worldgen.rl.pointmass import PointMassConfig

        cfg = pointmass_cfg or PointMassConfig()
        fn = make_pointmass(cfg.goal, cfg.goal_radius)
    elif family in TERMINATION_FNS:
        fn = TERMINATION_FNS[family]
    else:
        raise ValueError(f"no termination function for env '{env_id}'; known: {sorted(TERMINATION_FNS)} + pointmass")

    def done(next_obs):
        if isinstance(next_obs, np.ndarray):
            return fn(torch.as_tensor(next_obs)).numpy()
        return fn(next_obs)
    return done


__all__ = ["hopper", "walker2d", "halfcheetah", "make_pointmass", "TERMINATION_FNS", "get_termination_fn"]
