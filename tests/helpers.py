"""Small helpers shared by tests: run the CLI in a subprocess, find a free port, compare weight files."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "worldgen.cli", *args]


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cli_cmd(*args), cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"worldgen {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def max_weight_diff(path_a: str | Path, path_b: str | Path) -> float:
    from worldgen.io import load_weights

    a, b = load_weights(path_a), load_weights(path_b)
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


# (container suffix, encoder, FFmpeg muxer) for test videos in every common container; the encoder must exist in
# this PyAV build (``have_encoder``), else the container's tests skip and say so
CONTAINERS = [(".mp4", "libx264", "mp4"), (".mov", "libx264", "mov"), (".mkv", "libx264", "matroska"),
              (".webm", "libvpx-vp9", "webm"), (".avi", "mpeg4", "avi")]


def have_encoder(codec: str) -> bool:
    import av

    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


def container_params():
    """``pytest.param(suffix, codec, muxer)`` per container, skipped (with the reason) where PyAV has no encoder."""
    import pytest

    return [pytest.param(*c, id=c[0][1:], marks=pytest.mark.skipif(
        not have_encoder(c[1]), reason=f"this PyAV build has no {c[1]} encoder for {c[0]} test videos"))
        for c in CONTAINERS]


def write_container_video(path, frames, codec: str, muxer: str, fps: int = 10, frame_ms=None, pix_fmt=None):
    """Write uint8 ``t h w 3`` frames with PyAV in any container/codec (not worldgen's writer, which only makes
    H.264 mp4). ``frame_ms``: per-frame durations in ms, repeated (a variable-frame-rate file)."""
    from fractions import Fraction

    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=muxer) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = pix_fmt or ("bgr0" if codec == "ffv1" else "yuv420p")  # ffv1 in RGB: lossless pixels
        if frame_ms:
            s.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            if frame_ms:
                vf.pts, vf.time_base = t, Fraction(1, 1000)
                t += frame_ms[i % len(frame_ms)]
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def videos_match(a: np.ndarray, b: np.ndarray, max_mean: float = 2.0, max_off_frac: float = 0.01) -> bool:
    """Two decoded H.264 videos of the same frames: same shape, mean |a - b| below ``max_mean`` grey levels and fewer
    than ``max_off_frac`` of the values more than 8 levels apart. x264 on a busy CPU can give different pixels for
    identical input (seen: mean 0.6, 0.2 % of values > 8, max 37 on a 6-frame 32x64 clip, one encoder thread); two
    different episodes of the driving generator at that size differ by mean 17-61 and 12-42 % of values > 8."""
    if a.shape != b.shape:
        return False
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return float(d.mean()) < max_mean and float((d > 8).mean()) < max_off_frac
