"""Video files at the edges of worldgen: uint8 ``t h w c`` arrays <-> mp4 (H.264 via PyAV), and the one place
where uint8 pixels become model floats and back.

House convention: uint8 ``b t h w c`` (or ``t h w c``) at the edges (files, demo, FVD), float ``b c t h w`` in
[-1, 1] inside models. ``to_float`` maps 0..255 to [-1, 1] (``x / 127.5 - 1``) and ``to_uint8`` maps back
(clamp, ``(x + 1) * 127.5``, round); both rearrange with an einops pattern whose default is the house layout.
Reading prefers decord when it is installed and falls back to PyAV; both return the same decoded pixels.
A missing, truncated or corrupt file raises ``VideoError`` naming the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video file is missing, unreadable or has the wrong shape/type."""


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
            stream.options = {"crf": str(crf), "preset": "veryfast"}
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


def read_video(path: str | os.PathLike, backend: str = "auto") -> np.ndarray:
    """All frames of ``path`` as uint8 ``t h w 3``. ``backend``: auto (decord if installed) | decord | pyav."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: video file not found")
    if backend == "auto":
        backend = "decord" if have_decord() else "pyav"
    try:
        frames = _read_decord(path) if backend == "decord" else _read_pyav(path)
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(f"{path}: cannot decode video ({type(e).__name__}: {e})") from None
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


def video_length(path: str | os.PathLike, backend: str = "auto") -> int:
    """Frame count from the container header (cheap); a missing, truncated or corrupt header raises ``VideoError``."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: video file not found")
    if backend == "auto":
        backend = "decord" if have_decord() else "pyav"
    try:
        if backend == "decord":
            import decord

            n = len(decord.VideoReader(str(path), ctx=decord.cpu(0)))
        else:
            n = _pyav_length(path)
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(f"{path}: cannot open video ({type(e).__name__}: {e})") from None
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
    if not path.is_file():
        raise VideoError(f"{path}: video file not found")
    if not indices or min(indices) < 0:
        raise VideoError(f"{path}: invalid frame indices {indices[:5]}")
    if backend == "auto":
        backend = "decord" if have_decord() else "pyav"
    try:
        if backend == "decord":
            import decord

            vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
            if max(indices) >= len(vr):
                raise VideoError(f"{path}: frame {max(indices)} requested but the video has {len(vr)} frames")
            return vr.get_batch(indices).asnumpy()
        return _read_pyav_indices(path, indices)
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(f"{path}: cannot decode video ({type(e).__name__}: {e})") from None
