"""``worldgen train CONFIG.yaml [key=value ...]``: train whatever task the config names.

The resolved config is saved to ``out_dir/config.yaml`` before training; at the end rank 0 writes the model's
weights as ``out_dir/model.safetensors`` with a JSON card (command, config, steps, wall time, final metrics).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from worldgen import config as C
from worldgen.lit import TASKS


def task_module(task: str):
    if task not in TASKS:
        raise C.ConfigError(f"unknown task '{task}'. Valid tasks: {', '.join(sorted(TASKS))}")
    name = TASKS[task]
    if importlib.util.find_spec(name) is None:
        raise NotImplementedError(f"task '{task}' is not built yet ({name} does not exist)")
    return importlib.import_module(name)


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """Load an experiment YAML into its task's Config dataclass (errors name key, file and valid keys)."""
    task = C.task_of(path, overrides)
    return C.load(task_module(task).Config, path, overrides)


def _metrics(trainer) -> dict:
    out = {}
    for k, v in trainer.callback_metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def main(cfg: Any, command: str = "") -> Any:
    """Train ``cfg`` (a task Config); returns the fitted Lightning module."""
    import lightning as L

    from worldgen.io import save_weights, write_json
    from worldgen.lit.trainer import build_trainer, clean_stale_temp_files, resolve_resume

    mod = task_module(cfg.task)
    if hasattr(mod, "train"):  # a task with its own (non-Lightning) loop runs and writes everything itself
        return mod.train(cfg, command=command or " ".join(sys.argv))
    out_dir = Path(cfg.out_dir)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module, datamodule = mod.build(cfg)
    trainer = build_trainer(cfg.trainer, out_dir)
    if trainer.is_global_zero:
        out_dir.mkdir(parents=True, exist_ok=True)
        clean_stale_temp_files(out_dir)
        C.save(cfg, out_dir / "config.yaml")
    ckpt_path = resolve_resume(cfg.trainer, out_dir)
    t0 = time.time()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        model = getattr(module, "model", module)
        save_weights(out_dir / "model.safetensors", model.state_dict(), {"task": cfg.task})
        if hasattr(mod, "export"):
            mod.export(cfg, module, out_dir)
        write_json(out_dir / "card.json", {
            "task": cfg.task, "command": command or " ".join(sys.argv), "global_step": trainer.global_step,
            "resumed_from": ckpt_path, "wall_time_s": round(time.time() - t0, 2), "metrics": _metrics(trainer),
            "config": C.to_dict(cfg),
        })
    return module


def _log_to_stderr() -> None:
    logger = logging.getLogger("worldgen")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def configure_cli(parser: argparse.ArgumentParser):
    parser.add_argument("config", help="experiment YAML under configs/ (its `task` picks the model)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_steps=100 seed=1")

    def run(args: argparse.Namespace) -> int:
        _log_to_stderr()
        cfg = load_experiment(args.config, args.overrides)
        main(cfg, command="worldgen train " + " ".join([args.config, *args.overrides]))
        return 0
    return run
