"""The one loader of checkpoint folders: ``config.yaml`` (the resolved training config) + ``model.safetensors``.

Every model family loads its trained module through here (tokenizer, DrivingWorld GPT, ART·V, frame autoencoder,
PGD, RAVL), so the safety rules live in one place:

* a checkpoint is either a folder *name* inside a checkpoints root (it cannot leave the root, symlinks included)
  or an explicit local folder; URLs are refused (nothing is ever downloaded);
* weights are read from safetensors files only; a folder holding pickled files (``.ckpt``, ``.pt``, ``.bin`` ...)
  is refused outright, so no code path can be tricked into unpickling them;
* the config is read into the family's dataclass through ``worldgen.config`` (unknown keys are errors), the module
  is built from it, and the weights must fit it exactly (strict ``load_state_dict``);
* every error names the folder or file and what was expected.

``load(folder, schema, build)`` does all of it for the common layout; families whose folders hold more than one
module (RAVL: agent + dynamics) or a JSON config (PGD) compose ``check_folder``, ``read_config`` and
``load_state`` themselves. Core layer: imports only ``worldgen.config``, ``worldgen.io`` and third-party code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

CONFIG, WEIGHTS = "config.yaml", "model.safetensors"
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, unsafe or does not fit its config."""


class CheckpointNotFound(CheckpointError, FileNotFoundError):
    """A checkpoint folder or one of its files does not exist (also a ``FileNotFoundError``)."""


@dataclass
class Loaded:
    """What ``load`` returns: the eval-mode module, its config dataclass, the whole saved config as a dict."""
    module: Any
    cfg: Any
    raw: dict
    folder: Path


def resolve(name_or_path: str | Path, root: str | Path = "checkpoints") -> Path:
    """A checkpoint folder: ``name`` inside ``root`` (it must stay inside it) or an existing local folder path."""
    s = str(name_or_path)
    if "://" in s:
        raise CheckpointError(f"checkpoint {s!r}: not a folder in {root}/ nor a local folder (URLs are refused; "
                              f"expected {CONFIG} + {WEIGHTS})")
    if _NAME_RE.match(s) and (Path(root) / s).is_dir():
        folder = (Path(root) / s).resolve()
        if not folder.is_relative_to(Path(root).resolve()):
            raise CheckpointError(f"checkpoint {s!r}: resolves to {folder}, outside {root}/")
        return folder
    path = Path(s).expanduser()
    if not path.is_dir():
        raise CheckpointNotFound(f"checkpoint {s!r}: not a folder in {root}/ nor a local folder "
                                 f"(expected {CONFIG} + {WEIGHTS})")
    return path.resolve()


def check_folder(folder: str | Path, files: Sequence[str] = (CONFIG, WEIGHTS), what: str = "checkpoint") -> Path:
    """``folder`` as a Path; raises unless it holds ``files``; a folder holding pickled files is refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointNotFound(f"{folder}: {what} folder not found (expected {' + '.join(files)})")
    for name in files:
        if not (folder / name).is_file():
            raise CheckpointNotFound(f"{folder}: missing {name} (a {what} folder holds {' + '.join(files)})")
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(f"{folder}: holds pickled files {pickles}; only safetensors weights are accepted")
    return folder


def read_raw(path: str | Path) -> dict:
    """A saved config as a plain dict: YAML (through ``worldgen.config``) or JSON."""
    from omegaconf import OmegaConf

    from worldgen.config import read_yaml
    from worldgen.io import read_json

    path = Path(path)
    if path.suffix == ".json":
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise CheckpointError(f"{path}: expected a JSON object")
        return raw
    return OmegaConf.to_container(read_yaml(path), resolve=True)  # type: ignore[return-value]


def config_section(raw: dict, path: str | Path, task: Optional[str] = None,
                   section: Optional[str] = "model") -> dict:
    """The part of a saved config that builds the module. A training config names its ``task`` (checked against
    ``task``) and keeps the module's config under ``section``; a config without ``task`` or ``section`` is taken
    as the module's config itself. ``section=None``: the whole file."""
    found = raw.get("task")
    if task is not None and found is not None and found != task:
        raise CheckpointError(f"{path}: task is {found!r}, expected {task!r} (wrong checkpoint folder?)")
    if section is None:
        return raw
    if section in raw:
        return raw[section] or {}
    if found is not None:
        raise CheckpointError(f"{path}: no '{section}' section (task {found!r})")
    return raw


def read_config(path: str | Path, schema: type, task: Optional[str] = None,
                section: Optional[str] = "model") -> tuple[Any, dict]:
    """``(schema instance, whole saved config as a dict)`` from a checkpoint's config file (see ``config_section``)."""
    from worldgen.config import ConfigError, load

    raw = read_raw(path)
    try:
        return load(schema, data=config_section(raw, path, task, section)), raw
    except ConfigError as e:
        raise CheckpointError(f"{path}: {str(e).replace('<dict>: ', '')}") from None


def load_state(module, path: str | Path, device: str = "cpu"):
    """Load the safetensors file ``path`` into ``module`` strictly; an error names the file and the first
    missing/unexpected keys or mismatched shapes. Returns the module."""
    from worldgen.io import load_weights

    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: pickled weights are refused; only safetensors files are read")
    if not path.is_file():
        raise CheckpointNotFound(f"{path}: no such weights file")
    try:
        missing, unexpected = module.load_state_dict(load_weights(path, device=device), strict=False)
    except RuntimeError as e:  # shape mismatches surface as RuntimeError even with strict=False
        raise CheckpointError(f"{path}: weights do not fit the config ({str(e)[:300]})") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the config (missing {list(missing)[:5]}, "
                              f"unexpected {list(unexpected)[:5]})")
    return module


def load(folder: str | Path, schema: type, build: Callable[[Any], Any], *, task: Optional[str] = None,
         section: Optional[str] = "model", config: str = CONFIG, weights: str = WEIGHTS,
         device: str = "cpu", what: str = "checkpoint") -> Loaded:
    """Check ``folder``, read its config into ``schema``, ``build(cfg)`` the module, load its weights strictly,
    ``eval()`` it and move it to ``device``. ``what`` names the kind of folder in errors."""
    folder = check_folder(folder, (config, weights), what)
    cfg, raw = read_config(folder / config, schema, task, section)
    module = load_state(build(cfg), folder / weights)
    return Loaded(module.to(device).eval(), cfg, raw, folder)


__all__ = ["CONFIG", "WEIGHTS", "PICKLE_SUFFIXES", "CheckpointError", "CheckpointNotFound", "Loaded", "resolve",
           "check_folder", "read_raw", "config_section", "read_config", "load_state", "load"]
