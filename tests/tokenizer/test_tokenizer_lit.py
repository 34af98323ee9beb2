"""The ``vq_tokenizer`` task: both YAMLs load and build, and a few training steps (with the PatchGAN switched on)
write weights that ``load_tokenizer`` reads back into a working tokenizer."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from worldgen import config as C
from worldgen.data.synthetic import make_synthetic_episodes
from worldgen.lit.tokenizer import Config, build
from worldgen.commands.train import main as train_main
from worldgen.tokenizer import VQVideoTokenizer, load_tokenizer
from worldgen.tokenizer.vq import num_params

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/drivingworld/tokenizer_tiny.yaml"
PAPER = ROOT / "configs/drivingworld/tokenizer_paper.yaml"


def test_tiny_config_builds_a_small_8x_model():
    cfg = C.load(Config, TINY)
    model = VQVideoTokenizer(cfg.model)
    assert model.downsample == 8 and model.grid == (8, 16)
    assert 1e6 <= num_params(model) <= 5e6
    assert cfg.model.temporal_window == cfg.data.clip_len


def test_paper_config_matches_the_paper():
    cfg = C.load(Config, PAPER)
    m = cfg.model
    assert (m.base_channels, m.channel_mult, m.z_channels) == (128, [1, 1, 2, 2, 4], 256)
    assert (m.codebook_size, m.codebook_dim, m.beta, m.temporal_window) == (16384, 32, 0.25, 16)
    assert VQVideoTokenizer.__new__(VQVideoTokenizer) is not None
    assert 2 ** (len(m.channel_mult) - 1) == 16 and [s // 16 for s in m.frame_size] == [16, 32]


def test_unknown_key_is_a_clear_error():
    with pytest.raises(C.ConfigError, match="model.codebook_sise"):
        C.load(Config, TINY, ["model.codebook_sise=5"])


def test_train_smoke_with_discriminator_then_load(tmp_path):
    data = tmp_path / "data"
    make_synthetic_episodes(data, n_episodes=3, n_frames=6, size=(16, 32), seed=0)
    out = tmp_path / "run"
    cfg = C.load(Config, TINY, [
        f"out_dir={out}", f"data.root={data}", "data.clip_len=2", "data.batch_size=2", "data.val_fraction=0.34",
        "model.frame_size=[16,32]", "model.base_channels=8", "model.channel_mult=[1,2,2]", "model.z_channels=16",
        "model.attn_heads=2", "model.temporal_window=2", "model.codebook_size=32", "model.codebook_dim=8",
        "loss.disc_weight=0.5", "loss.disc_start=1", "loss.disc_base=8", "loss.disc_layers=2",
        "trainer.max_steps=3", "trainer.val_check_interval=3", "trainer.limit_val_batches=1",
        "trainer.progress_bar=false", "trainer.log_every_n_steps=1",
    ])
    module = train_main(cfg, command="pytest")
    assert module.trainer.global_step == 3
    card = (out / "card.json").read_text()
    assert "val/psnr" in card and "val/codes_used_frac" in card and "train/d_loss" in card
    tok = load_tokenizer(out)
    assert not tok.training and tok.grid == (4, 8)
    keys = set(tok.state_dict())
    assert not any(k.startswith("objective") or "disc" in k for k in keys), "weights file holds the tokenizer only"
    x = torch.rand(1, 3, 3, 16, 32) * 2 - 1
    assert tok.decode(tok.encode(x)).shape == x.shape


def test_frame_size_mismatch_is_reported(tmp_path):
    data = tmp_path / "data"
    make_synthetic_episodes(data, n_episodes=2, n_frames=4, size=(16, 32), seed=0)
    cfg = C.load(Config, TINY, [f"data.root={data}", "data.clip_len=2", "model.temporal_window=2"])
    module, dm = build(cfg)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    with pytest.raises(ValueError, match="model.frame_size"):
        module.training_step(batch, 0)
