"""Held-out evaluation of a trained VQ video tokenizer: reconstruction PSNR and codebook usage over whole episodes.

    worldgen eval tokenizer --tokenizer runs/tokenizer-tiny --data data/driving-train [--split val]

Episodes are encoded whole (chunked with causal context, ``encode_chunked``) and decoded back; PSNR is the mean
over frames of per-frame PSNR (peak-to-peak 2 on [-1, 1] pixels, i.e. 255 on uint8). ``--split val`` uses the same
held-out episodes the training run validated on (``data.val_fraction`` / ``data.seed`` of the tokenizer's
config.yaml); ``all`` uses every episode. Prints one JSON object; ``--image`` also writes a contact sheet (rows of
original frames over their reconstructions). ``psnr_db_mean_colour_baseline`` is the PSNR of replacing each frame by
its mean colour: on mostly-uniform top-down road scenes that trivial "reconstruction" already scores about 22 dB,
so a tokenizer's PSNR means something only above it.

Structure scores (``worldgen.data.foreground``): foreground (lane markings and vehicles: pixels far from the frame's
road colour) and vehicle (saturated) pixels of the original and of the reconstruction are matched with a 1-pixel
tolerance; precision / recall / F1 are summed over all frames. A tokenizer that draws flat road scores recall ~0.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from worldgen.data.clips import load_episode, split_episodes
from worldgen.data.episodes import scan_episode_dirs
from worldgen.data.foreground import foreground_mask, match_counts, scores_from_counts, vehicle_mask
from worldgen.data.video import read_video, to_float, to_uint8
from worldgen.tokenizer.losses import psnr
from worldgen.tokenizer.vq import _config_and_weights, load_tokenizer


def _episode_dirs(tokenizer: str | Path, data: Path, split: str) -> list[Path]:
    from worldgen.config import read_yaml

    dirs, _ = scan_episode_dirs(data)
    if split == "all":
        return dirs
    node = read_yaml(_config_and_weights(tokenizer)[0]).get("data", {})
    _, val = split_episodes([d.name for d in dirs], float(node.get("val_fraction", 0.1)), int(node.get("seed", 0)))
    return [d for d in dirs if d.name in set(val)]


def _contact_sheet(pairs: list[tuple[np.ndarray, np.ndarray]], path: Path, per_row: int = 4) -> None:
    from PIL import Image

    from worldgen.io import atomic_path

    rows = []
    for orig, rec in pairs:
        idx = np.linspace(0, len(orig) - 1, per_row).astype(int)
        rows.append(np.concatenate([np.concatenate(list(orig[idx]), 1), np.concatenate(list(rec[idx]), 1)], 0))
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate(rows, 0)).save(tmp, format="PNG")


@torch.no_grad()
def evaluate(tokenizer: str | Path, data: str | Path, split: str = "val", max_episodes: Optional[int] = None,
             chunk: int = 16, image: Optional[str | Path] = None, progress: bool = True) -> dict:
    tok = load_tokenizer(tokenizer)
    dirs = _episode_dirs(tokenizer, Path(data), split)[:max_episodes]
    if not dirs:
        raise ValueError(f"{data}: no episodes in split '{split}'")
    counts = torch.zeros(tok.codebook_size)
    frame_psnr, mean_psnr, pairs = [], [], []
    fg = {k: 0 for k in ("real", "pred", "recovered", "correct")}
    veh = dict(fg)
    for d in tqdm(dirs, desc="evaluate", unit="episode", disable=not progress):
        video = to_float(read_video(load_episode(d).video)[None])
        codes = tok.encode_chunked(video, chunk)
        recon = tok.decode_chunked(codes, chunk)
        counts += torch.bincount(codes.flatten(), minlength=tok.codebook_size).float()
        frame_psnr += [float(psnr(recon[:, :, i:i + 1], video[:, :, i:i + 1])) for i in range(video.shape[2])]
        flat = video.mean(dim=(3, 4), keepdim=True).expand_as(video)  # baseline: each frame's mean colour
        mean_psnr += [float(psnr(flat[:, :, i:i + 1], video[:, :, i:i + 1])) for i in range(video.shape[2])]
        _add(fg, match_counts(foreground_mask(video), foreground_mask(recon)))
        _add(veh, match_counts(vehicle_mask(video), vehicle_mask(recon)))
        if image and len(pairs) < 6:
            pairs.append((to_uint8(video)[0], to_uint8(recon)[0]))
    usage = tok.quantizer.usage_logs(counts)
    if image:
        _contact_sheet(pairs, Path(image))
    return {"split": split, "episodes": len(dirs), "frames": len(frame_psnr), "psnr_db": round(np.mean(frame_psnr), 3),
            "psnr_db_mean_colour_baseline": round(np.mean(mean_psnr), 3),
            "psnr_db_p10": round(float(np.percentile(frame_psnr, 10)), 3), "perplexity": round(float(usage["perplexity"]), 2),
            "codes_used": int((counts > 0).sum()), "codes_used_frac": round(float(usage["codes_used_frac"]), 4),
            "codebook_size": tok.codebook_size, "grid": list(tok.grid),
            "foreground": _rounded(scores_from_counts(fg), fg), "vehicles": _rounded(scores_from_counts(veh), veh)}


def _add(acc: dict, counts: dict) -> None:
    for k, v in counts.items():
        acc[k] += v


def _rounded(scores: dict, counts: dict) -> dict:
    return {**{k: round(v, 4) for k, v in scores.items()}, "real_pixels": counts["real"], "pred_pixels": counts["pred"]}
