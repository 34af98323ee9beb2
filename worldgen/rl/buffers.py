"""Transition buffers: a replay buffer over a fixed offline dataset and MBPO's FIFO model buffer.

MBPO (Janner et al. 2019, algorithm 2) and RAVL (Sims et al. 2024) add every model-rollout transition to a
first-in-first-out buffer whose capacity is ``rollout_batch * k * retain_epochs``; agent batches mix ``real_ratio``
real transitions with model ones. Both buffers here are the same ring buffer of named numpy fields; batches come
out as float32 torch tensors with D4RL key names (``observations, actions, rewards, next_observations, terminals``)
plus any extra fields the buffer was made with (RAVL stores ``edge``: the transition's next state is a rollout-final,
edge-of-reach state, and ``oracle_value`` for the oracle patch).
"""
from __future__ import annotations

import numpy as np
import torch

CORE_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


class ReplayBuffer:
    """Ring buffer of named fields; ``add`` overwrites the oldest rows once full (FIFO)."""

    def __init__(self, capacity: int, shapes: dict[str, tuple], seed: int = 0):
        if capacity <= 0:
            raise ValueError(f"buffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.data = {k: np.zeros((capacity, *s), dtype=np.float32) for k, s in shapes.items()}
        self.ptr = 0  # next row to write
        self.size = 0
        self.rng = np.random.default_rng(seed)

    @classmethod
    def for_env(cls, capacity: int, obs_dim: int, act_dim: int, extra: dict | None = None, seed: int = 0):
        shapes = {"observations": (obs_dim,), "actions": (act_dim,), "rewards": (), "next_observations": (obs_dim,),
                  "terminals": ()}
        return cls(capacity, {**shapes, **(extra or {})}, seed)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], seed: int = 0) -> "ReplayBuffer":
        """A buffer holding exactly a dataset (e.g. the offline data), keys ``CORE_FIELDS`` at least."""
        missing = [k for k in CORE_FIELDS if k not in arrays]
        if missing:
            raise KeyError(f"dataset is missing {missing}; expected {list(CORE_FIELDS)}")
        n = len(arrays["observations"])
        buf = cls(n, {k: np.asarray(arrays[k]).shape[1:] for k in CORE_FIELDS}, seed)
        buf.add(**{k: arrays[k] for k in CORE_FIELDS})
        return buf

    def __len__(self) -> int:
        return self.size

    def add(self, **rows: np.ndarray) -> None:
        """Append a batch (every field, same length); rows beyond capacity overwrite the oldest ones."""
        if set(rows) != set(self.data):
            raise KeyError(f"add() needs exactly the fields {sorted(self.data)}, got {sorted(rows)}")
        n = len(next(iter(rows.values())))
        if n > self.capacity:  # only the newest `capacity` rows survive anyway
            rows = {k: np.asarray(v)[-self.capacity:] for k, v in rows.items()}
            n = self.capacity
        idx = (self.ptr + np.arange(n)) % self.capacity
        for k, v in rows.items():
            v = np.asarray(v, dtype=np.float32)
            if len(v) != n:
                raise ValueError(f"field '{k}' has {len(v)} rows, expected {n}")
            self.data[k][idx] = v.reshape(n, *self.data[k].shape[1:])
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample_indices(self, batch_size: int) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty buffer")
        return self.rng.integers(0, self.size, size=batch_size)

    def get(self, idx: np.ndarray, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v[idx], device=device) for k, v in self.data.items()}

    def sample(self, batch_size: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        return self.get(self.sample_indices(batch_size), device)

    def valid(self) -> dict[str, np.ndarray]:
        """The filled rows (oldest first is not guaranteed; order is storage order)."""
        return {k: v[: self.size] for k, v in self.data.items()}


def mixed_batch(real: ReplayBuffer, model: ReplayBuffer | None, batch_size: int, real_ratio: float,
                device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``round(real_ratio * batch_size)`` real rows + the rest from the model buffer, core fields only.

    Fields present in only one buffer are filled with zeros for the other's rows (so ``edge`` is 0 for real data).
    """
    n_real = batch_size if model is None or len(model) == 0 else int(round(real_ratio * batch_size))
    parts = [real.sample(n_real, device)]
    if n_real < batch_size:
        parts.append(model.sample(batch_size - n_real, device))
    keys = sorted(set().union(*(p.keys() for p in parts)))
    out = {}
    for k in keys:
        cols = [p[k] if k in p else torch.zeros((len(p["rewards"]),) + next(q[k] for q in parts if k in q).shape[1:],
                                                device=device) for p in parts]
        out[k] = torch.cat(cols)
    return out


__all__ = ["ReplayBuffer", "mixed_batch", "CORE_FIELDS"]
