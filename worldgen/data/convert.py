"""``worldgen data convert SRC --out DIR``: real camera recordings (a folder of mp4 files + poses) -> worldgen episodes.

Input (see ``docs/formats.md``): ``SRC/*.mp4`` and optionally one pose file,
- CSV with header ``video,frame,x,y,yaw`` (``video`` = file name or stem, ``frame`` = 0-based frame index; metres and
  radians in a right-handed world frame: x east/forward, y left/north, yaw counter-clockwise), optional ``speed``;
- or JSON ``{"<stem>": {"poses": [[x, y, yaw], ...], "speed": [...], "caption": "..."}, ...}``.
Videos without pose entries become pose-less episodes (allowed; DrivingWorld trains on pose-less video too).

Each video is centre-cropped to the target aspect, resized, optionally resampled in time to ``--fps`` (nearest
source frame; poses follow the same frames), and written atomically; existing episodes are skipped (resume).
A non-mp4 file, an unreadable video or a pose list that does not match the frame count is an error naming the file,
or with ``--skip-bad`` a warning and an entry in the summary's ``skipped`` list.
Deliberate limit: each video is decoded into memory in one piece (fine for clips of minutes at small sizes).
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from pathlib import Path

import numpy as np

from worldgen.data.episodes import is_complete, write_episode, write_manifest
from worldgen.data.video import VideoError, read_video
from worldgen.io import read_json


def source_fps(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate
    except Exception as e:
        raise VideoError(f"{path}: cannot open video ({type(e).__name__}: {e})") from None
    return float(rate) if rate else 10.0


def crop_resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``t h w 3`` frames to the aspect of ``size`` (h, w), then area-resize."""
    from PIL import Image

    h, w = frames.shape[1:3]
    th, tw = size
    if h * tw > w * th:  # too tall
        ch, cw = round(w * th / tw), w
    else:
        ch, cw = h, round(h * tw / th)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = frames[:, y0:y0 + ch, x0:x0 + cw]
    if crop.shape[1:3] == (th, tw):
        return np.ascontiguousarray(crop)
    return np.stack([np.asarray(Image.fromarray(f).resize((tw, th), Image.Resampling.BOX)) for f in crop])


def resample_indices(n: int, src_fps: float, fps: float | None) -> np.ndarray:
    if not fps or abs(src_fps - fps) < 1e-6:
        return np.arange(n)
    times = np.arange(0.0, n / src_fps - 1e-9, 1.0 / fps)
    return np.minimum(np.round(times * src_fps).astype(int), n - 1)


def read_pose_file(path: str | os.PathLike | None) -> dict[str, dict]:
    """Pose file -> {video stem: {"poses": array (n, 3), optional "speed", "caption"}}."""
    if not path:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pose file not found")
    return _read_pose_csv(path) if path.suffix.lower() == ".csv" else _read_pose_json(path)


def _read_pose_csv(path: Path) -> dict[str, dict]:
    rows: dict[str, list] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        need = {"video", "frame", "x", "y", "yaw"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise ValueError(f"{path}: CSV needs columns {sorted(need)}, got {reader.fieldnames}")
        for line, r in enumerate(reader, start=2):
            try:
                rows.setdefault(Path(r["video"]).stem, []).append(
                    (int(r["frame"]), float(r["x"]), float(r["y"]), float(r["yaw"]), float(r.get("speed") or "nan")))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{line}: bad pose row ({e})") from None
    out = {}
    for stem, rs in rows.items():
        rs.sort()
        frames = [r[0] for r in rs]
        if frames != list(range(len(rs))):
            raise ValueError(f"{path}: poses of {stem!r} must cover frames 0..{len(rs) - 1} once each")
        arr = np.array(rs)
        out[stem] = {"poses": arr[:, 1:4]}
        if np.isfinite(arr[:, 4]).all():
            out[stem]["speed"] = arr[:, 4]
    return out


def _read_pose_json(path: Path) -> dict[str, dict]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object mapping video names to {{'poses': ...}}")
    out = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: entry {name!r} must be an object with 'poses'")
        item = dict(entry)
        if item.get("poses") is not None:
            arr = np.asarray(item["poses"], dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != 3:
                raise ValueError(f"{path}: {name!r}.poses must be [[x, y, yaw], ...], got shape {arr.shape}")
            item["poses"] = arr
        out[Path(name).stem] = item
    return out


def safe_id(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", stem).lstrip(".") or "video"


def convert_one(video: Path, out: Path, info: dict, size, fps, caption: str) -> str:
    frames = read_video(video)
    src = source_fps(video)
    poses = info.get("poses")
    if poses is not None and len(poses) != len(frames):
        raise ValueError(f"{video}: pose file has {len(poses)} poses but the video has {len(frames)} frames")
    idx = resample_indices(len(frames), src, fps)
    eid = safe_id(video.stem)
    meta = {"fps": float(fps or src), "env_id": "recording", "seed": None, "source": str(video),
            "source_fps": src, "caption": str(info.get("caption") or caption)}
    if poses is not None:
        meta["poses"] = np.asarray(poses)[idx].tolist()
        if info.get("speed") is not None:
            meta["speed"] = np.asarray(info["speed"], dtype=float)[idx].tolist()
    write_episode(out, eid, crop_resize(frames[idx], size), meta)
    return eid


def main(src: str, out: str, poses: str | None = None, size=(64, 128), fps: float | None = 10.0,
         caption: str = "", skip_bad: bool = False) -> dict:
    src_dir, out_dir = Path(src), Path(out)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: source folder not found")
    pose_map = read_pose_file(poses)
    written, existing, skipped = [], [], []
    files = sorted(p for p in src_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    pose_file = Path(poses).resolve() if poses else None
    for p in files:
        try:
            if p.suffix.lower() != ".mp4":
                if pose_file is not None and p.resolve() == pose_file:
                    continue
                raise ValueError(f"{p}: not an mp4 file (only .mp4 videos are converted)")
            if is_complete(out_dir, safe_id(p.stem)):
                existing.append(p.stem)
                continue
            written.append(convert_one(p, out_dir, pose_map.get(p.stem, {}), size, fps, caption))
        except (ValueError, FileNotFoundError) as e:
            if not skip_bad:
                raise
            warnings.warn(f"skipping bad input: {e}", stacklevel=2)
            skipped.append({"path": str(p), "problem": str(e)})
    manifest = write_manifest(out_dir, fps=fps, size=list(size), extra={"generator": "worldgen.data.convert"})
    unused = sorted(set(pose_map) - {p.stem for p in files})
    return {"out": str(out_dir), "written": len(written), "skipped_existing": len(existing),
            "skipped": len(skipped), "skipped_files": skipped, "unused_pose_entries": unused,
            "dataset_episodes": manifest["n_episodes"]}
