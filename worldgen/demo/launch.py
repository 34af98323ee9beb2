"""``worldgen demo``: start the Gradio demo (``worldgen.demo.app``) on the shipped checkpoints.

    worldgen demo [--host 127.0.0.1] [--port 7860] [--devices auto|cpu|cuda:0,cuda:1] [--checkpoints checkpoints]
                  [--tokenizer DIR] [--gpt DIR] [--artv DIR] [--data data/driving-train] [--i3d PATH]
                  [--max-horizon 2000] [--threads 1]

Binds to 127.0.0.1 unless ``--host`` says otherwise. One worker per device (every visible GPU with ``auto``, else
the CPU). ``python -m worldgen.demo`` does the same.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def main(host: str = "127.0.0.1", port: int = 7860, devices: str = "auto", checkpoints: str = "checkpoints",
         data: str | None = None, i3d: str | None = None, max_horizon: int = 2000, threads: int = 1,
         tokenizer: str | None = None, gpt: str | None = None, artv: str | None = None, block: bool = True):
    """Start the demo; with ``block=False`` returns ``(demo, app, url)`` while the server runs in the background."""
    if not Path(checkpoints).is_dir() and not (tokenizer or gpt or artv):
        raise FileNotFoundError(f"{checkpoints}: checkpoints folder not found (pass --checkpoints DIR)")
    if data is not None and not (Path(data) / "manifest.json").is_file():
        raise FileNotFoundError(f"{data}: no manifest.json (pass a folder made by `worldgen data driving`)")
    if i3d is not None and not Path(i3d).is_file():
        raise FileNotFoundError(f"{i3d}: I3D weights file not found")
    from worldgen.demo.pipelines import parse_devices

    parse_devices(devices)  # a bad --devices fails before the (slow) Gradio import
    from worldgen.demo import app
    cfg = app.DemoConfig(checkpoints=checkpoints, devices=devices, data=data, i3d=i3d, threads=threads,
                         tokenizer=tokenizer, gpt=gpt, artv=artv)
    cfg.limits.max_horizon = max_horizon
    return app.launch(cfg, host=host, port=port, block=block)


def configure_cli(parser: argparse.ArgumentParser):
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--devices", default="auto", help="auto | cpu | cuda | cuda:0,cuda:1 (one worker per device)")
    parser.add_argument("--checkpoints", default="checkpoints",
                        help="folder with tokenizer-tiny/, gpt-tiny/, artv-tiny/ (safetensors + config.yaml)")
    for name in ("tokenizer", "gpt", "artv"):
        parser.add_argument(f"--{name}", help=f"{name} checkpoint: a folder name inside --checkpoints or a local "
                                              f"folder (config.yaml + model.safetensors; default {name}-tiny)")
    parser.add_argument("--data", help="driving dataset folder whose held-out episodes become starting contexts")
    parser.add_argument("--i3d", help="local I3D weights for the Drift tab (random-weight detector otherwise)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for the CPU worker")
    parser.add_argument("--max-horizon", type=int, default=2000, help="longest rollout a request may ask for")

    def run(a: argparse.Namespace) -> int:
        if not 1 <= a.max_horizon <= 100_000:
            raise ValueError(f"--max-horizon must be between 1 and 100000, got {a.max_horizon}")
        main(a.host, a.port, a.devices, a.checkpoints, a.data, a.i3d, a.max_horizon, a.threads, a.tokenizer, a.gpt,
             a.artv)
        return 0
    return run
