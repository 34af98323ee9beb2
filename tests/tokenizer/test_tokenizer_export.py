"""``worldgen tokenize``: shards hold the tokenizer's codes, the clip dataset's relative poses and the pose mask;
writes are resumable; a shard from another tokenizer is refused; the CLI works end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from worldgen import config as C
from worldgen.cli import main as cli_main
from worldgen.data.clips import VideoClipDataset
from worldgen.data.episodes import write_episode
from worldgen.data.synthetic import make_episode, make_synthetic_episodes
from worldgen.io import save_weights, sha256_file
from worldgen.lit.tokenizer import Config
from worldgen.tokenizer import VQVideoTokenizer, load_tokenizer
from worldgen.tokenizer.export import mirror_caption, read_token_episode, shard_path, tokenize_dataset


def _save_tokenizer(folder: Path, vq_cfg, seed: int) -> Path:
    torch.manual_seed(seed)
    tok = VQVideoTokenizer(vq_cfg)
    cfg = Config(model=vq_cfg, out_dir=str(folder))
    C.save(cfg, folder / "config.yaml")
    save_weights(folder / "model.safetensors", tok.state_dict())
    return folder


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    make_synthetic_episodes(root, n_episodes=2, n_frames=7, size=(16, 32), seed=3)
    make_synthetic_episodes(root, n_episodes=1, n_frames=5, size=(16, 32), seed=4, with_poses=False)
    return root


def test_export_round_trip(tmp_path, dataset, tiny_cfg):
    tok_dir = _save_tokenizer(tmp_path / "tok", tiny_cfg(), seed=0)
    out = tmp_path / "tokens"
    meta = tokenize_dataset(tok_dir, dataset, out, chunk=3, progress=False)
    tok = load_tokenizer(tok_dir)
    assert meta["codebook_size"] == 64 and meta["grid"] == [4, 8] and meta["fps"] == 10.0
    assert meta["tokenizer_sha256"] == sha256_file(tok_dir / "model.safetensors")
    assert json.loads((out / "meta.json").read_text()) == json.loads(json.dumps(meta))
    assert sorted(e["frames"] for e in meta["episodes"]) == [5, 7, 7]
    for e in meta["episodes"]:
        shard = read_token_episode(shard_path(out, e["id"]))
        t = e["frames"]
        assert shard["codes"].dtype == torch.int32 and shard["codes"].shape == (t, 4, 8)
        assert shard["poses"].dtype == torch.float32 and shard["poses"].shape == (t, 3)
        assert shard["pose_mask"].dtype == torch.uint8
        clip = VideoClipDataset(dataset, clip_len=t, episodes=[e["id"]])[0]  # the whole episode as one clip
        assert torch.equal(tok.encode(clip["frames"][None])[0].int(), shard["codes"])
        assert torch.allclose(shard["poses"], clip["poses"]) and torch.equal(shard["pose_mask"].bool(),
                                                                             clip["pose_mask"])
        assert bool(shard["pose_mask"].all()) == e["has_poses"]
        # decoding the shard's codes and re-encoding the pixels is a stable round trip for a shard-sized clip
        pixels = tok.decode(shard["codes"].long()[None])
        assert pixels.shape == (1, 3, t, 16, 32)


def test_export_resumes_and_refuses_other_tokenizers(tmp_path, dataset, tiny_cfg):
    tok_dir = _save_tokenizer(tmp_path / "tok", tiny_cfg(), seed=0)
    out = tmp_path / "tokens"
    meta = tokenize_dataset(tok_dir, dataset, out, progress=False)
    paths = [shard_path(out, e["id"]) for e in meta["episodes"]]
    stamps = [p.stat().st_mtime_ns for p in paths]
    paths[1].unlink()
    again = tokenize_dataset(tok_dir, dataset, out, progress=False)
    assert again["episodes"] == meta["episodes"]
    assert paths[0].stat().st_mtime_ns == stamps[0], "finished shards are skipped"
    assert paths[1].is_file()
    other = _save_tokenizer(tmp_path / "other", tiny_cfg(), seed=1)
    with pytest.raises(ValueError, match="another tokenizer"):
        tokenize_dataset(other, dataset, out, progress=False)


def test_stride_and_frame_size_checks(tmp_path, dataset, tiny_cfg):
    tok_dir = _save_tokenizer(tmp_path / "tok", tiny_cfg(), seed=0)
    meta = tokenize_dataset(tok_dir, dataset, tmp_path / "s2", stride=2, progress=False)
    assert meta["fps"] == 5.0 and sorted(e["frames"] for e in meta["episodes"]) == [3, 4, 4]
    big = _save_tokenizer(tmp_path / "big", tiny_cfg(frame_size=[32, 64]), seed=0)
    with pytest.raises(ValueError, match="tokenizer codes 32x64"):
        tokenize_dataset(big, dataset, tmp_path / "bad", progress=False)


def test_cli(tmp_path, dataset, tiny_cfg, capsys):
    tok_dir = _save_tokenizer(tmp_path / "tok", tiny_cfg(), seed=0)
    out = tmp_path / "tokens"
    rc = cli_main(["tokenize", "--tokenizer", str(tok_dir), "--data", str(dataset), "--out", str(out)])
    assert rc == 0 and "wrote 3 episodes" in capsys.readouterr().out
    assert len(list((out / "episodes").glob("*.safetensors"))) == 3
    rc = cli_main(["tokenize", "--tokenizer", str(tmp_path / "missing"), "--data", str(dataset), "--out", str(out)])
    assert rc == 2 and "tokenizer folder not found" in capsys.readouterr().err


def test_evaluate_reports_psnr_and_usage(tmp_path, dataset, tiny_cfg, capsys):
    from worldgen.tokenizer.evaluate import evaluate

    tok_dir = _save_tokenizer(tmp_path / "tok", tiny_cfg(), seed=0)
    res = evaluate(tok_dir, dataset, split="all", image=tmp_path / "sheet.png", progress=False)
    assert res["episodes"] == 3 and res["frames"] == 19 and 0 < res["codes_used"] <= 64
    assert np.isfinite(res["psnr_db"]) and res["psnr_db"] > 0 and res["psnr_db_mean_colour_baseline"] > 0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert cli_main(["eval", "tokenizer", "--tokenizer", str(tok_dir), "--data", str(dataset)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "val" and out["episodes"] == 1  # data.val_fraction 0.1 of 3 episodes -> 1 held out


def test_mirror_shards_are_the_flipped_episodes(tmp_path, dataset, tiny_cfg):
    """``mirror``: each episode also as ``<id>-mirror``, whose codes are the tokenizer's codes of the top-bottom
    flipped frames and whose poses keep dx and negate dy and dyaw (a left lane change becomes a right one)."""
    frames, side = make_episode(7, (16, 32), seed=5, behaviour="left")  # a lane change: dy and dyaw move
    write_episode(dataset, "left-00000", frames, side)
    tok_dir = _save_tokenizer(tmp_path / "tok", tiny_cfg(), seed=0)
    out = tmp_path / "tokens"
    meta = tokenize_dataset(tok_dir, dataset, out, chunk=3, progress=False, mirror=True)
    tok = load_tokenizer(tok_dir)
    ids = [e["id"] for e in meta["episodes"]]
    assert meta["mirror"] is True and len(ids) == 8 and sum(i.endswith("-mirror") for i in ids) == 4
    for e in meta["episodes"]:
        if "mirror_of" not in e:
            continue
        orig = read_token_episode(shard_path(out, e["mirror_of"]))
        flip = read_token_episode(shard_path(out, e["id"]))
        clip = VideoClipDataset(dataset, clip_len=e["frames"], episodes=[e["mirror_of"]])[0]
        flipped = clip["frames"].flip(-2)  # c t h w: rows reversed
        assert torch.equal(tok.encode(flipped[None])[0].int(), flip["codes"])
        assert not torch.equal(flip["codes"], orig["codes"]), "the synthetic frames are not top-bottom symmetric"
        assert torch.equal(flip["pose_mask"], orig["pose_mask"])
        assert torch.allclose(flip["poses"][:, 0], orig["poses"][:, 0], atol=1e-5)
        assert torch.allclose(flip["poses"][:, 1:], -orig["poses"][:, 1:], atol=1e-5)
        if e["mirror_of"] == "left-00000":
            assert orig["poses"][:, 1].sum() > 0.05 and flip["poses"][:, 1].sum() < -0.05  # left becomes right
    captions = {e["id"]: e["caption"] for e in meta["episodes"]}
    assert captions["left-00000-mirror"] == mirror_caption(captions["left-00000"])
    assert "to the left" in captions["left-00000"] and "to the right" in captions["left-00000-mirror"]
    assert mirror_caption("Left turn, then a lane change to the right; bright") == \
        "Right turn, then a lane change to the left; bright"
    again = tokenize_dataset(tok_dir, dataset, out, progress=False, mirror=True)  # resumes: nothing re-encoded
    assert again["episodes"] == meta["episodes"]
