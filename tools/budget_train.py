"""Train a config for a wall-clock budget: probe the step time, then train with ``trainer.max_steps`` set to fit.

    python tools/budget_train.py CONFIG.yaml --budget-s 420 [--probe-steps 60] [key=value ...]

The learning-rate schedule (warm-up + cosine, ``worldgen.lit.optim``) is a function of ``trainer.max_steps``, so a
run cut off by a timer would stop mid-schedule. This script first trains ``--probe-steps`` steps of the same config
(same data, batch and precision; nothing written) to measure the seconds per optimizer step after warm-up, then
runs ``worldgen train`` in the same process with ``trainer.max_steps`` = what fits in the budget left, less the
probe's set-up time (the real run loads the data again) and ``--margin-s``. Meant for a lent GPU with a hard time
limit (tools/gpu_gpt_small.sh); on a CPU it works the same. Prints the probe as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def probe(cfg, mod, steps: int) -> dict:
    """Seconds per optimizer step (median over the steps after the first 10) and the set-up seconds."""
    import lightning as L
    import torch

    stamps: list[float] = []

    class Stamp(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module, datamodule = mod.build(cfg)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision,
                        max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[Stamp()],
                        enable_model_summary=False, gradient_clip_val=cfg.trainer.gradient_clip_val)
    trainer.fit(module, datamodule=datamodule)
    if len(stamps) < 12:
        raise RuntimeError(f"probe ran {len(stamps)} steps; need at least 12 (--probe-steps)")
    gaps = sorted(b - a for a, b in zip(stamps[10:], stamps[11:]))
    return {"step_s": gaps[len(gaps) // 2], "setup_s": stamps[0] - t0, "probe_s": time.perf_counter() - t0,
            "steps": len(stamps)}


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--budget-s", type=float, required=True, help="wall-clock seconds for probe + training")
    ap.add_argument("--probe-steps", type=int, default=60)
    ap.add_argument("--margin-s", type=float, default=30.0, help="kept free for validation, export and slack")
    args = ap.parse_intermixed_args(argv)
    t_start = time.perf_counter()

    from worldgen.commands.train import _log_to_stderr, main as train_main
    from worldgen.registry import load_experiment, task_module

    _log_to_stderr()
    cfg = load_experiment(args.config, args.overrides)
    mod = task_module(cfg.task)
    p = probe(cfg, mod, args.probe_steps)
    left = args.budget_s - (time.perf_counter() - t_start) - p["setup_s"] - args.margin_s
    steps = int(left / p["step_s"])
    if steps < 100:
        raise SystemExit(f"budget too small: {left:.0f} s left after the probe fits {steps} steps at "
                         f"{p['step_s'] * 1e3:.1f} ms/step")
    print(json.dumps({"probe": p, "max_steps": steps}), flush=True)
    overrides = [*args.overrides, f"trainer.max_steps={steps}"]
    cfg = load_experiment(args.config, overrides)
    train_main(cfg, command=" ".join(["worldgen train", args.config, *overrides]))
    print(json.dumps({"wall_s": round(time.perf_counter() - t_start, 1), "max_steps": steps}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
