"""Per-frame convolutional autoencoder: the latent space ART·V can work in for larger frames.

ART·V (Weng et al. 2023) generates in Stable Diffusion's latent space; that autoencoder follows Rombach et al. 2022
("High-Resolution Image Synthesis with Latent Diffusion Models", Sec. 3 and App. G): a convolutional encoder with
residual blocks downsamples by f = 2^(levels-1) to a few latent channels, a mirrored decoder upsamples back, the
posterior is a diagonal Gaussian with a tiny KL weight (the "KL-f8" model: f = 8, 4 channels, KL weight 1e-6), and the
latents are multiplied by a scale factor computed from data so the diffusion model sees ~unit-std latents
(SD: 0.18215 = 1 / std of the first batch's latents).

Deliberate deviations (CPU scale, no extra dependencies):
- Reconstruction objective ``l1 * |x - x_hat| + l2 * (x - x_hat)^2`` (+ ``kl_weight * KL``); no LPIPS and no patch-GAN
  term, so reconstructions are blurrier than SD's. ``variational: false`` gives a plain deterministic autoencoder.
- No attention blocks in encoder/decoder (a mid-level attention block matters little at these sizes).
- The latent normalisation is ``z = (mu - shift) * scale`` with a global ``shift`` (mean) and ``scale`` (1 / std),
  both computed from training frames after training (``calibrate``), stored as buffers in the weights and mirrored in
  the config (``latent_shift``, ``latent_scale``). ART·V encodes with the posterior mean (deterministic), not a sample.

Shapes: ``encode(x[b c h w]) -> (mu, logvar)[b z h/f w/f]``, ``decode(z) -> x_hat[b c h w]``; frames in [-1, 1].
Training output folders (``worldgen train configs/artv/frame_ae_tiny.yaml``) hold ``config.yaml`` (task frame_ae) and
``model.safetensors``; ``load_autoencoder(dir)`` reads one back, ``save_autoencoder(dir, ae)`` writes one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class FrameAEConfig:
    frame_size: list = field(default_factory=lambda: [256, 256])  # (h, w) frames are resized to in training
    channels: int = 3  # image channels
    latent_channels: int = 4  # latent channels z (LDM KL-f8: 4)
    base: int = 128  # encoder/decoder width at full resolution (LDM: 128)
    mults: list = field(default_factory=lambda: [1, 2, 4, 4])  # width multiplier per level; factor 2^(len-1)
    blocks_per_level: int = 2  # residual blocks per level (LDM: 2)
    groups: int = 32  # GroupNorm groups
    variational: bool = True  # diagonal-Gaussian posterior + KL term (LDM "KL" model); false = plain autoencoder
    kl_weight: float = 1.0e-6  # weight of the KL term (LDM KL-f8: 1e-6)
    l1_weight: float = 1.0  # weight of the per-pixel L1 reconstruction error
    l2_weight: float = 1.0  # weight of the per-pixel squared reconstruction error
    latent_shift: float = 0.0  # mean of the posterior means over training frames (set by calibration)
    latent_scale: float = 1.0  # 1 / std of the shifted posterior means (set by calibration; SD-style scale factor)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.mults) - 1)


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, c), c)


class Block(nn.Module):
    """Pre-norm residual block (GroupNorm, SiLU, 3x3 conv) x 2 with a 1x1 skip when the width changes."""

    def __init__(self, c_in: int, c_out: int, groups: int):
        super().__init__()
        self.net = nn.Sequential(_norm(c_in, groups), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
                                 _norm(c_out, groups), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.net(x)


def _encoder(cfg: FrameAEConfig) -> nn.Sequential:
    chans = [cfg.base * m for m in cfg.mults]
    layers, c = [nn.Conv2d(cfg.channels, chans[0], 3, padding=1)], chans[0]
    for lvl, ch in enumerate(chans):
        for _ in range(cfg.blocks_per_level):
            layers.append(Block(c, ch, cfg.groups))
            c = ch
        if lvl < len(chans) - 1:
            layers.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
    z_out = cfg.latent_channels * (2 if cfg.variational else 1)
    layers += [Block(c, c, cfg.groups), _norm(c, cfg.groups), nn.SiLU(), nn.Conv2d(c, z_out, 3, padding=1)]
    return nn.Sequential(*layers)


def _decoder(cfg: FrameAEConfig) -> nn.Sequential:
    chans = [cfg.base * m for m in cfg.mults]
    c = chans[-1]
    layers = [nn.Conv2d(cfg.latent_channels, c, 3, padding=1), Block(c, c, cfg.groups)]
    for lvl, ch in reversed(list(enumerate(chans))):
        for _ in range(cfg.blocks_per_level):
            layers.append(Block(c, ch, cfg.groups))
            c = ch
        if lvl > 0:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)]
    layers += [_norm(c, cfg.groups), nn.SiLU(), nn.Conv2d(c, cfg.channels, 3, padding=1)]
    return nn.Sequential(*layers)


class FrameAE(nn.Module):
    """``encode``/``decode`` raw latents; ``encode_latent``/``decode_latent`` the normalised ones ART·V uses."""

    def __init__(self, cfg: FrameAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = _encoder(cfg), _decoder(cfg)
        self.register_buffer("latent_shift", torch.tensor(float(cfg.latent_shift)))
        self.register_buffer("latent_scale", torch.tensor(float(cfg.latent_scale)))

    def _check(self, x: torch.Tensor) -> None:
        f = self.cfg.factor
        if x.ndim != 4 or x.shape[1] != self.cfg.channels or x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"FrameAE: expected frames (b {self.cfg.channels} h w) with h, w divisible by {f}, "
                             f"got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Posterior (mean, log-variance); log-variance is None for the plain autoencoder."""
        self._check(x)
        h = self.encoder(x)
        if not self.cfg.variational:
            return h, None
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (b c h w in [-1, 1]) -> normalised latents ``(mu - shift) * scale`` (~unit std after calibration)."""
        return (self.encode(x)[0] - self.latent_shift) * self.latent_scale

    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents -> frames in [-1, 1] (clamped)."""
        return self.decode(z / self.latent_scale + self.latent_shift).clamp(-1, 1)


