"""One registry of model families: the training tasks, the checkpoint loaders and the ``generate`` leaves are all
derived from it, and each entry points at code that exists."""
import inspect

import pytest

from worldgen import checkpoints, registry
from worldgen.config import ConfigError, ExperimentConfig

FAMILIES = ["toy", "vq_tokenizer", "drivingworld", "artv", "frame_ae", "pgd", "agent", "ravl", "fvd_sim"]
DEMO_TASKS = {"vq_tokenizer", "drivingworld", "artv"}  # the families whose checkpoints the demo loads


def test_every_family_is_registered_once():
    assert [f.task for f in registry.FAMILIES] == FAMILIES and set(registry.REGISTRY) == set(FAMILIES)


@pytest.mark.parametrize("task", FAMILIES)
def test_entry_has_config_class_and_trainer(task):
    fam = registry.family(task)
    cfg_cls = fam.config()
    assert issubclass(cfg_cls, ExperimentConfig) or task == "ravl"  # RAVL's loop config carries task/out_dir itself
    assert cfg_cls().task == task, "the config class's default task must be the registered one"
    mod = fam.trainer()
    assert mod.__name__ == registry.TASKS[task] and mod.Config is cfg_cls
    assert hasattr(mod, "build") or hasattr(mod, "train")


@pytest.mark.parametrize("task", sorted(registry.LOADERS))
def test_loaders_take_a_folder_and_a_device(task):
    params = inspect.signature(registry.family(task).loader()).parameters
    assert len(params) >= 2 and "device" in params


def test_tasks_loaders_and_checkpoints_agree():
    assert DEMO_TASKS <= set(registry.LOADERS) and checkpoints.LOADERS is registry.LOADERS
    for task in registry.LOADERS:
        assert checkpoints.loader_for(task) is registry.family(task).loader()
    with pytest.raises(checkpoints.CheckpointError, match="no loader"):
        checkpoints.loader_for("toy")
    assert set(registry.GENERATE) <= set(registry.TASKS)


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match="Valid tasks: agent, artv"):
        registry.family("nope")
