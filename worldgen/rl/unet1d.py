"""1D temporal U-Net denoiser for trajectory diffusion (Jackson et al., 2024, "Policy-Guided Diffusion", App. B).

The network convolves over the time axis of a trajectory window ``b t c`` (``c`` = obs + action + reward + done).
As in the PGD reference architecture: ``n_blocks`` encoder levels of two 3-tap convolutions with GroupNorm and ReLU,
channels ``features * 2**i``, the noise embedding added after the first convolution, max-pool by 2 between levels;
the decoder upsamples (nearest) to the skip's length, convolves, adds the noise embedding, concatenates the skip and
applies two more conv/GroupNorm/ReLU layers; a 1x1 convolution maps back to ``c`` channels. The noise level enters as
a sinusoidal embedding of EDM's ``c_noise = ln(sigma) / 4`` followed by a 2-layer SiLU MLP.

Called as ``net(x_in, c_noise, cond)`` (the contract of ``worldgen.diffusion.edm.EDMPrecond``); ``cond`` is unused
(PGD is unconditional). Deliberate deviations: the decoder's first convolution has 3 taps with "same" padding (the
reference uses 2 taps) so lengths never shrink; the output layer is zero-initialised so an untrained denoiser is the
EDM skip connection alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F


@dataclass
class UNet1DConfig:
    channels: int = 0  # per-step features (obs_dim + act_dim + 2); 0 = filled in from the dataset
    features: int = 1024  # channels of the first level (PGD: 1024), doubled at each deeper level
    n_blocks: int = 3  # encoder levels (PGD: 3)
    groups: int = 8  # GroupNorm groups
    emb_dim: int = 0  # noise-embedding width; 0 = features


def sinusoidal_embedding(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sin/cos features of a (b,) scalar, shape (b, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=c_noise.device, dtype=torch.float32) / max(half - 1, 1))
    arg = c_noise.float()[:, None] * freqs[None]
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


class ConvBlock(nn.Module):
    """conv -> (+ noise embedding) -> GroupNorm -> ReLU -> conv -> GroupNorm -> ReLU."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm1 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x) + self.emb(emb)[:, :, None]
        h = F.relu(self.norm1(h))
        return F.relu(self.norm2(self.conv2(h)))


class UpBlock(nn.Module):
    """upsample to the skip's length -> conv (+ embedding) -> GroupNorm -> ReLU -> concat skip -> ConvBlock."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm = nn.GroupNorm(min(groups, c_out), c_out)
        self.block = ConvBlock(2 * c_out, c_out, emb_dim, groups)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-1], mode="nearest")
        x = F.relu(self.norm(self.conv(x) + self.emb(emb)[:, :, None]))
        return self.block(torch.cat([x, skip], dim=1), emb)


class UNet1D(nn.Module):
    """``net(x_in b t c, c_noise b, cond=None) -> b t c``."""

    def __init__(self, cfg: UNet1DConfig):
        super().__init__()
        if cfg.channels <= 0:
            raise ValueError("UNet1DConfig.channels must be set (obs_dim + act_dim + 2)")
        self.cfg = cfg
        f, emb = cfg.features, cfg.emb_dim or cfg.features
        self.emb_in = max(8, f // 4)
        self.time_mlp = nn.Sequential(nn.Linear(self.emb_in, emb), nn.SiLU(), nn.Linear(emb, emb), nn.SiLU())
        widths = [f * 2**i for i in range(cfg.n_blocks)]
        self.down = nn.ModuleList()
        c = cfg.channels
        for w in widths:
            self.down.append(ConvBlock(c, w, emb, cfg.groups))
            c = w
        self.up = nn.ModuleList(UpBlock(widths[i + 1], widths[i], emb, cfg.groups) for i in reversed(range(cfg.n_blocks - 1)))
        self.out = nn.Conv1d(widths[0], cfg.channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond=None) -> torch.Tensor:
        emb = self.time_mlp(sinusoidal_embedding(c_noise.reshape(-1).expand(x.shape[0]), self.emb_in).to(x.dtype))
        h = rearrange(x, "b t c -> b c t")
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                h = F.max_pool1d(h, 2, ceil_mode=True)
            h = block(h, emb)
            skips.append(h)
        for up, skip in zip(self.up, reversed(skips[:-1])):
            h = up(h, skip, emb)
        return rearrange(self.out(h), "b c t -> b t c")


__all__ = ["UNet1DConfig", "UNet1D", "sinusoidal_embedding"]
