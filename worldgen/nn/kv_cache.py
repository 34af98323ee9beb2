"""Key/value cache for autoregressive decoding with fixed memory.

``PrefixKVCache``: keys/values of the tokens decoded so far inside one sequence (DrivingWorld's in-frame cache); it
is preallocated to the sequence length and reset per frame, so decoding token i costs O(i) instead of re-running
the whole prefix.
(DrivingWorld's temporal context is not cached: the paper's sliding window re-fuses the last W frames per frame.)
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
