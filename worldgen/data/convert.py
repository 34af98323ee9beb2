"""``worldgen data convert SRC --out DIR``: real camera recordings (a folder of videos + poses) -> worldgen episodes.

Input (see ``docs/formats.md``): ``SRC/*`` videos in any container and codec PyAV decodes (``.mp4 .mov .mkv .webm
.avi`` ..., ``worldgen.data.video.VIDEO_SUFFIXES``; odd frame sizes and variable frame rates included) and optionally
one pose file,
- CSV with header ``video,frame,x,y,yaw`` (``video`` = file name or stem, ``frame`` = 0-based frame index; metres and
  radians in a right-handed world frame: x east/forward, y left/north, yaw counter-clockwise), optional ``speed``;
- or JSON ``{"<stem>": {"poses": [[x, y, yaw], ...], "speed": [...], "caption": "..."}, ...}``.
Videos without pose entries become pose-less episodes (allowed; DrivingWorld trains on pose-less video too).

Each video is centre-cropped to the target aspect, resized, optionally resampled in time to ``--fps`` (nearest
source frame by presentation time, so variable-frame-rate files come out evenly timed; poses follow the same
frames), and written atomically; existing episodes are skipped (resume) and temporary folders a killed run left are
removed before an episode is written again. Every file is checked (suffix, readable header, unique name) before
anything is written: a non-video file, an unreadable video, two files with one name or a pose list that does not
match the frame count is an error naming the file, or with ``--skip-bad`` a warning and an entry in the summary's
``skipped_files`` list. A folder with no usable video is an error.
Deliberate limit: each video is decoded into memory in one piece (fine for clips of minutes at small sizes).
"""
from __future__ import annotations

import csv
import math
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np

from worldgen.data.episodes import EPISODES_DIR, MANIFEST_NAME, is_complete, write_episode, write_manifest
from worldgen.data.video import VideoError, frame_times, is_video_name, not_a_video, read_video, video_length
from worldgen.io import read_json


