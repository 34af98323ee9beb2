"""Video files from other tools: every common container (mp4, mov, mkv, webm, avi) and codec PyAV decodes, odd frame
sizes and variable frame rates read the same through either backend; a folder's non-video and unreadable files are
named with the reason."""
import numpy as np
import pytest

from tests.helpers import container_params, have_encoder, write_container_video
from worldgen.data.video import (VideoError, find_videos, frame_times, have_decord, read_frames, read_video,
                                 video_length)

T, H, W = 8, 32, 48  # 48 px wide: decord 0.6 refuses it, so "auto" must fall back to PyAV


def smooth(t=T, h=H, w=W, seed=0) -> np.ndarray:
    """Moving gradients: compress well, so a lossy codec returns pixels close to these."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 6.28, 3)
    return np.stack([np.stack([127.5 + 100 * np.sin((xx + yy * (c + 1)) / 9 + phase[c] + 0.3 * j)
                               for c in range(3)], -1) for j in range(t)]).astype(np.uint8)


@pytest.mark.parametrize("suffix,codec,muxer", container_params())
def test_every_container_reads_the_same_through_every_backend(tmp_path, suffix, codec, muxer):
    src = smooth()
    path = write_container_video(tmp_path / f"clip{suffix}", src, codec, muxer)
    frames = read_video(path)
    assert frames.shape == (T, H, W, 3) and np.abs(frames.astype(int) - src).mean() < 12
    assert np.array_equal(frames, read_video(path, backend="pyav"))
    assert video_length(path) == T
    assert np.array_equal(read_frames(path, [5, 0, 7]), frames[[5, 0, 7]])


@pytest.mark.skipif(not have_decord(), reason="decord is not installed")
def test_auto_falls_back_to_pyav_where_decord_fails(tmp_path):
    path = write_container_video(tmp_path / "w48.mp4", smooth(), "libx264", "mp4")
    with pytest.raises(VideoError, match="w48.mp4: cannot decode"):
        read_video(path, backend="decord")  # decord 0.6: "from_size == to_size (6144 vs. 4608)"
    assert read_video(path).shape == (T, H, W, 3)


@pytest.mark.parametrize("suffix,codec,muxer,exact", [(".mkv", "ffv1", "matroska", True),
                                                      (".webm", "libvpx-vp9", "webm", False),
                                                      (".avi", "mpeg4", "avi", False)])
def test_odd_frame_sizes(tmp_path, suffix, codec, muxer, exact):
    if not have_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    src = smooth(h=33, w=47)
    frames = read_video(write_container_video(tmp_path / f"odd{suffix}", src, codec, muxer))
    assert frames.shape == (T, 33, 47, 3)
    assert np.array_equal(frames, src) if exact else np.abs(frames.astype(int) - src).mean() < 12


def test_variable_frame_rate(tmp_path):
    path = write_container_video(tmp_path / "vfr.mkv", smooth(), "libx264", "matroska", frame_ms=[50, 150, 100])
    assert read_video(path).shape == (T, H, W, 3) and video_length(path) == T
    assert np.allclose(frame_times(path), [0, 0.05, 0.2, 0.3, 0.35, 0.5, 0.6, 0.65])


def test_find_videos_names_every_file_it_skips(tmp_path):
    for suffix, codec, muxer in [(".mp4", "libx264", "mp4"), (".webm", "libvpx-vp9", "webm")]:
        write_container_video(tmp_path / "sub" / f"ok{suffix}", smooth(), codec, muxer)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "renamed.mp4").write_text("a text file renamed .mp4")
    (tmp_path / "empty.mov").write_bytes(b"")
    (tmp_path / ".hidden.mp4").write_text("ignored")
    videos, skipped = find_videos(tmp_path)
    assert [p.name for p in videos] == ["ok.mp4", "ok.webm"]
    problems = {s["path"].rsplit("/", 1)[-1]: s["problem"] for s in skipped}
    assert set(problems) == {"notes.txt", "renamed.mp4", "empty.mov"}
    assert problems["notes.txt"].startswith("not a video file (.txt; expected one of .mp4")
    assert "cannot open video" in problems["renamed.mp4"] and "empty file (0 bytes)" in problems["empty.mov"]
