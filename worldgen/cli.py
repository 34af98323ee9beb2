"""``worldgen <command> ...``: the one command-line entry point.

Every subcommand is registered here, in ``COMMANDS``: a group maps names to leaves, a leaf is
``(help, "module:function")`` naming a ``configure(parser) -> handler`` in ``worldgen.commands`` (argument parsing
lives there, one module per group; the work is a ``main(cfg)`` beside it). The ``generate`` group is derived from
the family registry (``worldgen.registry.GENERATE``). Only the chosen leaf's module is imported, so
``worldgen --help`` stays instant. ``handler(args) -> int | None`` runs the leaf. A user error (``USER_ERRORS``, or
an ``OSError`` such as permission denied or a disk that is full) is one line ``error: ...`` and exit code 2; any
other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

from worldgen.registry import GENERATE

Leaf = tuple  # (help, "module:function")

COMMANDS: dict[str, tuple[str, object]] = {
    "data": ("make, convert and inspect datasets", {
        "driving": ("generate driving episodes with highway-env", "worldgen.commands.data:configure_driving"),
        "convert": ("convert a folder of videos (mp4, mov, mkv, webm, avi) + poses into worldgen episodes",
                    "worldgen.commands.data:configure_convert"),
        "inspect": ("summarise a driving dataset and write a contact sheet", "worldgen.commands.data:configure_inspect"),
        "offline-rl": ("collect a D4RL-style MuJoCo dataset", "worldgen.commands.data:configure_offline_rl"),
        "merge-tokens": ("merge token folders of one tokenizer into a new one",
                         "worldgen.commands.data:configure_merge_tokens"),
        "rl-card": ("card (table, plot, JSON) of a folder of offline-RL datasets",
                    "worldgen.commands.data:configure_rl_card"),
    }),
    "tokenize": ("encode driving episodes into VQ token shards", "worldgen.commands.tokenize:configure"),
    "train": ("train the model an experiment YAML names", "worldgen.commands.train:configure"),
    "generate": ("generate videos (and images from an ART-V stage-1 prior)", {
        **GENERATE, "image": ("text-to-image with an ART-V stage-1 image prior (model.references: false)",
                              "worldgen.commands.generate:configure_image")}),
    "eval": ("evaluate generated videos, tokenizers, rollouts and synthetic data", {
        "fvd": ("Frechet Video Distance and long-horizon protocols", "worldgen.commands.eval:configure_fvd"),
        "tokenizer": ("held-out reconstruction PSNR, codebook use and structure scores of a VQ tokenizer",
                      "worldgen.commands.eval:configure_tokenizer"),
        "drift": ("per-window drift of DrivingWorld rollouts against held-out episodes",
                  "worldgen.commands.eval:configure_drift"),
        "artv": ("ART-V drift ablation: per-window MSE and FVD over long rollouts",
                 "worldgen.commands.eval:configure_artv"),
        "artv-quality": ("ART-V on held-out episodes vs copy-first / copy-last / mean colour: per-window error, "
                         "vehicles, texture, text control", "worldgen.commands.artv_eval:configure_quality"),
        "artv-prior": ("ART-V stage-1 image prior: sample quality vs held-out frames, contact sheet",
                       "worldgen.commands.artv_eval:configure_prior"),
        "offline-rl": ("synthetic offline-RL data: dynamics error and target-policy likelihood",
                       "worldgen.commands.eval:configure_offline_rl"),
        "drivingworld": ("DrivingWorld on held-out episodes: teacher-forced vs copy-last, rollout statistics, "
                         "controllability, FVD drift", "worldgen.commands.eval:configure_drivingworld"),
        "train-detector": ("train the simulator FVD detector (--detector sim:PATH)",
                           "worldgen.commands.eval:configure_train_detector"),
    }),
    "pgd": ("policy-guided diffusion for synthetic offline-RL data", {
        "train": ("train the trajectory diffusion model", "worldgen.commands.pgd:configure_train"),
        "sample": ("sample a (guided) synthetic dataset", "worldgen.commands.pgd:configure_sample"),
        "merge": ("merge the shards of a sharded sample into one file", "worldgen.commands.pgd:configure_merge"),
    }),
    "ravl": ("reach-aware value learning", {
        "train": ("train RAVL / Base from a config", "worldgen.commands.ravl:configure_train"),
        "edge-of-reach": ("reproduce the edge-of-reach failure on a 2D environment", "worldgen.commands.ravl:configure_edge"),
    }),
    "bench": ("benchmarks that print one JSON object", {
        "train": ("training throughput and MFU", "worldgen.commands.bench.worldmodel:configure_train"),
        "rollout": ("KV-cached rollout speed and memory", "worldgen.commands.bench.worldmodel:configure_rollout"),
        "data": ("driving data generator speed", "worldgen.commands.bench.data:configure"),
        "fvd": ("FVD evaluator overhead and memory", "worldgen.commands.bench.fvd:configure"),
        "pgd": ("guided vs unguided trajectory sampling speed", "worldgen.commands.bench.pgd:configure"),
    }),
    "checkpoints": ("shipped checkpoints", {
        "verify": ("check hashes and load every shipped checkpoint", "worldgen.commands.checkpoints:configure_verify"),
    }),
    "demo": ("start the Gradio demo", "worldgen.commands.demo:configure"),
}

# OSError covers FileNotFoundError, FileExistsError, PermissionError, NotADirectoryError, a full disk ...
USER_ERRORS = (ValueError, KeyError, NotImplementedError, OSError)


def _resolve(spec: str) -> Callable:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def _add_leaf(sub, name: str, leaf: Leaf, chosen: bool) -> None:
    help_text, spec = leaf
    p = sub.add_parser(name, help=help_text, description=help_text)
    if chosen:
        p.set_defaults(_handler=_resolve(spec)(p))


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="worldgen", description="World models and autoregressive video generation.")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    first = argv[0] if argv else None
    second = argv[1] if len(argv) > 1 else None
    for name, (help_text, body) in COMMANDS.items():
        if isinstance(body, str):
            _add_leaf(sub, name, (help_text, body), chosen=(name == first))
            continue
        group = sub.add_parser(name, help=help_text, description=help_text)
        gsub = group.add_subparsers(dest="subcommand", metavar="<subcommand>")
        for leaf_name, leaf in body.items():
            _add_leaf(gsub, leaf_name, leaf, chosen=(name == first and leaf_name == second))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler = getattr(args, "_handler", None)
    if handler is None:
        parser.parse_args(argv[:1] + ["--help"] if argv else ["--help"])
        return 2
    try:
        rc = handler(args)
    except USER_ERRORS as e:
        if os.environ.get("WORLDGEN_DEBUG"):
            raise
        print(f"error: {user_message(e)}", file=sys.stderr)
        return 2
    return int(rc or 0)


def user_message(e: BaseException) -> str:
    """The one-line message of a user error; an ``OSError`` from the system (permission denied, disk full, a file
    where a folder should be ...) reads ``PATH: what went wrong`` instead of ``[Errno N] ...``."""
    if isinstance(e, OSError) and e.strerror and e.filename is not None:
        target = f" -> {e.filename2}" if e.filename2 is not None else ""
        return f"{e.filename}{target}: {e.strerror}"
    return str(e)


if __name__ == "__main__":
    sys.exit(main())
