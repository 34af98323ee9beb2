"""Token shards (worldgen/data/tokens.py): the clip dataset, its errors, posedrop, and Lightning-free data."""
import pytest
import torch

from worldgen.data.tokens import TokenClipDataset, episode_ids, load_episode, make_synthetic_shards, posedrop, read_meta
from worldgen.tokenizer.pose import PoseTokenizer


def test_shards_dataset_and_errors(tmp_path):
    root = make_synthetic_shards(tmp_path / "tok", n_episodes=2, n_frames=6, grid=(2, 3), missing_pose_every=3)
    encode = PoseTokenizer().encode
    ds = TokenClipDataset(root, episode_ids(root), 4, encode, stride=1)
    item = ds[0]
    assert len(ds) == 6 and item["img"].shape == (4, 6) and item["ego"].shape == (4, 3)
    assert item["keep"].tolist() == [False, True, True, False] and item["ego"][0].tolist() == [512, 128, 128]
    with pytest.raises(ValueError, match="does not match the model grid"):
        TokenClipDataset(root, episode_ids(root), 4, encode, grid=(4, 4))
    with pytest.raises(ValueError, match="frames for one clip"):
        TokenClipDataset(root, episode_ids(root), 40, encode)


def test_shard_meta_and_episode_checks(tmp_path):
    root = make_synthetic_shards(tmp_path / "tok", n_episodes=3, n_frames=5, grid=(2, 2), codebook_size=16)
    assert read_meta(root)["codebook_size"] == 16 and episode_ids(root) == ["ep0000", "ep0001", "ep0002"]
    ep = load_episode(root / "episodes" / "ep0001.safetensors")
    assert ep["codes"].shape == (5, 2, 2) and ep["poses"].shape == (5, 3) and ep["pose_mask"].dtype == torch.bool
    (root / "meta.json").write_text("{}")
    with pytest.raises(ValueError, match="missing 'codebook_size'"):
        read_meta(root)


def test_posedrop_nulls_dropped_frames_only():
    batch = {"img": torch.zeros(2, 50, 4, dtype=torch.long), "ego": torch.ones(2, 50, 3, dtype=torch.long),
             "keep": torch.ones(2, 50, dtype=torch.bool)}
    assert posedrop(batch, 0.0, (7, 8, 9)) is batch
    out = posedrop(batch, 0.5, (7, 8, 9), torch.Generator().manual_seed(0))
    dropped = ~out["keep"]
    assert 0 < dropped.sum() < dropped.numel()
    assert (out["ego"][dropped] == torch.tensor([7, 8, 9])).all() and (out["ego"][~dropped] == 1).all()


def test_clips_with_lateral_motion_can_be_listed_several_times(tmp_path):
    from worldgen.io import save_weights

    root = make_synthetic_shards(tmp_path / "tok", n_episodes=2, n_frames=8, grid=(2, 3))
    path = root / "episodes" / "ep0001.safetensors"
    ep = load_episode(path)
    poses = ep["poses"].clone()
    poses[:, 1] = 0.0
    poses[5, 1] = 0.3  # one frame of a lane change
    save_weights(path, {"codes": ep["codes"].int(), "poses": poses, "pose_mask": ep["pose_mask"].to(torch.uint8)})
    p0 = load_episode(root / "episodes" / "ep0000.safetensors")["poses"]
    save_weights(root / "episodes" / "ep0000.safetensors",
                 {"codes": load_episode(root / "episodes" / "ep0000.safetensors")["codes"].int(),
                  "poses": torch.cat([p0[:, :1], torch.zeros_like(p0[:, 1:2]), p0[:, 2:]], 1),
                  "pose_mask": torch.ones(8, dtype=torch.uint8)})
    encode = PoseTokenizer().encode
    once = TokenClipDataset(root, episode_ids(root), 4, encode)
    assert len(once) == 10 and once.lateral_clips == 3  # ep0001 clips starting at 2, 3, 4 have frame 5 as a target
    thrice = TokenClipDataset(root, episode_ids(root), 4, encode, lateral_repeats=3, lateral_dy=0.05)
    assert len(thrice) == 10 + 2 * 3 and thrice.lateral_clips == 3
    starts = [s for e, s in thrice.index if e == 1]
    assert sorted(starts) == [0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert TokenClipDataset(root, episode_ids(root), 4, encode, lateral_dy=0.5).lateral_clips == 0
    with pytest.raises(ValueError, match="lane_change_repeats"):
        TokenClipDataset(root, episode_ids(root), 4, encode, lateral_repeats=0)
