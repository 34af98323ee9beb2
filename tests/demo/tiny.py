"""Tiny seeded random-weight checkpoints in the shipped layout, built with the model packages' own config classes,
so the demo tests run the real pipelines without waiting for trained weights."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

FRAME = (32, 64)  # tiny frames: 8x downsampling -> a 4 x 8 code grid
CODES = 32


def _write(folder: Path, task: str, model_cfg, module: torch.nn.Module, extra: dict | None = None) -> Path:
    from worldgen.io import save_weights, write_json, write_text

    folder.mkdir(parents=True, exist_ok=True)
    node = {"task": task, "name": folder.name, "seed": 0, "model": dataclasses.asdict(model_cfg), **(extra or {})}
    write_text(folder / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(node)))
    save_weights(folder / "model.safetensors", {k: v.clone() for k, v in module.state_dict().items()})
    write_json(folder / "card.json", {"note": "seeded random weights for tests", "seed": 0})
    return folder


def make_tokenizer(folder: Path, seed: int = 0) -> Path:
    from worldgen.tokenizer.vq import VQConfig, VQVideoTokenizer

    kw = dict(base_channels=8, channel_mult=[1, 2, 2, 2], num_res_blocks=1, z_channels=16, attn_heads=2,
              temporal_layers=1, temporal_window=2, codebook_size=CODES, codebook_dim=8)
    if "frame_size" in {f.name for f in dataclasses.fields(VQConfig)}:
        kw["frame_size"] = list(FRAME)
    torch.manual_seed(seed)
    cfg = VQConfig(**kw)
    return _write(folder, "vq_tokenizer", cfg, VQVideoTokenizer(cfg), {"data": {"size": list(FRAME)}})


def make_gpt(folder: Path, seed: int = 1) -> Path:
    from worldgen.tokenizer.pose import PoseTokenizerConfig
    from worldgen.worldmodel.model import DrivingWorldGPT, GPTConfig

    pose = PoseTokenizerConfig(yaw_range_deg=[-4.0, 4.0], yaw_bins=16, x_range_m=[0.0, 4.0], x_bins=16,
                               y_range_m=[-0.5, 0.5], y_bins=8)
    cfg = GPTConfig(codebook_size=CODES, grid=[FRAME[0] // 8, FRAME[1] // 8], pose=pose, context_frames=4,
                    width=32, heads=2, fusion_layers=1, ar_layers=1)
    torch.manual_seed(seed)
    return _write(folder, "drivingworld", cfg, DrivingWorldGPT(cfg), {"data": {"val_episodes": 1}})


def make_examples(folder: Path, n: int = 2, frames: int = 20) -> list[Path]:
    """Context clips in the shipped ``.npz`` format, cut from synthetic episodes (worldgen.data.synthetic)."""
    from worldgen.demo.pipelines import export_examples
    from worldgen.data.synthetic import make_synthetic_episodes

    data = folder / "episodes-data"
    manifest = make_synthetic_episodes(data, n_episodes=n, n_frames=frames, size=FRAME, seed=3)
    ids = [e["id"] for e in manifest["episodes"]]
    return export_examples(data, ids, folder / "examples", n_frames=frames)


def make_all(root: Path) -> dict:
    ck = root / "checkpoints"
    make_tokenizer(ck / "tokenizer-tiny")
    make_gpt(ck / "gpt-tiny")
    try:
        make_artv(ck / "artv-tiny")
    except ImportError:  # ART-V not built: the demo's tab must then say so (tested)
        pass
    return {"checkpoints": ck, "examples": make_examples(root)[0].parent, "data": root / "episodes-data"}


def write_mp4(path: Path, frames: int = 12, size=(48, 96), seed: int = 0) -> Path:
    from worldgen.data.video import write_video

    rng = np.random.default_rng(seed)
    write_video(path, rng.integers(0, 255, (frames, *size, 3), dtype=np.uint8), fps=10)
    return path




def make_artv(folder: Path, seed: int = 2) -> Path:
    from worldgen.artv.model import ARTV, ARTVConfig
    from worldgen.nn.unet import UNetConfig

    unet = UNetConfig(base=8, mults=[1, 2], blocks_per_level=1, attn_levels=[1], emb_dim=32, head_dim=8, groups=4)
    cfg = ARTVConfig(frame_size=[16, 32], unet=unet, text_encoder="hash", text_dim=16, max_text_tokens=6)
    torch.manual_seed(seed)
    return _write(folder, "artv", cfg, ARTV(cfg))
