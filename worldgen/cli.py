"""``worldgen <command> ...``: the one command-line entry point.

Every subcommand is registered here, in ``COMMANDS``: a group maps names to leaves, a leaf is
``(help, "module:function")``. Only the chosen leaf's module is imported, so ``worldgen --help`` is instant and a
broken or unbuilt part of the project cannot break the others. ``function(parser)`` adds the leaf's arguments and
returns the handler ``handler(args) -> int | None``.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import Callable, Sequence

Leaf = tuple  # (help, "module:function")

COMMANDS: dict[str, tuple[str, object]] = {
    "data": ("make, convert and inspect datasets", {
        "driving": ("generate driving episodes with highway-env", "worldgen.data.generate:configure_cli"),
        "convert": ("convert a folder of mp4 files + poses into worldgen episodes", "worldgen.data.convert:configure_cli"),
        "inspect": ("summarise a driving dataset and write a contact sheet", "worldgen.data.inspect:configure_cli"),
        "offline-rl": ("collect a D4RL-style MuJoCo dataset", "worldgen.rl.collect:configure_cli"),
    }),
    "tokenize": ("encode driving episodes into VQ token shards", "worldgen.tokenizer.export:configure_cli"),
    "train": ("train the model an experiment YAML names", "worldgen.lit.train:configure_cli"),
    "generate": ("generate videos", {
        "drivingworld": ("long driving rollout with the DrivingWorld GPT", "worldgen.worldmodel.generate:configure_cli"),
        "artv": ("frame-by-frame text/image-to-video with ART-V", "worldgen.artv.generate:configure_cli"),
    }),
    "eval": ("evaluate generated videos", {
        "fvd": ("Frechet Video Distance and long-horizon protocols", "worldgen.eval.cli:configure_cli"),
    }),
    "pgd": ("policy-guided diffusion for synthetic offline-RL data", {
        "train": ("train the trajectory diffusion model", "worldgen.commands.pgd:configure_train"),
        "sample": ("sample a (guided) synthetic dataset", "worldgen.commands.pgd:configure_sample"),
    }),
    "ravl": ("reach-aware value learning", {
        "train": ("train RAVL / Base from a config", "worldgen.commands.ravl:configure_train"),
        "edge-of-reach": ("reproduce the edge-of-reach failure on a 2D environment", "worldgen.commands.ravl:configure_edge"),
    }),
    "bench": ("benchmarks that print one JSON object", {
        "train": ("training throughput and MFU", "worldgen.commands.bench_worldmodel:configure_train"),
        "rollout": ("KV-cached rollout speed and memory", "worldgen.commands.bench_worldmodel:configure_rollout"),
        "data": ("driving data generator speed", "worldgen.data.bench:configure_cli"),
        "fvd": ("FVD evaluator overhead and memory", "worldgen.eval.bench:configure_cli"),
        "pgd": ("guided vs unguided trajectory sampling speed", "worldgen.rl.bench:configure_cli"),
    }),
    "checkpoints": ("shipped checkpoints", {
        "verify": ("check hashes and load every shipped checkpoint", "worldgen.checkpoints:configure_verify"),
    }),
    "demo": ("start the Gradio demo", "worldgen.demo_launch:configure_cli"),
}

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, NotImplementedError)


def _resolve(spec: str) -> Callable | None:
    module, func = spec.split(":")
    if importlib.util.find_spec(module) is None:
        return None
    return getattr(importlib.import_module(module), func)


def _not_built(spec: str) -> Callable:
    def configure(parser: argparse.ArgumentParser) -> Callable:
        parser.add_argument("rest", nargs=argparse.REMAINDER)

        def handler(args: argparse.Namespace) -> int:
            print(f"error: '{parser.prog}' is not built yet ({spec.split(':')[0]} does not exist)", file=sys.stderr)
            return 3
        return handler
    return configure


def _add_leaf(sub, name: str, leaf: Leaf, chosen: bool) -> None:
    help_text, spec = leaf
    p = sub.add_parser(name, help=help_text, description=help_text)
    if chosen:
        configure = _resolve(spec) or _not_built(spec)
        p.set_defaults(_handler=configure(p))


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
        print(f"error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
