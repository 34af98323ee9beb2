"""``worldgen tokenize --tokenizer DIR --data DIR --out DIR``: encode a driving dataset into VQ token shards.

The work is ``worldgen.tokenizer.export.tokenize_dataset`` (layout of the shards, resume, chunked causal encoding).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from worldgen.commands import Handler, from_args


@dataclass
class TokenizeConfig:
    tokenizer: str  # trained tokenizer folder (config.yaml + model.safetensors)
    data: str  # driving dataset folder (worldgen episode format)
    out: str  # output folder for meta.json + episodes/*.safetensors
    stride: int = 1  # keep every N-th frame (fps is divided by N)
    chunk: int = 16  # frames encoded per forward pass
    device: str = "cpu"  # torch device, e.g. cpu or cuda
    progress: bool = True  # a progress bar over episodes
    mirror: bool = False  # also write each episode mirrored top-bottom (dy, dyaw negated) as <id>-mirror


def main(cfg: TokenizeConfig) -> dict:
    """Tokenize ``cfg.data`` into ``cfg.out``; returns meta.json's dict."""
    import torch

    from worldgen.config import check_device
    from worldgen.io import check_output
    from worldgen.tokenizer.export import tokenize_dataset

    check_output(cfg.out, folder=True, what="--out")
    check_device(cfg.device, "--device")
    with torch.no_grad():
        return tokenize_dataset(cfg.tokenizer, cfg.data, cfg.out, cfg.stride, cfg.chunk, cfg.device, cfg.progress,
                                cfg.mirror)


def configure(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--tokenizer", required=True, help="trained tokenizer folder (config.yaml + model.safetensors)")
    parser.add_argument("--data", required=True, help="driving dataset folder (worldgen episode format)")
    parser.add_argument("--out", required=True, help="output folder for meta.json + episodes/*.safetensors")
    parser.add_argument("--stride", type=int, default=1, help="keep every N-th frame (fps is divided by N)")
    parser.add_argument("--chunk", type=int, default=16, help="frames encoded per forward pass")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--mirror", action="store_true",
                        help="also write every episode mirrored top-bottom as <id>-mirror (frames flipped, dy and "
                             "dyaw negated): balances left and right lane changes")

    def handler(args: argparse.Namespace) -> int:
        meta = main(from_args(TokenizeConfig, args))
        print(f"wrote {meta['n_episodes']} episodes ({meta['n_frames']} frames, grid {meta['grid']}) to {args.out}")
        return 0
    return handler


__all__ = ["TokenizeConfig", "main", "configure"]
