"""Scalar-condition embeddings for diffusion networks (timesteps, noise levels, augmentation levels).

Sinusoidal features as in "Attention Is All You Need" (Vaswani et al. 2017, Sec. 3.5) / DDPM's timestep embedding,
followed by the two-layer SiLU MLP of ADM (Dhariwal & Nichol 2021). For EDM the input is c_noise = ln(sigma)/4, a
small real number, so the frequencies are scaled by ``scale`` (1000 by default, as for DDPM's t in [0, 1000)).
"""
from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0, scale: float = 1.0) -> torch.Tensor:
    """(b,) real values -> (b, dim) [cos | sin] features with geometrically spaced frequencies."""
    if dim % 2:
        raise ValueError(f"sinusoidal_embedding: dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = (x.float() * scale)[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class ScalarEmbedding(nn.Module):
    """Sinusoidal features of a per-sample scalar followed by Linear-SiLU-Linear (ADM's time embedding)."""

    def __init__(self, dim: int, freq_dim: int = 128, scale: float = 1000.0):
        super().__init__()
        self.freq_dim, self.scale = freq_dim, scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(x, self.freq_dim, scale=self.scale))


__all__ = ["sinusoidal_embedding", "ScalarEmbedding"]
