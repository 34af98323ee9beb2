"""Key/value caches for autoregressive decoding with fixed memory.

``StaticKVCache``: the in-frame keys/values of every layer in one preallocated buffer ``(layers, b, 2, heads, n,
dim)``, written in place at a token position -- no ``torch.cat`` or allocation per token, memory flat for any
horizon. A frame overwrites the previous one position by position (a query at position ``i`` reads positions
``<= i`` only), so nothing is reset between frames. The eager decoding path reads precomputed per-position views
(``slot``, ``upto``: no indexing arithmetic per token); a compiled step writes with ``index_copy_`` at a position
tensor and masks the unwritten tail instead (one static shape for every position).

(DrivingWorld's temporal context is not cached: the paper's sliding window re-fuses the last W frames per frame.)
"""
from __future__ import annotations

import torch


class StaticKVCache:
    def __init__(self, layers: int, batch: int, heads: int, max_len: int, dim: int, device=None,
                 dtype=torch.float32):
        self.kv = torch.zeros(layers, batch, 2, heads, max_len, dim, device=device, dtype=dtype)
        self.max_len = max_len
        self._views = None

    def views(self) -> list:
        """Per layer, per position ``p``: (key slot, value slot) ``(b, heads, dim)`` and keys/values ``[0, p]``."""
        if self._views is None:
            self._views = [[(kv[:, 0, :, p], kv[:, 1, :, p], kv[:, 0, :, :p + 1], kv[:, 1, :, :p + 1])
                            for p in range(self.max_len)] for kv in self.kv]
        return self._views

    def write(self, layer: int, pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple:
        """Store ``k, v (b, heads, dim)`` at position tensor ``pos`` (shape ``(1,)``); return the whole layer's
        keys and values ``(b, heads, max_len, dim)`` (positions after ``pos`` hold stale values: mask them)."""
        kv = self.kv[layer]
        kv.index_copy_(3, pos, torch.stack([k, v], 1)[:, :, :, None])
        return kv[:, 0], kv[:, 1]

    def check(self, pos: int) -> None:
        if not 0 <= pos < self.max_len:
            raise ValueError(f"StaticKVCache: position {pos} outside [0, {self.max_len})")
