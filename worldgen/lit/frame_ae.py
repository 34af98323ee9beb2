"""Frame autoencoder training task (``task: frame_ae``): the latent space for ART·V on larger frames.

Thin LightningModule over ``worldgen.artv.autoencoder`` (Rombach et al. 2022's KL autoencoder, reduced: L1 + L2
reconstruction + a tiny KL, no LPIPS/GAN). Frames come from captioned driving clips (``DrivingDataModule``); each
step uses ``frames_per_clip`` random frames of every clip, resized to ``model.frame_size``. When training ends the
latent shift/scale are computed from ``scale_batches`` training batches (``calibrate``) so normalised latents have
~unit std; they are stored as buffers in ``model.safetensors`` and ``export`` rewrites ``out_dir/config.yaml`` with
them. With DDP each rank calibrates on its own batches and rank 0's values are saved.
Then point ART·V at the folder: ``model.latent.autoencoder=OUT_DIR`` (``configs/artv/tiny_latent.yaml``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import lightning as L
import torch
from einops import rearrange

from worldgen.artv.autoencoder import FrameAE, FrameAEConfig, calibrate, frame_ae_loss
from worldgen.artv.model import count_params, resize_frames
from worldgen.config import ExperimentConfig
from worldgen.data.clips import DrivingDataConfig
from worldgen.lit.datamodules import DrivingDataModule
from worldgen.lit.optim import OptimConfig, WarmupCosineStep, configure_adamw


@dataclass
class Config(ExperimentConfig):
    task: str = "frame_ae"
    out_dir: str = "runs/frame_ae"
    model: FrameAEConfig = field(default_factory=FrameAEConfig)
    data: DrivingDataConfig = field(default_factory=lambda: DrivingDataConfig(clip_len=4, stride=4, hop=4))
    # LDM autoencoders: lr 4.5e-6 x batch, Adam betas (0.5, 0.9); tiny configs use a larger lr
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=4.5e-6, betas=[0.5, 0.9], warmup_steps=500))
    frames_per_clip: int = 2  # random frames of each clip per step (frames of one clip are strongly correlated)
    scale_batches: int = 16  # training batches used to compute the latent shift/scale after training
    torch_threads: int = 0  # intra-op CPU threads (0 = torch's default)


def pick_frames(clips: torch.Tensor, k: int, g: torch.Generator | None = None) -> torch.Tensor:
    """``k`` random frames (without replacement) of each clip (b c t h w) -> (b*k) c h w."""
    b, t = clips.shape[0], clips.shape[2]
    k = min(k, t)
    idx = torch.stack([torch.randperm(t, generator=g)[:k] for _ in range(b)]).to(clips.device)
    picked = torch.gather(clips, 2, idx[:, None, :, None, None].expand(-1, clips.shape[1], -1, *clips.shape[-2:]))
    return rearrange(picked, "b c k h w -> (b k) c h w")


class FrameAEModule(WarmupCosineStep, L.LightningModule):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = FrameAE(cfg.model)

    def _frames(self, batch, g=None) -> torch.Tensor:
        return pick_frames(resize_frames(batch["frames"], self.cfg.model.frame_size), self.cfg.frames_per_clip, g)

    def on_fit_start(self) -> None:
        if self.cfg.torch_threads > 0:
            torch.set_num_threads(self.cfg.torch_threads)
        m = self.cfg.model
        h, w = (int(s) for s in m.frame_size)
        self.print(f"frame AE: {count_params(self.model) / 1e6:.2f} M parameters, {h}x{w} -> "
                   f"{m.latent_channels}x{h // m.factor}x{w // m.factor}")

    def training_step(self, batch, batch_idx):
        loss, logs = frame_ae_loss(self.model, self._frames(batch))
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=True, batch_size=len(batch["frames"]))
        return loss

    def validation_step(self, batch, batch_idx):
        g = torch.Generator().manual_seed(10_000 + batch_idx)  # same frames every evaluation
        _, logs = frame_ae_loss(self.model, self._frames(batch, g), sample=False)
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, sync_dist=True, batch_size=len(batch["frames"]))

    def on_train_end(self) -> None:
        loader = self.trainer.datamodule.train_dataloader()
        g = torch.Generator().manual_seed(self.cfg.seed)
        batches = (self._frames({"frames": b["frames"].to(self.device)}, g)
                   for i, b in zip(range(self.cfg.scale_batches), loader))
        was_training = self.model.training
        self.model.eval()
        shift, scale = calibrate(self.model, batches)
        self.model.train(was_training)
        self.print(f"latent calibration: shift {shift:.4g}, scale {scale:.4g}")

    def configure_optimizers(self):
        return configure_adamw(self.model, self.cfg.optim, self.cfg.trainer.max_steps)


def build(cfg: Config):
    return FrameAEModule(cfg), DrivingDataModule(cfg.data)


def export(cfg: Config, module: FrameAEModule, out_dir) -> None:
    """Rewrite ``config.yaml`` with the calibrated latent shift/scale (the weights hold them too)."""
    from pathlib import Path

    from worldgen.config import save

    ae = module.model
    cfg.model.latent_shift, cfg.model.latent_scale = float(ae.latent_shift), float(ae.latent_scale)
    save(cfg, Path(out_dir) / "config.yaml")
