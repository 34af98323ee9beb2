"""Key/value caches for autoregressive decoding with fixed memory.

``PrefixKVCache``: keys/values of the tokens decoded so far inside one sequence (DrivingWorld's in-frame cache); it
is preallocated to the sequence length and reset per frame, so decoding token i costs O(i) instead of re-running
the whole prefix.
``RingKVCache``: keys/values of the last ``window`` time steps (the temporal context cache). Each slot remembers
the absolute step it holds; a new step overwrites the oldest slot, so memory is flat however long the rollout runs.
Attention is permutation invariant over keys, so slot order does not matter; the caller turns the stored step
indices into a relative-time bias and masks empty slots.
"""
from __future__ import annotations

import torch


class PrefixKVCache:
    def __init__(self, batch: int, heads: int, max_len: int, dim: int, device=None, dtype=torch.float32):
        self.k = torch.zeros(batch, heads, max_len, dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add ``k, v (b, h, n, d)`` and return all cached keys/values so far."""
        n = k.shape[-2]
        if self.length + n > self.k.shape[-2]:
            raise ValueError(f"PrefixKVCache overflow: {self.length} + {n} > {self.k.shape[-2]}")
        self.k[:, :, self.length:self.length + n] = k
        self.v[:, :, self.length:self.length + n] = v
        self.length += n
        return self.k[:, :, :self.length], self.v[:, :, :self.length]


class RingKVCache:
    """Keys/values of one new time step per call, over the last ``window`` steps; ``step[i] = -1`` marks empty."""

    def __init__(self, batch: int, heads: int, window: int, dim: int, device=None, dtype=torch.float32):
        self.k = torch.zeros(batch, heads, window, dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.keep = torch.zeros(batch, window, dtype=torch.bool, device=device)  # per-slot key validity (posedrop)
        self.step = torch.full((window,), -1, dtype=torch.long)
        self.window = window

    def append(self, k: torch.Tensor, v: torch.Tensor, t: int, keep: torch.Tensor | None = None) -> None:
        """Store ``k, v (b, h, 1, d)`` of absolute step ``t`` in the oldest slot."""
        slot = t % self.window
        self.k[:, :, slot] = k[:, :, 0]
        self.v[:, :, slot] = v[:, :, 0]
        self.keep[:, slot] = True if keep is None else keep
        self.step[slot] = t

    def offsets(self, t: int) -> torch.Tensor:
        """``t - step`` per slot (how many steps ago), -1 for empty slots."""
        return torch.where(self.step >= 0, t - self.step, torch.full_like(self.step, -1))

    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2 + self.keep.numel()
