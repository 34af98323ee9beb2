"""``worldgen generate drivingworld|artv``: argument parsing for the two video generators; the work is done by
``worldgen.pipelines`` (the same pipelines the demo uses).

    worldgen generate drivingworld --ckpt runs/gpt-tiny --frames 400 --out out/roll.mp4 \
        [--controls FILE | --manoeuvre lane_change_left | (sampled ego)] [--context-from EPISODE] \
        [--tokenizer runs/tokenizer-tiny] [--top-k 30 --top-p 1.0 --temperature 1.0] [--ego-guidance 1] [--seed 0] [--save-frames]
    worldgen generate artv --ckpt DIR --prompt "..." [--prompt "..." --switch-at 60 ...] [--image FIRST.png] \
        --frames N --out OUT.mp4

DrivingWorld: ``--ckpt`` is a training output folder (``config.yaml`` + ``model.safetensors``). The context comes
from a token shard episode (an id in ``--tokens``, default the training config's ``data.root``, or a path to a
``.safetensors`` shard); by default the last episode. Pixels are decoded with ``--tokenizer`` as the rollout goes
(streamed, each chunk with its past codes: equal to a one-pass decode); without it the rollout is tokens-only.
Outputs: see ``worldgen.pipelines.drivingworld``. ART·V writes the mp4 and ``OUT.yaml`` (the resolved config).
"""
from __future__ import annotations

import argparse

import numpy as np

from worldgen.commands import Handler, from_args, print_json


def drivingworld_main(cfg) -> dict:
    """Run ``cfg`` (a ``worldgen.pipelines.drivingworld.GenerateConfig``); returns the summary it also writes."""
    from worldgen.pipelines.drivingworld import generate

    return generate(cfg)


def configure_drivingworld(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.worldmodel.rollout import MANOEUVRES

    parser.add_argument("--ckpt", required=True, help="training output folder (config.yaml + model.safetensors)")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--out", required=True, help="output .mp4 (sidecars: .poses.json, .config.yaml, .tokens)")
    parser.add_argument("--controls", help="control file: JSON or CSV with speed (m/s), yaw_rate (rad/s)[, lateral_speed (m/s, + = left, driven along the heading)] per frame")
    parser.add_argument("--manoeuvre", choices=MANOEUVRES, help="scripted ego manoeuvre instead of a control file")
    parser.add_argument("--speed", type=float, help="m/s for --manoeuvre (default: the context's mean speed)")
    parser.add_argument("--context-from", help="episode id in --tokens, or a shard .safetensors file")
    parser.add_argument("--context-frames", type=int, default=0)
    parser.add_argument("--tokens", help="token shard folder (default: the checkpoint config's data.root)")
    parser.add_argument("--tokenizer", help="VQ tokenizer folder; decodes to mp4 (tokens-only without it)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=30)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--ego-guidance", type=float, default=1.0,
                        help="classifier-free guidance of the image by the ego tokens (1 = off; needs a GPT "
                             "trained with data.posedrop_prob > 0)")
    parser.add_argument("--save-frames", action="store_true",
                        help="also write the decoded frames losslessly as OUT.frames.npy (uint8 t h w c)")

    def handler(args: argparse.Namespace) -> int:
        from worldgen.pipelines.drivingworld import GenerateConfig
        from worldgen.worldmodel.rollout import SamplingConfig

        sampling = SamplingConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                  ego_guidance=args.ego_guidance)
        print_json(drivingworld_main(from_args(GenerateConfig, args, sampling=sampling)))
        return 0
    return handler


def artv_main(cfg) -> np.ndarray:
    """Run ``cfg`` (a ``worldgen.pipelines.artv.GenerateConfig``): writes the mp4 and its .yaml; returns the uint8
    frames ``t h w c``."""
    from worldgen.pipelines.artv import generate

    return generate(cfg)


