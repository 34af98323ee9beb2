"""``worldgen data driving|convert|inspect|offline-rl|merge-tokens|rl-card``: make, convert and inspect datasets.

driving: highway-env episodes (``worldgen.data.generate``); convert: a folder of video recordings + poses
(``worldgen.data.convert``); inspect: a dataset summary and contact sheet (``worldgen.data.inspect``); offline-rl: a
D4RL-style MuJoCo dataset from a SAC behaviour run (``worldgen.rl.collect``); merge-tokens: one token folder from
several of one tokenizer (``worldgen.data.tokens.merge_shards``); rl-card: the card of a folder of such
datasets (``worldgen.eval.datacard``). Each prints one JSON summary.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from worldgen.commands import Handler, comma_list, from_args, print_json


def parse_size(text: str) -> tuple[int, int]:
    """``"64x128"`` -> ``(64, 128)`` (height, width)."""
    try:
        h, w = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 64x128 (height x width), got {text!r}") from None
    return h, w


def parse_shard(text: str) -> tuple[int, int]:
    """``"0/4"`` -> ``(0, 4)`` (index, count)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    return k, n


# ---------------------------------------------------------------------------------------------------- driving
def driving_main(cfg) -> dict:
    """Generate the episodes ``cfg`` (a ``worldgen.data.generate.GenConfig``) asks for; returns the summary."""
    import math

    from worldgen.data.generate import generate
    from worldgen.io import check_output

    if not (math.isfinite(cfg.fps) and cfg.fps > 0):
        raise ValueError(f"--fps: expected a positive frame rate, got {cfg.fps}")
    check_output(cfg.out, folder=True, what="--out")
    return generate(cfg)


def configure_driving(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.data.generate import DEFAULT_ENVS, LOOKS, GenConfig

    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--episodes", type=int, default=8, help="episodes in the whole dataset")
    parser.add_argument("--frames", type=int, default=80, help="frames per episode")
    parser.add_argument("--envs", default=",".join(DEFAULT_ENVS), help="comma-separated highway-env ids")
    parser.add_argument("--size", default="64x128", help="frame size HxW (px)")
    parser.add_argument("--fps", type=float, default=10.0, help="frames (= policy steps) per second")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    parser.add_argument("--shard", default="0/1", help="I/N: make only episodes with index %% N == I")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--look", default="crisp", choices=sorted(LOOKS),
                        help="crisp: 2 px markings, zoomed view, no anti-aliasing (default); close: crisp at half "
                             "the view (twice the pixels per metre); legacy: the v1 look")

    def handler(args: argparse.Namespace) -> int:
        cfg = from_args(GenConfig, args, envs=comma_list(args.envs), size=parse_size(args.size),
                        shard=parse_shard(args.shard), progress=not args.no_progress)
        print_json(driving_main(cfg))
        return 0
    return handler


# ---------------------------------------------------------------------------------------------------- convert
@dataclass
class ConvertConfig:
    src: str  # folder of video recordings (mp4, mov, mkv, webm, avi, ...)
    out: str  # output dataset folder
    poses: Optional[str] = None  # CSV (video,frame,x,y,yaw[,speed]) or JSON pose file
    size: tuple = (64, 128)  # output frame height, width (px)
    fps: Optional[float] = 10.0  # output frame rate; None = keep the source rate
    caption: str = ""  # caption for videos the pose file gives none
    skip_bad: bool = False  # warn and skip bad files instead of failing


def convert_main(cfg: ConvertConfig) -> dict:
    from worldgen.data.convert import main
    from worldgen.io import check_output

    check_output(cfg.out, folder=True, what="--out")
    return main(cfg.src, cfg.out, cfg.poses, cfg.size, cfg.fps, cfg.caption, cfg.skip_bad)


