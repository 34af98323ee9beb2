"""Synthetic episodes: exact on-disk format, determinism, poses consistent with the image motion."""
import json

import numpy as np
import pytest

from worldgen.data.episodes import relative_poses
from worldgen.data.synthetic import make_synthetic_episodes
from worldgen.data.video import read_video


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic_episodes(root, n_episodes=3, n_frames=12, size=(32, 64), seed=1)
    return root


def test_format_matches_contract(synth):
    manifest = json.loads((synth / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["fps"] == 10.0 and manifest["size"] == [32, 64]
    assert len(manifest["episodes"]) == 3
    for e in manifest["episodes"]:
        d = synth / "episodes" / e["id"]
        meta = json.loads((d / "meta.json").read_text())
        frames = read_video(d / "video.mp4")
        assert frames.shape == (12, 32, 64, 3) and frames.dtype == np.uint8
        assert len(meta["poses"]) == len(meta["speed"]) == len(meta["actions"]) == 12
        assert meta["caption"] and meta["env_id"] and meta["fps"] == 10.0 and "seed" in meta
        assert e["frames"] == 12 and e["caption"] == meta["caption"]


def test_same_seed_same_frames(tmp_path):
    make_synthetic_episodes(tmp_path / "a", 1, 6, size=(32, 64), seed=3)
    make_synthetic_episodes(tmp_path / "b", 1, 6, size=(32, 64), seed=3)
    make_synthetic_episodes(tmp_path / "c", 1, 6, size=(32, 64), seed=4)
    va, vb, vc = (read_video(next((tmp_path / x / "episodes").iterdir()) / "video.mp4") for x in "abc")
    assert np.array_equal(va, vb) and not np.array_equal(va, vc)


def test_poses_move_forward_and_lane_change_goes_left(synth):
    meta = json.loads((synth / "episodes" / "synth-0001-00001" / "meta.json").read_text())
    rel = relative_poses(np.array(meta["poses"]))
    assert (rel[1:, 0] > 1.0).all()  # 18-26 m/s at 10 fps
    assert "left" in meta["caption"] and np.array(meta["poses"])[-1, 1] > np.array(meta["poses"])[0, 1]


def test_without_poses(tmp_path):
    make_synthetic_episodes(tmp_path, 1, 4, size=(32, 64), with_poses=False)
    meta = json.loads(next((tmp_path / "episodes").iterdir()).joinpath("meta.json").read_text())
    assert "poses" not in meta and meta["caption"]
