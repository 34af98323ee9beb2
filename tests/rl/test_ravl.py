"""RAVL training loop, rollouts, checkpoints and the two CLI commands (rl/ravl.py, commands/ravl.py)."""
import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from worldgen.config import load
from worldgen.rl import pointmass as pm
from worldgen.rl.agents.sac_n import SACN, SACNConfig
from worldgen.rl.ravl import (AGENT_FILE, CONFIG_FILE, DYNAMICS_FILE, PointMassTrueDynamics, RAVLConfig,
                              load_checkpoint, rollout, train)

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "ravl" / "pointmass_tiny.yaml"




def test_rollout_marks_edge_of_reach_and_stops_at_terminals():
    cfg = pm.PointMassConfig(goal=[0.0, 0.0], goal_radius=0.25, step_size=0.1)
    torch.manual_seed(0)
    agent = SACN(SACNConfig(num_critics=2, eta=0.0, hidden=[8]), 2, 2)
    starts = np.array([[0.0, 0.2], [3.0, 3.0], [-3.0, 2.0]], dtype=np.float32)
    rows = rollout(PointMassTrueDynamics(cfg), agent, starts, length=4, oracle=lambda s: np.full(len(s), -7.0))
    # the first start is inside the goal radius after any first step -> one terminal transition, no more
    assert rows["terminals"].sum() >= 1
    n_alive_last = (rows["edge"] == 1).sum()
    assert n_alive_last == 2 and len(rows["rewards"]) == 1 + 2 * 4
    final = rows["next_observations"][rows["edge"] == 1]
    assert not ((final ** 2).sum(1) < 0.25 ** 2).any()
    np.testing.assert_array_equal(rows["oracle_mask"], rows["edge"])
    assert (rows["oracle_value"][rows["edge"] == 1] == -7.0).all() and (rows["oracle_value"][rows["edge"] == 0] == 0).all()
    # transitions chain: each non-final next state is the next row's state for the same rollout
    np.testing.assert_allclose(rows["next_observations"][1:3], rows["observations"][3:5])


