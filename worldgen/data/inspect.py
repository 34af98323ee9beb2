"""``worldgen data inspect DIR``: counts, durations, resolution and pose statistics of a driving dataset, plus a
contact sheet PNG (rows = episodes, columns = evenly spaced frames) to eyeball the data.

Uses the same checks as ``worldgen.data.clips.load_episode``; bad episodes are listed, never fatal.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from worldgen.data.clips import EpisodeError, load_episode
from worldgen.data.episodes import relative_poses, scan_episode_dirs
from worldgen.data.video import VideoError, read_frames
from worldgen.io import read_json, write_bytes


def _stats(x: np.ndarray) -> dict:
    if x.size == 0:
        return {}
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max()),
            "p05": float(np.percentile(x, 5)), "p95": float(np.percentile(x, 95))}


def pose_stats(episodes) -> dict:
    rel = [relative_poses(ep.poses)[1:] for ep in episodes if ep.poses is not None and len(ep.poses) > 1]
    if not rel:
        return {}
    r = np.concatenate(rel)
    return {"dx_forward_m": _stats(r[:, 0]), "dy_left_m": _stats(r[:, 1]), "dyaw_deg": _stats(np.degrees(r[:, 2]))}


def summarize(root: str | os.PathLike) -> tuple[dict, list]:
    dirs, stray = scan_episode_dirs(root)
    good, bad = [], [{"path": str(p), "problem": "not an episode folder"} for p in stray]
    for d in dirs:
        try:
            good.append(load_episode(d))
        except (EpisodeError, VideoError) as e:
            bad.append({"path": str(d), "problem": str(e)})
    manifest_path = Path(root) / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    fps = float(manifest.get("fps") or 10.0)
    frames = np.array([ep.n_frames for ep in good])
    envs: dict[str, int] = {}
    for ep in good:
        envs[ep.env_id] = envs.get(ep.env_id, 0) + 1
    summary = {"root": str(root), "episodes": len(good), "bad": len(bad), "bad_files": bad,
               "frames": int(frames.sum()) if len(good) else 0, "fps": fps,
               "duration_s": {"total": float(frames.sum() / fps) if len(good) else 0.0, **_stats(frames / fps)},
               "resolution": manifest.get("size"), "envs": envs,
               "episodes_with_poses": sum(ep.poses is not None for ep in good),
               "pose_stats": pose_stats(good), "manifest_episodes": len(manifest.get("episodes", []))}
    return summary, good


def contact_sheet(episodes, rows: int = 8, cols: int = 6, pad: int = 2) -> np.ndarray:
    """uint8 image: ``rows`` episodes (evenly chosen) x ``cols`` evenly spaced frames each."""
    if not episodes:
        raise ValueError("no readable episodes to draw")
    pick = [episodes[int(j)] for j in np.linspace(0, len(episodes) - 1, min(rows, len(episodes))).round()]
    tiles = []
    for ep in pick:
        idx = np.linspace(0, ep.n_frames - 1, cols).round().astype(int)
        tiles.append(read_frames(ep.video, idx))
    h, w = tiles[0].shape[1:3]
    sheet = np.full((len(tiles) * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(tiles):
        for c, frame in enumerate(row):
            if frame.shape[:2] != (h, w):
                continue
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            sheet[y:y + h, x:x + w] = frame
    return sheet


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    write_bytes(path, buf.getvalue())


def main(root: str, sheet: str | None = None, rows: int = 8, cols: int = 6) -> dict:
    summary, good = summarize(root)
    if good:
        out = sheet or str(Path(root) / "contact_sheet.png")
        write_png(out, contact_sheet(good, rows, cols))
        summary["contact_sheet"] = out
    return summary
