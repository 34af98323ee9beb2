"""``worldgen train CONFIG.yaml [key=value ...]``: train whatever task the config names.

The config's ``task`` picks the family in ``worldgen.registry``; its experiment dataclass is the schema the YAML and
the overrides are loaded into (``load_experiment``), and its ``worldgen.lit`` module is handed to
``worldgen.lit.train.fit``, which trains and writes ``out_dir`` (config.yaml, model.safetensors, card.json).
"""
from __future__ import annotations

import argparse
import logging
from typing import Any

from worldgen.commands import Handler
from worldgen.registry import load_experiment, task_module


def main(cfg: Any, command: str = "") -> Any:
    """Train ``cfg`` (an experiment config of a registered task); returns the fitted Lightning module (or what a
    task with its own loop returns). ``command`` is recorded in the card (default: this process's argv)."""
    from worldgen.lit.train import fit

    return fit(cfg, task_module(cfg.task), command)


def _log_to_stderr() -> None:
    logger = logging.getLogger("worldgen")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def configure(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("config", help="experiment YAML under configs/ (its `task` picks the model)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. trainer.max_steps=100 seed=1")

    def handler(args: argparse.Namespace) -> int:
        _log_to_stderr()
        cfg = load_experiment(args.config, args.overrides)
        main(cfg, command="worldgen train " + " ".join([args.config, *args.overrides]))
        return 0
    return handler


__all__ = ["main", "configure", "load_experiment"]
