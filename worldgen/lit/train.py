"""Train one experiment config with its task module: ``fit(cfg, task_module, command)``.

The resolved config is saved to ``out_dir/config.yaml`` before training; at the end rank 0 writes the model's
weights as ``out_dir/model.safetensors`` with a JSON card (command, config, steps, wall time, final metrics).
Which module trains which ``task`` is the registry's business (``worldgen.registry``, a layer above); the command
``worldgen train CONFIG.yaml [key=value ...]`` (``worldgen.commands.train``) looks it up and calls ``fit``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from worldgen import config as C


def _metrics(trainer) -> dict:
    out = {}
    for k, v in trainer.callback_metrics.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            pass
    return out


def fit(cfg: Any, mod: ModuleType, command: str = "") -> Any:
    """Train ``cfg`` (the Config of task module ``mod``); returns the fitted Lightning module (or, for a task with
    its own loop, whatever its ``train`` returns)."""
    import lightning as L

    from worldgen.io import save_weights, write_json
    from worldgen.lit.trainer import build_trainer, clean_stale_temp_files, resolve_resume

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
