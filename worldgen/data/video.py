"""Video files at the edges of worldgen: uint8 ``t h w c`` arrays <-> mp4 (H.264 via PyAV), and the one place
where uint8 pixels become model floats and back.

House convention: uint8 ``b t h w c`` (or ``t h w c``) at the edges (files, demo, FVD), float ``b c t h w`` in
[-1, 1] inside models. ``to_float`` maps 0..255 to [-1, 1] (``x / 127.5 - 1``) and ``to_uint8`` maps back
(clamp, ``(x + 1) * 127.5``, round); both rearrange with an einops pattern whose default is the house layout.
Reading prefers decord when it is installed and falls back to PyAV (also when decord fails on a file PyAV reads:
decord 0.6 refuses frames 48 px wide, for one); both return the same decoded pixels. Any container and codec this
PyAV build decodes is read (``VIDEO_SUFFIXES``: mp4, mov, mkv, webm, avi, ...), odd frame sizes and variable frame
rates included (``frame_times`` gives each frame's presentation time). A missing, truncated or corrupt file raises
``VideoError`` naming the file; ``find_videos`` lists a folder's videos and names every file it skips, with the reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video file is missing, unreadable or has the wrong shape/type."""


# containers PyAV (FFmpeg) demuxes that hold camera or generated video; a file is tried by its content, the
# suffix only decides which files of a folder are taken for videos
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".ogv", ".flv", ".wmv",
                  ".3gp")


def is_video_name(path: str | os.PathLike) -> bool:
    """True if ``path``'s suffix is one of ``VIDEO_SUFFIXES`` (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def not_a_video(path: str | os.PathLike) -> str:
    """The reason a file with another suffix is not taken for a video."""
    suffix = Path(path).suffix or "no suffix"
    return f"not a video file ({suffix}; expected one of {', '.join(VIDEO_SUFFIXES)})"


def check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoError(f"{what}: expected uint8 array of shape (t, h, w, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise VideoError(f"{what}: expected dtype uint8, got {frames.dtype}")
    if len(frames) == 0:
        raise VideoError(f"{what}: no frames")
    return frames


def to_float(frames, layout: str | None = "b t h w c -> b c t h w", device=None):
    """uint8 pixels (numpy or torch, 0..255) -> float32 torch tensor in [-1, 1], rearranged by the einops
    ``layout`` (None: keep the layout). Other layouts: ``"t h w c -> c t h w"``, ``"b h w c -> b c h w"``."""
    import torch
    from einops import rearrange

    x = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames, device=device)
    x = x.float() / 127.5 - 1.0
    return rearrange(x, layout).contiguous() if layout else x


def to_uint8(video, layout: str | None = "b c t h w -> b t h w c") -> np.ndarray:
    """Float pixels in [-1, 1] (torch, clamped) -> uint8 numpy array, rearranged by the einops ``layout``
    (None: keep the layout). The inverse of ``to_float`` on every uint8 value."""
    import torch
    from einops import rearrange

    x = ((video.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return (rearrange(x, layout) if layout else x).cpu().numpy()


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 10.0, crf: int = 18) -> None:
    """Write uint8 ``t h w 3`` frames to ``path`` as H.264 mp4, atomically. Odd sizes are padded by the codec rules."""
    import av

    from worldgen.io import atomic_path

    frames = check_frames(frames, str(path))
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise VideoError(f"{path}: H.264 needs even frame sizes, got {h}x{w}")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            # One encoder thread: with x264's default threads the same frames gave up to 6 different decoded videos
            # in 300 encodes when the CPU was busy. One thread narrows that but does not close it (1-3 in 80, up to
            # 37 grey levels on a few pixels; cause not found), so tests compare decoded videos with a tolerance.
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def _read_pyav(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def _read_decord(path: Path) -> np.ndarray:
    import decord

    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


def have_decord() -> bool:
    try:
        import decord  # noqa: F401
    except ImportError:
        return False
    return True


def _run(path: Path, backend: str, with_decord, with_pyav, what: str = "decode"):
    """``with_decord(path)`` or ``with_pyav(path)`` as ``backend`` says; ``auto`` tries decord (if installed) and then
    PyAV, so a file decord cannot read but PyAV can is still read. Failures become ``VideoError`` naming the file."""
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend: expected auto, decord or pyav, got {backend!r}")
    if not path.is_file():
        raise VideoError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes), not a video")
    tries = [with_decord, with_pyav] if backend == "auto" and have_decord() else \
        [with_decord] if backend == "decord" else [with_pyav]
    for i, fn in enumerate(tries):
        try:
            return fn(path)
        except VideoError:
            raise
        except Exception as e:
            if i == len(tries) - 1:
                raise VideoError(f"{path}: cannot {what} video ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    """A decoder error in a few words: FFmpeg's own text without its errno and the repeated file name."""
    return f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}"


