"""``worldgen checkpoints verify [--root checkpoints] [--no-load]``: check the shipped checkpoints.

Every file listed in ``ROOT/MANIFEST.json`` must match its size and sha256, every folder must be listed, and (unless
``--no-load``) every checkpoint must load with its family's loader (``worldgen.checkpoints.verify``).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from worldgen.commands import Handler, from_args, print_json


@dataclass
class VerifyConfig:
    root: str = "checkpoints"  # checkpoints folder holding MANIFEST.json
    load: bool = True  # also load every checkpoint (False: hashes and sizes only)
    device: str = "cpu"


def verify_main(cfg: VerifyConfig) -> dict:
    """``{name: {task, files, hashes_ok, params}}``; raises ``CheckpointError`` listing every problem."""
    from worldgen.checkpoints import verify

    return verify(cfg.root, load=cfg.load, device=cfg.device)


def configure_verify(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--root", default="checkpoints", help="checkpoints folder holding MANIFEST.json")
    parser.add_argument("--no-load", action="store_true", help="check hashes and sizes only")
    parser.add_argument("--device", default="cpu")

    def handler(args: argparse.Namespace) -> int:
        report = verify_main(from_args(VerifyConfig, args, load=not args.no_load))
        print_json(report)
        print(f"ok: {len(report)} checkpoint(s) verified in {args.root}")
        return 0
    return handler


__all__ = ["VerifyConfig", "verify_main", "configure_verify"]
