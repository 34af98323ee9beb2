"""A small 2D U-Net with conditioning embedding and optional text cross-attention.

Follows the ADM / Stable Diffusion U-Net design (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs"; Rombach et
al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models"): residual blocks with GroupNorm + SiLU whose
second normalisation is modulated by the conditioning embedding (scale-shift, ADM's "AdaGN"), strided-conv
downsampling, nearest upsampling, skip connections by concatenation, and at chosen levels a transformer block of
self-attention over pixels then cross-attention to context tokens (text). Deviations: one attention head width for
all levels, no dropout by default, the output convolution zero-initialised (so an EDM-preconditioned denoiser
starts as D = c_skip x).

Shapes: ``forward(x[b c h w], emb[b d], context[b n d_ctx] | None, context_mask[b n] bool | None) -> [b c_out h w]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldgen.nn.attention import attention


@dataclass
class UNetConfig:
    in_channels: int = 3  # input channels
    out_channels: int = 3  # output channels
    base: int = 128  # channels at full resolution
    mults: list = field(default_factory=lambda: [1, 2, 2, 4])  # channel multiplier per level (len = levels)
    blocks_per_level: int = 2  # residual blocks per level (encoder; decoder has one more)
    attn_levels: list = field(default_factory=lambda: [2, 3])  # levels (0 = full res) with attention blocks
    emb_dim: int = 512  # conditioning embedding width
    context_dim: int = 0  # width of cross-attention context tokens; 0 disables cross-attention
    head_dim: int = 32  # channels per attention head
    groups: int = 32  # GroupNorm groups
    dropout: float = 0.0  # dropout inside residual blocks


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, c), c)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in, groups), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2, self.conv2 = _norm(c_out, groups), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = rearrange(self.emb(F.silu(emb)), "b (k c) -> k b c 1 1", k=2)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class AttnBlock(nn.Module):
    """Self-attention over pixels, then (optional) cross-attention to context tokens, then an MLP; pre-norm."""

    def __init__(self, c: int, context_dim: int, head_dim: int, groups: int):
        super().__init__()
        self.heads = max(1, c // head_dim)
        self.norm = _norm(c, groups)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.cross = context_dim > 0
        if self.cross:
            self.norm_x = nn.LayerNorm(c)
            self.q, self.kv, self.proj_x = nn.Linear(c, c), nn.Linear(context_dim, 2 * c), nn.Linear(c, c)
        self.norm_mlp = nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c))
        for lin in (self.proj, self.mlp[2], *( [self.proj_x] if self.cross else [])):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        return rearrange(t, "b n (h d) -> b h n d", h=self.heads)

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor], context_mask: Optional[torch.Tensor]):
        b, c, hh, ww = x.shape
        tokens = rearrange(self.norm(x), "b c h w -> b (h w) c")
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        out = attention(self._heads(q), self._heads(k), self._heads(v))
        h = rearrange(x, "b c h w -> b (h w) c") + self.proj(rearrange(out, "b h n d -> b n (h d)"))
        if self.cross and context is not None:
            k, v = self.kv(context).chunk(2, dim=-1)
            mask = None if context_mask is None else rearrange(context_mask, "b n -> b 1 1 n")
            out = attention(self._heads(self.q(self.norm_x(h))), self._heads(k), self._heads(v), mask=mask)
            h = h + self.proj_x(rearrange(out, "b h n d -> b n (h d)"))
        h = h + self.mlp(self.norm_mlp(h))
        return rearrange(h, "b (h w) c -> b c h w", h=hh, w=ww)


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        chans = [cfg.base * m for m in cfg.mults]
        self.conv_in = nn.Conv2d(cfg.in_channels, chans[0], 3, padding=1)
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        skips, c = [chans[0]], chans[0]
        for lvl, ch in enumerate(chans):
            for _ in range(cfg.blocks_per_level):
                self.down.append(self._level_block(c, ch, lvl))
                c = ch
                skips.append(c)
            if lvl < len(chans) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, cfg.emb_dim, cfg.groups, cfg.dropout),
                                  AttnBlock(c, cfg.context_dim, cfg.head_dim, cfg.groups),
                                  ResBlock(c, c, cfg.emb_dim, cfg.groups, cfg.dropout)])
        for lvl, ch in reversed(list(enumerate(chans))):
            for _ in range(cfg.blocks_per_level + 1):
                self.up.append(self._level_block(c + skips.pop(), ch, lvl))
                c = ch
            if lvl > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.norm_out, self.conv_out = _norm(c, cfg.groups), nn.Conv2d(c, cfg.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def _level_block(self, c_in: int, c_out: int, lvl: int) -> nn.ModuleList:
        cfg = self.cfg
        blocks = [ResBlock(c_in, c_out, cfg.emb_dim, cfg.groups, cfg.dropout)]
        if lvl in cfg.attn_levels:
            blocks.append(AttnBlock(c_out, cfg.context_dim, cfg.head_dim, cfg.groups))
        return nn.ModuleList(blocks)

    def _run(self, block, h, emb, context, context_mask):
        if isinstance(block, nn.ModuleList):
            for m in block:
                h = m(h, emb) if isinstance(m, ResBlock) else m(h, context, context_mask)
            return h
        return block(h)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: Optional[torch.Tensor] = None,
                context_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        factor = 2 ** (len(self.cfg.mults) - 1)
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(f"UNet: frame size {tuple(x.shape[-2:])} must be divisible by {factor}")
        h = self.conv_in(x)
        hs = [h]
        for block in self.down:
            h = self._run(block, h, emb, context, context_mask)
            hs.append(h)
        for block in self.mid:
            h = self._run(nn.ModuleList([block]), h, emb, context, context_mask)
        for block in self.up:
            if isinstance(block, nn.ModuleList):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run(block, h, emb, context, context_mask)
        return self.conv_out(F.silu(self.norm_out(h)))


__all__ = ["UNetConfig", "UNet", "ResBlock", "AttnBlock"]