def configure_convert(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("src", help="folder of video recordings (mp4, mov, mkv, webm, avi, ...)")
    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--poses", default=None, help="CSV (video,frame,x,y,yaw[,speed]) or JSON pose file")
    parser.add_argument("--size", default="64x128", help="frame size HxW (px)")
    parser.add_argument("--fps", type=float, default=10.0, help="output frame rate (0 = keep the source rate)")
    parser.add_argument("--caption", default="", help="caption for videos the pose file gives none")
    parser.add_argument("--skip-bad", action="store_true", help="warn and skip bad files instead of failing")

    def handler(args: argparse.Namespace) -> int:
        print_json(convert_main(from_args(ConvertConfig, args, size=parse_size(args.size), fps=args.fps or None)))
        return 0
    return handler


# ---------------------------------------------------------------------------------------------------- inspect
@dataclass
class InspectConfig:
    root: str  # dataset folder (worldgen driving format)
    sheet: Optional[str] = None  # contact sheet PNG path; None = ROOT/contact_sheet.png
    rows: int = 8  # episodes on the contact sheet
    cols: int = 6  # frames per episode on the contact sheet


def inspect_main(cfg: InspectConfig) -> dict:
    """The dataset summary (``bad`` lists unreadable episodes) and the contact sheet's path."""
    from worldgen.data.inspect import main
    from worldgen.io import check_output

    if not Path(cfg.root).is_dir():
        raise FileNotFoundError(f"{cfg.root}: no such dataset folder")
    if cfg.rows < 1 or cfg.cols < 1:
        raise ValueError(f"--rows and --cols: expected whole numbers >= 1, got {cfg.rows} and {cfg.cols}")
    check_output(cfg.sheet or Path(cfg.root) / "contact_sheet.png", what="--sheet")
    return main(cfg.root, cfg.sheet, cfg.rows, cfg.cols)


def configure_inspect(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("root", help="dataset folder (worldgen driving format)")
    parser.add_argument("--sheet", default=None, help="contact sheet PNG path (default DIR/contact_sheet.png)")
    parser.add_argument("--rows", type=int, default=8, help="episodes on the contact sheet")
    parser.add_argument("--cols", type=int, default=6, help="frames per episode on the contact sheet")

    def handler(args: argparse.Namespace) -> int:
        summary = inspect_main(from_args(InspectConfig, args))
        print_json(summary)
        return 1 if summary["bad"] else 0
    return handler


# ------------------------------------------------------------------------------------------------- offline-rl
def _behaviour_config():
    from worldgen.rl.collect import BehaviourConfig

    return BehaviourConfig()


@dataclass
class OfflineRLConfig:
    env: str  # Gymnasium id, e.g. Hopper-v5
    kind: str  # random | medium | medium-replay | expert | medium-expert
    out: str  # output .hdf5 (D4RL layout)
    steps: int = 1_000_000  # transitions collected per policy (D4RL: 1M)
    seed: int = 0
    behaviour: object = field(default_factory=_behaviour_config)  # worldgen.rl.collect.BehaviourConfig (SAC run)
    behaviour_dir: Optional[str] = None  # save/reuse the SAC run here (same run for all kinds)
    policy_out: Optional[str] = None  # also save the expert SAC policy to this folder
    threads: int = 1  # torch CPU threads (small MLPs run best on 1)


def offline_rl_main(cfg: OfflineRLConfig) -> dict:
    import torch

    from worldgen.rl.collect import main

    torch.set_num_threads(cfg.threads)
    return main(cfg.env, cfg.kind, cfg.out, cfg.steps, cfg.seed, cfg.behaviour, cfg.behaviour_dir, cfg.policy_out)


def configure_offline_rl(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.rl.collect import KINDS, BehaviourConfig

    parser.add_argument("--env", required=True, help="Gymnasium id, e.g. Hopper-v5, HalfCheetah-v5, Walker2d-v5, Pendulum-v1")
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("--out", required=True, help="output .hdf5 (D4RL layout)")
    parser.add_argument("--steps", type=int, default=1_000_000, help="transitions collected per policy (D4RL: 1M)")
    parser.add_argument("--train-steps", type=int, default=1_000_000, help="online SAC steps of the behaviour policy")
    parser.add_argument("--start-steps", type=int, default=10_000, help="random warm-up steps of SAC")
    parser.add_argument("--eval-every", type=int, default=10_000, help="SAC steps between checkpoints")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="SAC hidden widths")
    parser.add_argument("--behaviour-dir", default=None, help="save/reuse the SAC run here (same run for all kinds)")
    parser.add_argument("--stop-after", type=int, default=0,
                        help="pause the SAC run after this many steps (resume state in --behaviour-dir; rerun to go on)")
    parser.add_argument("--policy-out", default=None, help="also save the expert SAC policy to this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small MLPs run best on 1)")

    def handler(args: argparse.Namespace) -> int:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        behaviour = from_args(BehaviourConfig, args, hidden=list(args.hidden))
        print_json(offline_rl_main(from_args(OfflineRLConfig, args, behaviour=behaviour)))
        return 0
    return handler


# ---------------------------------------------------------------------------------------------------- merge-tokens
def configure_merge_tokens(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("out", help="new token folder to write (must not exist)")
    parser.add_argument("sources", nargs="+", help="token folders of one tokenizer (`worldgen tokenize --out`)")

    def handler(args: argparse.Namespace) -> int:
        from worldgen.data.tokens import merge_shards

        meta = merge_shards(args.sources, args.out)
        print_json({"out": args.out, **{k: meta[k] for k in ("n_episodes", "n_frames", "sources", "mirror")}})
        return 0
    return handler


# ---------------------------------------------------------------------------------------------------- rl-card
def configure_rl_card(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("folder", help="folder of D4RL-layout .hdf5 files of one environment "
                                       "(e.g. the --out folder of tools/offline_rl_sets.sh)")

    def handler(args: argparse.Namespace) -> int:
        from worldgen.eval.datacard import make_card

        card = make_card(args.folder)
        print_json({**card, "wrote": [str(Path(args.folder) / n) for n in ("card.json", "CARD.md", "card.png")]})
        return 0
    return handler


__all__ = ["parse_size", "parse_shard", "driving_main", "configure_driving", "ConvertConfig", "convert_main",
           "configure_convert", "InspectConfig", "inspect_main", "configure_inspect", "OfflineRLConfig",
           "offline_rl_main", "configure_offline_rl", "configure_merge_tokens", "configure_rl_card"]
