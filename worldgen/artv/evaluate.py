"""ART·V drift ablation: roll each model out from held-out first frames and measure error and FVD over the horizon.

The question (Weng et al. 2023, "ART·V", Sec. 3.2-3.3): does masked diffusion (copying from the previous frame),
anchor-frame conditioning and noise augmentation of the reference reduce appearance drift in long autoregressive
rollouts? For every model: take the first frame and caption of each held-out episode, generate ``horizon`` frames,
and report per 16-frame window
- ``mse``: per-pixel mean squared error against the real continuation (frames in [-1, 1] at the model's size). The
  future is stochastic, so this grows for any model; drift shows as growth beyond the one-step error.
- ``fvd``: FVD of the window against a fixed set of real 16-frame clips (``worldgen.eval.protocols.fvd_drift``,
  the long-horizon drift protocol) with a seeded random-weight I3D at reduced resolution (a distribution distance,
  blind to which future was sampled). Random-detector FVD is only comparable within one run of the command.

This module holds the model side (held-out clips, rollouts, per-window MSE); a window score such as FVD is handed
in as ``score`` (a model family does not import ``worldgen.eval``). The command that runs the whole ablation and
adds FVD is ``worldgen eval artv`` (``worldgen.commands.eval``)::

    worldgen eval artv --ckpt plain=DIR --ckpt full=DIR --data data/driving-train --out runs/x.json
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from worldgen.artv.generate import GenerateOptions, load_checkpoint, rollout, to_uint8
from worldgen.artv.model import build_codec, resize_frames
from worldgen.artv.text import CachedTextEncoder, build_text_encoder


def export_from_lightning_ckpt(run_dir: str | Path) -> Path:
    """Write ``model.safetensors`` (+ a card) from ``ckpt/last.ckpt`` of a run that was stopped before it finished."""
    from worldgen.io import load_torch_checkpoint, save_weights, write_json

    run_dir = Path(run_dir)
    ckpt = load_torch_checkpoint(run_dir / "ckpt" / "last.ckpt")
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    save_weights(run_dir / "model.safetensors", state, {"task": "artv"})
    write_json(run_dir / "card.json", {"task": "artv", "global_step": ckpt.get("global_step"),
                                       "exported_from": str(run_dir / "ckpt" / "last.ckpt"),
                                       "note": "training stopped at the time budget; weights of the last checkpoint"})
    return run_dir / "model.safetensors"


def heldout_clips(data_root: str, train_cfg: dict, horizon: int, size, hop: int = 16):
    """``horizon``-frame clips starting every ``hop`` frames of the run's validation episodes (b c t h w, resized),
    their captions and episode ids."""
    from worldgen.data.clips import VideoClipDataset, split_episodes
    from worldgen.data.episodes import scan_episode_dirs

    d = train_cfg["data"]
    dirs, _ = scan_episode_dirs(data_root)
    ids = [p.name for p in dirs if p.name not in set(d.get("exclude", []))]
    _, val = split_episodes(ids, d["val_fraction"], d["seed"])
    ds = VideoClipDataset(data_root, clip_len=horizon, stride=1, episodes=val, hop=hop)
    items = [ds[i] for i in range(len(ds))]
    if not items:
        raise ValueError(f"{data_root}: no held-out episode has {horizon} frames")
    frames = resize_frames(torch.stack([it["frames"] for it in items]), size)
    return frames, [it["caption"] for it in items], [f"{it['episode']}@{it['start']}" for it in items]


def real_reference(data_root: str, size, n_frames: int = 16, max_clips: int = 96) -> np.ndarray:
    """Up to ``max_clips`` non-overlapping 16-frame clips of the dataset (evenly spread), resized like the model's
    frames, uint8 (b t h w c)."""
    from worldgen.data.clips import VideoClipDataset

    ds = VideoClipDataset(data_root, clip_len=n_frames, stride=1)
    pick = np.unique(np.linspace(0, len(ds) - 1, min(max_clips, len(ds))).round().astype(int))
    clips = torch.stack([resize_frames(ds[int(i)]["frames"][None], size)[0] for i in pick])
    return to_uint8(clips)


def window_mse(fake: torch.Tensor, real: torch.Tensor, window: int) -> list[float]:
    err = (fake - real).pow(2).mean(dim=(0, 1, 3, 4))  # per frame
    return [float(err[s:s + window].mean()) for s in range(0, len(err) - window + 1, window)]


def evaluate_model(name: str, ckpt: str, data_root: str, horizon: int, opts: GenerateOptions, window: int = 16,
                   hop: int = 16, score: Optional[Callable[[np.ndarray], dict]] = None) -> dict:
    """Roll ``ckpt`` out from every held-out start and report per-window MSE; ``score(fake)`` (uint8 ``b t h w c``
    generated clips) adds its entries to the result (``worldgen eval artv``: the FVD per window)."""
    model, train_cfg = load_checkpoint(ckpt)
    codec = build_codec(model.cfg, ckpt)
    real, captions, episodes = heldout_clips(data_root, train_cfg, horizon, model.cfg.frame_size, hop)
    enc = CachedTextEncoder(build_text_encoder(model.cfg.text_encoder, model.cfg.text_dim), model.cfg.max_text_tokens)
    tokens, mask = enc(captions)
    t0 = time.time()
    fake = rollout(model, lambda i: (tokens, mask), horizon, opts, first=real[:, :, 0], progress=True, codec=codec)
    out = {"name": name, "ckpt": str(ckpt), "episodes": episodes, "horizon": horizon, "window": window,
           "gen_seconds": round(time.time() - t0, 1), "mse_per_window": window_mse(fake, real, window),
           "window_starts": list(range(0, horizon - window + 1, window)),
           "mse_first_step": float((fake[:, :, 1] - real[:, :, 1]).pow(2).mean())}
    if score is not None:
        out.update(score(to_uint8(fake)))
    return out


__all__ = ["export_from_lightning_ckpt", "heldout_clips", "real_reference", "window_mse", "evaluate_model"]
