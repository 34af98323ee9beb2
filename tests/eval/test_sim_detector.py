"""The simulator-trained FVD detector (``worldgen.eval.sim_detector``): labels, training on tiny synthetic episodes,
the ``sim:PATH`` detector spec (and its errors), FVD with it, and the shipped ``checkpoints/fvd-sim-tiny``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.eval.roads import write_road_episodes
from worldgen.eval import sim_detector as S

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "checkpoints" / "fvd-sim-tiny"
H, W = 16, 32


def tiny_model_cfg() -> S.SimEncoderConfig:
    return S.SimEncoderConfig(frame_size=[H, W], clip_frames=8, channels=[4, 8, 8, 16], feature_dim=8)


@pytest.fixture(scope="module")
def road_data(tmp_path_factory):
    """Two scenarios that look different (horizontal vs vertical road), lane changes and braking in some episodes."""
    root = tmp_path_factory.mktemp("sim")
    specs = []
    for i in range(4):
        specs.append({"id": f"highway-fast-s0-{i:05d}", "env_id": "highway-fast-v0", "n": 16,
                      "lane_change_at": 5 if i % 2 else None, "new_lane": 0})
        specs.append({"id": f"intersection-s0-{i:05d}", "env_id": "intersection-v0", "n": 16, "vertical": True,
                      "brake": i % 2 == 1})
    write_road_episodes(root / "train", specs, H, W)
    write_road_episodes(root / "held", specs[:4], H, W)
    return root


@pytest.fixture(scope="module")
def trained(road_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "fvd-sim"
    cfg = S.Config(out_dir=str(out), model=tiny_model_cfg(), steps=40, batch_size=8, lr=1e-2, progress=False,
                   data=S.SimDataConfig(root=str(road_data / "train"), heldout=str(road_data / "held"), hop=2))
    card = S.train(cfg, command="pytest")
    return out, card


def test_labels_from_the_sidecar():
    lanes = [["a", "b", 1]] * 5 + [["a", "b", 0]] * 5 + [["c", "d", 2]] * 6  # 1 -> 0 is a change to the left
    meta = {"env_id": "merge-v0", "lane_index": lanes, "speed": [10.0] * 10 + [10.0, 9.0, 8.0, 7.0, 6.0, 5.0]}
    assert S.scenario_of(meta) == S.SCENARIOS.index("merge")
    assert S.action_of(meta, 0, 8) == S.ACTIONS.index("lane_left")
    assert S.action_of(meta, 5, 5) == S.ACTIONS.index("keep")  # road ab -> cd is a new segment, not a lane change
    assert S.action_of(meta, 9, 7) == S.ACTIONS.index("brake")  # speed 10 -> 5 m/s
    meta["lane_index"] = [["a", "b", 0]] * 3 + [["a", "b", 1]] * 13
    assert S.action_of(meta, 0, 8) == S.ACTIONS.index("lane_right")
    assert S.scenario_of({"env_id": "recording", "id": "racetrack-s1-00004"}) == S.SCENARIOS.index("racetrack")
    with pytest.raises(ValueError, match="none of the scenarios"):
        S.scenario_of({"env_id": "synthetic-road", "id": "x"})


def test_encoder_is_small_and_takes_clips():
    net = S.SimVideoEncoder(S.SimEncoderConfig()).eval()
    assert S.count_parameters(net) < 1_000_000
    with torch.no_grad():
        f, ls, la = net(torch.zeros(2, 3, 16, 64, 128))
    assert f.shape == (2, 64) and ls.shape == (2, len(S.SCENARIOS)) and la.shape == (2, len(S.ACTIONS))


def test_training_learns_and_writes_a_card(trained):
    out, card = trained
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.yaml", "card.json"}
    held = card["heldout"]
    assert held["episodes"] == 4 and held["clips"] > 0
    # the two scenarios look entirely different: the scenario head must beat the majority class (0.5)
    assert held["scenario"]["accuracy"] == 1.0 > held["scenario"]["majority_baseline_accuracy"]
    assert set(held["action"]) >= {"accuracy", "balanced_accuracy", "majority_baseline_accuracy", "majority_class"}
    assert card["train_log"][-1]["loss_scenario"] < card["train_log"][0]["loss_scenario"]


def test_sim_spec_loads_a_detector_with_its_features(trained):
    from worldgen.checkpoints import load_checkpoint
    from worldgen.eval.detectors import load_detector

    out, _ = trained
    det = load_detector(f"sim:{out}")
    assert det.info()["feature_dim"] == 8 and det.info()["comparable_to_published"] is False
    x = torch.rand(3, 3, 8, 32, 64) * 255  # another size is resized to the encoder's 16x32
    a, b = det(x), det(x)
    assert a.shape == (3, 8) and a.dtype == torch.float64 and torch.equal(a, b)
    assert not torch.equal(a[0], det(torch.zeros(1, 3, 8, 32, 64))[0])
    with pytest.raises(ValueError, match="at least 8 frames"):
        det(torch.zeros(1, 3, 4, 16, 32))
    assert isinstance(load_checkpoint(out), S.SimVideoEncoder)  # the registry knows the task (checkpoints verify)


def test_sim_spec_rejects_bad_paths(tmp_path, trained):
    from worldgen.ckpt import CheckpointError
    from worldgen.eval.detectors import load_detector

    with pytest.raises(FileNotFoundError, match="no such detector folder.*train-detector"):
        load_detector(f"sim:{tmp_path / 'missing'}")
    (tmp_path / "w.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="expected a detector folder"):
        load_detector(f"sim:{tmp_path / 'w.safetensors'}")
    with pytest.raises(ValueError, match="PATH is empty"):
        load_detector("sim:")
    with pytest.raises(FileNotFoundError, match="missing config.yaml"):
        load_detector(f"sim:{tmp_path}")
    other = tmp_path / "other"  # a folder of another task (a GPT's): refused by name, not loaded
    other.mkdir()
    (other / "config.yaml").write_text("task: drivingworld\nmodel: {}\n")
    (other / "model.safetensors").write_bytes((trained[0] / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="task is 'drivingworld', expected 'fvd_sim'"):
        load_detector(f"sim:{other}")
    with pytest.raises(ValueError, match="'random' or 'i3d:PATH' \\(or 'sim:PATH'"):
        load_detector("sims:x")


@pytest.mark.filterwarnings("ignore:Fréchet distance")
def test_fvd_with_the_sim_detector(trained):
    from worldgen.commands.eval import summary_line
    from worldgen.eval.protocols import evaluate

    out, _ = trained
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (4, 20, H, W, 3), dtype=np.uint8)
    same = evaluate(real, real, "fvd16", detector=f"sim:{out}", options=None)
    assert same["fvd"] == pytest.approx(0.0, abs=1e-6) and same["detector"]["name"] == f"sim:{out}"
    other = evaluate(real, np.full_like(real, 128), "fvd16", detector=f"sim:{out}")
    assert other["fvd"] > 1e-3
    assert "[sim detector: NOT comparable to published FVD]" in summary_line(other, "x.json")


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="no shipped fvd-sim-tiny")
def test_shipped_detector_beats_the_majority_class():
    import json

    from worldgen.eval.detectors import load_detector

    card = json.loads((SHIPPED / "card.json").read_text())
    for head in ("scenario", "action"):
        h = card["heldout"][head]
        assert h["accuracy"] > h["majority_baseline_accuracy"] + 0.05, (head, h)
    det = load_detector(f"sim:{SHIPPED}")
    assert det(torch.zeros(1, 3, 16, 64, 128)).shape == (1, card["config"]["model"]["feature_dim"])
    assert (SHIPPED / "model.safetensors").stat().st_size < 3_000_000


def test_train_detector_command_checks_its_inputs(road_data, tmp_path):
    from worldgen.commands.eval import TrainDetectorConfig, train_detector_main

    with pytest.raises(FileNotFoundError, match="not a driving dataset"):
        train_detector_main(TrainDetectorConfig(data=str(tmp_path), out=str(tmp_path / "o"), progress=False))
    with pytest.raises(ValueError, match="steps, batch_size, hop"):
        train_detector_main(TrainDetectorConfig(data=str(road_data / "train"), heldout="", steps=0,
                                                out=str(tmp_path / "o"), progress=False))
    with pytest.raises(ValueError, match="frames are 16x32, the encoder takes 64x128"):
        train_detector_main(TrainDetectorConfig(data=str(road_data / "train"), heldout="", steps=1,
                                                out=str(tmp_path / "o"), progress=False))
    assert not (tmp_path / "o").exists()  # nothing written