def read_video(path: str | os.PathLike, backend: str = "auto") -> np.ndarray:
    """All frames of ``path`` as uint8 ``t h w 3``. ``backend``: auto (decord if installed, else or on failure
    PyAV) | decord | pyav."""
    path = Path(path)
    frames = _run(path, backend, _read_decord, _read_pyav)
    if len(frames) == 0:
        raise VideoError(f"{path}: video has no decodable frames")
    return frames


def _pyav_length(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        n = container.streams.video[0].frames
        if n <= 0:  # containers without a frame count in the header: count by decoding
            n = sum(1 for _ in container.decode(video=0))
    return int(n)


def _decord_length(path: Path) -> int:
    import decord

    return len(decord.VideoReader(str(path), ctx=decord.cpu(0)))


def video_length(path: str | os.PathLike, backend: str = "auto") -> int:
    """Frame count from the container header (cheap); a missing, truncated or corrupt header raises ``VideoError``."""
    path = Path(path)
    n = _run(path, backend, _decord_length, _pyav_length, what="open")
    if n <= 0:
        raise VideoError(f"{path}: video has no frames")
    return n


def _read_pyav_indices(path: Path, indices: list[int]) -> np.ndarray:
    import av

    wanted, last, got = set(indices), max(indices), {}
    with av.open(str(path)) as container:
        for i, f in enumerate(container.decode(video=0)):
            if i in wanted:
                got[i] = f.to_ndarray(format="rgb24")
            if i >= last:
                break
    missing = [i for i in indices if i not in got]
    if missing:
        raise VideoError(f"{path}: video ends before frame {missing[0]} (decoded {len(got)} of the wanted frames)")
    return np.stack([got[i] for i in indices])


def read_frames(path: str | os.PathLike, indices, backend: str = "auto") -> np.ndarray:
    """Frames ``indices`` (0-based, any order) of ``path`` as uint8 ``len(indices) h w 3``; same pixels either backend."""
    path = Path(path)
    indices = [int(i) for i in indices]
    if not indices or min(indices) < 0:
        raise VideoError(f"{path}: invalid frame indices {indices[:5]}")

    def with_decord(p: Path) -> np.ndarray:
        import decord

        vr = decord.VideoReader(str(p), ctx=decord.cpu(0))
        if max(indices) >= len(vr):
            raise VideoError(f"{p}: frame {max(indices)} requested but the video has {len(vr)} frames")
        return vr.get_batch(indices).asnumpy()

    return _run(path, backend, with_decord, lambda p: _read_pyav_indices(p, indices))


def frame_times(path: str | os.PathLike) -> np.ndarray | None:
    """Presentation time of every frame in seconds from the first (sorted; read from the packets, no decoding),
    or None when the container gives no timestamps. Tells a variable-frame-rate file from a constant-rate one."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
            base = stream.time_base
    except Exception as e:
        raise VideoError(f"{path}: cannot open video ({_reason(e)})") from None
    if not pts or base is None:
        return None
    t = np.sort(np.asarray(pts, dtype=np.float64)) * float(base)
    return t - t[0]


def find_videos(root: str | os.PathLike, recursive: bool = True) -> tuple[list[Path], list[dict]]:
    """The video files in folder ``root`` (sorted; hidden files and folders left out) and the files skipped, each
    ``{"path", "problem"}``: another suffix (``not_a_video``) or a video whose header cannot be read."""
    root = Path(root)
    files = root.rglob("*") if recursive else root.iterdir()
    videos, skipped = [], []
    for p in sorted(files):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if not is_video_name(p):
            skipped.append({"path": str(p), "problem": not_a_video(p)})
            continue
        try:
            video_length(p)
        except VideoError as e:
            skipped.append({"path": str(p), "problem": str(e).removeprefix(f"{p}: ")})
            continue
        videos.append(p)
    return videos, skipped
