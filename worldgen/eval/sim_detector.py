"""A simulator-trained FVD detector: a small (2+1)D video encoder whose penultimate features embed clips for FVD.

Why: FVD (Unterthiner et al., 2018) needs a detector whose features mean something for the videos compared. A
random-weight I3D (``--detector random``) measures nothing, and Kinetics I3D weights are not available offline. This
encoder is trained here, on the simulator's own driving clips, to tell **which scenario** a clip comes from
(``SCENARIOS``: highway-fast, merge, roundabout, intersection, racetrack; from the sidecar's ``env_id``) and **what the
ego car does** in it (``ACTIONS``: keep, lane change left, lane change right, brake; from the sidecar's lane index and
speed). Its ``feature_dim`` penultimate features are the FVD embedding (``--detector sim:PATH``); they are not
comparable to published FVDs (different network, different features) and every output says so.

Network (``SimVideoEncoder``): 16-frame 64x128 clips in [-1, 1]; a per-frame 4x4 patch stem (stride 4: every pixel
is seen, 2-px lane markings included, at a quarter of the cost of a 3x3 stem at full size); three (2+1)D blocks (a
1x3x3 spatial convolution that halves h and w, then a 3x1x1 temporal convolution, Tran et al., 2018, "A Closer Look
at Spatiotemporal Convolutions"), each followed by BatchNorm + ReLU, the first two also halving t; global average
pooling; a linear layer to ``feature_dim`` (+ ReLU): the features; two linear heads. ~0.17 M parameters; a training
step of 32 clips takes ~0.2 s on one CPU thread.

Action labels (per clip of ``clip_frames`` frames starting at ``s``): ``lane_left`` / ``lane_right`` when the sidecar's
``lane_index`` changes lane id on the same road segment inside the clip (a lower id is the lane to the left, checked on
the v2 data: 378 of 379 changes agree with the pose's lateral motion); else ``brake`` when the speed drops by more than
``brake_mps`` over the clip; else ``keep``.

    worldgen eval train-detector --data data/driving-v2 --heldout data/driving-v2-heldout --out checkpoints/fvd-sim-tiny
    worldgen eval fvd --detector sim:checkpoints/fvd-sim-tiny ...
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worldgen.config import ExperimentConfig
from worldgen.eval.detectors import Detector

TASK = "fvd_sim"
SCENARIOS = ("highway-fast", "merge", "roundabout", "intersection", "racetrack")
ACTIONS = ("keep", "lane_left", "lane_right", "brake")


@dataclass
class SimEncoderConfig:
    frame_size: list = field(default_factory=lambda: [64, 128])  # (h, w) px the encoder sees; other sizes are resized
    clip_frames: int = 16  # frames per training clip (FVD clips have 16 frames)
    channels: list = field(default_factory=lambda: [16, 32, 64, 128])  # widths: patch stem, then the (2+1)D blocks
    feature_dim: int = 64  # width of the penultimate layer = the FVD embedding
    scenarios: list = field(default_factory=lambda: list(SCENARIOS))  # scenario head classes
    actions: list = field(default_factory=lambda: list(ACTIONS))  # ego-action head classes


@dataclass
class SimDataConfig:
    root: str = "data/driving-v2"  # training episodes (worldgen data driving output)
    heldout: str = "data/driving-v2-heldout"  # episodes for the card's held-out accuracy ("" = skip)
    hop: int = 4  # frames between training clip starts
    heldout_hop: int = 8  # frames between held-out clip starts
    max_episodes: Optional[int] = None  # use only the first N training episodes
    brake_mps: float = 1.0  # m/s of speed lost over a clip that make it a 'brake' clip


@dataclass
class Config(ExperimentConfig):
    task: str = TASK
    name: str = "fvd-sim-tiny"
    out_dir: str = "runs/eval14-fvd-sim"
    model: SimEncoderConfig = field(default_factory=SimEncoderConfig)
    data: SimDataConfig = field(default_factory=SimDataConfig)
    steps: int = 1400  # optimiser steps
    batch_size: int = 32  # clips per step
    lr: float = 3e-3  # AdamW peak learning rate (cosine decay to 5% of it)
    weight_decay: float = 1e-4
    threads: int = 1  # torch CPU threads
    progress: bool = True  # tqdm bar over steps


# ---- network -----------------------------------------------------------------------------------------------------
def _block(c_in: int, c_out: int, t_stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
        nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
        nn.Conv3d(c_out, c_out, (3, 1, 1), stride=(t_stride, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(c_out), nn.ReLU(inplace=True))


class SimVideoEncoder(nn.Module):
    """``x (b 3 t h w)`` in [-1, 1] -> features ``(b feature_dim)``; ``forward`` also returns both heads' logits."""

    def __init__(self, cfg: SimEncoderConfig):
        super().__init__()
        self.cfg = cfg
        c = list(cfg.channels)
        self.stem = nn.Sequential(nn.Conv3d(3, c[0], (1, 4, 4), stride=(1, 4, 4), bias=False),
                                  nn.BatchNorm3d(c[0]), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[_block(c[i], c[i + 1], 2 if i < 2 else 1) for i in range(len(c) - 1)])
        self.proj = nn.Linear(c[-1], cfg.feature_dim)
        self.head_scenario = nn.Linear(cfg.feature_dim, len(cfg.scenarios))
        self.head_action = nn.Linear(cfg.feature_dim, len(cfg.actions))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.proj(self.blocks(self.stem(x)).mean(dim=(2, 3, 4))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.head_scenario(f), self.head_action(f)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_sim_encoder(folder, device: str = "cpu") -> SimVideoEncoder:
    """A trained encoder folder (``config.yaml`` + ``model.safetensors``) through ``worldgen.ckpt``."""
    from worldgen import ckpt as C

    return C.load(folder, SimEncoderConfig, SimVideoEncoder, task=TASK, device=device, what="sim FVD detector").module


def to_encoder_input(x: torch.Tensor, size) -> torch.Tensor:
    """``b c t h w`` in [0, 255] -> resized to ``size`` (bilinear, antialiased) and scaled to [-1, 1]."""
    from einops import rearrange

    b = x.shape[0]
    if tuple(x.shape[-2:]) != tuple(size):
        frames = rearrange(x, "b c t h w -> (b t) c h w")
        frames = F.interpolate(frames, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        x = rearrange(frames, "(b t) c h w -> b c t h w", b=b)
    return (x / 127.5 - 1.0).clamp(-1.0, 1.0)


class SimDetector(Detector):
    """The FVD wrapper: ``b c t h w`` in [0, 255] -> the encoder's features (float64 ``b feature_dim``)."""

    comparable_to_published = False
    MIN_FRAMES = 8

    def __init__(self, net: SimVideoEncoder, folder: str, weights_sha256: str, device: str = "cpu"):
        super().__init__(int(net.cfg.frame_size[0]), weights_sha256, device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.folder, self.name = str(folder), f"sim:{folder}"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"detector input: expected (b, 3, t, h, w), got {tuple(x.shape)}")
        if x.shape[2] < self.MIN_FRAMES:
            raise ValueError(f"detector input: the sim detector needs clips of at least {self.MIN_FRAMES} frames "
                             f"(trained on {self.net.cfg.clip_frames}), got {x.shape[2]}")
        with torch.no_grad():
            self.net.eval()
            feats = self.net.features(to_encoder_input(x.to(self.device, torch.float32), self.net.cfg.frame_size))
        return feats.double().cpu()

    def info(self) -> dict:
        return {"name": self.name, "weights_sha256": self.weights_sha256,
                "resolution": list(self.net.cfg.frame_size), "feature_dim": int(self.net.cfg.feature_dim),
                "clip_frames": int(self.net.cfg.clip_frames), "comparable_to_published": False,
                "note": "simulator-trained video encoder (worldgen.eval.sim_detector); FVDs with it compare runs "
                        "of this project only"}


def load_sim_detector(path: str, device: str = "cpu") -> SimDetector:
    """``sim:PATH`` -> a ready detector; PATH is a trained folder or a name under ``checkpoints/``."""
    from worldgen import ckpt as C
    from worldgen.io import sha256_file

    if not path:
        raise ValueError("--detector sim:PATH: the PATH is empty (e.g. sim:checkpoints/fvd-sim-tiny)")
    p = Path(path).expanduser()
    if p.is_file():
        raise ValueError(f"--detector sim:{path}: expected a detector folder (config.yaml + model.safetensors, e.g. "
                         f"checkpoints/fvd-sim-tiny), got a file")
    try:
        folder = C.resolve(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"--detector sim:{path}: no such detector folder (expected config.yaml + "
                                f"model.safetensors, e.g. checkpoints/fvd-sim-tiny; train one with "
                                f"`worldgen eval train-detector`)") from None
    net = load_sim_encoder(folder, device=device)
    return SimDetector(net, path, sha256_file(folder / C.WEIGHTS), device)


# ---- labels and clips --------------------------------------------------------------------------------------------
def scenario_of(meta: dict, scenarios=SCENARIOS) -> int:
    """Index of the episode's scenario in ``scenarios`` from ``env_id`` (``merge-v0`` -> merge) or the id prefix."""
    for key in (str(meta.get("env_id", "")), str(meta.get("id", ""))):
        for i, name in enumerate(scenarios):
            if key == name or key.startswith(name + "-"):
                return i
    raise ValueError(f"episode {meta.get('id')!r}: env_id {meta.get('env_id')!r} is none of the scenarios "
                     f"{list(scenarios)}")


def _lane_change(lanes: list, start: int, n: int) -> Optional[str]:
    for i in range(start, start + n - 1):
        a, b = lanes[i], lanes[i + 1]
        if list(a[:2]) == list(b[:2]) and a[2] != b[2]:
            try:
                return "lane_left" if int(b[2]) < int(a[2]) else "lane_right"
            except (TypeError, ValueError):
                continue
    return None


def action_of(meta: dict, start: int, n: int, brake_mps: float = 1.0, actions=ACTIONS) -> int:
    """Ego-action class of frames ``start .. start + n - 1`` (see the module docstring)."""
    lanes = meta.get("lane_index")
    change = _lane_change(lanes, start, n) if lanes else None
    if change is not None:
        return actions.index(change)
    speed = meta.get("speed")
    if speed and float(speed[start + n - 1]) - float(speed[start]) < -brake_mps:
        return actions.index("brake")
    return actions.index("keep")


@dataclass
class ClipBank:
    """Decoded episodes (uint8 ``t h w c``) and one ``(episode, start, scenario, action)`` row per clip."""
    videos: list
    rows: np.ndarray  # int64 (n, 4)
    ids: list

    def batch(self, idx, clip_frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clips ``b 3 t h w`` in [-1, 1] and their scenario and action labels."""
        clips = np.stack([self.videos[e][s:s + clip_frames] for e, s in self.rows[idx, :2]])
        x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
        return x, torch.from_numpy(self.rows[idx, 2]), torch.from_numpy(self.rows[idx, 3])


def load_bank(root: str, cfg: SimEncoderConfig, hop: int, brake_mps: float, max_episodes: Optional[int] = None,
              progress: bool = True) -> ClipBank:
    """Every episode of ``root`` with poses (decoded once) and its clips every ``hop`` frames."""
    from tqdm import tqdm

    from worldgen.data.video import read_video

    ep_root = Path(root) / "episodes"
    if not ep_root.is_dir():
        raise FileNotFoundError(f"{root}: not a driving dataset (no episodes/ folder)")
    dirs = sorted(d for d in ep_root.iterdir() if d.is_dir() and not d.name.startswith("."))[:max_episodes]
    videos, rows, ids, n = [], [], [], cfg.clip_frames
    for d in tqdm(dirs, desc=f"read {Path(root).name}", disable=not progress, leave=False):
        meta = json.loads((d / "meta.json").read_text())
        frames = read_video(d / "video.mp4")
        if tuple(frames.shape[1:3]) != tuple(cfg.frame_size):
            raise ValueError(f"{d}: frames are {frames.shape[1]}x{frames.shape[2]}, the encoder takes "
                             f"{cfg.frame_size[0]}x{cfg.frame_size[1]}")
        scen = scenario_of(meta, cfg.scenarios)
        e = len(videos)
        for s in range(0, len(frames) - n + 1, hop):
            rows.append((e, s, scen, action_of(meta, s, n, brake_mps, cfg.actions)))
        videos.append(frames)
        ids.append(d.name)
    if not rows:
        raise ValueError(f"{root}: no episode has {n} frames for one clip")
    return ClipBank(videos, np.asarray(rows, dtype=np.int64), ids)


# ---- training and the card ---------------------------------------------------------------------------------------
@torch.no_grad()
def head_accuracy(net: SimVideoEncoder, bank: ClipBank, majority: tuple[int, int], batch_size: int = 64) -> dict:
    """Accuracy and balanced accuracy of both heads on ``bank``, beside predicting the training majority class."""
    net.eval()
    preds = [[], []]
    for i in range(0, len(bank.rows), batch_size):
        x, _, _ = bank.batch(np.arange(i, min(i + batch_size, len(bank.rows))), net.cfg.clip_frames)
        _, ls, la = net(x)
        preds[0].append(ls.argmax(-1).numpy())
        preds[1].append(la.argmax(-1).numpy())
    out = {"clips": int(len(bank.rows)), "episodes": len(bank.videos)}
    for k, (name, classes) in enumerate((("scenario", net.cfg.scenarios), ("action", net.cfg.actions))):
        y, p = bank.rows[:, 2 + k], np.concatenate(preds[k])
        recalls = [float((p[y == c] == c).mean()) for c in range(len(classes)) if (y == c).any()]
        out[name] = {"accuracy": float((p == y).mean()), "balanced_accuracy": float(np.mean(recalls)),
                     "majority_class": classes[majority[k]],
                     "majority_baseline_accuracy": float((y == majority[k]).mean()),
                     "class_counts": {c: int((y == i).sum()) for i, c in enumerate(classes)}}
    return out


def _lr(step: int, total: int, peak: float) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm))))


def fit(net: SimVideoEncoder, bank: ClipBank, cfg: Config) -> list[dict]:
    """AdamW on the sum of both heads' cross-entropies; returns a log row every 50 steps."""
    from tqdm import tqdm

    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    logs, bar = [], tqdm(range(cfg.steps), desc="train sim detector", disable=not cfg.progress)
    for step in bar:
        net.train()
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg.steps, cfg.lr)
        x, ys, ya = bank.batch(rng.integers(0, len(bank.rows), cfg.batch_size), cfg.model.clip_frames)
        _, ls, la = net(x)
        loss_s, loss_a = F.cross_entropy(ls, ys), F.cross_entropy(la, ya)
        opt.zero_grad(set_to_none=True)
        (loss_s + loss_a).backward()
        opt.step()
        if step % 50 == 0 or step == cfg.steps - 1:
            loss_s, loss_a = loss_s.detach(), loss_a.detach()
            logs.append({"step": step, "loss_scenario": float(loss_s), "loss_action": float(loss_a),
                         "acc_scenario": float((ls.argmax(-1) == ys).float().mean()),
                         "acc_action": float((la.argmax(-1) == ya).float().mean())})
            bar.set_postfix(scen=f"{float(loss_s):.3f}", act=f"{float(loss_a):.3f}")
    net.eval()
    return logs


def check_config(cfg: Config) -> None:
    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.data.hop < 1 or cfg.data.heldout_hop < 1:
        raise ValueError(f"steps, batch_size, hop and heldout_hop must be >= 1, got {cfg.steps}, {cfg.batch_size}, "
                         f"{cfg.data.hop}, {cfg.data.heldout_hop}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"lr: expected a positive learning rate, got {cfg.lr}")
    if cfg.model.clip_frames < SimDetector.MIN_FRAMES:
        raise ValueError(f"clip_frames: expected >= {SimDetector.MIN_FRAMES}, got {cfg.model.clip_frames}")
    for root in (cfg.data.root, cfg.data.heldout):
        if root and not (Path(root) / "episodes").is_dir():
            raise FileNotFoundError(f"{root}: not a driving dataset (no episodes/ folder)")


def train(cfg: Config, command: str = "") -> dict:
    """Train on ``cfg.data.root``, measure both heads on ``cfg.data.heldout``, write ``out_dir`` (``model.safetensors``
    + ``config.yaml`` + ``card.json``); returns the card."""
    from worldgen import config as C
    from worldgen.io import check_output, save_weights, write_json

    check_config(cfg)
    out = check_output(cfg.out_dir, folder=True, what="--out")
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    bank = load_bank(cfg.data.root, cfg.model, cfg.data.hop, cfg.data.brake_mps, cfg.data.max_episodes, cfg.progress)
    net = SimVideoEncoder(cfg.model)
    logs = fit(net, bank, cfg)
    majority = tuple(int(np.bincount(bank.rows[:, k]).argmax()) for k in (2, 3))
    card = {"task": TASK, "command": command, "params": count_parameters(net), "train_data": cfg.data.root,
            "train_episodes": len(bank.videos), "train_clips": int(len(bank.rows)),
            "train_class_counts": {
                "scenario": np.bincount(bank.rows[:, 2], minlength=len(cfg.model.scenarios)).tolist(),
                "action": np.bincount(bank.rows[:, 3], minlength=len(cfg.model.actions)).tolist()},
            "train_log": logs}
    if cfg.data.heldout:
        held = load_bank(cfg.data.heldout, cfg.model, cfg.data.heldout_hop, cfg.data.brake_mps, None, cfg.progress)
        card["heldout_data"] = cfg.data.heldout
        card["heldout"] = head_accuracy(net, held, majority)
    card["wall_time_s"] = round(time.time() - t0, 1)
    card["config"] = asdict(cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / "model.safetensors", {k: v.detach().contiguous() for k, v in net.state_dict().items()})
    C.save(cfg, out / "config.yaml")
    write_json(out / "card.json", card)
    return card


__all__ = ["SCENARIOS", "ACTIONS", "SimEncoderConfig", "SimDataConfig", "Config", "SimVideoEncoder",
           "load_sim_encoder", "SimDetector", "load_sim_detector", "scenario_of", "action_of", "ClipBank",
           "load_bank", "head_accuracy", "fit", "train", "to_encoder_input", "check_config"]
