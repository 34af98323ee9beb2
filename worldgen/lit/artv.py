"""ART·V training task (``task: artv``), both stages of the paper's recipe (Weng et al. 2023):

- stage 1, ``model.references: false`` (``configs/artv/prior_tiny.yaml``): a text-conditioned image diffusion prior
  trained on single captioned frames;
- stage 2, ``init_from: <stage-1 folder>`` (``configs/artv/tiny.yaml``): the masked-diffusion frame generator,
  initialised from the prior with the minimal changes of ``worldgen.artv.model.init_from_prior``, trained on
  (anchor, previous, target) frames whose anchor lies anywhere earlier in the episode.

Frames come from the in-memory bank of ``worldgen.data.frames`` (with per-frame local captions). Thin
LightningModule: resizes frames to the model's frame size, encodes captions with the (cached, frozen) text encoder,
and calls the objective ``worldgen.artv.model.artv_pair_loss`` (condition dropouts, then the shared EDM loss
``worldgen.diffusion.edm_loss``, which draws sigma and the noise); it only steps (``worldgen.lit.optim``: AdamW,
warm-up + cosine) and logs the ``(loss, logs)`` it gets.
The text encoder is kept outside ``self.model`` so its weights are neither trained nor saved; the checkpoint folder
holds only the denoiser (config.yaml names the encoder).
Latent mode (``model.latent.autoencoder: DIR``, e.g. ``configs/artv/tiny_latent.yaml``): the frozen frame
autoencoder is likewise kept outside ``self.model``; each step encodes only the drawn anchor/previous/target frames,
and ``export`` copies the autoencoder into ``out_dir/autoencoder`` so the folder generates on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import logging

import lightning as L
import torch

from worldgen.artv.model import (ARTV, ARTVConfig, ARTVLossConfig, FrameCodec, artv_pair_loss, build_codec,
                                 count_params, init_from_prior, resize_frames)
from worldgen.artv.text import CachedTextEncoder, build_text_encoder
from worldgen.config import ExperimentConfig
from worldgen.data.frames import FrameDataConfig
from worldgen.lit.datamodules import FrameDataModule
from worldgen.lit.optim import OptimConfig, WarmupCosineStep, configure_adamw


@dataclass
class Config(ExperimentConfig):
    task: str = "artv"
    out_dir: str = "runs/artv"
    model: ARTVConfig = field(default_factory=ARTVConfig)
    loss: ARTVLossConfig = field(default_factory=ARTVLossConfig)
    data: FrameDataConfig = field(default_factory=FrameDataConfig)
    init_from: str = ""  # stage 2: a stage-1 prior's training folder (config.yaml + model.safetensors); "" = scratch
    init_weights: str = ""  # fine-tuning: start from this ART-V folder's weights (same model config); "" = off
    # ART-V fine-tunes SD at 1e-4 scale (tiny configs use more)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, betas=[0.9, 0.99], warmup_steps=500))
    torch_threads: int = 0  # intra-op CPU threads (0 = torch's default); 1 is fastest for tiny models on busy CPUs


log = logging.getLogger(__name__)


class ARTVModule(WarmupCosineStep, L.LightningModule):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = ARTV(cfg.model)
        self._text: CachedTextEncoder | None = None
        self._codec: FrameCodec | None = None

    @property
    def text(self) -> CachedTextEncoder:
        if self._text is None:
            m = self.cfg.model
            self._text = CachedTextEncoder(build_text_encoder(m.text_encoder, m.text_dim), m.max_text_tokens)
        return self._text

    @property
    def codec(self) -> FrameCodec:
        """Identity in pixel mode; the frozen frame autoencoder (not trained, not saved in the denoiser's weights)."""
        if self._codec is None:  # object.__setattr__: not a registered submodule (no checkpoint entry, no .train())
            object.__setattr__(self, "_codec", build_codec(self.cfg.model))
        return self._codec.to(self.device)

    def _step(self, batch, generator=None):
        size = self.cfg.model.frame_size
        x0 = resize_frames(batch["target" if "target" in batch else "frame"], size)
        anchor = prev = None
        if "target" in batch:
            anchor, prev = resize_frames(batch["anchor"], size), resize_frames(batch["prev"], size)
        tokens, mask = self.text(list(batch["caption"]), device=x0.device)
        encode = self.codec.encode if self.cfg.model.is_latent else None
        return artv_pair_loss(self.model, anchor, prev, x0, tokens, mask, self.cfg.loss, generator, encode)

    def on_fit_start(self) -> None:
        if self.cfg.torch_threads > 0:
            torch.set_num_threads(self.cfg.torch_threads)
        self.print(f"ART-V denoiser: {count_params(self.model) / 1e6:.2f} M parameters")
        if self.cfg.model.is_latent:
            ae = self.codec.ae
            self.print(f"latent space: {self.cfg.model.latent.autoencoder} -> latents {self.cfg.model.state_shape()}, "
                       f"shift {float(ae.latent_shift):.4g}, scale {float(ae.latent_scale):.4g}")

    def training_step(self, batch, batch_idx):
        loss, logs = self._step(batch)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, prog_bar=True, batch_size=len(batch["caption"]))
        return loss

    def validation_step(self, batch, batch_idx):
        _, logs = self._step(batch, torch.Generator().manual_seed(10_000 + batch_idx))  # same noise every eval
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, sync_dist=True, batch_size=len(batch["caption"]))

    def configure_optimizers(self):
        return configure_adamw(self.model, self.cfg.optim, self.cfg.trainer.max_steps)


def build(cfg: Config):
    if cfg.model.is_latent:
        build_codec(cfg.model)  # fail before training when the autoencoder is missing or does not match
    module = ARTVModule(cfg)
    if cfg.init_from:
        if not cfg.model.references:
            raise ValueError("init_from is for stage 2 (model.references: true); a prior trains from scratch")
        from worldgen.artv.generate import load_checkpoint

        prior, _ = load_checkpoint(cfg.init_from)
        report = init_from_prior(module.model, prior.state_dict(), prior.cfg)
        log.info("initialised from the prior %s: %d tensors copied, new: %s", cfg.init_from, report["copied"],
                 report["added"])
    if cfg.init_weights:
        from worldgen.artv.generate import load_checkpoint

        if cfg.init_from:
            raise ValueError("give init_from (a stage-1 prior) or init_weights (an ART-V model to fine-tune), not both")
        start, _ = load_checkpoint(cfg.init_weights)
        if start.cfg != module.model.cfg:
            raise ValueError(f"init_weights={cfg.init_weights}: its model config differs from model:")
        module.model.load_state_dict(start.state_dict())
        log.info("fine-tuning from the weights of %s", cfg.init_weights)
    return module, FrameDataModule(cfg.data, pairs=cfg.model.references)


def export(cfg: Config, module: ARTVModule, out_dir) -> None:
    """Latent mode: a copy of the frozen autoencoder in ``out_dir/autoencoder`` (preferred by ``build_codec``)."""
    if cfg.model.is_latent:
        from pathlib import Path

        from worldgen.artv.autoencoder import save_autoencoder

        save_autoencoder(Path(out_dir) / "autoencoder", module.codec.ae.cpu())
