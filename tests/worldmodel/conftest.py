"""Tiny DrivingWorld models for tests; one torch thread (batch-1 decoding is fastest and fair on shared CPUs)."""
import pytest
import torch

from worldgen.tokenizer.pose import PoseTokenizerConfig
from worldgen.worldmodel.model import DrivingWorldGPT, GPTConfig



def tiny_config(**kw) -> GPTConfig:
    base = dict(codebook_size=32, grid=[3, 4], pose=PoseTokenizerConfig(yaw_bins=8, x_bins=8, y_bins=4),
                context_frames=3, width=32, heads=2, fusion_layers=2, ar_layers=2)
    base.update(kw)
    return GPTConfig(**base)


def random_clip(model: DrivingWorldGPT, b: int, t: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, model.cfg.codebook_size, (b, t, model.n_img), generator=g)
    ego = torch.stack([torch.randint(0, v, (b, t), generator=g) for v in model.ego_vocab], -1)
    return {"img": img, "ego": ego, "keep": torch.ones(b, t, dtype=torch.bool)}


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return DrivingWorldGPT(tiny_config()).eval()
