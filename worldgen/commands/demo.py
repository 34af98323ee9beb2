"""``worldgen demo``: start the Gradio demo (``worldgen.demo``) on the shipped checkpoints.

    worldgen demo [--host 127.0.0.1] [--port 7860] [--devices auto|cpu|cuda:0,cuda:1] [--checkpoints checkpoints]
                  [--tokenizer DIR] [--gpt DIR] [--artv DIR] [--data data/driving-train] [--i3d PATH]
                  [--max-horizon 2000] [--threads 1] [--drive-batch 4]

Binds to 127.0.0.1 unless ``--host`` says otherwise; one worker per device, which runs up to ``--drive-batch``
concurrent Driving requests with the same horizon and sampling settings as one batched rollout. The launcher is
``worldgen.demo.launch.main`` (folder checks, device parsing before the slow Gradio import, ``app.launch``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Optional

from worldgen.commands import Handler, from_args


@dataclass
class DemoLaunchConfig:
    host: str = "127.0.0.1"  # address to bind (127.0.0.1: this machine only)
    port: int = 7860
    devices: str = "auto"  # auto | cpu | cuda | cuda:0,cuda:1 (one worker per device)
    checkpoints: str = "checkpoints"  # folder with tokenizer-tiny/, gpt-tiny/, artv-tiny/
    tokenizer: Optional[str] = None  # checkpoint name inside `checkpoints` or a local folder (default tokenizer-tiny)
    gpt: Optional[str] = None  # same, default gpt-tiny
    artv: Optional[str] = None  # same, default artv-tiny
    data: Optional[str] = None  # driving dataset folder whose held-out episodes become starting contexts
    i3d: Optional[str] = None  # local I3D weights for the Drift tab (random-weight detector otherwise)
    threads: int = 1  # torch CPU threads for the CPU worker
    max_horizon: int = 2000  # longest rollout a request may ask for (1 .. 100000)
    drive_batch: int = 4  # concurrent Driving requests one device rolls out as one batch (1 .. 64; 1 = one at a time)
    block: bool = True  # False: return (demo, app, url) while the server runs in the background


def main(cfg: DemoLaunchConfig):
    """Start the demo; with ``block=False`` returns ``(demo, app, url)`` while the server runs in the background."""
    from worldgen.demo.launch import main as launch

    if not 1 <= cfg.max_horizon <= 100_000:
        raise ValueError(f"--max-horizon must be between 1 and 100000, got {cfg.max_horizon}")
    if not 1 <= cfg.drive_batch <= 64:
        raise ValueError(f"--drive-batch must be between 1 and 64, got {cfg.drive_batch}")
    return launch(cfg.host, cfg.port, cfg.devices, cfg.checkpoints, cfg.data, cfg.i3d, cfg.max_horizon, cfg.threads,
                  cfg.tokenizer, cfg.gpt, cfg.artv, block=cfg.block, drive_batch=cfg.drive_batch)


def configure(parser: argparse.ArgumentParser) -> Handler:
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
    parser.add_argument("--drive-batch", type=int, default=4,
                        help="concurrent Driving requests (same horizon and sampling) one device runs as one batched "
                             "rollout, each with exactly its solo frames (1 = one at a time)")

    def handler(args: argparse.Namespace) -> int:
        main(from_args(DemoLaunchConfig, args))
        return 0
    return handler


__all__ = ["DemoLaunchConfig", "main", "configure"]
