"""Building blocks of the DrivingWorld VQ video tokenizer: a VQGAN conv encoder/decoder, attention blocks, a patch
discriminator.

DrivingWorld (Hu et al., 2024, arXiv 2412.19505, Sec. 3.1) tokenizes each frame with a VQGAN (Esser et al., 2021)
whose encoder downsamples 16x (channel multipliers [1, 1, 2, 2, 4], base 128, z 256) and adds, after the encoder and
again before the decoder, one *causal temporal* self-attention block and one *spatial* self-attention block, so a
frame's tokens may draw on earlier frames (window 16) but never on later ones.

- ``Encoder`` / ``Decoder``: VQGAN ResNet stacks, applied to every frame independently (frames are folded into the
  batch), so the only coupling across time is the temporal attention.
- ``TemporalAttention``: attention across frames at each latent position, causal, restricted to a sliding window of
  ``window`` frames, with an ALiBi distance bias (Press et al., 2022) instead of absolute time embeddings.
  Deliberate deviation: the paper does not say how time positions are encoded; a *relative* bias makes a frame's
  output depend only on the frames inside its window, never on its absolute index, so decoding a clip in one batch
  and decoding it frame by frame with the previous frames as context give the same pixels (see ``context_frames``).
  With a window (``window > 0``) each frame's attention is computed over exactly ``window`` key slots, whatever the
  clip length (``windowed_attention``), so the same pixels hold bit for bit, not only up to float rounding: a
  masked attention over the whole clip sums over a length that changes with the clip and rounds differently, which
  flipped single pixels by one grey level between a one-pass and a streamed decode.
- ``SpatialAttention``: bidirectional attention over the ``h w`` positions of one frame.
- ``PatchDiscriminator``: the pix2pix / VQGAN N-layer PatchGAN, per frame.
All attention goes through ``worldgen.nn.attention.attention`` (SDPA, or xformers on CUDA).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldgen.nn.attention import attention


def norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= ``groups`` dividing ``channels`` (tiny widths are not multiples of 32)."""
    g = math.gcd(channels, groups)
    return nn.GroupNorm(g, channels, eps=1e-6)


class ResBlock(nn.Module):
    """VQGAN residual block: (norm, SiLU, 3x3 conv) x 2 with a 1x1 shortcut when the width changes."""

    def __init__(self, c_in: int, c_out: int, dropout: float = 0.0):
        super().__init__()
        self.block = nn.Sequential(
            norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
            norm(c_out), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


class Downsample(nn.Module):
    """Stride-2 3x3 conv with VQGAN's asymmetric (0, 1, 0, 1) padding."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling followed by a 3x3 conv."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))


class SpatialAttention(nn.Module):
    """Pre-norm bidirectional self-attention over the ``h w`` positions of each frame (input ``(b t) c h w``)."""

    def __init__(self, c: int, heads: int):
        super().__init__()
        if c % heads:
            raise ValueError(f"spatial attention: width {c} is not divisible by {heads} heads")
        self.heads = heads
        self.norm = norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        q, k, v = rearrange(self.qkv(self.norm(x)), "b (k n d) h w -> k b n (h w) d", k=3, n=self.heads)
        out = attention(q, k, v)
        return x + self.proj(rearrange(out, "b n (h w) d -> b (n d) h w", h=h, w=w))


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi head slopes 2^(-8 i / heads), i = 1..heads (Press et al., 2022)."""
    return torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)])


def temporal_bias(t: int, window: int, slopes: torch.Tensor) -> torch.Tensor:
    """Additive ``(n, t, t)`` bias: -slope * distance to earlier frames inside the window, -inf elsewhere."""
    i = torch.arange(t)
    dist = (i[:, None] - i[None, :]).to(slopes)
    allowed = dist >= 0
    if window > 0:
        allowed &= dist < window
    bias = -slopes[:, None, None] * dist
    return bias.masked_fill(~allowed, float("-inf"))


def windowed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                       slopes: torch.Tensor) -> torch.Tensor:
    """Causal sliding-window attention with an ALiBi bias over ``b n t d`` tensors, computed per query frame over
    exactly ``window`` key slots (the frames before the clip are masked padding). Same maths as ``attention`` with
    ``temporal_bias``, but every frame's output is the same float computation whatever ``t`` is."""
    t = q.shape[2]
    kp, vp = (F.pad(x, (0, 0, window - 1, 0)) for x in (k, v))  # slot j of frame i is frame i - window + 1 + j
    scores = torch.stack([(q * kp[:, :, j:j + t]).sum(-1) for j in range(window)], dim=-1) * q.shape[-1] ** -0.5
    back = torch.arange(window - 1, -1, -1, device=q.device)  # frames back from the query, per slot
    valid = torch.arange(t, device=q.device)[:, None] >= back[None, :]  # t window: the slot holds a real frame
    bias = (-slopes[:, None, None] * back.to(slopes)).masked_fill(~valid, float("-inf"))  # n t window
    p = torch.softmax(scores + bias.to(scores), dim=-1)
    out = p[..., 0:1] * vp[:, :, 0:t]
    for j in range(1, window):  # a fixed summation order: the same rounding for every clip length
        out = out + p[..., j:j + 1] * vp[:, :, j:j + t]
    return out


