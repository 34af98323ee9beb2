"""End to end on the cheap environment, through the CLI: collect D4RL-style data with a SAC behaviour policy, train the
trajectory diffusion model, sample a guided synthetic dataset, train TD3+BC / IQL on PGD data, score the data."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from worldgen.cli import main as cli
from worldgen.data.offline_rl import KEYS, load_dataset
from worldgen.rl.envs import CHEAP_ENV




@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    d = tmp_path_factory.mktemp("offline")
    common = ["--env", CHEAP_ENV, "--steps", "600", "--train-steps", "300", "--start-steps", "100",
              "--eval-every", "150", "--hidden", "32", "32", "--behaviour-dir", str(d / "beh")]
    assert cli(["data", "offline-rl", *common, "--kind", "medium", "--out", str(d / "medium.hdf5"),
                "--policy-out", str(d / "expert")]) == 0
    assert cli(["data", "offline-rl", *common, "--kind", "medium-replay", "--out", str(d / "replay.hdf5")]) == 0
    return d


def test_collected_files_are_d4rl_layout(collected):
    med = load_dataset(collected / "medium.hdf5")
    assert len(med) == 600 and med.metadata["kind"] == "medium" and med.metadata["env_id"] == CHEAP_ENV
    assert med.timeouts.sum() == 3 and not med.terminals.any()  # 200-step time limit: 3 episodes, no terminals
    assert med.metadata["ref_min_score"] != med.metadata["ref_max_score"]
    rep = load_dataset(collected / "replay.hdf5")
    # the replay buffer up to the medium checkpoint, from the same behaviour run (same reference returns)
    assert len(rep) == rep.metadata["medium_checkpoint_step"] <= 300
    assert rep.metadata["ref_max_score"] == med.metadata["ref_max_score"]
    with h5py.File(collected / "medium.hdf5") as f:
        assert set(KEYS) <= set(f.keys()) and f["observations"].shape == (600, 3)


@pytest.mark.slow  # training end to end, ~4 s
def test_train_sample_agent_and_diagnostics(collected, tmp_path, capsys):
    data = str(collected / "medium.hdf5")
    ckpt = tmp_path / "pgd"
    assert cli(["pgd", "train", "configs/pgd/tiny.yaml", f"data.path={data}", f"out_dir={ckpt}"]) == 0
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "pgd.json").is_file()

    out = tmp_path / "synthetic.hdf5"
    capsys.readouterr()
    assert cli(["pgd", "sample", "--ckpt", str(ckpt), "--policy", str(collected / "expert"), "--coeff", "1.0",
                "--n-traj", "8", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    syn = load_dataset(out)
    assert summary["transitions"] == len(syn) and syn.metadata["kind"] == "pgd"
    assert syn.metadata["guidance_coeff"] == 1.0 and np.isfinite(summary["target_log_likelihood"])
    assert (np.abs(syn.actions) <= 1).all() and len(syn.episode_bounds()) == 8

    for cfg, agent in (("configs/agents/td3bc_tiny.yaml", "td3bc"), ("configs/agents/iql_tiny.yaml", "iql")):
        run = tmp_path / agent
        assert cli(["train", cfg, f"data.path={data}", f"out_dir={run}", "data.mode=pgd",
                    f"data.diffusion_ckpt={ckpt}", "data.n_traj=4"]) == 0
        ev = json.loads((run / "eval.json").read_text())
        assert ev["final"]["step"] == 20 and np.isfinite(ev["final"]["normalized_score"])
        assert [s["guided"] for s in ev["synthetic"]] == [False, True]  # unguided first, then regenerated at step 10
        assert (run / "policy" / "policy.json").is_file()

    from worldgen.rl.diagnostics import compare, ensemble_rollouts, train_ensemble
    from worldgen.rl.policy import load_policy

    pol = load_policy(tmp_path / "td3bc")
    real = load_dataset(data)
    dyn, _ = train_ensemble(real, CHEAP_ENV, max_epochs=2, hidden=[32, 32])
    ar = ensemble_rollouts(dyn, pol, real, n_traj=4, horizon=8)
    res = compare({"pgd": syn, "ar": ar, "real": real}, pol, CHEAP_ENV, max_transitions=50)
    assert res["real"]["dynamics_mse"] < 1e-6  # real transitions are the simulator's own
    assert res["pgd"]["dynamics_mse"] > 0 and np.isfinite(res["ar"]["target_log_likelihood"])


def test_sacn_agent_trains_through_lightning_on_real_data(collected, tmp_path):
    run = tmp_path / "sacn"
    assert cli(["train", "configs/agents/td3bc_tiny.yaml", f"data.path={collected / 'medium.hdf5'}", f"out_dir={run}",
                "agent=sacn", "sacn.hidden=[32,32]", "sacn.num_critics=3", "sacn.eta=1.0"]) == 0
    ev = json.loads((run / "eval.json").read_text())
    assert ev["agent"] == "sacn" and ev["synthetic"] == [] and ev["final"]["step"] == 20
    assert np.isfinite(ev["final"]["normalized_score_self_calibrated"])
