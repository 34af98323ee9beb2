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


def _renamed(root, prefix):
    """A synthetic shard folder whose episode ids start with ``prefix`` (synthetic ids repeat across folders)."""
    import json

    meta = json.loads((root / "meta.json").read_text())
    for e in meta["episodes"]:
        (root / "episodes" / f"{e['id']}.safetensors").rename(root / "episodes" / f"{prefix}{e['id']}.safetensors")
        e["id"] = prefix + e["id"]
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def test_merge_shards_copies_every_episode_and_refuses_mismatches(tmp_path):
    from worldgen.data.tokens import merge_shards

    a = make_synthetic_shards(tmp_path / "a", n_episodes=2, n_frames=6, grid=(2, 3), seed=0)
    b = _renamed(make_synthetic_shards(tmp_path / "b", n_episodes=3, n_frames=6, grid=(2, 3), seed=1), "b-")
    meta = merge_shards([a, b], tmp_path / "ab")
    root = tmp_path / "ab"
    assert meta["n_episodes"] == 5 and episode_ids(root) == ["b-ep0000", "b-ep0001", "b-ep0002", "ep0000", "ep0001"]
    assert torch.equal(load_episode(root / "episodes" / "b-ep0001.safetensors")["codes"],
                       load_episode(b / "episodes" / "b-ep0001.safetensors")["codes"])
    assert {e["source"] for e in read_meta(root)["episodes"]} == {str(a), str(b)}
    with pytest.raises(FileExistsError, match="already exists"):
        merge_shards([a, b], root)
    with pytest.raises(ValueError, match="is in both"):  # the same ids twice
        merge_shards([a, make_synthetic_shards(tmp_path / "a2", n_episodes=1, n_frames=6, grid=(2, 3))], tmp_path / "x")
    c = _renamed(make_synthetic_shards(tmp_path / "c", n_episodes=1, n_frames=6, grid=(3, 3)), "c-")
    with pytest.raises(ValueError, match="disagree on 'grid'"):
        merge_shards([a, c], tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_merge_tokens_command(tmp_path, capsys):
    from worldgen.cli import main

    a = make_synthetic_shards(tmp_path / "a", n_episodes=2, n_frames=6, grid=(2, 3))
    b = _renamed(make_synthetic_shards(tmp_path / "b", n_episodes=1, n_frames=6, grid=(2, 3)), "b-")
    assert main(["data", "merge-tokens", str(tmp_path / "ab"), str(a), str(b)]) == 0
    assert '"n_episodes": 3' in capsys.readouterr().out
    assert len(list((tmp_path / "ab" / "episodes").glob("*.safetensors"))) == 3
