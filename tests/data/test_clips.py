"""VideoClipDataset / DrivingDataModule: item interface, relative poses, backends, episode split, bad input."""
import json
import math
import shutil

import numpy as np
import pytest
import torch

from worldgen.data.clips import DrivingDataConfig, EpisodeError, VideoClipDataset, split_episodes
from worldgen.data.episodes import integrate_relative, relative_poses
from worldgen.data.synthetic import make_synthetic_episodes
from worldgen.data.video import VideoError, have_decord, read_frames, read_video
from worldgen.lit.datamodules import DrivingDataModule


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    make_synthetic_episodes(root, n_episodes=5, n_frames=16, size=(32, 64), seed=0)
    return root


@pytest.fixture
def dirty(clean, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(clean, root)
    return root


def _ep(root, k):
    return sorted((root / "episodes").iterdir())[k]


def test_item_interface_float(clean):
    ds = VideoClipDataset(clean, clip_len=4, stride=2)
    assert len(ds) == 5 * 2  # span 7, non-overlapping hop 8 over 16 frames -> starts 0, 8
    item = ds[0]
    assert item["frames"].shape == (3, 4, 32, 64) and item["frames"].dtype == torch.float32
    assert -1.0 <= item["frames"].min() and item["frames"].max() <= 1.0 and item["frames"].std() > 0.05
    assert item["poses"].shape == (4, 3) and item["poses"].dtype == torch.float32
    assert torch.equal(item["poses"][0], torch.zeros(3)) and (item["poses"][1:, 0] > 1.0).all()
    assert item["pose_mask"].dtype == torch.bool and item["pose_mask"].all()
    assert isinstance(item["caption"], str) and item["caption"] and isinstance(item["episode"], str)


def test_uint8_matches_float_and_file(clean):
    f = VideoClipDataset(clean, 4, stride=2, output="float")[1]
    u = VideoClipDataset(clean, 4, stride=2, output="uint8")[1]
    assert u["frames"].shape == (4, 32, 64, 3) and u["frames"].dtype == torch.uint8
    assert torch.allclose(f["frames"].permute(1, 2, 3, 0), u["frames"].float() / 127.5 - 1)
    video = read_video(_ep(clean, 0) / "video.mp4")
    assert np.array_equal(u["frames"].numpy(), video[u["start"] + np.arange(0, 8, 2)])


def test_hop_and_episode_subset(clean):
    ds = VideoClipDataset(clean, clip_len=4, stride=1, hop=1, episodes=["synth-0000-00002"])
    assert len(ds) == 13 and {ds[i]["episode"] for i in range(len(ds))} == {"synth-0000-00002"}


@pytest.mark.skipif(not have_decord(), reason="decord not installed")
def test_decord_and_pyav_same_pixels(clean):
    path = _ep(clean, 3) / "video.mp4"
    idx = [0, 5, 6, 15]
    assert np.array_equal(read_frames(path, idx, "decord"), read_frames(path, idx, "pyav"))
    a = VideoClipDataset(clean, 4, output="uint8", backend="decord")[2]["frames"]
    b = VideoClipDataset(clean, 4, output="uint8", backend="pyav")[2]["frames"]
    assert torch.equal(a, b)


def test_relative_poses_rotate_into_ego_frame():
    poses = np.array([[0, 0, math.pi / 2], [0, 2, math.pi / 2], [-1, 2, math.pi]])  # drive north, then turn left
    rel = relative_poses(poses)
    assert np.allclose(rel, [[0, 0, 0], [2, 0, 0], [0, 1, math.pi / 2]], atol=1e-6)
    back = integrate_relative(rel, poses[0])
    assert np.allclose(back[:, :2], poses[:, :2], atol=1e-6)
    assert np.allclose(np.cos(back[:, 2] - poses[:, 2]), 1.0, atol=1e-6)


def test_stride_poses_are_motion_between_sampled_frames(clean):
    meta = json.loads((_ep(clean, 1) / "meta.json").read_text())
    item = VideoClipDataset(clean, 3, stride=3, episodes=["synth-0000-00001"])[0]
    world = np.array(meta["poses"])[[0, 3, 6]]
    assert np.allclose(item["poses"].numpy(), relative_poses(world), atol=1e-5)


def test_poseless_episode_has_false_mask(tmp_path):
    make_synthetic_episodes(tmp_path, 1, 8, size=(32, 64), with_poses=False)
    item = VideoClipDataset(tmp_path, 4)[0]
    assert not item["pose_mask"].any() and torch.equal(item["poses"], torch.zeros(4, 3))


def test_datamodule_splits_by_episode(clean):
    dm = DrivingDataModule(DrivingDataConfig(root=str(clean), clip_len=4, stride=1, hop=2, batch_size=3,
                                             val_fraction=0.4, seed=0))
    dm.setup("fit")
    train_eps = {ep.id for ep in dm.train_set.episodes}
    val_eps = {ep.id for ep in dm.val_set.episodes}
    assert len(val_eps) == 2 and len(train_eps) == 3 and not train_eps & val_eps
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (3, 3, 4, 32, 64) and len(batch["caption"]) == 3
    assert split_episodes(["a", "b", "c"], 0.5, 1) == split_episodes(["c", "a", "b"], 0.5, 1)


# --------------------------------------------------------------------------------------------- bad input
def _truncate(root):
    p = _ep(root, 1) / "video.mp4"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def _corrupt(root):
    p = _ep(root, 1) / "video.mp4"
    p.write_bytes(b"\x00garbage" * 500)
    return p


def _fewer_poses(root):
    p = _ep(root, 1) / "meta.json"
    meta = json.loads(p.read_text())
    meta["poses"] = meta["poses"][:-3]
    p.write_text(json.dumps(meta))
    return p


def _no_sidecar(root):
    p = _ep(root, 1) / "meta.json"
    p.unlink()
    return p


def _non_mp4(root):
    d = _ep(root, 1)
    (d / "video.mp4").rename(d / "video.avi")
    return d


def _stray_file(root):
    p = root / "episodes" / "notes.txt"
    p.write_text("not a video")
    return p


def _short_video(root):
    from worldgen.data.synthetic import make_episode
    from worldgen.data.episodes import write_episode

    frames, meta = make_episode(3, (32, 64), seed=9)
    return write_episode(root, "short-one", frames, meta) / "video.mp4"


BAD = {"truncated": (_truncate, "video.mp4"), "corrupt": (_corrupt, "video.mp4"),
       "fewer_poses": (_fewer_poses, "poses but"), "no_sidecar": (_no_sidecar, "missing sidecar"),
       "non_mp4": (_non_mp4, "video.avi"), "stray_file": (_stray_file, "not an episode folder"),
       "short": (_short_video, "shorter than one clip")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_naming_file(dirty, case):
    make, words = BAD[case]
    path = make(dirty)
    with pytest.raises((EpisodeError, VideoError)) as err:
        VideoClipDataset(dirty, clip_len=4)
    assert str(path.parent if case == "non_mp4" else path) in str(err.value) or str(path) in str(err.value)
    assert words in str(err.value)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_skipped_and_counted(dirty, case):
    BAD[case][0](dirty)
    with pytest.warns(UserWarning, match="skipping bad input"):
        ds = VideoClipDataset(dirty, clip_len=4, skip_bad=True)
    s = ds.summary()
    assert s["skipped"] == 1 and len(s["skipped_files"]) == 1
    assert s["episodes"] == (5 if case in ("stray_file", "short") else 4)
    assert all(ds[i]["frames"].shape == (3, 4, 32, 64) for i in range(len(ds)))


def test_body_corruption_found_at_read_time(dirty):
    """A valid header with zeroed frame data: a clear error on read, or a counted skip with skip_bad."""
    p = _ep(dirty, 0) / "video.mp4"
    data = bytearray(p.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 8: len(data) - 2000] = bytes(len(data) - 2000 - mdat - 8)
    p.write_bytes(bytes(data))
    ds = VideoClipDataset(dirty, clip_len=4, backend="pyav")  # header still fine
    with pytest.raises(VideoError, match="cannot decode"):
        ds[0]
    lenient = VideoClipDataset(dirty, clip_len=4, backend="pyav", skip_bad=True)
    with pytest.warns(UserWarning, match=str(p)):
        item = lenient[0]
    assert item["episode"] != p.parent.name and lenient.summary()["skipped"] == 1


def test_worker_error_names_the_file(dirty):
    """A decode failure inside a DataLoader worker reaches the caller as an error naming the video."""
    p = _ep(dirty, 0) / "video.mp4"
    data = bytearray(p.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 8: len(data) - 2000] = bytes(len(data) - 2000 - mdat - 8)
    p.write_bytes(bytes(data))
    dm = DrivingDataModule(DrivingDataConfig(root=str(dirty), clip_len=4, hop=4, batch_size=2, num_workers=1,
                                             val_fraction=0.0))
    dm.setup()
    with pytest.raises(Exception, match=str(p)):
        for _ in dm.train_dataloader():
            pass