def test_tiny_ravl_run_with_learned_dynamics_and_checkpoint_round_trip(tmp_path):
    cfg = load(RAVLConfig, TINY, [f"out_dir={tmp_path / 'run'}"])
    history = train(cfg, progress=False)
    assert len(history) == 2
    for key in ["return", "normalized_score", "q_mean", "q_std", "q_edge_mean", "q_edge_std", "v_true_edge",
                "critic_loss", "diversity", "alpha"]:
        assert key in history[-1] and math.isfinite(history[-1][key]), key
    run = tmp_path / "run"
    assert (run / AGENT_FILE).is_file() and (run / DYNAMICS_FILE).is_file() and (run / CONFIG_FILE).is_file()
    with open(run / "metrics.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    cfg2, agent, ensemble = load_checkpoint(run)
    assert cfg2.agent.num_critics == 3 and ensemble is not None
    # the reloaded agent reproduces the logged evaluation return exactly (deterministic policy, same seeds)
    from worldgen.rl.ravl import PointMassTask

    task = PointMassTask(cfg2)
    assert task.evaluate(agent, cfg.eval_episodes, seed=10_000 + cfg.seed) == pytest.approx(history[-1]["return"])


def test_true_dynamics_base_with_oracle_patch_uses_true_values(tmp_path):
    over = [f"out_dir={tmp_path / 'o'}", "true_dynamics=true", "oracle_patch=true", "agent.num_critics=2",
            "agent.eta=0", "epochs=1"]
    history = train(load(RAVLConfig, TINY, over), progress=False)
    assert not (tmp_path / "o" / DYNAMICS_FILE).exists()
    assert history[-1]["v_true_edge"] < 0 and history[-1]["diversity"] == 0.0
    with pytest.raises(ValueError, match="pointmass"):
        train(load(RAVLConfig, TINY, ["env=Hopper-v5", "oracle_patch=true", f"out_dir={tmp_path / 'x'}"]),
              progress=False)


def test_oracle_patch_replaces_bootstrapped_target():
    torch.manual_seed(0)
    agent = SACN(SACNConfig(num_critics=2, eta=0.0, hidden=[8], auto_alpha=False), 2, 2)
    batch = {"observations": torch.zeros(3, 2), "actions": torch.zeros(3, 2), "rewards": torch.tensor([1.0, 2.0, 3.0]),
             "next_observations": torch.ones(3, 2), "terminals": torch.zeros(3),
             "oracle_mask": torch.tensor([1.0, 0.0, 1.0]), "oracle_value": torch.tensor([-10.0, 0.0, 5.0])}
    target = agent.target_q(batch)
    assert target[0] == pytest.approx(1 + 0.99 * -10) and target[2] == pytest.approx(3 + 0.99 * 5)
    assert target[1] != pytest.approx(2.0)


def test_cli_train_and_edge_of_reach(tmp_path):
    import torch

    from worldgen.cli import main

    threads = torch.get_num_threads()
    rc = main(["ravl", "train", str(TINY), f"out_dir={tmp_path / 't'}", "epochs=1", "--no-progress", "--threads", "1"])
    assert rc == 0 and (tmp_path / "t" / AGENT_FILE).is_file()
    assert torch.get_num_threads() == threads  # --threads is restored for the caller
    out = tmp_path / "eor"
    rc = main(["ravl", "edge-of-reach", "--out", str(out), "--workers", "1", "--config", str(TINY),
               "epochs=1", "steps_per_epoch=10", "agent.hidden=[8]"])
    assert rc == 0 and torch.get_num_threads() == threads
    assert (out / "edge_of_reach.png").stat().st_size > 1000
    with open(out / "edge_of_reach.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["variant"] for r in rows} == {"base", "base_oracle", "ravl"}
    assert main(["ravl", "edge-of-reach", "--out", str(out), "--variants", "nope"]) == 2
    (out / "edge_of_reach.png").unlink()
    assert main(["ravl", "edge-of-reach", "--out", str(out), "--replot"]) == 0
    assert (out / "edge_of_reach.png").is_file() and (out / "summary.json").is_file()
    assert main(["ravl", "edge-of-reach", "--out", str(tmp_path / "none"), "--replot"]) == 2


def test_summary_flags_impossible_q_values_as_divergence():
    from worldgen.commands.ravl import summarize

    def row(v, epoch, q, div=0):
        return {"variant": v, "seed": 0, "epoch": epoch, "step": epoch * 10, "q_mean": q, "q_edge_mean": q,
                "diverged": div, "v_true": -1.0, "v_true_edge": -1.0, "return": -5.0, "normalized_score": 50.0}
    s = summarize([row("base", 1, -2.0), row("base", 2, 3.0), row("base", 3, -1.5),
                   row("ravl", 1, -2.0), row("ravl", 2, -1.2)])
    assert s["base_seed0"]["impossible_q"] and s["base_seed0"]["peak_q_mean"] == 3.0
    assert not s["base_seed0"]["diverged"]
    assert not s["ravl_seed0"]["impossible_q"]
    s = summarize([row("base", 1, -2.0), row("base", 2, float("inf"), div=1)])
    assert s["base_seed0"]["diverged"]


def test_mujoco_true_dynamics_matches_the_simulator():
    import gymnasium as gym

    from worldgen.rl.ravl import MujocoTrueDynamics

    env, rng = gym.make("Hopper-v5"), np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    states, actions, nexts, rewards = [], [], [], []
    for _ in range(8):
        a = rng.uniform(-0.5, 0.5, 3).astype(np.float32)
        nxt, r, term, _, _ = env.step(a)
        states.append(obs), actions.append(a), nexts.append(nxt), rewards.append(r)
        obs = nxt
        if term:
            break
    model = MujocoTrueDynamics("Hopper-v5")
    pred, rew, done = model.step(np.asarray(states, np.float32), np.asarray(actions))
    np.testing.assert_allclose(pred, np.asarray(nexts), atol=1e-4)
    np.testing.assert_allclose(rew, np.asarray(rewards), atol=1e-3)