def frame_ae_loss(ae: FrameAE, x: torch.Tensor, generator: Optional[torch.Generator] = None,
                  sample: bool = True) -> tuple[torch.Tensor, dict]:
    """Reconstruction (+ KL) loss on frames ``x`` (b c h w in [-1, 1]); ``sample=False`` decodes the mean."""
    cfg = ae.cfg
    mu, logvar = ae.encode(x)
    z = mu
    if logvar is not None and sample:
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator).to(mu)
    x_hat = ae.decode(z)
    l1, mse = (x_hat - x).abs().mean(), (x_hat - x).pow(2).mean()
    loss = cfg.l1_weight * l1 + cfg.l2_weight * mse
    logs = {"l1": l1.detach(), "mse": mse.detach(), "psnr": (10 * torch.log10(4.0 / mse.clamp(min=1e-10))).detach()}
    if logvar is not None:
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean()  # nats per frame
        loss = loss + cfg.kl_weight * kl
        logs["kl"] = kl.detach()
    logs["loss"] = loss.detach()
    return loss, logs


@torch.no_grad()
def calibrate(ae: FrameAE, frames: Iterable[torch.Tensor]) -> tuple[float, float]:
    """Set ``latent_shift``/``latent_scale`` (buffers and config) from the posterior means of ``frames`` batches
    (b c h w) so that normalised latents have mean 0 and std 1 over them; returns (shift, scale)."""
    n, s1, s2 = 0, 0.0, 0.0
    for x in frames:
        mu = ae.encode(x.to(ae.latent_scale.device))[0].double()
        n, s1, s2 = n + mu.numel(), s1 + float(mu.sum()), s2 + float(mu.pow(2).sum())
    if n == 0:
        raise ValueError("calibrate: no frames given")
    mean = s1 / n
    std = max(s2 / n - mean**2, 0.0) ** 0.5
    if not std > 1e-8:
        raise ValueError(f"calibrate: latents have std {std:.3g}; the autoencoder collapsed")
    ae.latent_shift.fill_(mean)
    ae.latent_scale.fill_(1.0 / std)
    ae.cfg.latent_shift, ae.cfg.latent_scale = float(mean), float(1.0 / std)
    return float(mean), float(1.0 / std)


def save_autoencoder(out_dir: str | Path, ae: FrameAE) -> Path:
    """Write ``config.yaml`` (task frame_ae, model section) + ``model.safetensors``, atomically; returns the folder."""
    from omegaconf import OmegaConf

    from worldgen.io import save_weights, write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(out_dir / "model.safetensors", ae.state_dict(), {"task": "frame_ae"})
    write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create({"task": "frame_ae",
                                                                            "model": asdict(ae.cfg)})))
    return out_dir


def load_autoencoder(path: str | Path, device: str = "cpu") -> FrameAE:
    """A frozen, eval-mode ``FrameAE`` from a frame_ae training output folder (through ``worldgen.ckpt``)."""
    from worldgen import ckpt

    ae = ckpt.load(path, FrameAEConfig, FrameAE, task="frame_ae", device=device, what="frame_ae").module
    ae.cfg.latent_shift, ae.cfg.latent_scale = float(ae.latent_shift), float(ae.latent_scale)  # weights win
    return ae.requires_grad_(False)


__all__ = ["FrameAEConfig", "FrameAE", "frame_ae_loss", "calibrate", "save_autoencoder", "load_autoencoder"]
