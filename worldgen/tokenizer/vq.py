"""The DrivingWorld VQ video tokenizer: frames -> a grid of discrete codes per frame -> frames.

DrivingWorld (Hu et al., 2024, arXiv 2412.19505, Sec. 3.1) uses a VQGAN (Esser et al., 2021) with an
L2-normalised codebook (16384 x 32, cosine lookup as in ViT-VQGAN, Yu et al., 2022) and commitment weight 0.25:

    z = normalize(E(x)),  k* = argmax_k <z, normalize(e_k)>,  z_q = normalize(e_k*)
    L_vq = ||sg(z) - z_q||^2 + beta * ||z - sg(z_q)||^2            (VQ-VAE, van den Oord et al., 2017, eq. 3)
    x_hat = D(z + sg(z_q - z))                                      (straight-through estimator)

plus a causal temporal + a spatial attention block after the encoder and before the decoder (``MixBlock``).

Deliberate choices where the paper is silent or where we deviate:
- Dead codes are restarted (Dhariwal et al., 2020, Jukebox; Zeghidour et al., 2021): an EMA of each code's
  assignment count is kept; every ``restart_every`` training steps codes whose EMA count fell below
  ``dead_threshold`` are moved onto encoder outputs of the current batch, drawn in proportion to their quantisation
  error (``restart_by_error``; uniform otherwise), so rare content gets codes first. Under DDP rank 0's codebook
  is broadcast after a restart so replicas stay identical.
- Optional entropy penalty (``entropy_weight``, off by default; MaskGIT / MAGVIT-v2 style): the entropy of each
  latent's soft assignment minus the entropy of the batch-mean assignment, against codebook collapse. Its gradient
  scales as ``entropy_weight / entropy_temperature``; it asks for *uniform* code usage, which data with many
  identical patches (flat road) can only meet by coding something other than content. Weight 0.01 at temperature
  0.01 did exactly that in the first tiny run (codes a hash of flat grey patches, decoder ignoring them; see
  docs/results/tokenizer.md), so keep it off or tiny.
- Time positions are encoded by an ALiBi distance bias inside the windowed causal temporal attention (see
  ``modules.py``); hence ``encode``/``decode`` of frame t depend only on frames t - context_frames .. t, and
  ``encode(x, past=...)`` / ``decode(codes, past=...)`` reproduce a whole-clip pass frame by frame.
- The two mixing stacks (after the encoder, before the decoder) have separate weights.
- ``quantizer: fsq`` replaces the paper's VQ by finite scalar quantisation (Mentzer et al., 2023, "Finite Scalar
  Quantization: VQ-VAE Made Simple"): each of ``len(fsq_levels)`` latent channels is bounded and rounded to one of
  ``fsq_levels[i]`` values, the code is the mixed-radix number of those digits (``prod(fsq_levels)`` codes). No
  codebook to learn, no commitment loss, no dead codes: on the mostly-flat-road simulator frames VQ kept collapsing
  to ~10-20 live codes while FSQ uses its whole grid (docs/results/tokenizer.md). Implemented by
  ``vector_quantize_pytorch.FSQ`` (lucidrains), the field's maintained implementation. ``vq`` stays the default:
  it is DrivingWorld's choice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldgen.tokenizer.modules import Decoder, Encoder, MixBlock


@dataclass
class VQConfig:
    in_channels: int = 3  # image channels (RGB)
    frame_size: list = field(default_factory=lambda: [256, 512])  # (H, W) of the frames it codes; sets ``grid``
    base_channels: int = 128  # width of the first encoder level
    channel_mult: list = field(default_factory=lambda: [1, 1, 2, 2, 4])  # width multipliers; downsample 2^(len-1)
    num_res_blocks: int = 2  # residual blocks per encoder level (decoder uses one more, as in VQGAN)
    z_channels: int = 256  # latent width between encoder/decoder and the codebook projection
    dropout: float = 0.0  # dropout inside residual blocks
    spatial_attn: bool = True  # self-attention at the lowest resolution inside encoder/decoder and in MixBlocks
    attn_heads: int = 8  # heads of the spatial/temporal attention at width z_channels
    temporal_layers: int = 1  # MixBlocks (causal temporal + spatial attention) after encoder and before decoder; 0 = none
    temporal_window: int = 16  # frames each frame attends to, itself included; 0 = all earlier frames
    codebook_size: int = 16384  # number of codes
    codebook_dim: int = 32  # code vector width (L2-normalised)
    beta: float = 0.25  # commitment loss weight
    dead_code_restart: bool = True  # restart codes whose usage EMA falls below dead_threshold
    restart_every: int = 100  # training steps between dead-code checks
    dead_threshold: float = 0.03  # EMA of assignments per step below which a code counts as dead
    usage_decay: float = 0.99  # EMA decay of per-code assignment counts (per training step)
    restart_by_error: bool = True  # restart onto batch latents drawn in proportion to their quantisation error
    entropy_weight: float = 0.0  # weight of the codebook entropy penalty (0 = off, the paper's setting; see docstring)
    entropy_temperature: float = 0.01  # temperature of the soft assignments softmax(cos / T) in that penalty
    quantizer: str = "vq"  # vq: L2-normalised codebook (the paper) | fsq: finite scalar quantisation (see docstring)
    fsq_levels: list = field(default_factory=lambda: [8, 5, 5, 5])  # fsq only: levels per code channel (1000 codes)


def usage_logs(counts: torch.Tensor, alive: Optional[torch.Tensor] = None) -> dict:
    """Perplexity exp(H(p)) and the fraction of codes used, from per-code assignment counts."""
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * p.clamp_min(1e-12).log()).sum()
    logs = {"perplexity": entropy.exp().detach(), "codes_used_frac": (counts > 0).float().mean()}
    if alive is not None:
        logs["codes_alive_frac"] = alive.float().mean()
    return logs


class VectorQuantizer(nn.Module):
    """L2-normalised codebook with cosine lookup, commitment loss, straight-through gradients, dead-code restart."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.codebook = nn.Parameter(F.normalize(torch.randn(cfg.codebook_size, cfg.codebook_dim), dim=-1))
        self.register_buffer("usage", torch.ones(cfg.codebook_size))  # EMA of assignment counts per step
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training forwards seen
        self.register_buffer("restarted", torch.zeros((), dtype=torch.long))  # codes restarted so far

    def embeddings(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code (cosine similarity) for each row of an ``n d`` tensor of normalised vectors."""
        return (z.float() @ self.embeddings().float().t()).argmax(dim=-1)  # fp32: bf16 ties would flip codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.min() < 0 or codes.max() >= self.cfg.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.cfg.codebook_size}); got [{int(codes.min())}, "
                             f"{int(codes.max())}]")
        return F.embedding(codes, self.embeddings())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """``z``: normalised ``n d``. Returns (straight-through z_q, codes, vq loss, logs)."""
        codes = self.lookup(z.detach())
        zq = self.embed(codes)
        loss = F.mse_loss(zq, z.detach()) + self.cfg.beta * F.mse_loss(z, zq.detach())
        counts = torch.bincount(codes, minlength=self.cfg.codebook_size).float()
        logs = {}
        if self.cfg.entropy_weight > 0 and self.training:
            ent = self.entropy_penalty(z)
            loss = loss + self.cfg.entropy_weight * ent
            logs["entropy_penalty"] = ent.detach()
        if self.training:
            self._track_and_restart(z.detach(), counts)
        return z + (zq - z).detach(), codes, loss, {**self.usage_logs(counts), **logs}

    def entropy_penalty(self, z: torch.Tensor) -> torch.Tensor:
        """H(per-latent soft assignment) - H(batch-mean assignment) (MaskGIT/MAGVIT-v2 style): confident
        assignments, spread over the whole codebook."""
        p = torch.softmax(z.float() @ self.embeddings().float().t() / self.cfg.entropy_temperature, dim=-1)
        per_latent = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
        mean = p.mean(0)
        return per_latent + (mean * mean.clamp_min(1e-12).log()).sum()

    def usage_logs(self, counts: torch.Tensor) -> dict:
        return usage_logs(counts, self.usage >= self.cfg.dead_threshold)

    @torch.no_grad()
    def _track_and_restart(self, z: torch.Tensor, counts: torch.Tensor) -> None:
        c = self.cfg
        self.usage.mul_(c.usage_decay).add_(counts, alpha=1 - c.usage_decay)
        self.steps += 1
        if c.dead_code_restart and int(self.steps) % c.restart_every == 0:
            self.restart_dead_codes(z)

    @torch.no_grad()
    def restart_dead_codes(self, z: torch.Tensor) -> int:
        """Move codes whose usage EMA is below ``dead_threshold`` onto rows of ``z`` (``_restart_targets``); returns
        how many."""
        dead = (self.usage < self.cfg.dead_threshold).nonzero().squeeze(1)
        n = len(dead)
        if n:
            pick = self._restart_targets(z, n)
            noise = 0.01 * torch.randn(n, z.shape[1], device=z.device, dtype=z.dtype)
            self.codebook.data[dead] = F.normalize(z[pick] + noise, dim=-1).to(self.codebook.dtype)
            self.usage[dead] = self.usage.mean().clamp_min(self.cfg.dead_threshold * 10)
            self.restarted += n
        self._sync_from_rank0()
        return n

    def _restart_targets(self, z: torch.Tensor, n: int) -> torch.Tensor:
        """Rows of ``z`` to restart onto: uniform, or (default) in proportion to their quantisation error, so
        rare latents that the live codes serve badly (lane markings, cars) get codes before the common ones."""
        if not self.cfg.restart_by_error:
            return torch.randint(len(z), (n,), device=z.device)
        err = (1 - (z.float() @ self.embeddings().float().t()).max(-1).values).clamp_min(1e-6)
        return torch.multinomial(err, n, replacement=n > len(z))

    def _sync_from_rank0(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            for t in (self.codebook.data, self.usage, self.restarted):
                dist.broadcast(t, src=0)


class FSQuantizer(nn.Module):
    """Finite scalar quantisation of ``n d`` latents (``d = len(fsq_levels)``) with the same interface as
    ``VectorQuantizer``: forward -> (straight-through z_q, codes, loss 0, usage logs); lookup; embed."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        from vector_quantize_pytorch import FSQ

        self.cfg = cfg
        self.fsq = FSQ(levels=[int(x) for x in cfg.fsq_levels])
        self.size = int(self.fsq.codebook_size)
        self.register_buffer("restarted", torch.zeros((), dtype=torch.long))  # never restarts; kept for the logs

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        zq, codes = self.fsq(z[None].float())
        codes = codes[0].long()
        counts = torch.bincount(codes, minlength=self.size).float()
        return zq[0].to(z.dtype), codes, z.new_zeros(()), usage_logs(counts)

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        return self.fsq(z[None].float())[1][0].long()

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.min() < 0 or codes.max() >= self.size:
            raise ValueError(f"codes must lie in [0, {self.size}); got [{int(codes.min())}, {int(codes.max())}]")
        flat = self.fsq.indices_to_codes(codes.long().reshape(-1))  # flat: the library moves d first for ndim > 2
        return flat.reshape(*codes.shape, flat.shape[-1])

    def usage_logs(self, counts: torch.Tensor) -> dict:
        return usage_logs(counts)


def build_quantizer(cfg: VQConfig) -> nn.Module:
    if cfg.quantizer == "vq":
        return VectorQuantizer(cfg)
    if cfg.quantizer == "fsq":
        if len(cfg.fsq_levels) < 1 or min(int(x) for x in cfg.fsq_levels) < 2:
            raise ValueError(f"model.fsq_levels must be a non-empty list of ints >= 2, got {list(cfg.fsq_levels)}")
        return FSQuantizer(cfg)
    raise ValueError(f"model.quantizer must be 'vq' or 'fsq', got {cfg.quantizer!r}")


class VQVideoTokenizer(nn.Module):
    """Video <-> codes. ``encode``: float ``b c t h w`` in [-1, 1] -> int64 ``b t h w``; ``decode``: the inverse.

    Frames are coded independently except through causal temporal attention: the codes (and decoded pixels) of frame
    t depend on frames ``t - context_frames .. t`` only. To code or decode frame by frame, pass the preceding frames
    (at least ``context_frames`` of them; all of them when ``context_frames`` is None) as ``past``.
    """

    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        conv = dict(base=cfg.base_channels, mult=cfg.channel_mult, num_res_blocks=cfg.num_res_blocks,
                    z_channels=cfg.z_channels, spatial_attn=cfg.spatial_attn, heads=cfg.attn_heads,
                    dropout=cfg.dropout)
        self.encoder = Encoder(cfg.in_channels, **conv)
        self.decoder = Decoder(cfg.in_channels, **conv)
        mix = dict(c=cfg.z_channels, heads=cfg.attn_heads, window=cfg.temporal_window, spatial=cfg.spatial_attn)
        self.enc_mix = nn.ModuleList([MixBlock(**mix) for _ in range(cfg.temporal_layers)])
        self.dec_mix = nn.ModuleList([MixBlock(**mix) for _ in range(cfg.temporal_layers)])
        self.quant_proj = nn.Linear(cfg.z_channels, self.code_dim)
        self.post_quant_proj = nn.Linear(self.code_dim, cfg.z_channels)
        self.quantizer = build_quantizer(cfg)

    # ---- properties the world model relies on -------------------------------------------------------------------
    @property
    def codebook_size(self) -> int:
        if self.cfg.quantizer == "fsq":
            return int(torch.tensor([int(x) for x in self.cfg.fsq_levels]).prod())
        return self.cfg.codebook_size

    @property
    def code_dim(self) -> int:
        """Width of a code vector: ``codebook_dim`` (vq) or ``len(fsq_levels)`` (fsq)."""
        return len(self.cfg.fsq_levels) if self.cfg.quantizer == "fsq" else self.cfg.codebook_dim

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.cfg.channel_mult) - 1)

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid (h, w) of a ``cfg.frame_size`` frame (other sizes divisible by ``downsample`` also work)."""
        return self.grid_for(*self.cfg.frame_size)

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        d = self.downsample
        if height % d or width % d:
            raise ValueError(f"frame size {height}x{width} is not divisible by the downsampling factor {d}")
        return height // d, width // d

    @property
    def context_frames(self) -> Optional[int]:
        """Earlier frames that can influence a frame's codes or pixels (None = unbounded)."""
        if self.cfg.temporal_layers == 0:
            return 0
        if self.cfg.temporal_window <= 0:
            return None
        return self.cfg.temporal_layers * (self.cfg.temporal_window - 1)

    # ---- encoder side ---------------------------------------------------------------------------------------------
    def latents(self, video: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation latents ``b d t h w`` (L2-normalised for vq) for a ``b c t H W`` video."""
        self._check_video(video)
        b = video.shape[0]
        x = self.encoder(rearrange(video, "b c t h w -> (b t) c h w"))
        x = rearrange(x, "(b t) c h w -> b c t h w", b=b)
        for blk in self.enc_mix:
            x = blk(x)
        z = self.quant_proj(rearrange(x, "b c t h w -> b t h w c"))
        if self.cfg.quantizer == "vq":  # cosine lookup on the unit sphere; FSQ bounds its channels itself
            z = F.normalize(z, dim=-1)
        return rearrange(z, "b t h w d -> b d t h w")

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        b, _, t, h, w = z.shape
        zq, codes, loss, logs = self.quantizer(rearrange(z, "b d t h w -> (b t h w) d"))
        zq = rearrange(zq, "(b t h w) d -> b d t h w", b=b, t=t, h=h, w=w)
        return zq, rearrange(codes, "(b t h w) -> b t h w", b=b, t=t, h=h, w=w), loss, logs

    @torch.no_grad()
    def encode(self, video: torch.Tensor, past: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Codes int64 ``b t h w`` for ``video`` (``b c t H W`` in [-1, 1]); ``past`` = earlier frames as context."""
        t = video.shape[2]
        if past is not None:
            video = torch.cat([past.to(video), video], dim=2)
        z = self.latents(video)
        codes = self.quantizer.lookup(rearrange(z, "b d t h w -> (b t h w) d"))
        b, _, tt, h, w = z.shape
        return rearrange(codes, "(b t h w) -> b t h w", b=b, t=tt, h=h, w=w)[:, tt - t:]

    # ---- decoder side ---------------------------------------------------------------------------------------------
    def decode_latents(self, zq: torch.Tensor) -> torch.Tensor:
        """Pixels ``b c t H W`` (unclamped) from quantised latents ``b d t h w``."""
        b = zq.shape[0]
        x = rearrange(self.post_quant_proj(rearrange(zq, "b d t h w -> b t h w d")), "b t h w c -> b c t h w")
        for blk in self.dec_mix:
            x = blk(x)
        x = self.decoder(rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(x, "(b t) c h w -> b c t h w", b=b)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, past: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Video ``b c t H W`` in [-1, 1] for codes ``b t h w``; ``past`` = codes of earlier frames as context.

        Bit-exact under chunking: ``decode(codes[:, s:e], past=codes[:, s - context_frames:s])`` gives the same
        floats as ``decode(codes)[:, :, s:e]``. The temporal attention is computed over a fixed window per frame
        (``modules.windowed_attention``) and every per-frame stage (spatial attention, the conv decoder) runs one
        frame at a time, because batched CPU kernels round differently for different batch sizes; streamed
        decoding (``worldgen.pipelines``) relies on this. Only the last ``t`` frames go through the conv decoder."""
        t = codes.shape[1]
        if past is not None:
            codes = torch.cat([past.to(codes), codes], dim=1)
        zq = rearrange(self.quantizer.embed(codes.long()), "b t h w d -> b d t h w")
        x = rearrange(self.post_quant_proj(rearrange(zq, "b d t h w -> b t h w d")), "b t h w c -> b c t h w")
        for blk in self.dec_mix:
            x = blk(x, per_frame=True)
        frames = [self.decoder(x[:, :, i]) for i in range(x.shape[2] - t, x.shape[2])]
        return torch.stack(frames, dim=2).clamp(-1, 1)

    # ---- chunked coding of long videos ---------------------------------------------------------------------------
    def _chunks(self, t: int, chunk: int):
        ctx = self.context_frames
        for start in range(0, t, chunk):
            lo = 0 if ctx is None else max(0, start - ctx)
            yield lo, start, min(t, start + chunk)

    @torch.no_grad()
    def encode_chunked(self, video: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """``encode`` of a long video in chunks of ``chunk`` frames, each with its context: equals one ``encode``."""
        out = [self.encode(video[:, :, s:e], past=video[:, :, lo:s] if s > lo else None)
               for lo, s, e in self._chunks(video.shape[2], chunk)]
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def decode_chunked(self, codes: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """``decode`` of many frames in chunks of ``chunk`` frames, each with its context: equals one ``decode``."""
        out = [self.decode(codes[:, s:e], past=codes[:, lo:s] if s > lo else None)
               for lo, s, e in self._chunks(codes.shape[1], chunk)]
        return torch.cat(out, dim=2)

    # ---- training -------------------------------------------------------------------------------------------------
    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Training pass: (reconstruction b c t H W unclamped, codes, vq loss, codebook logs)."""
        zq, codes, vq_loss, logs = self.quantize(self.latents(video))
        return self.decode_latents(zq), codes, vq_loss, logs

    @property
    def last_layer(self) -> torch.Tensor:
        return self.decoder.last_layer.weight

    def _check_video(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != self.cfg.in_channels:
            raise ValueError(f"video must be float (b, {self.cfg.in_channels}, t, h, w) in [-1, 1]; "
                             f"got shape {tuple(video.shape)}")
        self.grid_for(*video.shape[-2:])


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _config_and_weights(dir_or_files) -> tuple[Path, Path]:
    if isinstance(dir_or_files, (str, os.PathLike)):
        d = Path(dir_or_files)
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: tokenizer folder not found (expected config.yaml + model.safetensors)")
        return d / "config.yaml", d / "model.safetensors"
    cfg_path, weights_path = (Path(p) for p in dir_or_files)
    return cfg_path, weights_path


def read_vq_config(path: str | os.PathLike) -> VQConfig:
    """The ``VQConfig`` in a training output's config.yaml (its ``model`` section) or in a bare VQConfig YAML."""
    from omegaconf import OmegaConf

    from worldgen.config import load, read_yaml

    node = read_yaml(path)
    if "task" in node:
        if node.get("task") != "vq_tokenizer":
            raise ValueError(f"{path}: task is '{node.get('task')}', not a VQ tokenizer (vq_tokenizer)")
        node = node.get("model", {})
    return load(VQConfig, data=OmegaConf.to_container(node))


def load_tokenizer(dir_or_files, device: str = "cpu") -> VQVideoTokenizer:
    """Load a trained tokenizer (eval mode) from a folder with config.yaml + model.safetensors (a ``worldgen train``
    output; through ``worldgen.ckpt``), or from a (config, weights) pair of paths."""
    from worldgen import ckpt

    if isinstance(dir_or_files, (str, os.PathLike)):
        return ckpt.load(dir_or_files, VQConfig, VQVideoTokenizer, task="vq_tokenizer", device=device,
                         what="tokenizer").module
    cfg_path, weights_path = _config_and_weights(dir_or_files)
    return ckpt.load_state(VQVideoTokenizer(read_vq_config(cfg_path)), weights_path).to(device).eval()
