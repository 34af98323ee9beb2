"""Shared tiny tokenizer fixtures (seconds on a CPU). Tests take them as arguments; nothing is imported from here."""
from __future__ import annotations

import pytest
import torch

from worldgen.tokenizer.vq import VQConfig, VQVideoTokenizer


def _tiny_vq_config(**kw) -> VQConfig:
    base = dict(frame_size=[16, 32], base_channels=8, channel_mult=[1, 2, 2], num_res_blocks=1, z_channels=16,
                attn_heads=2, temporal_layers=1, temporal_window=3, codebook_size=64, codebook_dim=8,
                restart_every=5, usage_decay=0.5)
    base.update(kw)
    return VQConfig(**base)


@pytest.fixture
def tiny_cfg():
    """Factory: ``tiny_cfg(**overrides) -> VQConfig`` for 16x32 frames, 4x downsampling, 64 codes."""
    return _tiny_vq_config


@pytest.fixture
def tiny_tok() -> VQVideoTokenizer:
    torch.manual_seed(0)
    return VQVideoTokenizer(_tiny_vq_config()).eval()


@pytest.fixture
def video():
    """Factory: ``video(b, t, h, w, seed) -> float b c t h w`` uniform in [-1, 1]."""
    def make(b=2, t=5, h=16, w=32, seed=0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(b, 3, t, h, w, generator=g) * 2 - 1
    return make

