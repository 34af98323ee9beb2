"""Task ``vq_tokenizer``: train the DrivingWorld VQ video tokenizer (``worldgen.tokenizer.vq``) on driving clips.

The module holds the plain tokenizer in ``self.model`` (so ``worldgen train`` writes exactly its weights to
``model.safetensors``) and the objective (``VQGANLoss``, which owns the optional PatchGAN discriminator) in
``self.objective``. One optimizer covers both; see ``worldgen.tokenizer.losses`` for why that is sound.
Validation reports PSNR and, over the whole validation set, the codebook perplexity and the fraction of codes used.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import lightning as L
import torch
from torch import nn

from worldgen.config import ExperimentConfig
from worldgen.data.clips import DrivingDataConfig
from worldgen.lit.datamodules import DrivingDataModule
from worldgen.lit.optim import OptimConfig, WarmupCosineStep, configure_adamw
from worldgen.tokenizer.losses import VQGANLoss, VQLossConfig, psnr
from worldgen.tokenizer.vq import VQConfig, VQVideoTokenizer


@dataclass
class Config(ExperimentConfig):
    task: str = "vq_tokenizer"
    out_dir: str = "runs/tokenizer"
    model: VQConfig = field(default_factory=VQConfig)
    loss: VQLossConfig = field(default_factory=VQLossConfig)
    data: DrivingDataConfig = field(default_factory=lambda: DrivingDataConfig(clip_len=16, stride=2))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4))  # LlamaGen/VQGAN tokenizers: 1e-4


class TokenizerModule(WarmupCosineStep, L.LightningModule):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = VQVideoTokenizer(cfg.model)
        self.objective = VQGANLoss(cfg.loss, cfg.model.in_channels)
        self._val_counts: torch.Tensor | None = None

    def _frames(self, batch: dict) -> torch.Tensor:
        video = batch["frames"]
        if video.dtype == torch.uint8 or video.ndim != 5:
            raise ValueError("vq_tokenizer needs data.output=float clips (b c t h w in [-1, 1])")
        want = tuple(self.cfg.model.frame_size)
        if tuple(video.shape[-2:]) != want:
            raise ValueError(f"data frames are {tuple(video.shape[-2:])} but model.frame_size is {list(want)}; "
                             f"set model.frame_size to the dataset's frame size")
        return video

    def training_step(self, batch, batch_idx):
        video = self._frames(batch)
        recon, _, vq_loss, vq_logs = self.model(video)
        loss, logs = self.objective(video, recon, vq_loss, self.model.last_layer, self.global_step)
        logs.update(vq_logs)
        n = video.shape[0]
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=n)
        self.log_dict({"psnr": logs["psnr"], "used": logs["codes_used_frac"]}, prog_bar=True, logger=False,
                      batch_size=n)
        self.log("train/restarted", self.model.quantizer.restarted.float(), batch_size=n)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_counts = torch.zeros(self.model.codebook_size, device=self.device)

    def validation_step(self, batch, batch_idx):
        video = self._frames(batch)
        recon, codes, vq_loss, _ = self.model(video)
        rec, _ = self.objective.reconstruction(video, recon)
        self._val_counts += torch.bincount(codes.flatten(), minlength=self.model.codebook_size).float()
        self.log_dict({"val/psnr": psnr(recon, video), "val/rec": rec, "val/vq": vq_loss}, sync_dist=True,
                      batch_size=video.shape[0])

    def on_validation_epoch_end(self) -> None:
        counts = self._val_counts
        if counts is None or counts.sum() == 0:
            return
        if self.trainer.world_size > 1:
            counts = self.all_gather(counts).sum(0)
        logs = self.model.quantizer.usage_logs(counts)
        self.log_dict({"val/perplexity": logs["perplexity"], "val/codes_used_frac": logs["codes_used_frac"]})

    def configure_optimizers(self):
        both = nn.ModuleList([self.model, self.objective])
        return configure_adamw(both, self.cfg.optim, self.cfg.trainer.max_steps)


def build(cfg: Config):
    if cfg.data.output != "float":
        raise ValueError("vq_tokenizer: data.output must be 'float'")
    return TokenizerModule(cfg), DrivingDataModule(cfg.data)
