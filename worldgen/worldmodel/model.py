"""DrivingWorld spatial-temporal GPT (Hu et al., 2024, "DrivingWorld: Constructing World Model for Autonomous
Driving via Video GPT", Sec. 3.2-3.3).

A frame is ``n = 3 + h*w`` tokens: yaw, x, y ego-state tokens (``worldgen.tokenizer.pose``) then VQ image codes in
raster order. Two stacks:

* **Temporal-multimodal fusion** (``fusion_layers`` blocks): per block, causal *temporal* attention across frames at
  each token position and an MLP, then bidirectional *spatial* attention among the tokens of one frame (2D axial RoPE,
  theta 1000, on image tokens; ego tokens unrotated) and an MLP. Output ``F_t`` summarises frames ``<= t``.
* **Internal-state autoregressive module** (``ar_layers`` blocks): predicts frame ``t+1`` token by token with causal
  attention inside the frame, order yaw -> x -> y -> image raster. *Next-state alignment*: the input at position
  ``i`` is ``F_t[i] + E(token_{t+1}[i-1])`` (a learned BOS for ``i = 0``), and position ``i`` predicts
  ``token_{t+1}[i]`` through the head of its type (yaw / x / y / image).

Embeddings and heads as in the public code: an image code enters as its codebook vector (``code_dim``, initialised
from the tokenizer) through Linear -> GELU -> Linear -> LayerNorm; an ego value as Fourier features of its bin centre
through the same kind of MLP; heads are Linear -> GELU -> Linear (image hidden ``codebook_size / 2``). With 12 + 6
blocks at width 1536 this is the paper's ~1.0 B parameters (``configs/drivingworld/gpt_1b.yaml``, checked on the
meta device by tests/test_configs.py). The ``fusion_mlp: spatial``, ``head_layers: 1``, ``*_embed: table`` options
are the v1 layout, kept only so that checkpoints trained before it still load.

QK-LayerNorm, no biases anywhere, GELU 4x MLPs. Posedrop: ego tokens of frames without a pose use a "null" embedding,
are cut from attention (as keys; a token still sees itself so no row is empty) and get no loss.

**Sliding window as the paper runs it.** Training clips hold ``context_frames + 1`` frames, so every fusion layer
sees at most ``W = context_frames`` frames. Inference (``fuse_window``) re-fuses exactly the last ``W`` frames for
every new frame, so every layer again sees those ``W`` frames and nothing older; a frame that left the window
changes nothing (tested). Caching the temporal keys instead would let stacked layers reach ``fusion_layers x (W-1)``
frames back, on hidden states training never produced (the v1 behaviour). The in-frame KV cache of the AR stack is
unaffected: cached and uncached decoding give the same tokens.

Decoding (issue 16; same tokens, tested): ``fuse_last`` runs the top fusion block for the newest frame only, and
``TokenDecoder`` (``new_caches``) steps the AR stack one token at a time with static KV buffers and every
per-rollout constant precomputed (QK-norm folded into the RoPE tables, embedding tables for every code and ego bin).

Deliberate deviation: the paper's *learned frame-time embedding* is learned here as a per-head bias on the relative
frame offset inside temporal attention (T5-style), banded to ``W`` frames, not as an absolute embedding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldgen.nn.attention import attention
from worldgen.nn.kv_cache import StaticKVCache
from worldgen.nn.rope import AxialRoPE2D, _rotate
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
    # Paper architecture (public code) vs the v1 layout kept so that older checkpoints still load:
    fusion_mlp: str = "both"  # "both": an MLP after the temporal and after the spatial attention (paper); "spatial": v1
    head_layers: int = 2  # 2: LN -> Linear -> GELU -> Linear heads (paper); 1: one linear (v1)
    head_hidden: int = 0  # image-head hidden width; 0 = codebook_size // 2 (paper). Ego heads use their vocabulary.
    code_embed: str = "codebook"  # "codebook": code vectors (code_dim) -> GELU MLP -> LN (paper); "table": v1
    code_dim: int = 32  # codebook vector size (paper tokenizer: 32; tiny tokenizer: 8)
    ego_embed: str = "fourier"  # "fourier": Fourier features of the bin centre -> GELU MLP -> LN (paper); "table": v1
    fourier_dim: int = 512  # Fourier feature size of an ego value (paper: 512)


def temporal_bias(time_emb: torch.Tensor, q_steps: torch.Tensor, k_steps: torch.Tensor) -> torch.Tensor:
    """Additive ``(heads, tq, tk)`` mask: learned bias on ``q - k`` frames for 0 <= q - k < window, -inf elsewhere."""
    window = time_emb.shape[-1]
    off = q_steps[:, None] - k_steps[None, :]
    valid = (off >= 0) & (off < window) & (k_steps[None, :] >= 0)
    bias = time_emb[:, off.clamp(0, window - 1)]
    return bias.masked_fill(~valid, NEG_INF)


def widen_window(state: dict, context_frames: int) -> dict:
    """A state dict re-shaped for a longer temporal window (fine-tuning to ``context_frames`` > the trained one).

    Only the fusion blocks' ``time_emb`` (heads, W) depends on the window: offsets ``0..W-1`` keep their learned
    bias, each new offset starts from the furthest learned one (column ``W-1``). So the widened model computes exactly
    what the trained one did on clips of up to ``W`` frames and starts out treating older frames like the oldest it
    knew. Shrinking is refused (it would drop learned offsets silently).
    """
    out = dict(state)
    for key, emb in state.items():
        if not key.endswith("time_emb"):
            continue
        w = emb.shape[-1]
        if context_frames < w:
            raise ValueError(f"{key}: cannot shrink the temporal window from {w} to {context_frames} frames")
        out[key] = torch.cat([emb, emb[:, -1:].expand(-1, context_frames - w)], dim=-1).contiguous()
    return out


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


CHOICES = {"fusion_mlp": ("both", "spatial"), "head_layers": (1, 2), "code_embed": ("codebook", "table"),
           "ego_embed": ("fourier", "table")}


def check_config(c: GPTConfig) -> GPTConfig:
    for key, allowed in CHOICES.items():
        if getattr(c, key) not in allowed:
            raise ValueError(f"model.{key}: expected one of {', '.join(map(str, allowed))}, got {getattr(c, key)!r}")
    if c.width % c.heads or (c.width // c.heads) % 4:
        raise ValueError(f"model.width {c.width} / heads {c.heads}: head dim must be a whole multiple of 4 (axial RoPE)")
    if c.context_frames < 1:
        raise ValueError(f"model.context_frames must be >= 1, got {c.context_frames}")
    return c


class CodeEmbedding(nn.Module):
    """Image code -> width: the code's vector (initialised from the tokenizer's codebook) through a GELU MLP + LN."""

    def __init__(self, codebook_size: int, code_dim: int, width: int):
        super().__init__()
        self.codebook = nn.Embedding(codebook_size, code_dim)
        self.proj = nn.Sequential(nn.Linear(code_dim, width // 2, bias=False), nn.GELU(),
                                  nn.Linear(width // 2, width, bias=False), layer_norm(width))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.proj(self.codebook(codes))


def fourier_features(values: torch.Tensor, dim: int, max_freq: float) -> torch.Tensor:
    """``values`` in [-1, 1] -> ``(..., dim)`` sines and cosines at ``dim / 2`` log-spaced frequencies, pi .. pi*max_freq."""
    freqs = math.pi * torch.logspace(0, math.log10(max(max_freq, 1.0)), dim // 2, device=values.device)
    ang = values[..., None].float() * freqs
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class EgoEmbedding(nn.Module):
    """Ego bin -> width: Fourier features of the bin centre (scaled to [-1, 1]) through a GELU MLP + LN.

    The highest frequency resolves neighbouring bins. The posedrop null id (``bins``) gets its own learned vector.
    """

    def __init__(self, bins: int, fourier_dim: int, width: int):
        super().__init__()
        if fourier_dim % 2:
            raise ValueError(f"model.fourier_dim must be even, got {fourier_dim}")
        self.bins, self.fourier_dim = bins, fourier_dim
        self.proj = nn.Sequential(nn.Linear(fourier_dim, fourier_dim, bias=False), nn.GELU(),
                                  nn.Linear(fourier_dim, width, bias=False), layer_norm(width))
        self.null = nn.Parameter(torch.zeros(width))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        centre = (ids.clamp_max(self.bins - 1).float() + 0.5) / self.bins * 2 - 1
        feats = fourier_features(centre, self.fourier_dim, self.bins / 2)
        e = self.proj(feats.to(self.proj[0].weight.dtype))
        return torch.where((ids >= self.bins)[..., None], self.null.to(e.dtype), e)


def head(width: int, vocab: int, hidden: int, layers: int) -> nn.Module:
    """Output head: one linear (v1) or Linear -> GELU -> Linear (paper; the LayerNorm is the model's ``norm_out``)."""
    if layers == 1:
        return nn.Linear(width, vocab, bias=False)
    return nn.Sequential(nn.Linear(width, hidden, bias=False), nn.GELU(), nn.Linear(hidden, vocab, bias=False))


class FusionBlock(nn.Module):
    """Causal temporal attention (same position across frames) + MLP, bidirectional spatial attention + MLP.

    ``fusion_mlp: spatial`` (v1 checkpoints) drops the MLP after the temporal attention.
    """

    def __init__(self, c: GPTConfig):
        super().__init__()
        self.norm_t, self.norm_s, self.norm_m = layer_norm(c.width), layer_norm(c.width), layer_norm(c.width)
        self.attn_t = SelfAttention(c.width, c.heads, c.qk_norm)
        self.attn_s = SelfAttention(c.width, c.heads, c.qk_norm)
        self.mlp = mlp(c.width, c.mlp_ratio)  # after the spatial attention
        if c.fusion_mlp == "both":
            self.norm_mt, self.mlp_t = layer_norm(c.width), mlp(c.width, c.mlp_ratio)  # after the temporal attention
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
        if hasattr(self, "mlp_t"):
            x = x + self.mlp_t(self.norm_mt(x))
        smask = frame_key_mask(keep, n, causal=False) if keep is not None else None
        h = rearrange(self.norm_s(x), "b t n d -> (b t) n d")
        x = x + rearrange(self.attn_s(h, mask=smask, rope=rope), "(b t) n d -> b t n d", b=b)
        return x + self.mlp(self.norm_m(x))

    def forward_last(self, x: torch.Tensor, rope: AxialRoPE2D, keep: Optional[torch.Tensor]) -> torch.Tensor:
        """``forward`` for the newest frame only, ``(b t n d) -> (b 1 n d)``: the other frames still give the
        temporal keys/values, but their queries, MLPs and spatial attention are skipped (decoding needs only the
        newest frame's state from the top block). Equal to ``forward(...)[:, -1:]`` to float rounding (tested)."""
        b, t, n, _ = x.shape
        steps = torch.arange(t, device=x.device)
        mask = temporal_bias(self.time_emb, steps[-1:], steps)[None]
        if keep is not None:
            same = steps[-1:, None] == steps[None]
            mask = rearrange(mask[None] + ego_key_mask(keep, n, same), "b n h q k -> (b n) h q k")
        q, k, v = self.attn_t.project(rearrange(self.norm_t(x), "b t n d -> (b n) t d"))
        o = attention(q[:, :, -1:], k, v, mask=mask.to(x.dtype))
        x = x[:, -1:] + rearrange(self.attn_t.combine(o), "(b n) t d -> b t n d", b=b)
        if hasattr(self, "mlp_t"):
            x = x + self.mlp_t(self.norm_mt(x))
        smask = frame_key_mask(keep[:, -1:], n, causal=False) if keep is not None else None
        h = rearrange(self.norm_s(x), "b t n d -> (b t) n d")
        x = x + rearrange(self.attn_s(h, mask=smask, rope=rope), "(b t) n d -> b t n d", b=b)
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


class DrivingWorldGPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = check_config(cfg)
        self.pose_tokenizer = PoseTokenizer(cfg.pose)
        self.ego_vocab = self.pose_tokenizer.vocab_sizes  # (yaw, x, y) real bins; +1 row = posedrop null token
        self.h, self.w = int(cfg.grid[0]), int(cfg.grid[1])
        self.n_img = self.h * self.w
        self.n = N_EGO + self.n_img
        d = cfg.width
        if cfg.code_embed == "codebook":
            self.emb_img = CodeEmbedding(cfg.codebook_size, cfg.code_dim, d)
        else:
            self.emb_img = nn.Embedding(cfg.codebook_size, d)
        if cfg.ego_embed == "fourier":
            self.emb_ego = nn.ModuleList([EgoEmbedding(v, cfg.fourier_dim, d) for v in self.ego_vocab])
        else:
            self.emb_ego = nn.ModuleList([nn.Embedding(v + 1, d) for v in self.ego_vocab])
        self.slot = nn.Parameter(torch.zeros(N_EGO + 1, d))  # token-type embedding: yaw, x, y, image
        self.bos = nn.Parameter(torch.zeros(d))  # next-state alignment input for position 0
        self.rope = AxialRoPE2D(self.h, self.w, d // cfg.heads, cfg.rope_theta, n_prefix=N_EGO)
        self.fusion = nn.ModuleList([FusionBlock(cfg) for _ in range(cfg.fusion_layers)])
        self.ar = nn.ModuleList([ARBlock(cfg) for _ in range(cfg.ar_layers)])
        self.norm_out = layer_norm(d)
        self.head_ego = nn.ModuleList([head(d, v, v, cfg.head_layers) for v in self.ego_vocab])
        self.head_img = head(d, cfg.codebook_size, cfg.head_hidden or cfg.codebook_size // 2, cfg.head_layers)
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

    # ---- inference ------------------------------------------------------------------------------------------------
    def fuse_window(self, ego: torch.Tensor, img: torch.Tensor, keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The paper's sliding window: fuse exactly the last ``context_frames`` frames of a history -> ``(b n d)``.

        Every fusion layer sees those frames and nothing older (stacked banded layers would reach
        ``fusion_layers x (W - 1)`` frames back, on hidden states training never produced). Re-fusing the window
        costs one fusion pass over ``W`` frames per generated frame; the in-frame KV cache still serves the
        token-by-token decoding.
        """
        w = self.cfg.context_frames
        keep = None if keep is None else keep[:, -w:]
        return self.fuse(ego[:, -w:], img[:, -w:], keep)[:, -1]

    def fuse_last(self, ego: torch.Tensor, img: torch.Tensor, keep: Optional[torch.Tensor] = None,
                  embedded: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``fuse_window`` computed for the newest frame only -> ``(b n d)``, equal to float rounding (tested): the
        lower fusion blocks run over the whole window, the top block only for the newest frame's queries (about
        half of the top block's work). ``embedded (b t n d)``: the frames' token embeddings when the caller has
        them already (``TokenDecoder.embed_frames``: gathers from precomputed tables)."""
        w = self.cfg.context_frames
        keep = None if keep is None else keep[:, -w:]
        keep = None if keep is None or bool(keep.all()) else keep
        x = (self.embed(ego[:, -w:], img[:, -w:]) if embedded is None else embedded[:, -w:]) + self.slot_embedding()
        if not len(self.fusion):
            return x[:, -1]
        for blk in self.fusion[:-1]:
            x = blk(x, self.rope, keep)
        return self.fusion[-1].forward_last(x, self.rope, keep)[:, 0]

    def new_caches(self, batch: int, device=None, dtype=torch.float32) -> "TokenDecoder":
        """The in-frame decoding state for one rollout: static KV buffers of every AR block and the per-rollout
        constants of the token step (``TokenDecoder``). Build it again after the weights change."""
        return TokenDecoder(self, batch, device, dtype)

    @torch.no_grad()
    def load_codebook(self, vectors: torch.Tensor) -> None:
        """Initialise the code embedding from the tokenizer's codebook ``(codebook_size, code_dim)``."""
        if self.cfg.code_embed != "codebook":
            raise ValueError("load_codebook needs model.code_embed: codebook")
        table = self.emb_img.codebook.weight
        if tuple(vectors.shape) != tuple(table.shape):
            raise ValueError(f"tokenizer codebook has shape {tuple(vectors.shape)}, the model expects "
                             f"{tuple(table.shape)} (model.codebook_size, model.code_dim)")
        table.copy_(vectors.to(table.dtype))


def rotation_tables(dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE's half-rotation (``worldgen.nn.rope``) as a gather and signs: ``rotate(y) == y[..., perm] * sign``."""
    m = _rotate(torch.eye(dim))  # row i = rotate(e_i)
    perm = m.abs().argmax(0)
    return perm, m[perm, torch.arange(dim)]


def head_weights(h: nn.Module) -> tuple:
    """An output head's weights in call order: ``(W,)`` (one linear) or ``(W1, W2)`` (Linear -> GELU -> Linear)."""
    return (h.weight,) if isinstance(h, nn.Linear) else (h[0].weight, h[2].weight)


def apply_head(hidden: torch.Tensor, weights: tuple) -> torch.Tensor:
    if len(weights) == 1:
        return F.linear(hidden, weights[0])
    return F.linear(F.gelu(F.linear(hidden, weights[0])), weights[1])


@dataclass
class ARWeights:
    """One AR block's weights for the token step; ``rope_a/b (n, 2, 1, head_dim)``: RoPE with QK-norm folded in."""
    norm_a: torch.Tensor
    qkv: torch.Tensor
    proj_t: torch.Tensor
    norm_m: torch.Tensor
    fc1: torch.Tensor
    fc2_t: torch.Tensor
    rope_a: torch.Tensor
    rope_b: torch.Tensor
    a_at: list = field(default_factory=list)  # rope_a[p] per position (views made once)
    b_at: list = field(default_factory=list)


class TokenDecoder:
    """The internal-state AR stack one token at a time, with every per-rollout constant precomputed (issue 16).

    Same maths as ``DrivingWorldGPT.autoregress`` over a growing in-frame prefix, arranged so that a token costs as
    few tensor operations as possible (at batch 1 on a CPU an operation's dispatch costs about as much as its
    arithmetic, so the count of operations sets the speed):

    * keys/values go into one static buffer (``StaticKVCache``), read and written through views made once;
    * the per-head QK-LayerNorm weights are folded into the RoPE tables: ``LN(q) * w`` rotated at position ``p``
      is ``LN0(q) * A[p] + LN0(q)[perm] * B[p]`` with ``A = w cos`` and ``B = sign * w[perm] * sin``;
    * residual adds ride on the output projections (``addmm``); no Python work per layer beyond the calls;
    * every image code's and ego bin's embedding is computed once (``emb_img``, ``emb_ego``): the next input is a
      gather, and so are the fusion inputs (``embed_frames``).

    ``step`` takes a Python position (eager). ``step_at`` takes a position tensor and attends over the whole
    buffer with the unwritten tail masked: one static graph for every position, for ``torch.compile``. Both equal
    the full recomputation to float rounding (tested; the rollout tests check that the sampled tokens are equal).
    Below float32 (bf16 weights) each folded or fused operation would add a rounding of ~2^-8 and flip sampled
    tokens, so ``step`` then runs the blocks' own operations in their own order (``_step_exact``; tested).
    """

    def __init__(self, model: "DrivingWorldGPT", batch: int, device=None, dtype=torch.float32):
        c = model.cfg
        self.batch, self.width, self.heads, self.n = batch, c.width, c.heads, model.n
        self.head_dim = dh = c.width // c.heads
        self.qk_norm = c.qk_norm
        self.exact = dtype != torch.float32
        self.blocks, self.rope = model.ar, model.rope
        self.cache = StaticKVCache(len(model.ar), batch, c.heads, model.n, dh, device, dtype)
        self.views = self.cache.views()
        perm, sign = rotation_tables(dh)
        self.perm = perm.to(device)
        self.positions = torch.arange(model.n, device=device)
        with torch.no_grad():
            self.layers = [self._weights(blk, model.rope, perm, sign, dtype) for blk in model.ar]
            self.norm_out = model.norm_out.weight
            self.head_img = head_weights(model.head_img)
            self.head_ego = [head_weights(h) for h in model.head_ego]
            self.emb_img = model.emb_img(torch.arange(c.codebook_size, device=device))
            self.emb_ego = [emb(torch.arange(v + 1, device=device)) for v, emb in zip(model.ego_vocab, model.emb_ego)]
            self.bos = model.bos.detach()
        self.key_bias: Optional[torch.Tensor] = None  # (b, 1, n, n) additive in-frame mask (set_hidden_ego)
        self.key_masks: Optional[list] = None  # its row of each position, (b, 1, 1, pos + 1)

    def set_hidden_ego(self, hidden: torch.Tensor) -> None:
        """Hide the frame's ego keys from the samples where ``hidden (b,)`` is True, as a pose-less frame is decoded
        in training (``frame_key_mask``: a query still sees its own key). For ego guidance's unconditional half."""
        n, dev = self.n, hidden.device
        eye = torch.eye(n, dtype=torch.bool, device=dev)
        ok = torch.ones(n, dtype=torch.bool, device=dev)
        ok[:N_EGO] = False
        rows = torch.tril(torch.ones(n, n, dtype=torch.bool, device=dev)) & (ok[None] | eye)  # (q, k) of a hidden row
        allowed = torch.where(hidden.view(-1, 1, 1), rows[None], torch.ones_like(rows)[None])  # (b, q, k)
        dtype = self.cache.kv[0].dtype
        bias = torch.zeros(allowed.shape, dtype=dtype, device=dev).masked_fill(~allowed, NEG_INF)
        self.key_bias = bias[:, None]  # (b, 1, q, k)
        self.key_masks = [self.key_bias[:, :, p:p + 1, :p + 1] for p in range(n)]

    @staticmethod
    def _weights(blk: ARBlock, rope: AxialRoPE2D, perm: torch.Tensor, sign: torch.Tensor, dtype) -> ARWeights:
        a, dh = blk.attn, rope.cos.shape[-1]
        w = torch.stack([a.q_norm.weight, a.k_norm.weight]).float() if isinstance(a.q_norm, nn.LayerNorm) \
            else torch.ones(2, dh, device=rope.cos.device)
        ra = (w[None] * rope.cos[:, None])[:, :, None].to(dtype)
        rb = ((w[:, perm.to(w.device)] * sign.to(w.device))[None] * rope.sin[:, None])[:, :, None].to(dtype)
        return ARWeights(blk.norm_a.weight, a.qkv.weight, a.proj.weight.t(), blk.norm_m.weight, blk.mlp.fc1.weight,
                         blk.mlp.fc2.weight.t(), ra, rb, list(ra.unbind(0)), list(rb.unbind(0)))

    def step(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        """Input ``x (b d)`` at in-frame position ``pos`` -> normalised hidden ``(b d)``; stores its keys/values."""
        b, d = x.shape
        self.cache.check(pos)
        if self.exact:
            return self._step_exact(x, pos)
        for L, (k_slot, v_slot, k_all, v_all) in zip(self.layers, (v[pos] for v in self.views)):
            qkv = F.linear(F.layer_norm(x, (d,), L.norm_a), L.qkv).view(b, 3, self.heads, self.head_dim)
            qk = F.layer_norm(qkv[:, :2], (self.head_dim,)) if self.qk_norm else qkv[:, :2]
            qk = torch.addcmul(qk * L.a_at[pos], qk.index_select(-1, self.perm), L.b_at[pos])
            k_slot.copy_(qk[:, 1])
            v_slot.copy_(qkv[:, 2])
            o = F.scaled_dot_product_attention(qk[:, 0, :, None], k_all, v_all,
                                               attn_mask=None if self.key_masks is None else self.key_masks[pos])
            x = torch.addmm(x, o.reshape(b, d), L.proj_t)
            x = torch.addmm(x, F.gelu(F.linear(F.layer_norm(x, (d,), L.norm_m), L.fc1)), L.fc2_t)
        return F.layer_norm(x, (d,), self.norm_out)

    def _step_exact(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        """``step`` with each block's operations in ``ARBlock.forward``'s order (low-precision weights)."""
        b, d = x.shape
        for blk, (k_slot, v_slot, k_all, v_all) in zip(self.blocks, (v[pos] for v in self.views)):
            a = blk.attn
            q, k, v = F.linear(F.layer_norm(x, (d,), blk.norm_a.weight), a.qkv.weight).view(
                b, 3, self.heads, self.head_dim).unbind(1)
            q, k = self.rope(a.q_norm(q)[:, :, None], pos), self.rope(a.k_norm(k)[:, :, None], pos)
            k_slot.copy_(k[:, :, 0])
            v_slot.copy_(v)
            o = F.scaled_dot_product_attention(q, k_all, v_all,
                                               attn_mask=None if self.key_masks is None else self.key_masks[pos])
            x = x + F.linear(o.reshape(b, d), a.proj.weight)
            x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (d,), blk.norm_m.weight), blk.mlp.fc1.weight)),
                             blk.mlp.fc2.weight)
        return F.layer_norm(x, (d,), self.norm_out)

    def step_at(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``step`` with the position as a tensor ``(1,)`` (static shapes for ``torch.compile``)."""
        b, d = x.shape
        valid = (self.positions <= pos).view(1, 1, 1, self.n)
        for i, L in enumerate(self.layers):
            qkv = F.linear(F.layer_norm(x, (d,), L.norm_a), L.qkv).view(b, 3, self.heads, self.head_dim)
            qk = F.layer_norm(qkv[:, :2], (self.head_dim,)) if self.qk_norm else qkv[:, :2]
            ra, rb = L.rope_a.index_select(0, pos)[0], L.rope_b.index_select(0, pos)[0]
            qk = qk * ra + qk.index_select(-1, self.perm) * rb
            k_all, v_all = self.cache.write(i, pos, qk[:, 1], qkv[:, 2])
            o = F.scaled_dot_product_attention(qk[:, 0, :, None], k_all, v_all, attn_mask=valid)
            x = x + F.linear(o.reshape(b, d), L.proj_t.t())
            x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (d,), L.norm_m), L.fc1)), L.fc2_t.t())
        return F.layer_norm(x, (d,), self.norm_out)

    def logits(self, hidden: torch.Tensor, pos: int) -> torch.Tensor:
        return apply_head(hidden, self.head_ego[pos] if pos < N_EGO else self.head_img)

    def embed(self, tok: torch.Tensor, pos: int) -> torch.Tensor:
        """Embedding ``(b d)`` of tokens ``tok (b,)`` at in-frame position ``pos`` (a gather)."""
        return (self.emb_ego[pos] if pos < N_EGO else self.emb_img).index_select(0, tok)

    def embed_frames(self, ego: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """``DrivingWorldGPT.embed`` by gathers: ``ego (..., 3)``, ``img (..., hw)`` -> ``(..., n, d)``."""
        e = [tab[ego[..., j]] for j, tab in enumerate(self.emb_ego)]
        return torch.cat([torch.stack(e, dim=-2), self.emb_img[img]], dim=-2)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["GPTConfig", "DrivingWorldGPT", "N_EGO", "count_parameters"]
