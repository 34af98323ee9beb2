"""KV-cached rollout: identical tokens to full recomputation (also batched, per-sample seeds, both layouts, the
compiled step), shapes, controls, sampling filters, the fused sampler and the newest-frame fusion."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.worldmodel.conftest import random_clip, tiny_config
from worldgen.worldmodel.model import DrivingWorldGPT
from worldgen.worldmodel.rollout import FusedSampler, SamplingConfig, candidates, choose, control_file_poses, \
    choose, integrate_poses, rollout, scripted_poses, simulator_lane_change, uniforms


def same_tokens(a: dict, b: dict) -> bool:
    return torch.equal(a["img"], b["img"]) and torch.equal(a["ego"], b["ego"])


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


@pytest.mark.parametrize("sampling,forced", [(SamplingConfig(), None), (SamplingConfig(temperature=0), [3, 4, 1]),
                                             (SamplingConfig(top_k=7, top_p=0.6, temperature=0.7), None)])
def test_tokens_identical_at_the_shipped_shape(sampling, forced):
    """The gpt_tiny layout (131 tokens, 1024 codes, 2-layer heads, codebook/Fourier embeddings), forced and free ego."""
    torch.manual_seed(0)
    m = DrivingWorldGPT(tiny_config(codebook_size=1024, grid=[8, 16], width=32, heads=2, fourier_dim=16)).eval()
    ctx = random_clip(m, 1, 4, seed=1)
    plan = None if forced is None else torch.tensor([[forced]])
    a = rollout(m, ctx, 1, sampling, seed=5, forced_ego=plan)
    assert same_tokens(a, rollout(m, ctx, 1, sampling, seed=5, forced_ego=plan, cached=False))
    assert len(a["fuse_s"]) == 1 and 0 < a["fuse_cpu_s"][0] <= a["frame_cpu_s"][0]


def test_v1_layout_decodes_identically():
    torch.manual_seed(1)
    m = DrivingWorldGPT(tiny_config(fusion_mlp="spatial", head_layers=1, code_embed="table", ego_embed="table",
                                    qk_norm=False)).eval()
    ctx = random_clip(m, 1, 2, seed=2)
    assert same_tokens(rollout(m, ctx, 4, seed=3), rollout(m, ctx, 4, seed=3, cached=False))


def test_batched_rollout_equals_one_at_a_time(tiny_model):
    ctx = random_clip(tiny_model, 3, 2, seed=4)
    ctx["keep"][2, 0] = False
    ctx["ego"][2, 0] = torch.tensor(tiny_model.ego_vocab)
    forced = torch.randint(0, 4, (3, 5, 3), generator=torch.Generator().manual_seed(0))
    for plan in (None, forced):
        batch = rollout(tiny_model, ctx, 5, seed=[11, 3, 7], forced_ego=plan)
        for i, s in enumerate([11, 3, 7]):
            one = rollout(tiny_model, {k: v[i:i + 1] for k, v in ctx.items()}, 5, seed=s,
                          forced_ego=None if plan is None else plan[i:i + 1])
            assert torch.equal(batch["img"][i:i + 1], one["img"]) and torch.equal(batch["ego"][i:i + 1], one["ego"])
    assert same_tokens(rollout(tiny_model, ctx, 2, seed=5), rollout(tiny_model, ctx, 2, seed=[5, 6, 7]))
    with pytest.raises(ValueError, match="2 seeds for a batch of 3"):
        rollout(tiny_model, ctx, 1, seed=[1, 2])


def test_a_frame_of_uniforms_is_the_token_by_token_stream():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    one_by_one = torch.cat([torch.rand(1, 1, generator=g1) for _ in range(140)])
    assert torch.equal(uniforms([g2], 140, "cpu")[:, 0], one_by_one)


@pytest.mark.parametrize("cfg", [SamplingConfig(), SamplingConfig(top_k=0, top_p=0.8, temperature=1.3),
                                 SamplingConfig(top_k=5, temperature=0.5), SamplingConfig(temperature=0),
                                 SamplingConfig(top_k=100)])
def test_fused_sampler_equals_choose(cfg):
    g = torch.Generator().manual_seed(0)
    logits, u = torch.randn(64, 50, generator=g) * 3, torch.rand(64, 1, generator=g)
    assert torch.equal(FusedSampler(cfg, 50)(logits, u)[:, 0], choose(logits, cfg, u))


def test_newest_frame_fusion_equals_the_window(tiny_model):
    ctx = random_clip(tiny_model, 2, 5, seed=6)
    ctx["keep"][1, 3] = False
    ctx["ego"][1, 3] = torch.tensor(tiny_model.ego_vocab)
    dec = tiny_model.new_caches(2)
    with torch.no_grad():
        for t in (1, 3, 5):
            args = (ctx["ego"][:, :t], ctx["img"][:, :t], ctx["keep"][:, :t])
            ref = tiny_model.fuse_window(*args)
            assert torch.allclose(tiny_model.fuse_last(*args), ref, atol=1e-5)
            emb = dec.embed_frames(*args[:2])
            assert torch.allclose(tiny_model.fuse_last(*args, embedded=emb), ref, atol=1e-5)


def test_position_tensor_step_equals_the_eager_step(tiny_model):
    a, b = tiny_model.new_caches(2), tiny_model.new_caches(2)
    x = torch.randn(2, tiny_model.n, tiny_model.cfg.width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for pos in range(tiny_model.n):
            assert torch.allclose(a.step(x[:, pos], pos), b.step_at(x[:, pos], b.positions[pos:pos + 1]), atol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        a.step(x[:, 0], tiny_model.n)


@pytest.mark.slow
def test_compiled_image_step_gives_the_same_tokens():
    torch.manual_seed(0)
    m = DrivingWorldGPT(tiny_config(codebook_size=256, grid=[4, 8], width=32)).eval()
    ctx = random_clip(m, 2, 3, seed=1)
    a = rollout(m, ctx, 3, seed=[2, 9], compile=True)
    assert same_tokens(a, rollout(m, ctx, 3, seed=[2, 9])) and same_tokens(a, rollout(m, ctx, 3, seed=[2, 9],
                                                                                        cached=False))


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
    draws = choose(logits.expand(20000, 4), SamplingConfig(top_k=0), torch.rand(20000, 1, generator=g))
    freq = torch.bincount(draws, minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.05, 0.5, 0.15, 0.3]), atol=0.015)
    assert choose(logits, SamplingConfig(temperature=0), torch.rand(1, 1, generator=g)).item() == 1


def test_scripted_lane_change_moves_one_lane():
    rel = scripted_poses("lane_change_left", 80, fps=10, speed=20.0, lane_width=4.0)
    world = integrate_poses(rel)
    assert rel.shape == (80, 3) and np.allclose(np.hypot(rel[1:, 0], rel[1:, 1]), 2.0, atol=1e-5)  # 20 m/s
    assert world[-1, 1] == pytest.approx(4.0, rel=0.01) and world[-1, 2] == pytest.approx(0.0, abs=1e-3)
    # the simulator's lane change: nothing before 1 s, then the heading jumps toward the new lane within two frames
    # (the body slipping sideways as much) and settles back; half the offset is covered within 0.5 s of the start
    assert np.abs(rel[:11, 1:]).max() == 0 and rel[11, 2] > math.radians(8) and rel[11, 1] > 0.3
    # heading peak 14.2 deg: the median peak of the 206 lane changes in the training set (docs/results/worldmodel.md)
    assert math.degrees(world[:, 2].max()) == pytest.approx(14.2, abs=0.5) and world[15, 1] > 2.0
    right = integrate_poses(scripted_poses("lane_change_right", 80, fps=10, speed=20.0))
    assert right[-1, 1] == pytest.approx(-4.0, rel=0.01)
    turn = scripted_poses("turn_left", 80, fps=10, speed=10.0, turn_deg=90)
    assert turn[:, 2].sum() == pytest.approx(math.pi / 2, rel=0.05)
    world = integrate_poses(turn)
    assert world[-1, 2] == pytest.approx(math.pi / 2, rel=0.05) and world[-1, 1] > 10
    with pytest.raises(ValueError, match="unknown manoeuvre"):
        scripted_poses("fly", 10, 10, 1)


def test_scripted_lane_change_is_the_simulators():
    """Two lane changes recorded by the generator (highway-env, 10 fps; one left, one right, speeds 15-30 m/s) are
    reproduced pose for pose by ``simulator_lane_change`` given their speeds and start frame."""
    from worldgen.data.episodes import relative_poses

    d = np.load(Path(__file__).resolve().parents[1] / "eval" / "data" / "lane_changes.npz")
    for side, offset in (("right", -4.0), ("left", 4.0)):
        rel = relative_poses(d[f"{side}_world"])
        start = int(np.flatnonzero(np.abs(rel[:, 2]) > 1e-4)[0]) - 1
        speed = np.append(np.hypot(rel[1:, 0], rel[1:, 1]) * 10, 0.0)  # step i runs at the speed of frame i - 1
        assert np.abs(simulator_lane_change(speed, 10, start, offset) - rel).max() < 1e-5, side


def test_control_files(tmp_path):
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"speed": [10, 20], "yaw_rate": [0.0, 0.5]}))
    rel = control_file_poses(str(js), 4, fps=10)
    assert np.allclose(rel[:, 2], [0, 0.05, 0.05, 0.05])  # holds the last value
    assert np.allclose(np.hypot(rel[:, 0], rel[:, 1]), [1, 2, 2, 2])  # speed / fps along the new heading
    # a lateral speed is driven along the heading, never as a sideways slide: 2 m/s for 2 s at 20 m/s, then 0
    csv = tmp_path / "c.csv"
    csv.write_text("speed,yaw_rate,lateral_speed\n" + "20,0,2\n" * 20 + "20,0,0\n")
    rel = control_file_poses(str(csv), 30, fps=10)
    world = integrate_poses(rel)
    assert world[-1, 1] == pytest.approx(4.0, abs=1e-4) and world[-1, 2] == pytest.approx(0.0, abs=1e-6)
    assert abs(rel[0, 2]) == pytest.approx(math.asin(0.1), rel=1e-5)  # the heading turns toward the side ...
    assert np.abs(rel[:, 1]).max() < 0.21  # ... and each step is forward along it: dy = 2 sin(0.1), not the heading
    assert np.allclose(rel[1:20], [[2, 0, 0]] * 19, atol=1e-6)  # at constant crossing speed the heading holds
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"speed": [1]}))
    with pytest.raises(ValueError, match="yaw_rate"):
        control_file_poses(str(bad), 2, 10)


def test_bf16_model_decodes_identically():
    torch.manual_seed(2)
    m = DrivingWorldGPT(tiny_config()).eval().to(torch.bfloat16)
    ctx = random_clip(m, 1, 2, seed=3)
    assert same_tokens(rollout(m, ctx, 3, seed=4), rollout(m, ctx, 3, seed=4, cached=False))


# ---- ego guidance (classifier-free guidance of the image tokens by the frame's own ego tokens) ---------------------
def _teacher_forced_image_logits(model, ctx, frame, ego, keep_last: bool):
    """Image logits of the frame after ``ctx`` given that frame's tokens, its ego tokens ``ego`` and keep flag."""
    img = torch.cat([ctx["img"], frame["img"]], 1)
    egos = torch.cat([ctx["ego"], ego], 1)
    keep = torch.cat([ctx["keep"], torch.full((ctx["keep"].shape[0], 1), keep_last)], 1)
    with torch.no_grad():
        return model(egos, img, keep)[1][:, -1].float()  # (b, hw, K)


