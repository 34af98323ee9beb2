"""Converter: a folder of mp4 recordings + CSV/JSON poses -> loadable worldgen episodes; bad files named or skipped."""
import json

import numpy as np
import pytest

from tests.helpers import container_params, write_container_video
from worldgen.data.clips import VideoClipDataset
from worldgen.data.convert import crop_resize, main, resample_indices
from worldgen.data.video import read_video, write_video


def _recording(path, n=20, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(0, 255, (n, h // 8, w // 8, 3), dtype=np.uint8), 8, axis=1).repeat(8, axis=2)
    write_video(path, frames, fps=20)
    return frames


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "rec"
    d.mkdir()
    _recording(d / "drive_a.mp4", seed=0)
    _recording(d / "drive_b.mp4", seed=1)
    poses = np.stack([np.arange(20) * 0.5, np.zeros(20), np.zeros(20)], 1)  # 10 m/s straight ahead at 20 fps
    rows = ["video,frame,x,y,yaw,speed"] + [f"drive_a.mp4,{i},{x},{y},{t},10" for i, (x, y, t) in enumerate(poses)]
    (tmp_path / "poses.csv").write_text("\n".join(rows) + "\n")
    return d


def test_convert_csv_poses_and_posless(src, tmp_path):
    out = tmp_path / "ds"
    s = main(str(src), str(out), poses=str(tmp_path / "poses.csv"), size=(32, 64), fps=10, caption="city drive")
    assert s["written"] == 2 and s["skipped"] == 0
    meta_a = json.loads((out / "episodes" / "drive_a" / "meta.json").read_text())
    meta_b = json.loads((out / "episodes" / "drive_b" / "meta.json").read_text())
    assert len(meta_a["poses"]) == 10 and meta_a["speed"] == [10.0] * 10 and meta_a["caption"] == "city drive"
    assert "poses" not in meta_b and meta_a["fps"] == 10.0 and meta_a["source_fps"] == 20.0
    assert read_video(out / "episodes" / "drive_a" / "video.mp4").shape == (10, 32, 64, 3)
    ds = VideoClipDataset(out, clip_len=4)
    items = {ds[i]["episode"]: ds[i] for i in range(len(ds))}
    assert np.allclose(items["drive_a"]["poses"][1:, 0].numpy(), 1.0, atol=1e-5)  # 2 source frames apart
    assert not items["drive_b"]["pose_mask"].any()
    again = main(str(src), str(out), poses=str(tmp_path / "poses.csv"), size=(32, 64), fps=10)
    assert again["written"] == 0 and again["skipped_existing"] == 2


@pytest.mark.slow  # ~5 s
def test_convert_json_and_bad_files(src, tmp_path):
    (src / "readme.txt").write_text("hello")
    (tmp_path / "poses.json").write_text(json.dumps({"drive_b.mp4": {"poses": [[0, 0, 0]] * 7, "caption": "x"}}))
    with pytest.raises(ValueError, match="readme.txt: not a video file"):  # every file is checked before writing
        main(str(src), str(tmp_path / "o1"), poses=str(tmp_path / "poses.json"), size=(32, 64))
    assert not (tmp_path / "o1").exists()
    (src / "readme.txt").rename(tmp_path / "readme.keep")
    with pytest.raises(ValueError, match="drive_b.mp4: pose file has 7 poses but the video has 20 frames"):
        main(str(src), str(tmp_path / "o1"), poses=str(tmp_path / "poses.json"), size=(32, 64))
    (tmp_path / "readme.keep").rename(src / "readme.txt")
    with pytest.warns(UserWarning, match="skipping bad input"):
        s = main(str(src), str(tmp_path / "o2"), poses=str(tmp_path / "poses.json"), size=(32, 64), skip_bad=True)
    problems = {p["path"].rsplit("/", 1)[-1]: p["problem"] for p in s["skipped_files"]}
    assert set(problems) == {"readme.txt", "drive_b.mp4"} and "7 poses but the video has 20 frames" in problems["drive_b.mp4"]
    assert s["written"] == 1


def test_crop_resize_and_resample():
    frames = np.zeros((2, 100, 100, 3), np.uint8)
    frames[:, 25:75] = 200  # the centre band survives a 1:2 crop
    out = crop_resize(frames, (16, 32))
    assert out.shape == (2, 16, 32, 3) and out.min() == 200
    assert resample_indices(6, 30.0, 10.0).tolist() == [0, 3]
    assert resample_indices(4, 10.0, None).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("suffix,codec,muxer", container_params())
def test_convert_every_container(tmp_path, suffix, codec, muxer):
    frames = np.repeat(np.arange(8, dtype=np.uint8)[:, None, None, None] * 30, 32 * 48 * 3).reshape(8, 32, 48, 3)
    write_container_video(tmp_path / "rec" / f"drive{suffix}", frames, codec, muxer)
    s = main(str(tmp_path / "rec"), str(tmp_path / "ds"), size=(16, 32), fps=None)
    assert s["written"] == 1 and s["skipped_files"] == []
    got = read_video(tmp_path / "ds" / "episodes" / "drive" / "video.mp4")
    assert got.shape == (8, 16, 32, 3) and np.abs(got.mean(axis=(1, 2, 3)) - frames[:, 0, 0, 0]).max() < 4


def test_convert_variable_frame_rate_by_timestamps(tmp_path):
    """Frames at 0, .04, .08, .12, .32, .36, .40, .44 s: at 5 fps the nearest frames in time are 0, 3 and 6, not the
    0, 2, 4, 6 a constant nominal rate would pick."""
    levels = np.arange(8, dtype=np.uint8) * 20 + 30
    frames = np.repeat(levels[:, None, None, None], 32 * 48 * 3).reshape(8, 32, 48, 3)
    write_container_video(tmp_path / "rec" / "vfr.mkv", frames, "libx264", "matroska", frame_ms=[40, 40, 40, 200])
    s = main(str(tmp_path / "rec"), str(tmp_path / "ds"), size=(16, 32), fps=5)
    meta = json.loads((tmp_path / "ds" / "episodes" / "vfr" / "meta.json").read_text())
    got = read_video(tmp_path / "ds" / "episodes" / "vfr" / "video.mp4").mean(axis=(1, 2, 3))
    assert s["written"] == 1 and meta["fps"] == 5 and meta["source_fps"] == pytest.approx(7 / 0.44)
    assert np.abs(got - [30, 90, 150]).max() < 4


def test_convert_refuses_a_folder_without_usable_videos(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "notes.txt").write_text("x")
    (tmp_path / "rec" / "fake.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="rec: no usable videos to convert .*fake.mp4: cannot open video"), \
            pytest.warns(UserWarning, match="skipping bad input"):
        main(str(tmp_path / "rec"), str(tmp_path / "ds"), skip_bad=True)
    assert not (tmp_path / "ds").exists()