def source_fps(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate
    except Exception as e:
        reason = getattr(e, "strerror", None) or e
        raise VideoError(f"{path}: cannot open video ({type(e).__name__}: {reason})") from None
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


def is_variable_rate(times: np.ndarray | None, n: int) -> bool:
    """True when the ``n`` frame times are not evenly spaced (more than 10 % off their median step)."""
    if times is None or len(times) != n or n < 3:
        return False
    step = np.diff(times)
    return bool(np.median(step) > 0 and np.ptp(step) > 0.1 * np.median(step))


def resample_indices(n: int, src_fps: float, fps: float | None, times: np.ndarray | None = None) -> np.ndarray:
    """Source frame per output frame at ``fps`` (None: keep every frame): the nearest one in time. ``times``
    (seconds, from ``frame_times``) places the frames of a variable-frame-rate file; otherwise frame i is at
    i / ``src_fps``."""
    if is_variable_rate(times, n):
        step = (times[-1] - times[0]) / (n - 1)
        targets = np.arange(0.0, times[-1] + step - 1e-9, 1.0 / (fps or 1.0 / step))
        nearest = np.abs(times[None, :] - targets[:, None]).argmin(axis=1)
        return nearest.astype(int)
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
                row = (int(r["frame"]), float(r["x"]), float(r["y"]), float(r["yaw"]), float(r.get("speed") or "nan"))
            except (TypeError, ValueError) as e:
                expected = "expected numbers in frame,x,y,yaw[,speed]"
                raise ValueError(f"{path}:{line}: bad pose row, {expected} ({e})") from None
            if not np.isfinite(row[1:4]).all() or (r.get("speed") and not math.isfinite(row[4])):
                raise ValueError(f"{path}:{line}: x, y, yaw and speed must be finite numbers, got {dict(r)}")
            rows.setdefault(Path(r["video"]).stem, []).append(row)
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
        for key, width in (("poses", 3), ("speed", 0)):
            if item.get(key) is not None:
                item[key] = _finite_array(item[key], width, f"{path}: {name!r}.{key}")
        out[Path(name).stem] = item
    return out


def _finite_array(value, width: int, what: str) -> np.ndarray:
    """``value`` as float64, shape ``(n, width)`` (``width`` 0: ``(n,)``), every entry finite; else ``ValueError``."""
    form = "[[x, y, yaw], ...]" if width else "[number, ...] (one per frame)"
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {form} of numbers, got {str(value)[:60]}") from None
    if not ((arr.ndim == 2 and arr.shape[1] == width) if width else arr.ndim == 1):
        raise ValueError(f"{what} must be {form}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} must hold finite numbers (no NaN or inf)")
    return arr


def safe_id(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", stem).lstrip(".") or "video"


def convert_one(video: Path, out: Path, info: dict, size, fps, caption: str) -> str:
    frames = read_video(video)
    src, times = source_fps(video), frame_times(video)
    poses = info.get("poses")
    if poses is not None and len(poses) != len(frames):
        raise ValueError(f"{video}: pose file has {len(poses)} poses but the video has {len(frames)} frames")
    if info.get("speed") is not None and len(info["speed"]) != len(frames):
        raise ValueError(f"{video}: pose file has {len(info['speed'])} speeds but the video has {len(frames)} frames")
    if is_variable_rate(times, len(frames)):  # the mean rate, not the container's nominal one
        src = float((len(frames) - 1) / times[-1])
    idx = resample_indices(len(frames), src, fps, times)
    eid = safe_id(video.stem)
    meta = {"fps": float(fps or src), "env_id": "recording", "seed": None, "source": str(video),
            "source_fps": src, "caption": str(info.get("caption") or caption)}
    if poses is not None:
        meta["poses"] = np.asarray(poses)[idx].tolist()
        if info.get("speed") is not None:
            meta["speed"] = np.asarray(info["speed"], dtype=float)[idx].tolist()
    _clear_stale(out / EPISODES_DIR, f".{eid}.*.tmp")
    write_episode(out, eid, crop_resize(frames[idx], size), meta)
    return eid


def _clear_stale(folder: Path, pattern: str) -> None:
    """Remove temporary files/folders a killed run left (one converter per output folder at a time)."""
    for p in folder.glob(pattern):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def check_settings(size, fps) -> None:
    if len(size) != 2 or any(not isinstance(v, (int, np.integer)) or v < 8 for v in size):
        raise ValueError(f"size: expected (height, width) of whole numbers >= 8 px, got {tuple(size)}")
    if fps is not None and (not math.isfinite(fps) or fps <= 0):
        raise ValueError(f"fps: expected a positive frame rate (or 0/None to keep the source rate), got {fps}")


def _problem(p: Path, stems: dict) -> str | None:
    """Why ``p`` cannot be converted (None: it can)."""
    if not is_video_name(p):
        return f"{p}: {not_a_video(p)}"
    if safe_id(p.stem) in stems:
        return f"{p}: same episode name as {stems[safe_id(p.stem)].name} (ids come from file names); rename one"
    try:
        video_length(p)
    except VideoError as e:
        return str(e)
    stems[safe_id(p.stem)] = p
    return None


def _skip(p: Path, problem: str, skip_bad: bool, skipped: list) -> None:
    if not skip_bad:
        raise ValueError(problem)
    warnings.warn(f"skipping bad input: {problem}", stacklevel=3)
    skipped.append({"path": str(p), "problem": problem.removeprefix(f"{p}: ")})


def usable_videos(files: list[Path], pose_file: Path | None, skip_bad: bool, skipped: list) -> list[Path]:
    """The files worth converting; every other one raises (or, with ``skip_bad``, is warned about and listed)."""
    videos, stems = [], {}
    for p in files:
        if pose_file is not None and p.resolve() == pose_file:
            continue
        problem = _problem(p, stems)
        if problem:
            _skip(p, problem, skip_bad, skipped)
        else:
            videos.append(p)
    return videos


def main(src: str, out: str, poses: str | None = None, size=(64, 128), fps: float | None = 10.0,
         caption: str = "", skip_bad: bool = False) -> dict:
    src_dir, out_dir = Path(src), Path(out)
    if not src_dir.is_dir():
        raise FileNotFoundError(f"{src_dir}: source folder not found")
    check_settings(size, fps)
    pose_map = read_pose_file(poses)
    written, existing, skipped = [], [], []
    files = sorted(p for p in src_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    videos = usable_videos(files, Path(poses).resolve() if poses else None, skip_bad, skipped)
    for p in videos:
        try:
            if is_complete(out_dir, safe_id(p.stem)):
                existing.append(p.stem)
                continue
            written.append(convert_one(p, out_dir, pose_map.get(p.stem, {}), size, fps, caption))
        except (ValueError, FileNotFoundError) as e:
            _skip(p, str(e), skip_bad, skipped)
    if not written and not existing:
        why = "; ".join(f"{Path(s['path']).name}: {s['problem']}" for s in skipped[:5]) or "the folder has no files"
        raise ValueError(f"{src_dir}: no usable videos to convert ({why})")
    _clear_stale(out_dir, f".{MANIFEST_NAME}.*.tmp")
    manifest = write_manifest(out_dir, fps=fps, size=list(size), extra={"generator": "worldgen.data.convert"})
    unused = sorted(set(pose_map) - {p.stem for p in files})
    return {"out": str(out_dir), "written": len(written), "skipped_existing": len(existing),
            "skipped": len(skipped), "skipped_files": skipped, "unused_pose_entries": unused,
            "dataset_episodes": manifest["n_episodes"]}