class TemporalAttention(nn.Module):
    """Pre-norm causal self-attention across frames at each latent position, plus a pointwise MLP.

    Input and output ``b c t h w``. Frame ``i`` attends to frames ``i - window + 1 .. i`` (``window`` 0 = all earlier
    frames), so outputs never depend on later frames.
    """

    def __init__(self, c: int, heads: int, window: int):
        super().__init__()
        if c % heads:
            raise ValueError(f"temporal attention: width {c} is not divisible by {heads} heads")
        self.heads, self.window = heads, window
        self.norm1 = nn.LayerNorm(c)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.norm2 = nn.LayerNorm(c)
        self.mlp = nn.Sequential(nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c))
        self.register_buffer("slopes", alibi_slopes(heads), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        s = rearrange(x, "b c t h w -> (b h w) t c")
        q, k, v = rearrange(self.qkv(self.norm1(s)), "b t (k n d) -> k b n t d", k=3, n=self.heads)
        if self.window > 0:
            out = windowed_attention(q, k, v, self.window, self.slopes)
        else:
            out = attention(q, k, v, mask=temporal_bias(t, self.window, self.slopes).to(q.dtype)[None])
        s = s + self.proj(rearrange(out, "b n t d -> b t (n d)"))
        s = s + self.mlp(self.norm2(s))
        return rearrange(s, "(b h w) t c -> b c t h w", b=b, h=h, w=w)


class Encoder(nn.Module):
    """Per-frame VQGAN encoder: ``(b t) c H W -> (b t) z H/2^L W/2^L`` with L = len(channel_mult) - 1."""

    def __init__(self, in_channels: int, base: int, mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 spatial_attn: bool, heads: int, dropout: float = 0.0):
        super().__init__()
        widths = [base * m for m in mult]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1)]
        c = widths[0]
        for level, width in enumerate(widths):
            for _ in range(num_res_blocks):
                layers.append(ResBlock(c, width, dropout))
                c = width
            if level < len(widths) - 1:
                layers.append(Downsample(c))
        layers.append(ResBlock(c, c, dropout))
        if spatial_attn:
            layers.append(SpatialAttention(c, heads))
        layers += [ResBlock(c, c, dropout), norm(c), nn.SiLU(), nn.Conv2d(c, z_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Per-frame VQGAN decoder, the mirror of ``Encoder``: ``(b t) z h w -> (b t) c H W``."""

    def __init__(self, out_channels: int, base: int, mult: Sequence[int], num_res_blocks: int, z_channels: int,
                 spatial_attn: bool, heads: int, dropout: float = 0.0):
        super().__init__()
        widths = [base * m for m in mult][::-1]
        c = widths[0]
        layers: list[nn.Module] = [nn.Conv2d(z_channels, c, 3, padding=1), ResBlock(c, c, dropout)]
        if spatial_attn:
            layers.append(SpatialAttention(c, heads))
        layers.append(ResBlock(c, c, dropout))
        for level, width in enumerate(widths):
            for _ in range(num_res_blocks + 1):
                layers.append(ResBlock(c, width, dropout))
                c = width
            if level < len(widths) - 1:
                layers.append(Upsample(c))
        layers += [norm(c), nn.SiLU(), nn.Conv2d(c, out_channels, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    @property
    def last_layer(self) -> nn.Conv2d:
        """The output conv: VQGAN's adaptive GAN weight is computed from its gradients."""
        return self.net[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """pix2pix / VQGAN PatchGAN: ``n_layers`` stride-2 4x4 convs; one real/fake logit per patch, per frame."""

    def __init__(self, in_channels: int = 3, base: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = base
        for i in range(1, n_layers + 1):
            c_out = base * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), norm(c_out), nn.LeakyReLU(0.2)]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, video: torch.Tensor, params: Optional[dict] = None) -> torch.Tensor:
        """Logits for a ``b c t h w`` video; ``params`` (name -> tensor) runs the net with substitute weights."""
        x = rearrange(video, "b c t h w -> (b t) c h w")
        if params is not None:
            return torch.func.functional_call(self.net, params, (x,))
        return self.net(x)


class MixBlock(nn.Module):
    """DrivingWorld's latent mixing pair on ``b c t h w``: a causal temporal block, then a spatial block per frame."""

    def __init__(self, c: int, heads: int, window: int, spatial: bool = True):
        super().__init__()
        self.temporal = TemporalAttention(c, heads, window)
        self.spatial = SpatialAttention(c, heads) if spatial else None

    def forward(self, x: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
        """``per_frame``: the spatial block runs one frame at a time (same kernels and shapes for every frame, so
        the result does not depend on how many frames come in one call; see ``VQVideoTokenizer.decode``)."""
        x = self.temporal(x)
        if self.spatial is None:
            return x
        if per_frame:
            return torch.stack([self.spatial(x[:, :, i]) for i in range(x.shape[2])], dim=2)
        b = x.shape[0]
        x = self.spatial(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(x, "(b t) c h w -> b c t h w", b=b)
