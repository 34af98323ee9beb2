"""Single frames and frame pairs of driving episodes, held in memory, with per-frame (local) captions.

ART·V (Weng et al. 2023) trains in two stages: an image diffusion prior on single captioned frames, then the
frame-by-frame generator on (anchor, previous, target) frames. Both need random frames from anywhere in an episode,
so instead of decoding 16-frame clips per sample (``worldgen.data.clips``; decoding dominated the old ART·V step
time ~10:1) the episodes are decoded once into a uint8 bank (400 episodes of 80 frames at 64x128 = 0.8 GB, ~5 s).

Local captions. An episode's caption (``worldgen.data.generate.caption``) says everything the ego car did over 8
seconds ("changes lane to the left, changes lane to the right and brakes ..."); a frame pair shows one of those
things or none. ``frame_captions`` writes for every frame j what happened between frames j-1 and j, from the
sidecar poses and speeds, in the same sentence template (so users can type the same prompts):

    "ego <action> <place> in <traffic> traffic"

with the action one of: changes lane to the left/right (highway scenarios, lateral speed across the road above
``LANE_CHANGE_M`` per frame), turns left/right (yaw rate above ``TURN_RAD`` per frame; "follows the curves" on the
race track), brakes / speeds up (speed change above ``SPEED_DELTA`` m/s per frame; "stops" below 0.5 m/s), else
"keeps its lane at a steady speed" (or "waits" when standing). Frame 0 gets frame 1's caption. The place and traffic
come from the episode caption. Episodes without poses keep their episode caption on every frame.

Items: ``FrameDataset`` gives ``{"frame": c h w, "caption"}`` (stage 1); ``PairDataset`` gives ``{"anchor", "prev",
"target": c h w, "caption", "distance"}`` with the anchor drawn uniformly from frames 0..j-1 (seeded per item), so
training covers every anchor distance a generation can reach inside one episode (up to n_frames - 1) - the fix for
the old sampler, whose anchor was always at most 15 frames back. Lane-change pairs can be listed several times
(``lane_change_repeats``) so that the rare manoeuvre the text must control is seen often enough.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from worldgen.data.clips import Episode, load_episode, split_episodes
from worldgen.data.episodes import scan_episode_dirs
from worldgen.data.video import read_video, to_float

LANE_CHANGE_M = 0.12  # m per frame across the road (a lane change peaks at ~0.5 m/frame at 10 fps)
TURN_RAD = 0.03  # rad per frame of yaw change
SPEED_DELTA = 0.3  # m/s per frame of speed change (SLOWER brakes ~0.8 m/s per frame at first)
HIGHWAY_ENVS = ("highway", "merge")  # scenarios whose roads run along an image axis (lane changes are measurable)
_PLACE = re.compile(r" ((?:on|at|through) .*? in \w+ traffic)$")


@dataclass
class FrameDataConfig:
    root: str = "data/driving-train"  # episode folder (worldgen driving format)
    val_fraction: float = 0.05  # share of episodes held out for the validation loss (seeded split)
    seed: int = 0  # seed of the split and of the anchor draws
    batch_size: int = 16  # per device
    num_workers: int = 0  # DataLoader workers (the bank is in memory; 0 is fastest)
    local_captions: bool = True  # per-frame captions (frame_captions); false = the episode caption everywhere
    max_episodes: int = 0  # use only the first N episodes (0 = all); for smoke tests
    lane_change_repeats: int = 1  # pairs: each lane-change pair is listed this many times (1 = no oversampling);
    # lane changes are ~6% of highway pairs, too rare for text control to be learnt in a short run
    onset_repeats: int = 1  # pairs: the first two frames of each lane change (where only the text tells the
    # direction; later frames show the tilted ego car) are listed this many times
    exclude: list = field(default_factory=list)  # episode ids never used


def place_phrase(caption: str) -> str:
    """'on a highway ... in light traffic' from an episode caption ('' when it does not follow the template)."""
    m = _PLACE.search(caption.replace(" and crashes", ""))
    return m.group(1) if m else ""


def _road_lateral(poses: np.ndarray) -> Optional[np.ndarray]:
    """Per-frame lateral step (m, + = left) across the road axis of frame 0, or None when the road is diagonal."""
    yaw0 = float(poses[0, 2])
    road = round(yaw0 / (math.pi / 2)) * (math.pi / 2)
    if abs(math.degrees(yaw0 - road)) > 25:
        return None
    d = np.diff(poses[:, :2], axis=0)
    return -math.sin(road) * d[:, 0] + math.cos(road) * d[:, 1]


def frame_actions(meta: dict) -> list[str]:
    """The action phrase of every frame (see the module docstring); length ``len(poses)``."""
    poses = np.asarray(meta["poses"], dtype=np.float64)
    n = len(poses)
    speed = np.asarray(meta.get("speed") or [0.0] * n, dtype=np.float64)
    env = str(meta.get("env_id", ""))
    lat = _road_lateral(poses) if env.startswith(HIGHWAY_ENVS) and n > 1 else None
    dyaw = np.angle(np.exp(1j * np.diff(poses[:, 2]))) if n > 1 else np.zeros(0)
    out = []
    for j in range(1, n):
        acts = []
        if lat is not None and abs(lat[j - 1]) > LANE_CHANGE_M:
            acts.append(f"changes lane to the {'left' if lat[j - 1] > 0 else 'right'}")
        elif abs(dyaw[j - 1]) > TURN_RAD:
            acts.append("follows the curves" if env.startswith("racetrack")
                        else f"turns {'left' if dyaw[j - 1] > 0 else 'right'}")
        dv = speed[j] - speed[j - 1]
        if dv < -SPEED_DELTA:
            acts.append("stops" if speed[j] < 0.5 else "brakes")
        elif dv > SPEED_DELTA:
            acts.append("speeds up")
        if not acts:
            acts.append("keeps its lane at a steady speed" if speed[j] > 0.5 else "waits")
        out.append(" and ".join(acts))
    return (out[:1] + out) if out else ["keeps its lane at a steady speed"]


def frame_captions(meta: dict) -> list[str]:
    """One caption per frame: what the ego car does from the previous frame to this one, where, in what traffic."""
    caption = str(meta.get("caption", ""))
    if meta.get("poses") is None:
        return [caption] * int(meta.get("n_frames", 1))
    place = place_phrase(caption)
    return [f"ego {a} {place}".strip() for a in frame_actions(meta)]


class FrameBank:
    """Every frame of a set of episodes decoded once: ``frames[e]`` uint8 ``t h w c``, ``captions[e][j]``."""

    def __init__(self, root: str, episodes: Optional[Sequence[str]] = None, local_captions: bool = True,
                 progress: bool = True):
        from worldgen.io import read_json

        dirs, _ = scan_episode_dirs(root)
        if episodes is not None:
            wanted = set(episodes)
            dirs = [d for d in dirs if d.name in wanted]
        if not dirs:
            raise ValueError(f"{root}: no episodes to load")
        self.root, self.episodes, self.frames, self.captions, self.meta = root, [], [], [], []
        for d in tqdm(dirs, desc=f"decoding {root}", disable=not progress):
            ep: Episode = load_episode(d, min_frames=2)
            video = read_video(ep.video)
            meta = read_json(d / "meta.json")
            caps = frame_captions(meta) if local_captions else [ep.caption] * len(video)
            if len(caps) != len(video):
                caps = [ep.caption] * len(video)  # pose-less or inconsistent sidecar: episode caption
            self.episodes.append(ep)
            self.frames.append(torch.from_numpy(np.ascontiguousarray(video)))
            self.captions.append(caps)
            self.meta.append({k: v for k, v in meta.items() if k in ("env_id", "view_m", "caption", "fps")})

    def __len__(self) -> int:
        return len(self.episodes)

    def float_frame(self, e: int, j: int) -> torch.Tensor:
        return to_float(self.frames[e][j], "h w c -> c h w")


class FrameDataset(Dataset):
    """Stage 1: single frames with their local captions."""

    def __init__(self, bank: FrameBank):
        self.bank = bank
        self.index = [(e, j) for e, f in enumerate(bank.frames) for j in range(len(f))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e, j = self.index[i]
        return {"frame": self.bank.float_frame(e, j), "caption": self.bank.captions[e][j]}


class PairDataset(Dataset):
    """Stage 2: (anchor, previous, target) frames; target j >= 1, previous j-1, anchor uniform in 0..j-1 (the
    draw is seeded by ``(seed, i)``, so an item is the same every time it is read and runs resume exactly)."""

    def __init__(self, bank: FrameBank, seed: int = 0, max_distance: int = 0, lane_change_repeats: int = 1,
                 onset_repeats: int = 1):
        if lane_change_repeats < 1 or onset_repeats < 1:
            raise ValueError(f"data.lane_change_repeats and data.onset_repeats must be >= 1, got "
                             f"{lane_change_repeats} and {onset_repeats}")
        self.bank, self.seed, self.max_distance = bank, int(seed), int(max_distance)
        self.index = [(e, j) for e, f in enumerate(bank.frames) for j in range(1, len(f))
                      for _ in range(self._repeats(bank.captions[e], j, lane_change_repeats, onset_repeats))]

    @staticmethod
    def _repeats(caps: list[str], j: int, lane: int, onset: int) -> int:
        if "changes lane" not in caps[j]:
            return 1
        starts = "changes lane" not in caps[j - 1] or (j >= 2 and "changes lane" not in caps[j - 2])
        return max(lane, onset) if starts else lane

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e, j = self.index[i]
        lo = max(0, j - self.max_distance) if self.max_distance > 0 else 0
        a = int(np.random.default_rng([self.seed, i]).integers(lo, j))
        f = self.bank.float_frame
        return {"anchor": f(e, a), "prev": f(e, j - 1), "target": f(e, j), "caption": self.bank.captions[e][j],
                "distance": j - a}


def split_bank_ids(cfg: FrameDataConfig) -> tuple[list[str], list[str]]:
    """(train, val) episode ids of ``cfg.root`` (the split of ``worldgen.data.clips.split_episodes``)."""
    dirs, _ = scan_episode_dirs(cfg.root)
    ids = [d.name for d in dirs if d.name not in set(cfg.exclude)]
    if cfg.max_episodes > 0:
        ids = ids[:cfg.max_episodes]
    return split_episodes(ids, cfg.val_fraction, cfg.seed)


__all__ = ["FrameDataConfig", "FrameBank", "FrameDataset", "PairDataset", "frame_actions", "frame_captions",
           "place_phrase", "split_bank_ids", "LANE_CHANGE_M", "HIGHWAY_ENVS"]