def configure_artv(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.artv.generate import GenerateOptions

    d = GenerateOptions()
    parser.add_argument("--ckpt", required=True, help="ART-V training output folder (config.yaml + model.safetensors)")
    parser.add_argument("--prompt", action="append", default=[], help="text prompt; repeat for a prompt schedule")
    parser.add_argument("--switch-at", type=int, action="append", default=[],
                        help="frame index where the next prompt starts; repeat once per extra prompt")
    parser.add_argument("--image", default=None, help="first frame / anchor (PNG, JPEG, or a video's first frame)")
    parser.add_argument("--frames", type=int, default=d.frames, help="frames to generate")
    parser.add_argument("--out", required=True, help="output mp4 (the resolved config goes beside it as .yaml)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--sampler", default=d.sampler, choices=["heun", "euler"])
    parser.add_argument("--steps", type=int, default=d.steps, help="sampler steps per frame")
    parser.add_argument("--cfg-text", type=float, default=d.cfg_text, help="text guidance scale (1 = off)")
    parser.add_argument("--cfg-image", type=float, default=d.cfg_image, help="image guidance scale (1 = off)")
    parser.add_argument("--aug-sigma", type=float, default=d.gen_aug_sigma, help="noise level on the previous frame")
    parser.add_argument("--churn", type=float, default=d.S_churn, help="Heun S_churn")
    parser.add_argument("--reanchor", action="store_true", help="the frame at each prompt switch becomes the anchor")
    parser.add_argument("--anchor-every", type=int, default=d.anchor_every,
                        help="the current frame becomes the anchor every N frames (0 = keep the first frame)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--device", default="cpu")

    def handler(args: argparse.Namespace) -> int:
        from worldgen.pipelines.artv import GenerateConfig

        opts = from_args(GenerateOptions, args, gen_aug_sigma=args.aug_sigma, S_churn=args.churn)
        frames = artv_main(from_args(GenerateConfig, args, prompts=args.prompt or [""], options=opts))
        print(f"wrote {args.out} ({frames.shape[0]} frames, {frames.shape[1]}x{frames.shape[2]})")
        return 0
    return handler


def image_main(ckpt: str, prompts: list, n: int, out: str, opts, device: str = "cpu", progress: bool = True) -> dict:
    """``n`` samples per prompt from a stage-1 prior: a PNG contact sheet (one row per prompt) and the frames as
    ``OUT.npy`` (uint8 ``b h w c``); returns a summary."""
    from worldgen.pipelines.artv import sample_prior_images
    from worldgen.io import check_output

    check_output(out, what="--out")
    frames = sample_prior_images(ckpt, prompts, n, opts, device, progress, out=out)
    return {"out": out, "images": int(frames.shape[0]), "size": list(frames.shape[1:3]), "prompts": prompts}


def configure_image(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.artv.generate import GenerateOptions

    d = GenerateOptions()
    parser.add_argument("--ckpt", required=True, help="stage-1 prior folder (task artv, model.references: false)")
    parser.add_argument("--prompt", action="append", default=[], help="caption; repeat for several rows")
    parser.add_argument("--n", type=int, default=4, help="images per prompt")
    parser.add_argument("--out", required=True, help="output PNG contact sheet (frames also as OUT.npy)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--sampler", default=d.sampler, choices=["heun", "euler"])
    parser.add_argument("--steps", type=int, default=d.steps, help="sampler steps")
    parser.add_argument("--cfg-text", type=float, default=d.cfg_text, help="text guidance scale (1 = off)")
    parser.add_argument("--device", default="cpu")

    def handler(args: argparse.Namespace) -> int:
        from worldgen.artv.generate import check_options

        if args.n < 1:
            raise ValueError(f"--n must be >= 1, got {args.n}")
        opts = check_options(from_args(GenerateOptions, args, frames=1))
        print_json(image_main(args.ckpt, args.prompt or [""], args.n, args.out, opts, args.device))
        return 0
    return handler


__all__ = ["drivingworld_main", "configure_drivingworld", "artv_main", "configure_artv", "image_main",
           "configure_image"]
