"""Train one experiment config with its task module: ``fit(cfg, task_module, command)``.

The resolved config is saved to ``out_dir/config.yaml`` before training; at the end rank 0 writes the model's
weights as ``out_dir/model.safetensors`` with a JSON card (command, config, steps, wall time, final metrics).
``out_dir`` and ``trainer.resume`` are checked before anything is written: an ``out_dir`` that already holds a
trained model is refused unless the run resumes (``trainer.resume=last``), so a finished run is never overwritten by
accident. A run that fails before its first optimizer step (a dataset that cannot be read ...) removes the
``out_dir`` it created, so a failed start leaves nothing behind.
Which module trains which ``task`` is the registry's business (``worldgen.registry``, a layer above); the command
``worldgen train CONFIG.yaml [key=value ...]`` (``worldgen.commands.train``) looks it up and calls ``fit``.
"""
from __future__ import annotations

import shutil
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

    from worldgen.io import check_output, save_weights, write_json
    from worldgen.lit.trainer import build_trainer, clean_stale_temp_files, resolve_resume

    if hasattr(mod, "train"):  # a task with its own (non-Lightning) loop runs and writes everything itself
        return mod.train(cfg, command=command or " ".join(sys.argv))
    out_dir = check_output(cfg.out_dir, folder=True, what="out_dir")
    ckpt_path = resolve_resume(cfg.trainer, out_dir)
    if ckpt_path is None and (out_dir / "model.safetensors").is_file():
        raise FileExistsError(f"out_dir {out_dir}: already holds a trained model (model.safetensors); continue it "
                              f"with trainer.resume=last, or choose a new out_dir (nothing was changed)")
    new_dir = not out_dir.exists()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module, datamodule = mod.build(cfg)
    trainer = build_trainer(cfg.trainer, out_dir)
    t0 = time.time()
    try:
        if trainer.is_global_zero:
            out_dir.mkdir(parents=True, exist_ok=True)
            clean_stale_temp_files(out_dir)
            C.save(cfg, out_dir / "config.yaml")
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except BaseException:
        if new_dir and trainer.is_global_zero and trainer.global_step == 0:
            shutil.rmtree(out_dir, ignore_errors=True)  # nothing trained yet: leave no half-made run folder
        raise
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
