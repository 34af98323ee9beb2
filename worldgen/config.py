"""Typed experiment configs: dataclass schemas, YAML + ``key=value`` overrides through ``OmegaConf.structured``.

An experiment YAML names its ``task``; the task's dataclass (see ``worldgen.registry``) is the schema. Loading
merges schema defaults <- YAML <- overrides and returns plain dataclass objects (``OmegaConf.to_object``), so model
code never sees OmegaConf. Unknown keys and wrong types are errors that name the key, the file and what is valid;
so are NaN/inf in any number and, for the fields whose meaning is the same in every config (``RANGES``: batch
sizes, learning rates, ensemble sizes, epochs ...), a value out of range.
"""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key, the source and what was expected."""


@dataclass
class TrainerConfig:
    accelerator: str = "auto"  # auto | cpu | gpu | cuda | mps
    devices: Any = "auto"  # "auto", a count, or a list of device indices
    num_nodes: int = 1  # machines; node rank comes from the launcher's environment (torchrun / SLURM)
    strategy: str = "auto"  # auto | ddp | ddp_spawn | fsdp | deepspeed (deepspeed needs the extra installed)
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed
    max_steps: int = -1  # optimizer steps; -1 = no step limit
    max_epochs: Optional[int] = None  # None = no epoch limit when max_steps is set
    gradient_clip_val: Optional[float] = 1.0  # global grad-norm clip; None disables
    accumulate_grad_batches: int = 1  # micro-batches per optimizer step
    ckpt_every_n_steps: int = 1000  # optimizer steps between checkpoints (last.ckpt is always kept)
    keep_top_k: int = 1  # periodic step checkpoints kept besides last.ckpt (-1 keeps all)
    resume: Optional[str] = None  # None | "last" | path to a .ckpt
    log_every_n_steps: int = 50  # optimizer steps between logged rows
    val_check_interval: Optional[float] = None  # Lightning semantics; None = once per epoch
    limit_val_batches: Optional[float] = None  # None = all validation batches
    loggers: list = field(default_factory=lambda: ["csv", "tensorboard"])  # any of csv, tensorboard
    progress_bar: bool = True
    deterministic: bool = False  # torch deterministic algorithms (slower)
    num_sanity_val_steps: int = 0


@dataclass
class ExperimentConfig:
    """Fields every experiment has; each task's config subclasses this and adds model/data/optim sections."""

    task: str = "?"  # which family in worldgen.registry trains this config
    name: str = "experiment"  # run name; outputs go to out_dir
    seed: int = 0  # seeds python, numpy and torch on every rank
    out_dir: str = "runs/experiment"  # checkpoints, logs and the resolved config land here
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def _source_name(source: str | os.PathLike | None) -> str:
    return str(source) if source is not None else "<config>"


def _check_keys(node: Any, schema: Any, path: str, source: str) -> None:
    """Raise ConfigError for any key in ``node`` that the structured ``schema`` does not declare."""
    if not isinstance(node, DictConfig) or not isinstance(schema, DictConfig):
        return
    typed = OmegaConf.get_type(schema)
    for key in node.keys():
        full = f"{path}.{key}" if path else str(key)
        if dataclasses.is_dataclass(typed) and key not in schema:
            valid = ", ".join(sorted(str(k) for k in schema.keys()))
            raise ConfigError(f"{source}: unknown key '{full}'. Valid keys here: {valid}")
        if key in schema:
            _check_keys(node[key], schema._get_node(key), full, source)


def _expected_type(schema_cls: type, dotted: str) -> str:
    cls: Any = schema_cls
    hint: Any = None
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(cls):
            break
        hints = typing.get_type_hints(cls)
        hint = hints.get(part)
        cls = hint
    return getattr(hint, "__name__", None) or str(hint)


def _merge(base: DictConfig, node: DictConfig, schema_cls: type, source: str) -> DictConfig:
    _check_keys(node, base, "", source)
    try:
        return OmegaConf.merge(base, node)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        msg = str(e).splitlines()[0]
        raise ConfigError(
            f"{source}: field '{key}' expects {_expected_type(schema_cls, key)}: {msg}"
        ) from None


def read_yaml(path: str | os.PathLike) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        node = OmegaConf.load(path)
    except Exception as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return node