@pytest.mark.parametrize("scale", [0.0, 2.5])
def test_ego_guidance_combines_the_posedrop_and_conditional_predictions(tiny_model, scale):
    """Greedy guided decoding = argmax of l_none + s (l_ego - l_none), both teacher-forced on the generated frame:
    l_ego with the forced ego tokens, l_none as training sees a pose-less frame (null ids, keep False)."""
    m = tiny_model
    ctx = random_clip(m, 2, 2, seed=5)  # 2 context frames + 1 generated = the window of 3: one forward pass covers it
    forced = torch.tensor([[[3, 4, 1]], [[5, 2, 3]]])
    out = rollout(m, ctx, 1, SamplingConfig(temperature=0, ego_guidance=scale), forced_ego=forced)
    frame = {"img": out["img"]}
    cond = _teacher_forced_image_logits(m, ctx, frame, forced, True)
    none = _teacher_forced_image_logits(m, ctx, frame, torch.tensor(m.ego_vocab).expand(2, 1, 3), False)
    assert torch.equal(out["img"][:, 0], (none + scale * (cond - none)).argmax(-1))
    plain = rollout(m, ctx, 1, SamplingConfig(temperature=0), forced_ego=forced)  # unguided: the conditional argmax
    assert torch.equal(plain["img"][:, 0], _teacher_forced_image_logits(m, ctx, plain, forced, True).argmax(-1))
    assert not torch.equal(plain["img"], out["img"])


