"""``worldgen ravl train|edge-of-reach``: ``train_main(RAVLConfig)`` restores the caller's threads; ``edge_main``
runs (or only redraws) the reproduction from an ``EdgeConfig``."""
from pathlib import Path

import torch

from worldgen.commands.ravl import EdgeConfig, edge_main, load_ravl_config, train_main

TINY = Path(__file__).resolve().parents[2] / "configs" / "ravl" / "pointmass_tiny.yaml"
SMALL = ["epochs=1", "steps_per_epoch=5", "eval_episodes=1", "dynamics.max_epochs=1", "q_eval_states=16",
         "agent.hidden=[8]"]


def test_train_main(tmp_path):
    threads = torch.get_num_threads()
    rows = train_main(load_ravl_config(TINY, [*SMALL, f"out_dir={tmp_path}"]), progress=False, threads=2)
    assert len(rows) == 1 and torch.get_num_threads() == threads


def test_edge_main_and_replot(tmp_path):
    cfg = EdgeConfig(out=str(tmp_path), config=str(TINY), overrides=SMALL, variants=["base"], workers=1)
    summary = edge_main(cfg)
    assert list(summary) == ["base_seed0"] and (tmp_path / "edge_of_reach.csv").is_file()
    (tmp_path / "edge_of_reach.png").unlink()
    cfg.replot = True
    assert edge_main(cfg) == summary and (tmp_path / "edge_of_reach.png").is_file()


def test_edge_main_penalty_baselines_on_both_dynamics(tmp_path):
    cfg = EdgeConfig(out=str(tmp_path), config=str(TINY), overrides=SMALL, variants=["mopo", "mobile"], workers=1,
                     dynamics=["true", "learned"])
    summary = edge_main(cfg)
    assert sorted(summary) == ["mobile_learned_seed0", "mobile_seed0", "mopo_learned_seed0", "mopo_seed0"]
    for v in ("mopo", "mobile"):
        assert summary[f"{v}_seed0"]["mean_penalty"] == 0.0  # the exact model has no uncertainty to penalise
        assert summary[f"{v}_learned_seed0"]["mean_penalty"] > 0.0
        assert "return_true_over_learned" in summary[f"{v}_seed0"]
    cfg.replot = True
    assert edge_main(cfg) == summary  # the CSV's dynamics column survives a replot
