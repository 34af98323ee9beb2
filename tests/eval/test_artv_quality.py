"""ART·V quality evaluation: per-window table against persistence baselines, texture energy, the text-control
measurement (lateral motion recovered from frames) and both commands end to end on tiny random models."""
import json

import numpy as np
import pytest
import torch

from worldgen.eval import artv_quality as Q

from .roads import road_frames, write_road_episodes

H, W, VIEW_M = 32, 64, 16.0


def test_window_table_against_baselines():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 12, 8, 16, generator=g) * 2 - 1
    same = Q.window_table(real, real, 4)
    assert [r["start"] for r in same] == [0, 4, 8]
    assert all(r["mse"] == 0 and abs(r["hf_ratio"] - 1) < 1e-9 for r in same)
    held = real[:, :, :1].expand_as(real)
    rows = Q.window_table(held, real, 4)
    assert all(abs(r["mse"] - r["mse_copy_first"]) < 1e-7 for r in rows)
    assert rows[0]["mse_copy_first"] < rows[1]["mse_copy_first"]  # frame 0 itself is in window 0
    flat = real.mean(dim=(3, 4), keepdim=True).expand_as(real)
    assert all(r["hf_ratio"] < 1e-6 for r in Q.window_table(flat, real, 4))


def test_hf_energy_tells_flat_from_lines_from_noise():
    flat = np.full((1, H, W, 3), 100, np.uint8)
    lines = road_frames(1, H, W, [0])
    noise = np.random.default_rng(0).integers(0, 256, (1, H, W, 3)).astype(np.uint8)
    e = [Q.hf_energy(x)[0] for x in (flat, lines, noise)]
    assert e[0] == 0 and 0 < e[1] < e[2]


@pytest.fixture(scope="module")
def roads(tmp_path_factory):
    root = tmp_path_factory.mktemp("roads")
    specs = [{"id": f"highway-{i}", "env_id": "highway-fast-v0", "n": 12} for i in range(3)]
    specs.append({"id": "merge-v", "env_id": "merge-v0", "n": 12, "vertical": True})
    return write_road_episodes(root, specs, H, W, view_m=VIEW_M)


class _Pipe:
    device = "cpu"


def _drawn_rollout(follow: bool):
    """A stand-in generator that draws the road moved by 0.5 m per frame to the side each frame's prompt asks for
    (``follow``) or never moved: the measurement must tell the two apart."""
    ppm = W / VIEW_M

    def fake(pipe, first, schedules, n, opts, progress=False):
        vids = []
        for sched in schedules:
            step = [0.5 if "left" in s else -0.5 if "right" in s else 0.0 for s in sched]
            lat = np.cumsum([0.0] + step[1:]) if follow else np.zeros(n)
            vertical = first.shape[-1] != W
            v = road_frames(n, H, W, lat * ppm, vertical=vertical, car=False)
            vids.append(torch.from_numpy(v).permute(3, 0, 1, 2).float() / 127.5 - 1)
        return torch.stack(vids)
    return fake


def test_control_measures_lateral_motion_from_frames(roads, monkeypatch):
    from worldgen.data.frames import FrameBank

    bank = FrameBank(str(roads), progress=False)
    cfg = Q.ArtvQualityConfig(control_episodes=3, control_change=8, control_frames=12)
    monkeypatch.setattr(Q, "rollout_video", _drawn_rollout(True))
    res = Q.control_test(_Pipe(), bank, cfg, Q._options(cfg))
    assert res["episodes"] == 3 and all(i.startswith("highway") for i in res["ids"])
    assert abs(res["left_minus_keep_m"] - 3.5) < 0.6 and abs(res["right_minus_keep_m"] + 3.5) < 0.6
    assert abs(res["switch_left"]["at_switch_m"]) < 0.3 and res["switch_left"]["end_m"] > 1.0
    assert res["met"] is True
    monkeypatch.setattr(Q, "rollout_video", _drawn_rollout(False))
    still = Q.control_test(_Pipe(), bank, cfg, Q._options(cfg))
    assert abs(still["left_minus_keep_m"]) < 0.3 and still["met"] is False


def _random_run(folder, references: bool):
    from tests.artv.test_model import perturb_outputs
    from tests.commands.conftest import save_run
    from worldgen.artv.model import ARTV, ARTVConfig
    from worldgen.lit.artv import Config
    from worldgen.nn.unet import UNetConfig

    unet = UNetConfig(base=8, mults=[1, 2], blocks_per_level=1, attn_levels=[1], emb_dim=32, head_dim=8, groups=4)
    mc = ARTVConfig(frame_size=[H, W], unet=unet, text_encoder="hash", text_dim=16, max_text_tokens=6, patch=2,
                    references=references)
    torch.manual_seed(0)
    model = ARTV(mc)
    perturb_outputs(model)
    return save_run(folder, Config(model=mc, out_dir=str(folder)), model)


def test_quality_and_prior_commands_end_to_end(roads, tmp_path, capsys):
    from worldgen.cli import main as cli

    run = _random_run(tmp_path / "artv", True)
    out = tmp_path / "q.json"
    rc = cli(["eval", "artv-quality", "--ckpt", f"rand={run}", "--data", str(roads), "--out", str(out),
              "--episodes", "2", "--frames", "8", "--window", "4", "--steps", "2", "--control-episodes", "1",
              "--control-frames", "6", "--control-change", "3", "--onestep-stride", "3"])
    assert rc == 0
    res = json.loads(out.read_text())["models"]["rand"]
    assert [w["start"] for w in res["windows"]] == [0, 4] and len(res["one_step"]["frames"]) == 3
    assert res["control"]["episodes"] == 1 and set(res["targets"]) >= {"one_step_beats_copy_last"}
    assert out.with_suffix(".png").is_file() and "rand" in capsys.readouterr().out
    fout = tmp_path / "f.json"
    assert cli(["eval", "artv-quality", "--ckpt", str(run), "--data", str(roads), "--out", str(fout), "--episodes",
                "3", "--frames", "8", "--window", "8", "--steps", "1", "--no-control",
                "--detector", "sim:checkpoints/fvd-sim-tiny"]) == 0
    f = json.loads(fout.read_text())
    assert f["fvd_copy_first"][0]["fvd"] > 0 and f["models"]["artv"]["fvd_windows"][0]["end"] == 8
    prior = _random_run(tmp_path / "prior", False)
    pout = tmp_path / "p.json"
    assert cli(["eval", "artv-prior", "--ckpt", str(prior), "--data", str(roads), "--train-data", str(roads),
                "--out", str(pout), "--images", "4", "--steps", "2"]) == 0
    p = json.loads(pout.read_text())
    assert p["frechet"]["real_floor_train_frames"] >= 0 and 0 <= p["scenario_accuracy"]["real"] <= 1
    assert pout.with_suffix(".png").is_file() and pout.with_suffix(".npy").is_file()
    img = tmp_path / "img.png"
    assert cli(["generate", "image", "--ckpt", str(prior), "--prompt", "ego keeps its lane", "--n", "2",
                "--steps", "2", "--out", str(img)]) == 0
    assert np.load(img.with_suffix(".npy")).shape == (2, H, W, 3)
    assert cli(["generate", "image", "--ckpt", str(run), "--prompt", "x", "--out", str(tmp_path / "no.png")]) == 2
    assert cli(["generate", "artv", "--ckpt", str(prior), "--prompt", "x", "--out", str(tmp_path / "no.mp4")]) == 2
