"""Video inputs for the FVD evaluator: folders of video files, worldgen driving episodes, or in-memory arrays.

A path may be one video file, a worldgen episode folder (``DIR/episodes/<id>/video.mp4``, read as those), or any
folder of videos (searched recursively, sorted, hidden files and folders skipped) in any container and codec PyAV
decodes (``worldgen.data.video.VIDEO_SUFFIXES``: mp4, mov, mkv, webm, avi, ...). Files of a folder that are not
videos, or whose header cannot be read, are skipped and named with the reason (``VideoSet.skipped``; the FVD record
lists them and the CLI warns); a folder with no usable video is an error. In-memory inputs are uint8 arrays
``b t h w c`` / ``t h w c`` or a list of ``t h w c`` arrays (float arrays with a declared ``input_range``).
Files are decoded one at a time with ``worldgen.data.video.read_video``, so memory does not grow with their number.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from worldgen.data.video import find_videos, is_video_name, not_a_video, video_length


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def scan_videos(root: str | os.PathLike) -> tuple[list[Path], list[dict]]:
    """(videos, skipped) under ``root``: episodes if ``root/episodes/*/video.mp4`` exist, else every video file of
    the folder (recursive); ``skipped`` names each other file with the reason (``{"path", "problem"}``)."""
    root = Path(root)
    if root.is_file():
        if not is_video_name(root):
            raise ValueError(f"{root}: {not_a_video(root)}")
        video_length(root)  # an unreadable single file is an error naming it
        return [root], []
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such file or folder")
    episodes = sorted(p for p in (root / "episodes").glob("*/video.mp4") if _visible(p, root))
    if episodes:
        return episodes, []
    videos, skipped = find_videos(root)
    if not videos:
        why = "; ".join(f"{Path(s['path']).relative_to(root)}: {s['problem']}" for s in skipped[:5])
        raise ValueError(f"{root}: no usable videos (expected episodes/*/video.mp4 or video files in the folder"
                         + (f"; skipped {len(skipped)} file(s): {why}" if skipped else "; the folder is empty") + ")")
    return videos, skipped


def list_videos(root: str | os.PathLike) -> list[Path]:
    """The video files ``scan_videos`` takes from ``root`` (the skipped ones left out)."""
    return scan_videos(root)[0]


def _video_name(path: Path, root: Path) -> str:
    if path.name == "video.mp4" and path.parent.parent.name == "episodes":
        return path.parent.name  # the episode id
    return str(path.relative_to(root)) if root.is_dir() else path.name


class VideoSet:
    """An indexable set of videos; ``get(i)`` returns ``t h w c`` (uint8, or float within ``input_range``)."""

    def __init__(self, items: list, names: list[str], source: str, input_range=None, skipped=None):
        self.items, self.names, self.source, self.input_range = items, names, source, input_range
        self.skipped = list(skipped or [])  # files of the source folder not used, each {"path", "problem"}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, i: int) -> np.ndarray:
        item = self.items[i]
        if isinstance(item, Path):
            from worldgen.data.video import read_video

            return read_video(item)
        return item

    @classmethod
    def from_any(cls, obj, limit: int | None = None, input_range=None, what: str = "videos") -> "VideoSet":
        if isinstance(obj, VideoSet):
            return obj
        if isinstance(obj, (str, os.PathLike)):
            root = Path(obj)
            paths, skipped = scan_videos(root)
            items, names, source = paths, [_video_name(p, root) for p in paths], str(root)
        else:
            skipped = []
            items = _arrays(obj, what)
            names = [str(v) if isinstance(v, Path) else f"{what}[{i}]" for i, v in enumerate(items)]
            source = f"<{len(items)} videos given in memory or as a list>"
        if limit is not None:
            if limit < 1:
                raise ValueError(f"{what}: the number of videos to use must be >= 1, got {limit}")
            items, names = items[:limit], names[:limit]
        return cls(items, names, source, input_range, skipped)


def _arrays(obj, what: str) -> list:
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if obj.ndim == 4:
            obj = obj[None]
        if obj.ndim != 5 or obj.shape[-1] != 3:
            raise ValueError(f"{what}: expected an array of shape (b, t, h, w, 3), got {obj.shape}")
        return list(obj)
    if isinstance(obj, (list, tuple)) and obj:
        if all(isinstance(v, (str, os.PathLike)) for v in obj):
            return [Path(v) for v in obj]
        arrays = [np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for v in obj]
        for i, a in enumerate(arrays):
            if a.ndim != 4 or a.shape[-1] != 3:
                raise ValueError(f"{what}[{i}]: expected shape (t, h, w, 3), got {a.shape}")
        return arrays
    raise ValueError(f"{what}: expected a path, an array (b, t, h, w, 3) or a non-empty list of videos")