@pytest.mark.parametrize("forced", [False, True])
def test_ego_guided_cached_rollout_equals_the_reference(tiny_model, forced):
    ctx = random_clip(tiny_model, 2, 2, seed=6)
    ctx["keep"][1, 0] = False
    ctx["ego"][1, 0] = torch.tensor(tiny_model.ego_vocab)
    plan = torch.randint(0, 4, (2, 5, 3), generator=torch.Generator().manual_seed(1)) if forced else None
    sampling = SamplingConfig(top_k=5, ego_guidance=3.0)
    a = rollout(tiny_model, ctx, 5, sampling, seed=4, forced_ego=plan)
    assert same_tokens(a, rollout(tiny_model, ctx, 5, sampling, seed=4, forced_ego=plan, cached=False))
    one = rollout(tiny_model, {k: v[1:] for k, v in ctx.items()}, 5, sampling, seed=5,
                  forced_ego=None if plan is None else plan[1:])
    assert torch.equal(one["img"][0], a["img"][1])  # batched = alone, as without guidance
    b = rollout(tiny_model, ctx, 5, SamplingConfig(top_k=5), seed=4, forced_ego=plan)
    assert not torch.equal(a["img"], b["img"])  # the guidance changes the samples


def test_ego_guidance_settings_are_checked(tiny_model):
    ctx = random_clip(tiny_model, 1, 2)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ego_guidance"):
            rollout(tiny_model, ctx, 1, SamplingConfig(ego_guidance=bad))
    with pytest.raises(ValueError, match="without compile"):
        rollout(tiny_model, ctx, 1, SamplingConfig(ego_guidance=2.0), compile=True)
