"""Shipped checkpoints: where they live, how they are loaded, and the check behind ``worldgen checkpoints verify``.

Layout (one folder per checkpoint, copied from a ``worldgen train`` output folder)::

    checkpoints/MANIFEST.json              {"version": 1, "checkpoints": {name: {task, files: {rel: {sha256, bytes}}}}}
    checkpoints/<name>/config.yaml         the resolved training config (``task`` names the model family)
    checkpoints/<name>/model.safetensors   the plain nn.Module's weights
    checkpoints/<name>/card.json           provenance: the command, data, training time, metrics

``tools/make_checkpoint_manifest.py`` writes the manifest. ``verify`` recomputes every hash and size and then loads
each checkpoint with its family's loader (``LOADERS``, from ``worldgen.registry``); the command is
``worldgen.commands.checkpoints``. The folder checks (``resolve``, ``check_folder``: names cannot escape the root,
pickled files are refused, weights come from ``model.safetensors`` only) live in ``worldgen.ckpt``, the one
checkpoint loader every model package uses; they are re-exported here.
"""
from __future__ import annotations

from pathlib import Path

from worldgen.ckpt import CONFIG, PICKLE_SUFFIXES, WEIGHTS, CheckpointError, check_folder, resolve  # noqa: F401
from worldgen.io import read_json, sha256_file
from worldgen.registry import LOADERS, REGISTRY

MANIFEST = "MANIFEST.json"
CARD = "card.json"
SHIPPED = ("tokenizer-tiny", "gpt-tiny", "artv-tiny")  # the folders the demo uses by default
# LOADERS (from worldgen.registry): task named in config.yaml -> "module:function(folder, device) -> model"


def task_of(folder: str | Path) -> str:
    from worldgen.config import read_yaml

    node = read_yaml(Path(folder) / CONFIG)
    task = node.get("task")
    if not task:
        raise CheckpointError(f"{Path(folder) / CONFIG}: no 'task' field, cannot tell which model it holds")
    return str(task)


def loader_for(task: str):
    """The model package's loader for ``task`` (``worldgen.registry``); ``CheckpointError`` for a task without one."""
    if task not in LOADERS:
        raise CheckpointError(f"task {task!r}: no loader (known: {', '.join(sorted(LOADERS))})")
    return REGISTRY[task].loader()


def load_checkpoint(folder: str | Path, device: str = "cpu"):
    """Load the model in ``folder`` (safetensors only) with its package's loader; returns what the loader returns."""
    folder = check_folder(folder)
    return loader_for(task_of(folder))(folder, device=device)


def _module_of(loaded):
    return loaded[0] if isinstance(loaded, tuple) else loaded


def count_params(loaded) -> int:
    model = _module_of(loaded)
    return sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else 0


# ---- manifest -------------------------------------------------------------------------------------------------
def file_entry(path: Path) -> dict:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def build_manifest(root: str | Path) -> dict:
    """Hash and size of every file in every checkpoint folder under ``root`` (hidden files skipped)."""
    root = Path(root)
    entries = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        check_folder(folder)
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        entries[folder.name] = {"task": task_of(folder),
                                "files": {p.relative_to(folder).as_posix(): file_entry(p) for p in files}}
    if not entries:
        raise CheckpointError(f"{root}: no checkpoint folders")
    return {"version": 1, "checkpoints": entries}


def check_hashes(root: Path, name: str, entry: dict) -> list[str]:
    """Problems with one manifest entry's files (missing, wrong size, wrong hash); empty when all match."""
    problems = []
    for rel, want in entry.get("files", {}).items():
        path = root / name / rel
        if ".." in Path(rel).parts or not path.is_file():
            problems.append(f"{name}/{rel}: missing")
        elif path.stat().st_size != want["bytes"]:
            problems.append(f"{name}/{rel}: {path.stat().st_size} bytes, manifest says {want['bytes']}")
        elif sha256_file(path) != want["sha256"]:
            problems.append(f"{name}/{rel}: sha256 differs from the manifest")
    return problems


def verify(root: str | Path = "checkpoints", load: bool = True, device: str = "cpu") -> dict:
    """Check every file listed in ``root/MANIFEST.json`` and load each checkpoint; raise ``CheckpointError`` on any
    problem (all problems are listed). Returns ``{name: {task, files, params}}``."""
    root = Path(root)
    manifest = read_json(root / MANIFEST)
    entries = manifest.get("checkpoints")
    if not isinstance(entries, dict) or not entries:
        raise CheckpointError(f"{root / MANIFEST}: no 'checkpoints' entries")
    problems, report = [], {}
    for name, entry in entries.items():
        found = check_hashes(root, name, entry)
        problems.extend(found)
        report[name] = {"task": entry.get("task"), "files": len(entry.get("files", {})), "hashes_ok": not found}
        if load and not found:
            try:
                report[name]["params"] = count_params(load_checkpoint(root / name, device=device))
            except Exception as e:  # any loader failure is a verification failure, reported by name
                problems.append(f"{name}: does not load ({type(e).__name__}: {e})")
    unlisted = sorted(p.name for p in root.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and p.name not in entries)
    problems.extend(f"{n}: folder not listed in {MANIFEST}" for n in unlisted)
    if problems:
        raise CheckpointError(f"{root}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return report
