"""Converter: a folder of mp4 recordings + CSV/JSON poses -> loadable worldgen episodes; bad files named or skipped."""
import json

import numpy as np
import pytest

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
    with pytest.raises(ValueError, match="drive_b.mp4: pose file has 7 poses but the video has 20 frames"):
        main(str(src), str(tmp_path / "o1"), poses=str(tmp_path / "poses.json"), size=(32, 64))
    (src / "drive_b.mp4").rename(tmp_path / "drive_b.keep")
    with pytest.raises(ValueError, match="readme.txt: not an mp4"):
        main(str(src), str(tmp_path / "o1"), size=(32, 64))
    (tmp_path / "drive_b.keep").rename(src / "drive_b.mp4")
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
