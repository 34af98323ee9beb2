"""Video inputs for the FVD evaluator: folders of mp4 files, worldgen driving episodes, or in-memory arrays.

A path may be one ``.mp4`` file, a worldgen episode folder (``DIR/episodes/<id>/video.mp4``, read as those), or any
folder of ``.mp4`` files (searched recursively, sorted, hidden files and folders skipped). In-memory inputs are uint8
arrays ``b t h w c`` / ``t h w c`` or a list of ``t h w c`` arrays (float arrays with a declared ``input_range``).
Files are decoded one at a time with ``worldgen.data.video.read_video``, so memory does not grow with their number.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def list_videos(root: str | os.PathLike) -> list[Path]:
    """The mp4 files under ``root``: episodes first if ``root/episodes/*/video.mp4`` exist, else ``**/*.mp4``."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() != ".mp4":
            raise ValueError(f"{root}: expected an .mp4 file or a folder of them")
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such file or folder")
    episodes = sorted(p for p in (root / "episodes").glob("*/video.mp4") if _visible(p, root))
    if episodes:
        return episodes
    videos = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".mp4" and p.is_file() and _visible(p, root))
    if not videos:
        raise ValueError(f"{root}: no videos found (expected episodes/*/video.mp4 or .mp4 files in the folder)")
    return videos


def _video_name(path: Path, root: Path) -> str:
    if path.name == "video.mp4" and path.parent.parent.name == "episodes":
        return path.parent.name  # the episode id
    return str(path.relative_to(root)) if root.is_dir() else path.name


class VideoSet:
    """An indexable set of videos; ``get(i)`` returns ``t h w c`` (uint8, or float within ``input_range``)."""

    def __init__(self, items: list, names: list[str], source: str, input_range=None):
        self.items, self.names, self.source, self.input_range = items, names, source, input_range

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
            paths = list_videos(root)
            items, names, source = paths, [_video_name(p, root) for p in paths], str(root)
        else:
            items = _arrays(obj, what)
            names = [str(v) if isinstance(v, Path) else f"{what}[{i}]" for i, v in enumerate(items)]
            source = f"<{len(items)} videos given in memory or as a list>"
        if limit is not None:
            if limit < 1:
                raise ValueError(f"{what}: the number of videos to use must be >= 1, got {limit}")
            items, names = items[:limit], names[:limit]
        return cls(items, names, source, input_range)


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
