"""Task ``ravl``: ``worldgen train configs/ravl/<x>.yaml`` runs the RAVL loop like every other family's config."""
import csv
from pathlib import Path

import torch

from worldgen.cli import main
from worldgen.registry import load_experiment
from worldgen.rl.ravl import AGENT_FILE, RAVLConfig, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "ravl" / "pointmass_tiny.yaml"


def test_every_ravl_config_names_the_task():
    for path in sorted((ROOT / "configs" / "ravl").glob("*.yaml")):
        cfg = load_experiment(path)
        assert isinstance(cfg, RAVLConfig) and cfg.task == "ravl", path


def test_worldgen_train_runs_the_tiny_ravl_config(tmp_path):
    threads = torch.get_num_threads()
    out = tmp_path / "run"
    rc = main(["train", str(TINY), f"out_dir={out}", "epochs=1", "steps_per_epoch=5", "eval_episodes=1",
               "dynamics.max_epochs=1", "q_eval_states=16"])
    assert rc == 0 and (out / AGENT_FILE).is_file() and torch.get_num_threads() == threads
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["step"] == "5"
    cfg, agent, ensemble = load_checkpoint(out)  # the saved config (now with `task`) loads back
    assert cfg.task == "ravl" and ensemble is not None
