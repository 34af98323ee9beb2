"""DrivingWorld spatial-temporal GPT (Hu et al., 2024, "DrivingWorld: Constructing World Model for Autonomous
Driving via Video GPT", Sec. 3.2-3.3).

A frame is ``n = 3 + h*w`` tokens: yaw, x, y ego-state tokens (``worldgen.tokenizer.pose``) then VQ image codes in
raster order. Two stacks:

* **Temporal-multimodal fusion** (``fusion_layers`` blocks): per block, causal *temporal* attention across frames at
  each token position, then bidirectional *spatial* attention among the tokens of one frame (2D axial RoPE, theta
  1000, on image tokens; ego tokens unrotated), then a GELU MLP. Output ``F_t`` summarises frames ``<= t``.
* **Internal-state autoregressive module** (``ar_layers`` blocks): predicts frame ``t+1`` token by token with causal
  attention inside the frame, order yaw -> x -> y -> image raster. *Next-state alignment*: the input at position
  ``i`` is ``F_t[i] + E(token_{t+1}[i-1])`` (a learned BOS for ``i = 0``), and position ``i`` predicts
  ``token_{t+1}[i]`` through the head of its type (yaw / x / y / image).

QK-LayerNorm, no biases anywhere, GELU 4x MLPs. Posedrop: ego tokens of frames without a pose use a "null" embedding
row, are cut from attention (as keys; a token still sees itself so no row is empty) and get no loss.

Deliberate deviation: the paper's *learned frame-time embedding* is learned here as a per-head bias on the *relative*
frame offset inside temporal attention (T5-style), not as an absolute embedding added to the input, and temporal
attention is banded to the last ``context_frames`` frames (Mistral-style sliding window). For training clips of
``context_frames + 1`` frames this is the paper's causal temporal attention; at rollout it makes a temporal KV cache
*exact*: a cached frame's keys never depend on where the window currently starts, so KV-cached rollout equals full
recomputation over the history (tested), while an absolute embedding would make every cached state stale once the
window slides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldgen.nn.attention import attention
from worldgen.nn.kv_cache import PrefixKVCache, RingKVCache
from worldgen.nn.rope import AxialRoPE2D
from worldgen.nn.transformer import SelfAttention, layer_norm, mlp
from worldgen.tokenizer.pose import PoseTokenizer, PoseTokenizerConfig

N_EGO = 3  # yaw, x, y tokens at the start of every frame
NEG_INF = float("-inf")


@dataclass
class GPTConfig:
    codebook_size: int = 16384  # VQ image vocabulary (DrivingWorld tokenizer: 16384 codes)
    grid: list = field(default_factory=lambda: [16, 32])  # image tokens per frame (h, w): 256x512 px / 16
    pose: PoseTokenizerConfig = field(default_factory=PoseTokenizerConfig)  # ego-state bins (paper ranges)
    context_frames: int = 15  # temporal attention window (frames a new frame is conditioned on)
    width: int = 1536  # model width d
    heads: int = 16  # attention heads (head dim must be divisible by 4 for axial RoPE)
    fusion_layers: int = 12  # temporal-multimodal fusion blocks
    ar_layers: int = 6  # internal-state autoregressive blocks
    mlp_ratio: float = 4.0  # MLP hidden = ratio * width
    rope_theta: float = 1000.0  # 2D axial RoPE base on image tokens
    qk_norm: bool = True  # LayerNorm on queries and keys per head
    init_std: float = 0.02  # normal init of linears and embeddings


def temporal_bias(time_emb: torch.Tensor, q_steps: torch.Tensor, k_steps: torch.Tensor) -> torch.Tensor:
    """Additive ``(heads, tq, tk)`` mask: learned bias on ``q - k`` frames for 0 <= q - k < window, -inf elsewhere."""
    window = time_emb.shape[-1]
    off = q_steps[:, None] - k_steps[None, :]
    valid = (off >= 0) & (off < window) & (k_steps[None, :] >= 0)
    bias = time_emb[:, off.clamp(0, window - 1)]
    return bias.masked_fill(~valid, NEG_INF)


def ego_key_mask(keep: torch.Tensor, n: int, same: torch.Tensor) -> torch.Tensor:
    """Additive ``(b, n, 1, tq, tk)`` mask cutting ego keys of pose-less frames (``keep (b, tk)`` False).

    ``same (tq, tk)`` marks a query's own frame, which stays visible so that no attention row is empty.
    """
    allowed = keep[:, None, :] | same[None]
    ego = torch.zeros(allowed.shape, dtype=torch.float32, device=keep.device).masked_fill(~allowed, NEG_INF)
    out = torch.zeros(keep.shape[0], n, *same.shape, device=keep.device)
    out[:, :N_EGO] = ego[:, None]
    return out[:, :, None]


def frame_key_mask(keep: torch.Tensor, n: int, causal: bool) -> torch.Tensor:
    """Boolean ``(b*t, 1, n, n)`` mask for attention inside frames: ego keys hidden where ``keep (b, t)`` is False."""
    eye = torch.eye(n, dtype=torch.bool, device=keep.device)
    base = torch.tril(torch.ones(n, n, dtype=torch.bool, device=keep.device)) if causal else torch.ones_like(eye)
    key_ok = torch.ones(*keep.shape, n, dtype=torch.bool, device=keep.device)
    key_ok[..., :N_EGO] = keep[..., None]
    mask = base & (key_ok[..., None, :] | eye)
    return rearrange(mask, "b t q k -> (b t) 1 q k")


class FusionBlock(nn.Module):
    """Causal temporal attention (same position across frames), bidirectional spatial attention, MLP."""

    def __init__(self, c: GPTConfig):
        super().__init__()
        self.norm_t, self.norm_s, self.norm_m = layer_norm(c.width), layer_norm(c.width), layer_norm(c.width)
        self.attn_t = SelfAttention(c.width, c.heads, c.qk_norm)
        self.attn_s = SelfAttention(c.width, c.heads, c.qk_norm)
        self.mlp = mlp(c.width, c.mlp_ratio)
        self.time_emb = nn.Parameter(torch.zeros(c.heads, c.context_frames))  # learned frame-offset embedding

    def forward(self, x: torch.Tensor, rope: AxialRoPE2D, keep: Optional[torch.Tensor]) -> torch.Tensor:
        b, t, n, _ = x.shape
        steps = torch.arange(t, device=x.device)
        mask = temporal_bias(self.time_emb, steps, steps)[None]
        if keep is not None:
            mask = rearrange(mask[None] + ego_key_mask(keep, n, torch.eye(t, dtype=torch.bool, device=x.device)),
                             "b n h q k -> (b n) h q k")
        h = rearrange(self.norm_t(x), "b t n d -> (b n) t d")
        x = x + rearrange(self.attn_t(h, mask=mask.to(x.dtype)), "(b n) t d -> b t n d", b=b)
        smask = frame_key_mask(keep, n, causal=False) if keep is not None else None
        h = rearrange(self.norm_s(x), "b t n d -> (b t) n d")
        x = x + rearrange(self.attn_s(h, mask=smask, rope=rope), "(b t) n d -> b t n d", b=b)
        return x + self.mlp(self.norm_m(x))

    def step(self, x: torch.Tensor, rope: AxialRoPE2D, cache: RingKVCache, t: int,
             keep: Optional[torch.Tensor]) -> torch.Tensor:
        """One new frame ``x (b, n, d)`` at absolute step ``t`` against the cached temporal context."""
        b, n, _ = x.shape
        q, k, v = self.attn_t.project(rearrange(self.norm_t(x), "b n d -> (b n) 1 d"))
        key_keep = None
        if keep is not None:
            key_keep = torch.ones(b, n, dtype=torch.bool, device=x.device)
            key_keep[:, :N_EGO] = keep[:, None]
            key_keep = rearrange(key_keep, "b n -> (b n)")
        cache.append(k, v, t, key_keep)
        mask = temporal_bias(self.time_emb, torch.tensor([t], device=x.device), cache.step.to(x.device))[None]
        slot_ok = cache.keep | (cache.step == t).to(x.device)[None]
        mask = mask + torch.zeros(slot_ok.shape, device=x.device).masked_fill(~slot_ok, NEG_INF)[:, None, None, :]
        o = self.attn_t.combine(attention(q, cache.k, cache.v, mask=mask.to(x.dtype)))
        x = x + rearrange(o, "(b n) 1 d -> b n d", b=b)
        smask = frame_key_mask(keep[:, None], n, causal=False) if keep is not None else None
        x = x + self.attn_s(self.norm_s(x), mask=smask, rope=rope)
        return x + self.mlp(self.norm_m(x))


class ARBlock(nn.Module):
    """Causal attention inside the next frame, then MLP."""

    def __init__(self, c: GPTConfig):
        super().__init__()
        self.norm_a, self.norm_m = layer_norm(c.width), layer_norm(c.width)
        self.attn = SelfAttention(c.width, c.heads, c.qk_norm)
        self.mlp = mlp(c.width, c.mlp_ratio)

    def forward(self, x: torch.Tensor, rope: AxialRoPE2D, mask: Optional[torch.Tensor]) -> torch.Tensor:
        h = self.norm_a(x)
        x = x + (self.attn(h, causal=True, rope=rope) if mask is None else self.attn(h, mask=mask, rope=rope))
        return x + self.mlp(self.norm_m(x))

    def step(self, x: torch.Tensor, rope: AxialRoPE2D, cache: PrefixKVCache, pos: int) -> torch.Tensor:
        """Token at in-frame position ``pos``, ``x (b, 1, d)``, attending to the cached earlier positions.

        The decoding hot path (``n`` calls per frame per block): same weights and maths as ``forward``, written with
        functional calls and plain views because module and einops dispatch dominate at batch 1 on a CPU.
        """
        a, b, d = self.attn, x.shape[0], x.shape[-1]
        h = F.layer_norm(x, (d,), self.norm_a.weight)
        q, k, v = F.linear(h, a.qkv.weight).view(b, 3, a.heads, d // a.heads).unbind(1)  # b h d each (n = 1)
        q, k = a.q_norm(q)[:, :, None], a.k_norm(k)[:, :, None]
        q, k, v = rope(q, pos), rope(k, pos), v[:, :, None]
        k_all, v_all = cache.append(k, v)
        o = attention(q, k_all, v_all)  # b h 1 d
        x = x + F.linear(o.reshape(b, 1, d), a.proj.weight)
        h = F.layer_norm(x, (d,), self.norm_m.weight)
        return x + F.linear(F.gelu(F.linear(h, self.mlp.fc1.weight)), self.mlp.fc2.weight)


class DrivingWorldGPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.pose_tokenizer = PoseTokenizer(cfg.pose)
        self.ego_vocab = self.pose_tokenizer.vocab_sizes  # (yaw, x, y) real bins; +1 row = posedrop null token
        self.h, self.w = int(cfg.grid[0]), int(cfg.grid[1])
        self.n_img = self.h * self.w
        self.n = N_EGO + self.n_img
        d = cfg.width
        self.emb_img = nn.Embedding(cfg.codebook_size, d)
        self.emb_ego = nn.ModuleList([nn.Embedding(v + 1, d) for v in self.ego_vocab])
        self.slot = nn.Parameter(torch.zeros(N_EGO + 1, d))  # token-type embedding: yaw, x, y, image
        self.bos = nn.Parameter(torch.zeros(d))  # next-state alignment input for position 0
        self.rope = AxialRoPE2D(self.h, self.w, d // cfg.heads, cfg.rope_theta, n_prefix=N_EGO)
        self.fusion = nn.ModuleList([FusionBlock(cfg) for _ in range(cfg.fusion_layers)])
        self.ar = nn.ModuleList([ARBlock(cfg) for _ in range(cfg.ar_layers)])
        self.norm_out = layer_norm(d)
        self.head_ego = nn.ModuleList([nn.Linear(d, v, bias=False) for v in self.ego_vocab])
        self.head_img = nn.Linear(d, cfg.codebook_size, bias=False)
        self.apply(self._init)

    def _init(self, m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=self.cfg.init_std)

    # ---- embeddings ----------------------------------------------------------------------------------------------
    def embed(self, ego: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """``ego (..., 3)``, ``img (..., h*w)`` long -> token embeddings ``(..., n, d)`` (no type embedding)."""
        e = torch.stack([emb(ego[..., j]) for j, emb in enumerate(self.emb_ego)], dim=-2)
        return torch.cat([e, self.emb_img(img)], dim=-2)

    def slot_embedding(self) -> torch.Tensor:
        return torch.cat([self.slot[:N_EGO], self.slot[N_EGO:].expand(self.n_img, -1)], dim=0)

    # ---- full (training / reference) forward ---------------------------------------------------------------------
    def fuse(self, ego: torch.Tensor, img: torch.Tensor, keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Frames ``ego (b t 3)``, ``img (b t hw)`` -> fused states ``(b t n d)``; ``keep (b t)`` = pose present."""
        x = self.embed(ego, img) + self.slot_embedding()
        keep = None if keep is None or bool(keep.all()) else keep
        for blk in self.fusion:
            x = blk(x, self.rope, keep)
        return x

    def align(self, fused: torch.Tensor, ego_next: torch.Tensor, img_next: torch.Tensor) -> torch.Tensor:
        """Next-state alignment: ``F_t[i] + E(token_{t+1}[i-1])`` with BOS at ``i = 0``."""
        prev = self.embed(ego_next, img_next)[..., :-1, :]
        bos = self.bos.expand(*prev.shape[:-2], 1, -1)
        return fused + torch.cat([bos, prev], dim=-2)

    def autoregress(self, x: torch.Tensor, keep_next: Optional[torch.Tensor] = None) -> torch.Tensor:
        """In-frame causal stack over ``x (b t n d)`` -> normalised hidden states ``(b t n d)``."""
        b, t, n, _ = x.shape
        mask = None
        if keep_next is not None and not bool(keep_next.all()):
            mask = frame_key_mask(keep_next, n, causal=True)
        x = rearrange(x, "b t n d -> (b t) n d")
        for blk in self.ar:
            x = blk(x, self.rope, mask)
        return rearrange(self.norm_out(x), "(b t) n d -> b t n d", b=b)

    def logits(self, hidden: torch.Tensor) -> tuple[list, torch.Tensor]:
        """Hidden ``(..., n, d)`` -> ([yaw, x, y] logits ``(..., V)``, image logits ``(..., hw, K)``)."""
        ego = [head(hidden[..., j, :]) for j, head in enumerate(self.head_ego)]
        return ego, self.head_img(hidden[..., N_EGO:, :])

    def forward(self, ego: torch.Tensor, img: torch.Tensor, keep: Optional[torch.Tensor] = None):
        """Teacher-forced logits for frames ``1 .. t-1`` of a clip (``ego (b t 3)``, ``img (b t hw)``)."""
        fused = self.fuse(ego, img, keep)[:, :-1]
        x = self.align(fused, ego[:, 1:], img[:, 1:])
        return self.logits(self.autoregress(x, None if keep is None else keep[:, 1:]))

    def logits_at(self, hidden: torch.Tensor, pos: int) -> torch.Tensor:
        """Logits of in-frame position ``pos`` from its hidden state ``(b, d)``."""
        return self.head_ego[pos](hidden) if pos < N_EGO else self.head_img(hidden)

    def embed_at(self, tok: torch.Tensor, pos: int) -> torch.Tensor:
        """Embedding of token ``tok (b,)`` sitting at in-frame position ``pos``."""
        return self.emb_ego[pos](tok) if pos < N_EGO else self.emb_img(tok)

    # ---- cached decoding -----------------------------------------------------------------------------------------
    def new_caches(self, batch: int, device=None, dtype=torch.float32):
        c = self.cfg
        dh = c.width // c.heads
        ring = [RingKVCache(batch * self.n, c.heads, c.context_frames, dh, device, dtype) for _ in self.fusion]
        prefix = [PrefixKVCache(batch, c.heads, self.n, dh, device, dtype) for _ in self.ar]
        return ring, prefix

    def fuse_step(self, ego: torch.Tensor, img: torch.Tensor, ring: list, t: int,
                  keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Fuse one new frame (``ego (b 3)``, ``img (b hw)``) at step ``t`` using the temporal caches -> ``(b n d)``."""
        x = self.embed(ego, img) + self.slot_embedding()
        keep = None if keep is None or bool(keep.all()) else keep
        for blk, cache in zip(self.fusion, ring):
            x = blk.step(x, self.rope, cache, t, keep)
        return x

    def ar_step(self, x: torch.Tensor, prefix: list, pos: int) -> torch.Tensor:
        """One in-frame position: input ``x (b d)`` -> normalised hidden ``(b d)``."""
        x = x[:, None]
        for blk, cache in zip(self.ar, prefix):
            x = blk.step(x, self.rope, cache, pos)
        return self.norm_out(x[:, 0])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["GPTConfig", "DrivingWorldGPT", "N_EGO", "count_parameters"]