def parse_overrides(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except Exception as e:
        raise ConfigError(f"overrides {list(overrides)}: {e}") from None


# Fields whose name means the same in every config that has one: (lowest allowed, True if the bound is allowed).
RANGES: dict[str, tuple[float, bool]] = {
    "batch_size": (1, True), "num_workers": (0, True), "lr": (0, False), "weight_decay": (0, True),
    "num_nodes": (1, True), "accumulate_grad_batches": (1, True), "num_critics": (1, True),
    "ensemble_size": (1, True), "num_elites": (1, True), "epochs": (1, True), "steps_per_epoch": (1, True),
}


def _range_of(name: str) -> tuple[float, bool] | None:
    return RANGES.get(name) or (RANGES["lr"] if name.endswith("_lr") else None)


def _problem(name: str, value: Any) -> str | None:
    """What is wrong with field ``name`` holding ``value`` (None: nothing)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"is {value}; expected a finite number"
    bound = _range_of(name)
    if bound is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        low, inclusive = bound
        if value < low or (value == low and not inclusive):
            return f"must be {'>=' if inclusive else '>'} {low:g}, got {value}"
    return None


def check_values(obj: Any, source: str, path: str = "", name: str = "") -> None:
    """Raise ``ConfigError`` naming the first field of the loaded config ``obj`` (dataclasses, lists, dicts) that is
    NaN/inf or outside its ``RANGES`` entry (list items are checked under their list's field name)."""
    if dataclasses.is_dataclass(obj):
        children = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    elif isinstance(obj, dict):
        children = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, (list, tuple)):
        children = [(f"[{i}]", v) for i, v in enumerate(obj)]
    else:
        return
    for key, value in children:
        full = f"{path}{key}" if key.startswith("[") else f"{path}.{key}" if path else key
        field_name = name if key.startswith("[") else key
        problem = _problem(field_name, value)
        if problem:
            raise ConfigError(f"{source}: field '{full}' {problem}")
        check_values(value, source, full, field_name)


def check_device(device: str, what: str = "device") -> str:
    """``device`` once torch can use it: a valid device string whose backend (CUDA, MPS) exists on this machine and,
    for ``cuda:N``, a GPU with that index; else ``ValueError`` naming ``what``."""
    import torch

    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{what} {device!r}: not a torch device (expected cpu, cuda, cuda:N or mps)") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{what} {device!r}: CUDA is not available on this machine; use cpu")
    if d.type == "cuda" and d.index is not None and d.index >= torch.cuda.device_count():
        raise ValueError(f"{what} {device!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    if d.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{what} {device!r}: MPS is not available on this machine; use cpu")
    return device


def load(
    schema_cls: type,
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    data: dict | None = None,
) -> Any:
    """Build a ``schema_cls`` instance from defaults, an optional YAML file (or dict) and ``key=value`` overrides."""
    merged = OmegaConf.structured(schema_cls)
    if path is not None:
        merged = _merge(merged, read_yaml(path), schema_cls, _source_name(path))
    if data is not None:
        merged = _merge(merged, OmegaConf.create(data), schema_cls, "<dict>")
    if overrides:
        merged = _merge(merged, parse_overrides(overrides), schema_cls, "command-line override")
    try:
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"{_source_name(path)}: field '{key}' is required but missing ({e})") from None
    check_values(cfg, _source_name(path) + (" with overrides" if overrides else ""))
    return cfg


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def save(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    from worldgen.io import write_text

    write_text(path, to_yaml(cfg))


def to_dict(cfg: Any) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def task_of(path: str | os.PathLike, overrides: Sequence[str] = ()) -> str:
    """The ``task`` an experiment YAML names (an override ``task=...`` wins)."""
    for item in overrides:
        if item.startswith("task="):
            return item.split("=", 1)[1]
    node = read_yaml(path)
    task = node.get("task")
    if not task:
        raise ConfigError(f"{path}: missing 'task' (which model this config trains)")
    return str(task)


__all__ = [
    "ConfigError", "TrainerConfig", "ExperimentConfig", "load", "save", "to_yaml", "to_dict", "read_yaml",
    "parse_overrides", "task_of", "ListConfig", "RANGES", "check_values", "check_device",
]
