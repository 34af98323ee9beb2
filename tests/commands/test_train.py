"""``worldgen train``: the registry picks the task module; ``main(cfg)`` trains an experiment config directly."""
from pathlib import Path

import pytest

from worldgen import config as C
from worldgen.cli import main as cli
from worldgen.commands.train import load_experiment, main

ROOT = Path(__file__).resolve().parents[2]


def test_main_trains_a_toy_config(tmp_path):
    cfg = load_experiment(ROOT / "configs/toy/mlp.yaml", [f"out_dir={tmp_path}", "trainer.progress_bar=false",
                                                          "trainer.max_steps=2", "trainer.loggers=[csv]"])
    main(cfg, command="test")
    assert C.read_yaml(tmp_path / "card.json")["command"] == "test" and (tmp_path / "model.safetensors").is_file()


def test_unknown_task_names_the_valid_ones(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: nope\n")
    with pytest.raises(C.ConfigError, match="unknown task 'nope'.*drivingworld"):
        load_experiment(bad)
    assert cli(["train", str(bad)]) == 2 and "Valid tasks" in capsys.readouterr().err
