"""KV-cached rollout: identical tokens to full recomputation, shapes, controls, sampling filters."""
import json
import math

import numpy as np
import pytest
import torch

from tests.worldmodel.conftest import random_clip
from worldgen.worldmodel.rollout import SamplingConfig, candidates, control_file_poses, integrate_poses, rollout, \
    sample_token, scripted_poses


@pytest.mark.parametrize("sampling", [SamplingConfig(top_k=5), SamplingConfig(top_k=0, top_p=0.8, temperature=1.3)])
def test_cached_rollout_equals_full_recompute(tiny_model, sampling):
    ctx = random_clip(tiny_model, 2, 2, seed=3)
    ctx["keep"][1, 0] = False
    ctx["ego"][1, 0] = torch.tensor(tiny_model.ego_vocab)
    a = rollout(tiny_model, ctx, 5, sampling, seed=7, cached=True)  # 2 + 5 frames > window 3
    b = rollout(tiny_model, ctx, 5, sampling, seed=7, cached=False)
    assert torch.equal(a["img"], b["img"]) and torch.equal(a["ego"], b["ego"])
    c = rollout(tiny_model, ctx, 5, sampling, seed=8, cached=True)
    assert not torch.equal(a["img"], c["img"])  # the seed matters


def test_rollout_shapes_and_forced_ego(tiny_model):
    ctx = random_clip(tiny_model, 1, 3)
    forced = torch.tensor([[[1, 2, 3]]]).expand(1, 12, 3)
    seen = []
    out = rollout(tiny_model, ctx, 12, seed=0, forced_ego=forced, on_frame=lambda i, t: seen.append(i))
    assert out["img"].shape == (1, 12, tiny_model.n_img) and out["ego"].shape == (1, 12, 3)
    assert torch.equal(out["ego"], forced) and len(out["frame_s"]) == 12 and seen == list(range(12))
    assert out["img"].max() < tiny_model.cfg.codebook_size
    free = rollout(tiny_model, ctx, 4, seed=0)
    for j, v in enumerate(tiny_model.ego_vocab):
        assert free["ego"][..., j].max() < v  # sampled ego never hits the null token


def test_candidates_top_k_top_p_and_sampling_frequencies():
    logits = torch.log(torch.tensor([[0.05, 0.5, 0.15, 0.3]]))
    probs, ids = candidates(logits, SamplingConfig(top_k=2, top_p=1.0))
    assert ids.tolist() == [[1, 3]] and torch.allclose(probs, torch.tensor([[0.625, 0.375]]))
    probs, ids = candidates(logits, SamplingConfig(top_k=0, top_p=0.7))
    assert (probs > 0).sum() == 2  # 0.5 < 0.7 <= 0.8
    probs, _ = candidates(logits, SamplingConfig(top_k=0, top_p=0.4))
    assert (probs > 0).sum() == 1
    g = torch.Generator().manual_seed(0)
    draws = sample_token(logits.expand(20000, 4), SamplingConfig(top_k=0), g)
    freq = torch.bincount(draws, minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.05, 0.5, 0.15, 0.3]), atol=0.015)
    assert sample_token(logits, SamplingConfig(temperature=0), g).item() == 1


def test_scripted_lane_change_moves_one_lane():
    rel = scripted_poses("lane_change_left", 80, fps=10, speed=20.0, lane_width=4.0)
    assert rel.shape == (80, 3) and np.allclose(rel[1:, 0], 2.0)
    assert rel[:, 1].sum() == pytest.approx(4.0, rel=0.05) and (rel[:, 1] >= 0).all()
    right = scripted_poses("lane_change_right", 80, fps=10, speed=20.0)
    assert right[:, 1].sum() == pytest.approx(-4.0, rel=0.05)
    turn = scripted_poses("turn_left", 80, fps=10, speed=10.0, turn_deg=90)
    assert turn[:, 2].sum() == pytest.approx(math.pi / 2, rel=0.05)
    world = integrate_poses(turn)
    assert world[-1, 2] == pytest.approx(math.pi / 2, rel=0.05) and world[-1, 1] > 10
    with pytest.raises(ValueError, match="unknown manoeuvre"):
        scripted_poses("fly", 10, 10, 1)


def test_control_files(tmp_path):
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"speed": [10, 20], "yaw_rate": [0.0, 0.5]}))
    rel = control_file_poses(str(js), 4, fps=10)
    assert np.allclose(rel, [[1, 0, 0], [2, 0, 0.05], [2, 0, 0.05], [2, 0, 0.05]])  # holds the last value
    csv = tmp_path / "c.csv"
    csv.write_text("speed,yaw_rate,lateral_speed\n10,0.1,1\n10,0.1,1\n")
    assert np.allclose(control_file_poses(str(csv), 2, fps=10), [[1, 0.1, 0.01]] * 2)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"speed": [1]}))
    with pytest.raises(ValueError, match="yaw_rate"):
        control_file_poses(str(bad), 2, 10)
