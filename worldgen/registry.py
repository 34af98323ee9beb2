"""The one registry of model families: what trains them, what their configs are, how their checkpoints load and
which ``worldgen generate`` leaf runs them.

An experiment YAML names its ``task``; a checkpoint folder's ``config.yaml`` carries the same ``task``. Each
``Family`` below is keyed by that task and names, as ``"module"`` / ``"module:attribute"`` strings resolved only when
used (so ``worldgen --help`` imports none of them):

* ``task_module``: the ``worldgen.lit`` module that trains it. It defines ``Config`` (the experiment dataclass,
  a ``worldgen.config.ExperimentConfig``) and ``build(cfg) -> (LightningModule, LightningDataModule)``, optionally
  ``export(cfg, module, out_dir)`` for extra inference artefacts; a task whose loop is not a Lightning one
  (``ravl``) defines ``train(cfg, command)`` instead of ``build`` and runs and writes everything itself;
* ``config_cls``: that experiment dataclass (default ``<task_module>:Config``);
* ``load``: ``function(folder, device=...)`` that loads a trained folder of this task (``worldgen.ckpt`` under the
  hood); ``worldgen checkpoints verify`` and the demo load shipped checkpoints through it;
* ``generate``: the ``worldgen generate <task>`` leaf, ``(help, "module:configure")``.

``TASKS`` (task -> trainer module), ``LOADERS`` (task -> loader) and ``GENERATE`` (task -> CLI leaf) are derived
from ``FAMILIES``; nothing else keeps a list of tasks. Layer 9: above ``lit`` (it names lit modules), below the
entry points (``worldgen.commands``, ``worldgen.cli``, ``worldgen.checkpoints``), which look tasks up here.
Adding a family: docs/architecture.md, "Adding a model family".
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional, Sequence


@dataclass(frozen=True)
class Family:
    task: str  # the `task` of experiment YAMLs and checkpoint config.yaml files
    summary: str  # one line for help texts and docs
    task_module: str  # worldgen.lit module: Config + build(cfg) (or train(cfg, command))
    config_cls: str = ""  # "module:Class" of the experiment config; "" = "<task_module>:Config"
    load: Optional[str] = None  # "module:function(folder, device)" loading a trained folder; None = not loadable
    generate: Optional[tuple[str, str]] = None  # (help, "module:configure") of `worldgen generate <task>`

    def trainer(self) -> ModuleType:
        return importlib.import_module(self.task_module)

    def config(self) -> type:
        return resolve(self.config_cls or f"{self.task_module}:Config")

    def loader(self) -> Callable[..., Any]:
        if self.load is None:
            raise KeyError(f"task {self.task!r} has no checkpoint loader")
        return resolve(self.load)


FAMILIES: tuple[Family, ...] = (
    Family("toy", "tiny regression MLP that proves the training stack (DDP, nodes, resume)", "worldgen.lit.toy"),
    Family("vq_tokenizer", "DrivingWorld VQ video tokenizer", "worldgen.lit.tokenizer",
           load="worldgen.tokenizer.vq:load_tokenizer"),
    Family("drivingworld", "DrivingWorld spatial-temporal GPT", "worldgen.lit.worldmodel",
           load="worldgen.worldmodel.generate:load_model",
           generate=("long driving rollout with the DrivingWorld GPT", "worldgen.commands.generate:configure_drivingworld")),
    Family("artv", "ART-V masked-diffusion frame generator", "worldgen.lit.artv",
           load="worldgen.artv.generate:load_checkpoint",
           generate=("frame-by-frame text/image-to-video with ART-V", "worldgen.commands.generate:configure_artv")),
    Family("frame_ae", "per-frame autoencoder: ART-V's optional latent space", "worldgen.lit.frame_ae",
           load="worldgen.artv.autoencoder:load_autoencoder"),
    Family("pgd", "policy-guided trajectory diffusion", "worldgen.lit.pgd",
           load="worldgen.rl.pgd:load_trajectory_model"),
    Family("agent", "offline-RL agents (TD3+BC, IQL, SAC-N) on real / unguided / PGD data", "worldgen.lit.agents"),
    Family("ravl", "RAVL / Base offline model-based RL (its own loop: the module defines train)", "worldgen.lit.ravl",
           config_cls="worldgen.rl.ravl:RAVLConfig", load="worldgen.rl.ravl:load_checkpoint"),
    Family("fvd_sim", "simulator-trained video encoder: the FVD detector `--detector sim:PATH` (its own loop)",
           "worldgen.eval.sim_detector", load="worldgen.eval.sim_detector:load_sim_encoder"),
)
REGISTRY: dict[str, Family] = {f.task: f for f in FAMILIES}
TASKS: dict[str, str] = {f.task: f.task_module for f in FAMILIES}
LOADERS: dict[str, str] = {f.task: f.load for f in FAMILIES if f.load}
GENERATE: dict[str, tuple[str, str]] = {f.task: f.generate for f in FAMILIES if f.generate}


def resolve(spec: str) -> Any:
    """The attribute a ``"module:attribute"`` spec names (importing the module)."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def family(task: str) -> Family:
    """The family trained by ``task``; a ``ConfigError`` naming the valid tasks otherwise."""
    from worldgen.config import ConfigError

    if task not in REGISTRY:
        raise ConfigError(f"unknown task '{task}'. Valid tasks: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[task]


def task_module(task: str) -> ModuleType:
    """The ``worldgen.lit`` module that trains ``task``."""
    return family(task).trainer()


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """Load an experiment YAML into its task's Config dataclass (errors name key, file and valid keys)."""
    from worldgen import config as C

    return C.load(family(C.task_of(path, overrides)).config(), path, overrides)


__all__ = ["Family", "FAMILIES", "REGISTRY", "TASKS", "LOADERS", "GENERATE", "resolve", "family", "task_module",
           "load_experiment"]
