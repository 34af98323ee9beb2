"""The on-disk driving episode format shared by the generator, the converter, the loaders and every model package.

Layout (documented with units in ``docs/formats.md``)::

    DIR/manifest.json                     dataset summary: version, fps, size, episodes [{id, frames, env, caption}]
    DIR/episodes/<id>/video.mp4           uint8 RGB frames, H.264 (PyAV)
    DIR/episodes/<id>/meta.json           sidecar: fps, env_id, seed, caption, n_frames, size, and optionally
                                          poses [[x, y, yaw], ...] (m, m, rad; world frame, x forward, y left,
                                          yaw counter-clockwise), speed (m/s), actions

Each episode folder is written atomically (temporary folder + rename, ``worldgen.io.atomic_dir``), so a killed
writer leaves only whole episodes and hidden ``.<id>.*.tmp`` folders that readers ignore. The manifest is derived
from the sidecars and can always be rebuilt (``write_manifest``); readers treat the ``episodes/`` folder as the truth.

DrivingWorld (Hu et al., 2024) conditions on per-frame ego state *relative to the previous frame*;
``relative_poses`` turns world poses into that (dx forward, dy lateral, dyaw) form.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from worldgen.data.video import write_video
from worldgen.io import atomic_dir, read_json, write_json

FORMAT_VERSION = 1
VIDEO_NAME = "video.mp4"
META_NAME = "meta.json"
MANIFEST_NAME = "manifest.json"
EPISODES_DIR = "episodes"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def episode_dir(root: str | os.PathLike, episode_id: str) -> Path:
    return Path(root) / EPISODES_DIR / episode_id


def check_episode_id(episode_id: str) -> str:
    if not _ID_RE.match(episode_id):
        raise ValueError(f"episode id {episode_id!r}: use letters, digits, '_', '-' or '.', not starting with '.'")
    return episode_id


def _check_per_frame(meta: dict, n_frames: int, where: str) -> None:
    for key in ("poses", "speed", "actions"):
        if key in meta and meta[key] is not None and len(meta[key]) != n_frames:
            raise ValueError(f"{where}: '{key}' has {len(meta[key])} entries but the video has {n_frames} frames")
    if meta.get("poses") is not None:
        arr = np.asarray(meta["poses"], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"{where}: 'poses' must be a list of [x, y, yaw] triples, got shape {arr.shape}")


def write_episode(root: str | os.PathLike, episode_id: str, frames: np.ndarray, meta: dict) -> Path:
    """Write one episode (video + sidecar) atomically; returns its folder. Refuses to overwrite an existing one."""
    check_episode_id(episode_id)
    frames = np.asarray(frames)
    final = episode_dir(root, episode_id)
    _check_per_frame(meta, len(frames), str(final / META_NAME))
    full = {"version": FORMAT_VERSION, "id": episode_id, "n_frames": int(len(frames)),
            "size": [int(frames.shape[1]), int(frames.shape[2])], **meta}
    full.setdefault("fps", 10.0)
    with atomic_dir(final) as tmp:
        write_video(tmp / VIDEO_NAME, frames, fps=float(full["fps"]))
        write_json(tmp / META_NAME, full)
    return final


def is_complete(root: str | os.PathLike, episode_id: str) -> bool:
    d = episode_dir(root, episode_id)
    return (d / VIDEO_NAME).is_file() and (d / META_NAME).is_file()


def scan_episode_dirs(root: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(episode folders, other entries) under ``root/episodes``; hidden temporary folders are ignored."""
    base = Path(root) / EPISODES_DIR
    if not base.is_dir():
        raise FileNotFoundError(f"{root}: not a worldgen driving dataset (no '{EPISODES_DIR}/' folder)")
    dirs, other = [], []
    for p in sorted(base.iterdir()):
        if p.name.startswith("."):
            continue
        (dirs if p.is_dir() else other).append(p)
    return dirs, other


def manifest_entry(meta: dict) -> dict:
    return {"id": meta["id"], "frames": int(meta["n_frames"]), "env": meta.get("env_id", ""),
            "caption": meta.get("caption", ""), "has_poses": meta.get("poses") is not None}


def write_manifest(root: str | os.PathLike, fps: float | None = None, size: Sequence[int] | None = None,
                   extra: dict | None = None) -> dict:
    """Rebuild ``manifest.json`` from the complete episodes' sidecars; unreadable sidecars are left out."""
    dirs, _ = scan_episode_dirs(root)
    entries = []
    for d in dirs:
        try:
            meta = read_json(d / META_NAME)
            entries.append(manifest_entry(meta))
        except (FileNotFoundError, ValueError, KeyError):
            continue
    manifest = {"version": FORMAT_VERSION, "fps": fps, "size": list(size) if size else None,
                "n_episodes": len(entries), "n_frames": sum(e["frames"] for e in entries),
                **(extra or {}), "episodes": entries}
    write_json(Path(root) / MANIFEST_NAME, manifest)
    return manifest


def wrap_angle(a: np.ndarray) -> np.ndarray:
    return (a + math.pi) % (2 * math.pi) - math.pi


def relative_poses(poses: np.ndarray) -> np.ndarray:
    """World poses ``(t, 3)`` [x, y, yaw] -> per-frame motion relative to the previous frame ``(t, 3)``.

    Row i is (dx forward, dy left, dyaw) of frame i expressed in the ego frame of frame i-1; row 0 is zeros.
    """
    poses = np.asarray(poses, dtype=np.float64)
    out = np.zeros_like(poses)
    if len(poses) < 2:
        return out.astype(np.float32)
    d = poses[1:, :2] - poses[:-1, :2]
    c, s = np.cos(poses[:-1, 2]), np.sin(poses[:-1, 2])
    out[1:, 0] = c * d[:, 0] + s * d[:, 1]
    out[1:, 1] = -s * d[:, 0] + c * d[:, 1]
    out[1:, 2] = wrap_angle(poses[1:, 2] - poses[:-1, 2])
    return out.astype(np.float32)


def integrate_relative(rel: np.ndarray, start: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """Inverse of ``relative_poses``: chain per-frame motion back into world poses starting at ``start``."""
    rel = np.asarray(rel, dtype=np.float64)
    poses = np.zeros((len(rel), 3))
    x, y, yaw = start
    for i, (dx, dy, dyaw) in enumerate(rel):
        if i > 0:
            x += math.cos(yaw) * dx - math.sin(yaw) * dy
            y += math.sin(yaw) * dx + math.cos(yaw) * dy
            yaw = float(wrap_angle(np.array(yaw + dyaw)))
        poses[i] = (x, y, yaw)
    return poses


def read_meta(root: str | os.PathLike, episode_id: str) -> dict[str, Any]:
    return read_json(episode_dir(root, episode_id) / META_NAME)
