"""``worldgen eval drivingworld`` (``worldgen.eval.drivingworld``): the lateral-motion estimator (synthetic shifts and
real simulator frames with their sidecar poses), the copy-last baseline, frame statistics, and the whole evaluation
on tiny random models and tiny synthetic roads (its JSON fields, its PNG, its errors)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.eval.roads import road_frames, write_road_episodes
from worldgen.eval import drivingworld as D

DATA = Path(__file__).resolve().parent / "data" / "lane_changes.npz"
H, W = 16, 32  # the tiny tokenizer's frames (grid 4x8)


# ---- the lateral-motion estimator --------------------------------------------------------------------------------
def _ramp(n: int, total_px: float) -> np.ndarray:
    """Integer pixel shifts of a smooth lane change of ``total_px`` (rounded like crisp rendering)."""
    t = np.linspace(0, 1, n)
    return np.round(total_px * (t - np.sin(2 * np.pi * t) / (2 * np.pi)))


@pytest.mark.parametrize("yaw,vertical,sign", [(0.0, False, 1), (math.pi, False, -1), (math.pi / 2, True, 1),
                                               (-math.pi / 2, True, -1), (0.2, False, 1)])
def test_lateral_estimator_recovers_a_known_shift(yaw, vertical, sign):
    view_m, n = 48.0, 40
    shift = _ramp(n, 11.0)  # content moves 11 px down (rows) / right (columns): ~4.1 m at 128 px / 48 m
    frames = road_frames(n, 64, 128, shift, forward_px=5, vertical=vertical)
    got = D.lateral_motion_m(frames, yaw, view_m)
    want = sign * shift / (frames.shape[2] / view_m)
    assert np.abs(got - want).max() < 0.2, np.c_[got, want][::5]
    assert abs(got[-1] - want[-1]) < 0.1


def test_lateral_estimator_refuses_a_diagonal_road():
    with pytest.raises(ValueError, match="not along an image axis"):
        D.lateral_motion_m(road_frames(3, 64, 128, [0, 0, 0]), math.radians(45), 48.0)
    assert D.road_axis(math.radians(20)) == "rows" and D.road_axis(math.radians(100)) == "cols"
    assert D.road_axis(math.radians(45)) is None


def test_lateral_estimator_on_real_simulator_frames():
    """Real highway-env frames (held-out episodes highway-fast-s1-00000, a lane change right, and merge-s1-00006, a
    lane change left; 60 frames each) against the lateral motion of their sidecar poses: centimetre-level."""
    d = np.load(DATA)
    for side, sign in (("right", -1), ("left", 1)):
        world = d[f"{side}_world"]
        est = D.lateral_motion_m(d[f"{side}_frames"], float(world[0, 2]), float(d[f"{side}_view_m"]))
        true = D.true_lateral_m(world)
        assert sign * true[-1] > 3.9  # a full 4 m lane change happens in the clip
        assert np.abs(est - true).mean() < 0.15 and abs(est[-1] - true[-1]) < 0.3, (side, est[-1], true[-1])


# ---- baselines and statistics ------------------------------------------------------------------------------------
def test_copy_last_accuracy_and_psnr():
    codes = torch.tensor([[[1, 2], [3, 4]], [[1, 2], [3, 5]], [[0, 0], [0, 5]]])
    assert D.copy_last_accuracy(codes, [1]) == 0.75
    assert D.copy_last_accuracy(codes, [1, 2]) == pytest.approx((3 + 1) / 8)
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[1] = 255
    p = D.psnr_frames(a, b)
    assert p[1] == pytest.approx(0.0) and p[0] > 90


def test_lane_lines_and_js():
    frames = road_frames(2, 64, 128, [0, 0], car=True)
    assert list(D.lane_lines(frames)) == [3, 3]  # two solid lines and a dashed one (50% covered)
    assert list(D.lane_lines(np.full((1, 64, 128, 3), 100, np.uint8))) == [0]
    st = D.frame_stats(frames)
    assert st["vehicle"][0] == pytest.approx(3 * 4 / (64 * 128)) and st["foreground"][0] > st["vehicle"][0]
    assert D.js_bits(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    assert D.js_bits(np.array([2.0, 1]), np.array([4.0, 2])) == pytest.approx(0.0)


def test_other_vehicles_are_the_ones_off_the_ego_place():
    """The centred camera keeps the ego car in place: ``ego_mask`` finds it in real frames, and only a vehicle
    elsewhere counts as another vehicle."""
    frames = road_frames(6, 64, 128, [0] * 6, car=True)
    ep = D.HeldOut("x", "highway-fast", frames, torch.zeros(6, 2, 2, dtype=torch.long), torch.zeros(6, 3),
                   torch.ones(6, dtype=torch.bool), np.zeros((6, 3)), 48.0, 10.0)
    ego = D.ego_mask([ep])
    assert ego[32, 43] and not ego[10, 100]
    assert D.frame_stats(frames, ego)["other_vehicle"].max() == 0
    other = frames.copy()
    other[:, 8:11, 90:100] = (200, 40, 40)  # a red car in another lane
    assert D.frame_stats(other, ego)["other_vehicle"] == pytest.approx(np.full(6, 30 / (64 * 128)))


def test_lane_changes_are_judged_where_the_target_lane_exists():
    """The simulator never leaves the road, so a lane change toward a lane that is not there is not expected of a
    model trained on it: each run records whether its target lane exists (sidecar lane index and lanes_count), and
    the targets use only those runs."""
    meta = {"n_frames": 3, "lane_index": [["0", "1", 1], ["0", "1", "1"], ["0", "1", "0"]], "lanes_count": 2}
    assert D.lane_indices(meta) == [1, 1, 0] and D.lane_indices({"n_frames": 2}) == [None, None]

    def ep(lanes, count):
        return D.HeldOut("x", "highway-fast", np.zeros((3, 4, 4, 3), np.uint8), torch.zeros(3, 1, 1, dtype=torch.long),
                         torch.zeros(3, 3), torch.ones(3, dtype=torch.bool), np.zeros((3, 3)), 48.0, 10.0, lanes, count)

    rightmost, leftmost, middle = ep([1] * 3, 2), ep([0] * 3, 3), ep([1] * 3, 3)
    assert [D.target_lane_exists(rightmost, 2, m) for m in D.MANOEUVRES] == [True, False, True]
    assert [D.target_lane_exists(leftmost, 2, m) for m in D.MANOEUVRES] == [False, True, True]
    assert [D.target_lane_exists(middle, 2, m) for m in D.MANOEUVRES] == [True, True, True]
    assert D.target_lane_exists(ep([1] * 3, None), 2, "lane_change_right") is None  # lanes_count not recorded
    assert D.target_lane_exists(ep(None, 3), 2, "lane_change_left") is None
    runs = [{"manoeuvre": m, "target_lane_exists": ok, "commanded_m": c, "recovered_m": got, "end_err_m": abs(c - got),
             "mean_abs_err_m": 0.0, "lane_shift": got / 4, "rel_err": abs(c - got) / 4 if c else None}
            for m, ok, c, got in [("lane_change_left", True, 4.0, 4.0), ("lane_change_right", True, -4.0, -3.5),
                                  ("lane_change_right", False, -4.0, 0.0), ("straight", True, 0.0, 0.0)]]
    res = {"teacher_forced": {"token_acc": 0.5, "token_acc_copy_last": 0.3, "psnr_db": 30, "psnr_copy_last_db": 20},
           "rollout": {"windows": []}, "controllability": {"runs": runs, "summary": D.control_summary(runs),
                                                           "summary_target_lane_exists": D.control_summary(runs[:2] + runs[3:])}}
    summary = res["controllability"]["summary"]
    assert summary["lane_change_right"]["lane_shift"] == pytest.approx(-3.5 / 8)
    assert (summary["lane_change_left"]["followed"], summary["lane_change_right"]["followed"]) == (1, 1)
    assert summary["lane_change_right"]["wrong_way"] == 0 and summary["straight"]["drifted"] == 0
    t = D.targets(res)
    assert t["lane_change_one_lane_pm_25pct"] and not t["ego_motion_err_le_10pct"]  # -3.5 of -4 m: 12.5 % off
    runs[1]["recovered_m"], runs[1]["rel_err"] = -3.9, 0.025
    res["controllability"]["summary_target_lane_exists"] = D.control_summary(runs[:2] + runs[3:])
    assert D.targets(res)["ego_motion_err_le_10pct"]  # the run without a target lane does not count


def test_control_contexts_from_several_start_frames():
    """``--control-starts k``: each straight-road episode gives k contexts spread over it, each a true suffix of the
    episode (frames, codes, poses and lane indices shifted together); other scenarios and turned roads give none."""
    t, w = 30, 6
    world = np.zeros((t, 3))
    world[20:, 2] = math.radians(45)  # the road turns off the image axes from frame 20 on

    def ep(id_, scenario):
        return D.HeldOut(id_, scenario, np.arange(t)[:, None, None, None].repeat(3, -1).astype(np.uint8),
                         torch.arange(t)[:, None, None].long(), torch.zeros(t, 3), torch.ones(t, dtype=torch.bool),
                         world, 48.0, 10.0, list(range(t)), 3)

    eps = [ep("highway-fast-s1-00000", "highway-fast"), ep("roundabout-s1-00002", "roundabout")]
    assert [c.id for c in D.control_candidates(eps, w)] == ["highway-fast-s1-00000"]
    got = D.control_candidates(eps, w, starts=3)  # starts 0, 8, 16; 16 + 5 = 21 is on the turned road
    assert [c.id for c in got] == ["highway-fast-s1-00000", "highway-fast-s1-00000@8"]
    c = got[1]
    assert c.frames[0, 0, 0, 0] == 8 and int(c.codes[0]) == 8 and c.lanes[0] == 8 and len(c.world) == t - 8
    assert D.target_lane_exists(c, w - 1, "lane_change_left")  # lane index 13 there: a lane to the left


# ---- the whole evaluation on tiny models -------------------------------------------------------------------------
def save_model(folder: Path, cfg, module: torch.nn.Module) -> Path:
    """A checkpoint folder whose config.yaml is the module's own config (no experiment wrapper, no Lightning)."""
    from worldgen import config as C
    from worldgen.io import save_weights

    C.save(cfg, folder / "config.yaml")
    save_weights(folder / "model.safetensors", module.state_dict())
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A tiny random tokenizer (16x32 -> 4x8 codes, 64 codes), a tiny random GPT on that grid (lateral pose bins of
    2.5 cm, so a commanded plan survives tokenization) and three tiny roads (two straight ones, one vertical)."""
    from tests.tokenizer.conftest import _tiny_vq_config
    from tests.worldmodel.conftest import tiny_config
    from worldgen.tokenizer import VQVideoTokenizer
    from worldgen.tokenizer.pose import PoseTokenizerConfig
    from worldgen.worldmodel.model import DrivingWorldGPT

    root = tmp_path_factory.mktemp("dw")
    torch.manual_seed(0)
    tok = save_model(root / "tok", _tiny_vq_config(), VQVideoTokenizer(_tiny_vq_config()))
    gcfg = tiny_config(codebook_size=64, grid=[4, 8], pose=PoseTokenizerConfig(yaw_bins=9, x_bins=16, y_bins=65))
    gpt = save_model(root / "gpt", gcfg, DrivingWorldGPT(gcfg))
    lat = 1.0 * np.clip((np.arange(24) - 4) / 12, 0, 1)  # 1 m to the left over frames 4..16 (the frames are 6 m high)
    specs = [{"id": "highway-fast-s1-00000", "env_id": "highway-fast-v0", "n": 24, "lateral_m": lat},
             {"id": "merge-s1-00001", "env_id": "merge-v0", "n": 24},
             {"id": "intersection-s1-00003", "env_id": "intersection-v0", "n": 24, "vertical": True}]
    data = write_road_episodes(root / "data", specs, H, W, view_m=12.0)
    return gpt, tok, data


def _cfg(pair, tmp_path, **kw):
    gpt, tok, data = pair
    base = dict(ckpt=str(gpt), tokenizer=str(tok), data=str(data), episodes=2, frames=32, window=16,
                control_contexts=1, control_frames=8, detector="none", progress=False, tf_stride=3,
                out=str(tmp_path / "dw.json"))
    base.update(kw)
    return D.DrivingEvalConfig(**base)


def test_evaluation_json_has_every_field(pair, tmp_path):
    from worldgen.commands.eval import drivingworld_main

    res = drivingworld_main(_cfg(pair, tmp_path, frames=16, window=8, control_frames=20))
    tf = res["teacher_forced"]
    assert set(tf) >= {"token_acc", "token_acc_copy_last", "psnr_db", "psnr_copy_last_db",
                       "psnr_copy_last_decoded_db", "psnr_tokenizer_db", "frames"}
    ro = res["rollout"]
    assert ro["ego"] == "sampled by the model" and ro["frames"] == 16 and len(ro["windows"]) == 2
    assert set(ro["windows"][0]) >= {"vehicle_ratio", "other_vehicle_ratio", "foreground_ratio", "code_js_bits",
                                     "lane_lines_ratio"}
    assert ro["scenarios"] == ["highway-fast", "intersection"]  # scenarios in turn
    c = res["controllability"]
    assert c["estimator_validation"]["episodes"] == 2 and c["estimator_validation"]["mean_abs_err_m"] < 0.3
    assert [r["manoeuvre"] for r in c["runs"]] == list(D.MANOEUVRES)
    left, right = c["summary"]["lane_change_left"], c["summary"]["lane_change_right"]
    assert all(r["target_lane_exists"] in (True, None) for r in c["runs"]) and "summary_target_lane_exists" in c
    assert left["commanded_m"] > 0.5 > -0.5 > right["commanded_m"]  # 20 frames (2 s): a third of the manoeuvre
    assert set(res["targets"]) >= {"token_acc_ge_copy_last_plus_0.10", "psnr_above_copy_last",
                                   "vehicle_ratio_0.3_to_3_every_window", "lane_change_one_lane_pm_25pct"}
    on_disk = json.loads((tmp_path / "dw.json").read_text())
    assert on_disk["teacher_forced"] == tf and (tmp_path / "dw.png").stat().st_size > 1000


class _Oracle(torch.nn.Module):
    """Wraps a GPT: teacher-forced image logits put all mass on the true next frame (``copy=False``) or on the
    previous frame (``copy=True``); everything else is the wrapped model."""

    def __init__(self, gpt, copy: bool):
        super().__init__()
        self.gpt, self.copy = gpt, copy
        self.cfg, self.h, self.w, self.pose_tokenizer = gpt.cfg, gpt.h, gpt.w, gpt.pose_tokenizer

    def forward(self, ego, img, keep=None):
        target = img[:, :-1] if self.copy else img[:, 1:]
        return [], torch.nn.functional.one_hot(target, self.cfg.codebook_size).float()


def test_teacher_forcing_against_copy_last_is_aligned(pair):
    """An oracle model scores accuracy 1 and the tokenizer's PSNR; a copy-last model scores exactly the copy-last
    baseline (tokens and decoded PSNR): the targets, the baseline and the decoding are on the same frames."""
    gpt_dir, tok_dir, data = pair
    model, tok = D.load_pair(str(gpt_dir), str(tok_dir))
    eps = D.load_heldout(str(data), tok, None, progress=False)
    oracle = D.teacher_forced(_Oracle(model, copy=False), tok, eps, stride=2, batch=4, progress=False)
    assert oracle["token_acc"] == 1.0 and oracle["psnr_db"] == pytest.approx(oracle["psnr_tokenizer_db"])
    copy = D.teacher_forced(_Oracle(model, copy=True), tok, eps, stride=2, batch=4, progress=False)
    assert copy["token_acc"] == pytest.approx(copy["token_acc_copy_last"])
    assert copy["psnr_db"] == pytest.approx(copy["psnr_copy_last_decoded_db"])
    ctx = tok.context_frames if tok.context_frames is not None else model.cfg.context_frames - 1
    targets = list(range(max(model.cfg.context_frames, ctx + 1), 24, 2))
    want = np.mean([D.copy_last_accuracy(e.codes, targets) for e in eps])
    assert copy["token_acc_copy_last"] == pytest.approx(want)


def test_evaluation_with_a_sim_detector_and_forced_ego(pair, tmp_path):
    from tests.eval.test_sim_detector import tiny_model_cfg
    from worldgen.eval import sim_detector as S
    from worldgen.io import save_weights
    from worldgen import config as C

    det = tmp_path / "det"  # a random-weight sim detector folder (the format the trainer writes)
    torch.manual_seed(0)
    C.save(S.Config(model=tiny_model_cfg(), out_dir=str(det)), det / "config.yaml")
    save_weights(det / "model.safetensors", S.SimVideoEncoder(tiny_model_cfg()).state_dict())
    res = D.evaluate(_cfg(pair, tmp_path, detector=f"sim:{det}", ego="straight", control_contexts=0, out=None))
    assert res["rollout"]["ego"].startswith("forced straight")
    fvd = res["fvd"]
    assert [w["start"] for w in fvd["windows"]] == [0, 16] and all(w["fvd"] >= 0 for w in fvd["windows"])
    assert fvd["clips_per_window"] == 2 and fvd["real_floor"] is not None and fvd["tokenized_floor"] >= 0
    assert "runs" not in res["controllability"] and "estimator_validation" in res["controllability"]


def test_ego_guided_evaluation_records_the_scale_and_warns_without_posedrop(pair, tmp_path, caplog):
    """--ego-guidance reaches the rollouts (guided control runs differ from unguided ones) and the record says
    that this GPT (a bare model config: no posedrop in training) never trained its ego-less branch."""
    kw = dict(frames=8, window=8, control_frames=12, out=None, tf_episodes=1)
    plain = D.evaluate(_cfg(pair, tmp_path, **kw))
    with caplog.at_level("WARNING"):
        guided = D.evaluate(_cfg(pair, tmp_path, ego_guidance=4.0, **kw))
    assert plain["ego_guidance"] == {"scale": 1.0}
    assert guided["ego_guidance"]["scale"] == 4.0 and "posedrop" in guided["ego_guidance"]["warning"]
    assert "never trained" in caplog.text
    got = lambda r: [x["recovered_m"] for x in r["controllability"]["runs"]] + \
        [w["code_js_bits"] for w in r["rollout"]["windows"]]
    assert got(plain) != got(guided)
    assert guided["teacher_forced"] == plain["teacher_forced"]  # teacher forcing has no sampling


def test_guidance_note_reads_the_training_config():
    from worldgen.worldmodel.generate import guidance_note

    assert guidance_note({"data": {"posedrop_prob": 0.0}}, 1.0) is None
    assert guidance_note({"data": {"posedrop_prob": 0.2}}, 3.0) is None
    assert "never trained" in guidance_note({"data": {"posedrop_prob": 0.0}}, 3.0)
    assert "never trained" in guidance_note({}, 0.0)


def test_bad_settings_fail_before_loading(pair, tmp_path):
    with pytest.raises(ValueError, match="--window 64 is longer than --frames 32"):
        D.evaluate(_cfg(pair, tmp_path, window=64))
    with pytest.raises(ValueError, match="--ego"):
        D.evaluate(_cfg(pair, tmp_path, ego="left"))
    with pytest.raises(FileNotFoundError, match="not a driving dataset"):
        D.evaluate(_cfg(pair, tmp_path, data=str(tmp_path)))
    with pytest.raises(ValueError, match="--frames: expected a whole number >= 1, got 0"):
        D.evaluate(_cfg(pair, tmp_path, frames=0))
    with pytest.raises(ValueError, match="--ego-guidance"):
        D.evaluate(_cfg(pair, tmp_path, ego_guidance=float("nan")))
    from tests.worldmodel.conftest import tiny_config
    from worldgen.worldmodel.model import DrivingWorldGPT

    # a 3x4 grid of 32 codes: not the tokenizer's 4x8 of 64
    other = save_model(tmp_path / "gpt34", tiny_config(), DrivingWorldGPT(tiny_config()))
    with pytest.raises(ValueError, match="does not fit"):
        D.evaluate(_cfg(pair, tmp_path, ckpt=str(other)))


def test_frame_stride_follows_the_token_folder_and_refuses_a_mismatch(pair, tmp_path):
    """A GPT trained on ``worldgen tokenize --stride 2`` shards is scored on every 2nd held-out frame (fps halved);
    the stride comes from the token folder, and a contradicting --frame-stride is refused before loading."""
    from worldgen.tokenizer.export import tokenize_dataset

    gpt, tok, data = pair
    tokens = tmp_path / "tok2"
    tokenize_dataset(tok, data, tokens, stride=2)
    assert D.heldout_stride(str(tokens)) == 2 and D.heldout_stride(None) == 1 and D.heldout_stride(None, 3) == 3
    with pytest.raises(ValueError, match="made with stride 2"):
        D.heldout_stride(str(tokens), 3)
    with pytest.raises(ValueError, match="--frame-stride"):
        D.heldout_stride(None, -1)
    _, t = D.load_pair(str(gpt), str(tok))
    full = D.load_heldout(str(data), t, None, progress=False)
    half = D.load_heldout(str(data), t, str(tokens), progress=False, stride=2)
    assert len(half[0].frames) == 12 and half[0].fps == full[0].fps / 2
    assert np.array_equal(half[0].frames, full[0].frames[::2]) and np.array_equal(half[0].world, full[0].world[::2])
    from worldgen.data.episodes import relative_poses

    assert torch.allclose(half[0].rel[2], torch.from_numpy(relative_poses(full[0].world[[2, 4]]))[1])
    res = D.evaluate(_cfg(pair, tmp_path, tokens=str(tokens), frames=8, window=4, control_frames=6))
    assert res["frame_stride"] == 2 and res["fps"] == full[0].fps / 2
    with pytest.raises(ValueError, match="made with stride 2"):
        D.evaluate(_cfg(pair, tmp_path, tokens=str(tokens), frame_stride=1))
