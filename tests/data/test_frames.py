"""In-memory frame bank, per-frame local captions and the (anchor, previous, target) pair sampler of ART·V."""
import math

import numpy as np
import pytest
import torch

from worldgen.data.frames import (FrameBank, FrameDataConfig, FrameDataset, PairDataset, frame_actions,
                                  frame_captions, place_phrase, split_bank_ids)


def _meta(lat_steps, speed=None, env="highway-fast-v0", yaw=0.0):
    n = len(lat_steps) + 1
    y = np.concatenate([[0.0], np.cumsum(lat_steps)])
    x = np.arange(n) * 2.0
    poses = np.stack([x * math.cos(yaw) - y * math.sin(yaw), x * math.sin(yaw) + y * math.cos(yaw),
                      np.full(n, yaw)], 1)
    return {"poses": poses.tolist(), "speed": speed or [20.0] * n, "env_id": env, "n_frames": n,
            "caption": "ego changes lane to the left on a three-lane highway in light traffic"}


def test_local_captions_follow_the_lateral_motion_on_any_road_axis():
    lat = [0.0, 0.0, 0.4, 0.5, 0.3, 0.0, -0.45, 0.0]
    for yaw in (0.0, math.pi / 2, math.pi):
        acts = frame_actions(_meta(lat, yaw=yaw))
        assert len(acts) == 9
        assert acts[1] == acts[2] == "keeps its lane at a steady speed"
        assert acts[3:6] == ["changes lane to the left"] * 3
        assert acts[7] == "changes lane to the right"
    caps = frame_captions(_meta(lat))
    assert caps[3] == "ego changes lane to the left on a three-lane highway in light traffic"
    assert caps[0] == caps[1]  # frame 0 takes frame 1's caption


def test_speed_and_standing_captions_and_place_phrase():
    speed = [20.0, 20.0, 19.0, 18.0, 18.0, 0.2]
    acts = frame_actions(_meta([0.0] * 5, speed=speed, env="roundabout-v0"))
    assert acts[2] == acts[3] == "brakes" and acts[4] == "keeps its lane at a steady speed" and acts[5] == "stops"
    assert place_phrase("ego brakes and crashes through a roundabout in moderate traffic") == \
        "through a roundabout in moderate traffic"
    assert place_phrase("something else") == ""
    assert frame_captions({"caption": "x", "n_frames": 3, "poses": None}) == ["x"] * 3


@pytest.fixture(scope="module")
def bank_root(tmp_path_factory):
    from worldgen.data.synthetic import make_synthetic_episodes

    root = tmp_path_factory.mktemp("frames")
    make_synthetic_episodes(root, 4, 12, size=(16, 32), seed=3)
    return root


def test_bank_datasets_and_split(bank_root):
    cfg = FrameDataConfig(root=str(bank_root), val_fraction=0.25)
    train, val = split_bank_ids(cfg)
    assert len(train) == 3 and len(val) == 1 and not set(train) & set(val)
    bank = FrameBank(str(bank_root), train, progress=False)
    assert len(bank) == 3 and bank.frames[0].shape == (12, 16, 32, 3) and bank.frames[0].dtype == torch.uint8
    assert len(bank.captions[0]) == 12 and all(c.startswith("ego ") for c in bank.captions[0])
    frames = FrameDataset(bank)
    assert len(frames) == 36 and frames[5]["frame"].shape == (3, 16, 32)
    pairs = PairDataset(bank, seed=0)
    assert len(pairs) == 33
    dist = []
    for i in range(len(pairs)):
        it = pairs[i]
        e, j = pairs.index[i]
        assert torch.equal(it["target"], bank.float_frame(e, j)) and torch.equal(it["prev"], bank.float_frame(e, j - 1))
        assert 1 <= it["distance"] <= j and torch.equal(it["anchor"], bank.float_frame(e, j - it["distance"]))
        dist.append(it["distance"])
    assert max(dist) > 4  # anchors reach far back, not only the clip's first frames
    assert all(torch.equal(pairs[i]["anchor"], pairs[i]["anchor"]) for i in range(5))  # seeded per item
    assert PairDataset(bank, seed=0, max_distance=2)[30]["distance"] <= 2
    bank.captions[0][3] = bank.captions[1][5] = "ego changes lane to the left on a road"
    more = PairDataset(bank, seed=0, lane_change_repeats=3)
    assert len(more) == len(pairs) + 4 and more.index.count((0, 3)) == 3 and more.index.count((0, 4)) == 1
    onset = PairDataset(bank, seed=0, lane_change_repeats=3, onset_repeats=5)
    assert onset.index.count((0, 3)) == 5  # frame 3 starts a lane change (frame 2 does not change lane)
    with pytest.raises(ValueError, match="lane_change_repeats"):
        PairDataset(bank, lane_change_repeats=0)
    with pytest.raises(ValueError, match="no episodes"):
        FrameBank(str(bank_root), ["nope"], progress=False)
