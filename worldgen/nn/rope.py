"""2D axial rotary position embedding (RoPE; Su et al., 2021) for image tokens, as in DrivingWorld (theta 1000).

The head dimension is split in two halves: the first half rotates with the token's row, the second with its column
(axial RoPE, Heo et al. 2024 "Rotary Position Embedding for Vision Transformer"). ``n_prefix`` non-image tokens
(DrivingWorld's yaw, x, y ego tokens) come first in every sequence and are left unrotated (angle 0), so attention
between image tokens depends only on their 2D offset.
"""
from __future__ import annotations

import torch
from torch import nn


def _rotate(x: torch.Tensor) -> torch.Tensor:
    """Within each half of the last dim, (a, b) -> (-b, a) on its two quarters."""
    x1, x2, x3, x4 = x.chunk(4, dim=-1)
    return torch.cat([-x2, x1, -x4, x3], dim=-1)


class AxialRoPE2D(nn.Module):
    """Precomputed cos/sin tables for ``n_prefix`` unrotated tokens followed by an ``h x w`` raster of image tokens."""

    def __init__(self, h: int, w: int, dim: int, theta: float = 1000.0, n_prefix: int = 0):
        super().__init__()
        if dim % 4:
            raise ValueError(f"axial RoPE needs a head dim divisible by 4, got {dim}")
        quarter = dim // 4
        freqs = theta ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        ang_r = rows.flatten()[:, None].double() * freqs
        ang_c = cols.flatten()[:, None].double() * freqs
        ang = torch.cat([ang_r, ang_r, ang_c, ang_c], dim=-1)
        ang = torch.cat([torch.zeros(n_prefix, dim, dtype=torch.float64), ang], dim=0)
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Rotate ``x (..., n, dim)`` whose tokens sit at sequence positions ``start .. start + n - 1``."""
        n = x.shape[-2]
        cos = self.cos[start:start + n].to(x.dtype)
        sin = self.sin[start:start + n].to(x.dtype)
        return x * cos + _rotate(x) * sin
