"""Bias-free transformer pieces shared by worldgen's GPTs: QK-normed multi-head self-attention and an MLP block.

QK-LayerNorm (Dehghani et al., 2023, "Scaling Vision Transformers to 22B") normalises queries and keys per head
before the dot product, which DrivingWorld uses for stable bf16 training. Every linear and norm is bias-free
(DrivingWorld: "no biases"). Attention itself goes through ``worldgen.nn.attention.attention`` (SDPA / xformers).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from einops import rearrange
from timm.layers import Mlp
from torch import nn

from worldgen.nn.attention import attention


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, bias=False)


class SelfAttention(nn.Module):
    """``x (b n d) -> (b n d)``; ``project`` and ``combine`` are exposed so KV-cached decoders reuse the weights."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim, bias=False)
        head_dim = dim // heads
        self.q_norm = layer_norm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = layer_norm(head_dim) if qk_norm else nn.Identity()

    def project(self, x: torch.Tensor, rope: Optional[Callable] = None, start: int = 0):
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rope(q, start), rope(k, start)
        return q, k, v

    def combine(self, o: torch.Tensor) -> torch.Tensor:
        return self.proj(rearrange(o, "b h n d -> b n (h d)"))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, causal: bool = False,
                rope: Optional[Callable] = None) -> torch.Tensor:
        q, k, v = self.project(x, rope)
        return self.combine(attention(q, k, v, mask=mask, causal=causal))


def mlp(dim: int, ratio: float) -> Mlp:
    """GELU MLP without biases (timm's Mlp)."""
    return Mlp(dim, int(dim * ratio), bias=False, act_layer=nn.GELU)
