"""``worldgen demo``: start the Gradio demo (``worldgen.demo.app``) on the shipped checkpoints.

    worldgen demo [--host 127.0.0.1] [--port 7860] [--devices auto|cpu|cuda:0,cuda:1] [--checkpoints checkpoints]
                  [--tokenizer DIR] [--gpt DIR] [--artv DIR] [--data data/driving-train] [--i3d PATH]
                  [--max-horizon 2000] [--threads 1] [--drive-batch 4]

Binds to 127.0.0.1 unless ``--host`` says otherwise. One worker per device (every visible GPU with ``auto``, else
the CPU). ``python -m worldgen.demo`` does the same. The arguments are parsed in ``worldgen.commands.demo``.
"""
from __future__ import annotations

from pathlib import Path


def main(host: str = "127.0.0.1", port: int = 7860, devices: str = "auto", checkpoints: str = "checkpoints",
         data: str | None = None, i3d: str | None = None, max_horizon: int = 2000, threads: int = 1,
         tokenizer: str | None = None, gpt: str | None = None, artv: str | None = None, block: bool = True,
         drive_batch: int = 4):
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
                         tokenizer=tokenizer, gpt=gpt, artv=artv, drive_batch=drive_batch)
    cfg.limits.max_horizon = max_horizon
    return app.launch(cfg, host=host, port=port, block=block)
