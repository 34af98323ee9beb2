"""Video clips from driving episode folders: a torch ``Dataset``, its config and the split by episode.

The ``LightningDataModule`` over these clips is ``worldgen.lit.datamodules.DrivingDataModule``.

Items follow DrivingWorld's (Hu et al., 2024) conditioning: frames plus the ego motion of each frame *relative to the
previous sampled frame* (dx forward m, dy left m, dyaw rad; the first frame of a clip is zeros) and a mask that is
False where an episode has no poses ("posedrop": pose-less video still trains the image part).

Every episode is checked when the dataset is built (sidecar present and valid, video header readable, as many
poses as frames, long enough for one clip), so bad input surfaces as one clear error naming the file, or, with
``skip_bad=True``, as a warning and an entry in ``summary()['skipped']`` - never as a crash deep in a worker.
A video whose header is fine but whose body is corrupt is found when it is decoded (or at build time with
``verify=True``); with ``skip_bad`` the item is replaced by the next good clip and the episode is counted once
(in the process that read it: with DataLoader workers the warning comes from the worker).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from worldgen.data.episodes import META_NAME, VIDEO_NAME, relative_poses, scan_episode_dirs
from worldgen.data.video import VideoError, read_frames, read_video, to_float, video_length
from worldgen.io import read_json

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif")


class EpisodeError(ValueError):
    """An episode folder or its sidecar is missing, malformed or inconsistent with its video."""


@dataclass
class Episode:
    id: str
    video: Path
    n_frames: int
    caption: str
    poses: np.ndarray | None  # (n_frames, 3) world [x, y, yaw] or None when the episode has no poses
    env_id: str = ""


def _check_sidecar(meta: dict, meta_path: Path) -> None:
    if not isinstance(meta, dict):
        raise EpisodeError(f"{meta_path}: sidecar must be a JSON object")
    poses = meta.get("poses")
    if poses is None:
        return
    try:
        arr = np.asarray(poses, dtype=np.float64)
    except (TypeError, ValueError):
        raise EpisodeError(f"{meta_path}: 'poses' must be a list of numeric [x, y, yaw] triples") from None
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.isfinite(arr).all():
        raise EpisodeError(f"{meta_path}: 'poses' must be finite [x, y, yaw] triples, got shape {arr.shape}")


def _find_video(d: Path) -> Path:
    video = d / VIDEO_NAME
    if video.is_file():
        return video
    others = [p.name for p in sorted(d.iterdir()) if p.suffix.lower() in VIDEO_EXTS or p.name.startswith("video")]
    hint = f" (found {', '.join(others)}; only mp4 named {VIDEO_NAME} is read)" if others else ""
    raise EpisodeError(f"{d}: missing {VIDEO_NAME}{hint}")


def load_episode(d: Path, min_frames: int = 1, backend: str = "auto", verify: bool = False) -> Episode:
    """Check one episode folder and return its record; raises ``EpisodeError``/``VideoError`` naming the file."""
    meta_path = d / META_NAME
    if not meta_path.is_file():
        raise EpisodeError(f"{meta_path}: missing sidecar")
    try:
        meta = read_json(meta_path)
    except ValueError as e:
        raise EpisodeError(str(e)) from None
    _check_sidecar(meta, meta_path)
    video = _find_video(d)
    n = len(read_video(video, backend)) if verify else video_length(video, backend)
    poses = None if meta.get("poses") is None else np.asarray(meta["poses"], dtype=np.float64)
    if poses is not None and len(poses) != n:
        raise EpisodeError(f"{meta_path}: sidecar has {len(poses)} poses but {video.name} has {n} frames")
    if n < min_frames:
        raise EpisodeError(f"{video}: video has {n} frames, shorter than one clip ({min_frames} frames)")
    return Episode(d.name, video, n, str(meta.get("caption", "")), poses, str(meta.get("env_id", "")))


class VideoClipDataset(Dataset):
    """Clips of ``clip_len`` frames, ``stride`` frames apart, starting every ``hop`` frames (default: no overlap).

    Items: ``frames`` (float ``c t h w`` in [-1, 1] or uint8 ``t h w c``), ``poses`` float32 ``(t, 3)``
    (dx forward m, dy left m, dyaw rad relative to the previous clip frame; first row zeros), ``pose_mask`` bool
    ``(t,)``, ``caption`` str, ``episode`` str, ``start`` int (first frame index in the episode).
    """

    def __init__(self, root: str | os.PathLike, clip_len: int, stride: int = 1, output: str = "float",
                 hop: int | None = None, episodes: Sequence[str] | None = None, skip_bad: bool = False,
                 backend: str = "auto", verify: bool = False):
        if clip_len < 1 or stride < 1 or (hop is not None and hop < 1):
            raise ValueError(f"clip_len, stride and hop must be >= 1, got {clip_len}, {stride}, {hop}")
        if output not in ("float", "uint8"):
            raise ValueError(f"output must be 'float' or 'uint8', got {output!r}")
        self.root, self.clip_len, self.stride, self.output = Path(root), clip_len, stride, output
        self.span = (clip_len - 1) * stride + 1
        self.hop = hop or clip_len * stride
        self.skip_bad, self.backend = skip_bad, backend
        self.skipped: list[dict] = []
        self._undecodable: set[int] = set()  # episodes that failed to decode at read time (skip_bad only)
        self.episodes = self._scan(episodes, verify)
        self.index = [(e, s) for e, ep in enumerate(self.episodes)
                      for s in range(0, ep.n_frames - self.span + 1, self.hop)]

    def _bad(self, path: Path, problem: Exception | str) -> None:
        if not self.skip_bad:
            raise problem if isinstance(problem, Exception) else EpisodeError(f"{path}: {problem}")
        msg = str(problem)
        warnings.warn(f"skipping bad input: {msg}", stacklevel=3)
        self.skipped.append({"path": str(path), "problem": msg})

    def _scan(self, only: Sequence[str] | None, verify: bool) -> list[Episode]:
        dirs, others = scan_episode_dirs(self.root)
        for p in others:
            self._bad(p, f"not an episode folder (stray file in {p.parent})")
        if only is not None:
            wanted = set(only)
            dirs = [d for d in dirs if d.name in wanted]
        episodes = []
        for d in dirs:
            try:
                episodes.append(load_episode(d, self.span, self.backend, verify))
            except (EpisodeError, VideoError) as e:
                self._bad(d, e)
        return episodes

    def __len__(self) -> int:
        return len(self.index)

    def clip_indices(self, start: int) -> np.ndarray:
        return start + self.stride * np.arange(self.clip_len)

    def _poses(self, ep: Episode, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        if ep.poses is None:
            return torch.zeros(len(idx), 3), torch.zeros(len(idx), dtype=torch.bool)
        return torch.from_numpy(relative_poses(ep.poses[idx])), torch.ones(len(idx), dtype=torch.bool)

    def _frames(self, raw: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(raw))
        if self.output == "uint8":
            return x
        return to_float(x, "t h w c -> c t h w")

    def __getitem__(self, i: int) -> dict:
        for attempt in range(len(self.index)):
            e, start = self.index[(i + attempt) % len(self.index)]
            if e in self._undecodable:
                continue
            ep, idx = self.episodes[e], self.clip_indices(start)
            try:
                raw = read_frames(ep.video, idx, self.backend)
            except VideoError as err:
                if not self.skip_bad:
                    raise
                self._undecodable.add(e)
                self._bad(ep.video, err)
                continue
            poses, mask = self._poses(ep, idx)
            return {"frames": self._frames(raw), "poses": poses, "pose_mask": mask, "caption": ep.caption,
                    "episode": ep.id, "start": int(start)}
        raise VideoError(f"{self.root}: no decodable clip left (every video failed to decode)")

    def summary(self) -> dict:
        posed = sum(ep.poses is not None for ep in self.episodes)
        return {"root": str(self.root), "episodes": len(self.episodes), "clips": len(self.index),
                "frames": sum(ep.n_frames for ep in self.episodes), "episodes_with_poses": posed,
                "clip_len": self.clip_len, "stride": self.stride, "hop": self.hop,
                "skipped": len(self.skipped), "skipped_files": list(self.skipped)}


@dataclass
class DrivingDataConfig:
    root: str = "data/driving-train"  # episode folder (worldgen driving format)
    clip_len: int = 16  # frames per clip (DrivingWorld: 15 context + 1 target)
    stride: int = 2  # frames between clip frames (10 fps episodes -> 5 Hz clips, DrivingWorld's rate)
    hop: int = 1  # frames between training clip starts; validation clips never overlap
    batch_size: int = 8  # per device
    num_workers: int = 0  # DataLoader worker processes
    val_fraction: float = 0.1  # share of *episodes* held out for validation (at least 1 when there are >= 2)
    output: str = "float"  # float (c t h w in [-1, 1]) | uint8 (t h w c)
    skip_bad: bool = False  # warn and skip bad files instead of raising
    seed: int = 0  # seed of the episode split
    exclude: list = field(default_factory=list)  # episode ids never used


def split_episodes(ids: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic split of episode ids into (train, val); clips of one episode never land on both sides."""
    ids = sorted(ids)
    n_val = int(round(val_fraction * len(ids)))
    if val_fraction > 0 and len(ids) >= 2:
        n_val = min(max(n_val, 1), len(ids) - 1)
    perm = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[j] for j in perm[:n_val])
    return [x for x in ids if x not in set(val)], val
