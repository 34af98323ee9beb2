"""Lightning task ``drivingworld``: trains the DrivingWorld spatial-temporal GPT on VQ token shards.

Thin by design: the objective (teacher-forced next-frame loss with anti-drift masking and reweighting) lives in
``worldgen.worldmodel.drift``; this module only steps and logs. Validation uses clean inputs (no masking) and the
same loss weights. Posedrop augmentation (``data.posedrop_prob``) is applied to training batches here.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch

from worldgen.config import ExperimentConfig
from worldgen.data.tokens import ShardDataConfig, posedrop
from worldgen.io import sha256_file
from worldgen.lit.datamodules import TokenDataModule
from worldgen.lit.optim import OptimConfig, WarmupCosineStep, configure_adamw
from worldgen.tokenizer.vq import load_tokenizer
from worldgen.worldmodel.drift import DriftConfig, world_model_loss
from worldgen.worldmodel.model import DrivingWorldGPT, GPTConfig
from worldgen.worldmodel.rollout import SamplingConfig

log = logging.getLogger(__name__)


@dataclass
class Config(ExperimentConfig):
    task: str = "drivingworld"
    model: GPTConfig = field(default_factory=GPTConfig)
    data: ShardDataConfig = field(default_factory=ShardDataConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=1e-3))  # paper's values
    sampling: SamplingConfig = field(default_factory=SamplingConfig)  # rollout defaults saved with the checkpoint
    tokenizer: str = ""  # tokenizer checkpoint whose codebook initialises the code embedding (model.code_embed: codebook)
    init_weights: str = ""  # fine-tuning: start from this DrivingWorld folder's weights (same model config, or a
    # longer model.context_frames: the temporal offset biases are widened, worldgen.worldmodel.model.widen_window)


class WorldModelModule(WarmupCosineStep, L.LightningModule):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = DrivingWorldGPT(cfg.model)
        self.null_ids = tuple(self.model.ego_vocab)

    def training_step(self, batch, batch_idx):
        batch = posedrop(batch, self.cfg.data.posedrop_prob, self.null_ids)
        loss, logs = world_model_loss(self.model, batch, self.cfg.drift, train=True)
        self.log_dict({f"train/{k}": v for k, v in logs.items() if k != "loss"})
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        _, logs = world_model_loss(self.model, batch, self.cfg.drift, train=False)
        self.log_dict({f"val/{k}": v for k, v in logs.items()}, sync_dist=True, prog_bar=False)

    def configure_optimizers(self):
        return configure_adamw(self.model, self.cfg.optim, self.cfg.trainer.max_steps)


def clip_frames(cfg: Config) -> int:
    return cfg.data.clip_frames or cfg.model.context_frames + 1


def init_codebook(model: DrivingWorldGPT, tokenizer_dir: str, shards_root: str) -> None:
    """Copy the tokenizer's code vectors into the GPT's code embedding, after checking that the token shards were
    made by that tokenizer (``tokenizer_sha256`` in the shards' meta.json)."""
    tok_dir = Path(tokenizer_dir)
    weights = tok_dir / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"tokenizer: {weights} not found (give a tokenizer checkpoint folder)")
    meta_path = Path(shards_root) / "meta.json"
    if meta_path.is_file():
        want = json.loads(meta_path.read_text()).get("tokenizer_sha256")
        have = sha256_file(weights)
        if want and want != have:
            raise ValueError(f"tokenizer: {tok_dir} is not the tokenizer that made {shards_root} "
                             f"(sha256 {have[:12]} vs {want[:12]} in {meta_path})")
    tok = load_tokenizer(tok_dir)
    with torch.no_grad():
        model.load_codebook(tok.quantizer.embed(torch.arange(tok.codebook_size)))


def build(cfg: Config):
    module = WorldModelModule(cfg)
    if cfg.tokenizer:
        init_codebook(module.model, cfg.tokenizer, cfg.data.root)
    if cfg.init_weights:  # after the codebook: the fine-tuned model's own code embedding wins
        from worldgen.worldmodel.generate import load_model
        from worldgen.worldmodel.model import widen_window

        start, _ = load_model(cfg.init_weights)
        state, want = start.state_dict(), module.model.cfg
        if start.cfg != want:
            if dataclasses.replace(start.cfg, context_frames=want.context_frames) != want:
                raise ValueError(f"init_weights={cfg.init_weights}: its model config differs from model: (fine-tuning "
                                 "keeps the architecture but for a longer model.context_frames; copy the folder's "
                                 "model: section)")
            state = widen_window(state, want.context_frames)
            log.info("temporal window widened from %d to %d frames", start.cfg.context_frames, want.context_frames)
        module.model.load_state_dict(state)
        log.info("fine-tuning from the weights of %s", cfg.init_weights)
    dm = TokenDataModule(cfg.data, clip_frames(cfg), module.model.pose_tokenizer, cfg.model.codebook_size,
                         tuple(cfg.model.grid))
    return module, dm
