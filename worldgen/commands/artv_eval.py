"""``worldgen eval artv-quality`` and ``worldgen eval artv-prior``: ART·V on held-out episodes against persistence
baselines, and its stage-1 image prior's sample quality (``worldgen.eval.artv_quality``).

    worldgen eval artv-quality --ckpt full=checkpoints/artv-tiny --ckpt scratch=runs/artv-scratch \
        --data data/driving-v2-heldout --out docs/results/artv_quality.json [--detector sim:checkpoints/fvd-sim-tiny]
    worldgen eval artv-prior --ckpt checkpoints/artv-prior-tiny --data data/driving-v2-heldout --out runs/prior.json
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from worldgen.commands import Handler, from_args, print_json


def _add_fields(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    """One ``--flag`` per dataclass field (bool fields as ``--flag/--no-flag``), defaults from the dataclass."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag, default = "--" + f.name.replace("_", "-"), f.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)


def quality_main(cfg, plot: bool = True) -> dict:
    from worldgen.eval.artv_quality import evaluate_video
    from worldgen.io import check_output, write_json

    check_output(cfg.out, what="--out")
    res = evaluate_video(cfg)
    write_json(cfg.out, res)
    if plot:
        from worldgen.eval.artv_quality import plot_quality

        res["plot"] = str(plot_quality(res, Path(cfg.out).with_suffix(".png")))
    return res


def configure_quality(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.eval.artv_quality import ArtvQualityConfig

    parser.add_argument("--ckpt", action="append", required=True, help="NAME=DIR (or DIR) of an ART-V model; repeat")
    _add_fields(parser, ArtvQualityConfig, skip=("ckpt",))

    def handler(args: argparse.Namespace) -> int:
        res = quality_main(from_args(ArtvQualityConfig, args))
        print_json({name: {"windows": m["windows"], "one_step_mse": m["one_step_mse"],
                           "one_step_mse_copy_last": m["one_step_mse_copy_last"], "targets": m["targets"],
                           **({"control": {k: m["control"].get(k) for k in ("left_minus_keep_m", "right_minus_keep_m",
                                                                             "met")}} if "control" in m else {})}
                    for name, m in res["models"].items()})
        return 0
    return handler


def prior_main(cfg) -> dict:
    from worldgen.eval.artv_quality import evaluate_prior
    from worldgen.io import check_output, write_json

    check_output(cfg.out, what="--out")
    res = evaluate_prior(cfg)
    write_json(cfg.out, res)
    return res


def configure_prior(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.eval.artv_quality import ArtvPriorEvalConfig

    parser.add_argument("--ckpt", required=True, help="stage-1 prior folder")
    _add_fields(parser, ArtvPriorEvalConfig, skip=("ckpt",))

    def handler(args: argparse.Namespace) -> int:
        res = prior_main(from_args(ArtvPriorEvalConfig, args))
        print_json({k: res[k] for k in ("real", "generated", "ratios_generated_over_real", "frechet",
                                        "scenario_accuracy", "contact_sheet") if k in res})
        return 0
    return handler


__all__ = ["quality_main", "configure_quality", "prior_main", "configure_prior"]
