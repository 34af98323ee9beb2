"""Typed configs: YAML + overrides into dataclasses, and clear errors for bad input."""
from pathlib import Path

import pytest

from worldgen import config as C
from worldgen.lit.toy import Config as ToyConfig
from worldgen.registry import load_experiment

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "configs/toy/mlp.yaml"


def test_load_yaml_and_overrides_into_dataclasses():
    cfg = load_experiment(TOY, ["trainer.max_steps=7", "model.hidden=8", "seed=3"])
    assert isinstance(cfg, ToyConfig)
    assert cfg.trainer.max_steps == 7 and cfg.model.hidden == 8 and cfg.seed == 3
    assert isinstance(cfg.trainer, C.TrainerConfig)


def test_unknown_key_in_file_names_key_file_and_valid_keys(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: toy\nmodel:\n  hiden: 8\n")
    with pytest.raises(C.ConfigError) as e:
        load_experiment(bad)
    msg = str(e.value)
    assert "model.hiden" in msg and str(bad) in msg and "hidden" in msg and "in_dim" in msg


def test_unknown_top_level_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: toy\nlearning_rate: 0.1\n")
    with pytest.raises(C.ConfigError, match="unknown key 'learning_rate'.*Valid keys here:.*optim"):
        load_experiment(bad)


def test_unknown_override_key():
    with pytest.raises(C.ConfigError, match="command-line override: unknown key 'trainer.max_step'.*max_steps"):
        load_experiment(TOY, ["trainer.max_step=3"])


def test_wrong_type_names_field_and_type(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: toy\ntrainer:\n  max_steps: lots\n")
    with pytest.raises(C.ConfigError) as e:
        load_experiment(bad)
    assert "trainer.max_steps" in str(e.value) and "int" in str(e.value) and str(bad) in str(e.value)


def test_missing_file_and_missing_task(tmp_path):
    with pytest.raises(C.ConfigError, match="not found"):
        load_experiment(tmp_path / "nope.yaml")
    no_task = tmp_path / "no_task.yaml"
    no_task.write_text("seed: 1\n")
    with pytest.raises(C.ConfigError, match="missing 'task'"):
        load_experiment(no_task)


def test_unknown_task_lists_tasks(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("task: tyo\n")
    with pytest.raises(C.ConfigError, match="unknown task 'tyo'.*toy"):
        load_experiment(f)


def test_malformed_override_and_yaml(tmp_path):
    with pytest.raises(C.ConfigError, match="key=value"):
        load_experiment(TOY, ["trainer.max_steps"])
    f = tmp_path / "broken.yaml"
    f.write_text("task: toy\nmodel: [unclosed\n")
    with pytest.raises(C.ConfigError, match="not valid YAML"):
        load_experiment(f)


def test_saved_config_round_trips(tmp_path):
    cfg = load_experiment(TOY, ["model.depth=3", "trainer.loggers=[csv,tensorboard]"])
    C.save(cfg, tmp_path / "config.yaml")
    again = load_experiment(tmp_path / "config.yaml")
    assert again == cfg
    assert not list(tmp_path.glob(".*.tmp"))
