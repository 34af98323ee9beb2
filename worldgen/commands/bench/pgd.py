"""``worldgen bench pgd``: guided vs unguided trajectory sampling speed, same model and sampler settings.

Prints one JSON object: trajectories per second for unguided sampling and for policy-guided sampling (noisy-sample
guidance, and optionally guidance on the denoised estimate), and their cost ratio. PGD's guidance adds one policy
forward/backward per sampler step against two denoiser calls per Heun step, so the target is guided <= 1.5x
unguided. With ``--ckpt`` the trained model is timed; otherwise a seeded random model of the given size.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Optional

import torch

from worldgen.commands import Handler, from_args, print_json
from worldgen.rl.nets import ActorConfig, DeterministicActor
from worldgen.rl.pgd import GuidanceConfig, PGDModelConfig, SamplerConfig, TrajectoryDiffusion
from worldgen.rl.unet1d import UNet1DConfig


@dataclass
class PGDBenchConfig:
    ckpt: Optional[str] = None  # out_dir of `worldgen pgd train`; None = a seeded random model of the size below
    n_traj: int = 64  # windows per sampling call
    n_steps: int = 32  # Heun steps
    horizon: int = 32  # random model only: window length
    obs_dim: int = 11  # random model only (Hopper: 11)
    act_dim: int = 3  # random model only (Hopper: 3)
    features: int = 64  # random model only: U-Net width
    blocks: int = 3  # random model only: U-Net levels
    denoised: bool = False  # also time guidance on the denoised estimate
    repeats: int = 3  # timed repeats (the best is reported)
    threads: int = 0  # torch CPU threads (0 = torch default)
    device: str = "cpu"


def _model(args: PGDBenchConfig) -> TrajectoryDiffusion:
    if args.ckpt:
        from worldgen.rl.pgd import load_trajectory_model

        return load_trajectory_model(args.ckpt, args.device)[0]
    torch.manual_seed(0)
    cfg = PGDModelConfig(horizon=args.horizon, unet=UNet1DConfig(features=args.features, n_blocks=args.blocks),
                         sampler=SamplerConfig(n_steps=args.n_steps))
    return TrajectoryDiffusion(cfg, args.obs_dim, args.act_dim).to(args.device).eval()


def _time(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main(args: PGDBenchConfig) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    model = _model(args)
    if args.n_steps:
        model.cfg.sampler.n_steps = args.n_steps
    policy = DeterministicActor(ActorConfig(model.obs_dim, model.act_dim, [256, 256])).to(args.device)
    n = args.n_traj
    runs = {"unguided": None, "guided": GuidanceConfig(coeff=1.0)}
    if args.denoised:
        runs["guided_denoised"] = GuidanceConfig(coeff=1.0, denoised=True)
    out = {"device": args.device, "n_traj": n, "horizon": model.cfg.horizon, "n_steps": model.cfg.sampler.n_steps,
           "channels": model.channels, "params": sum(p.numel() for p in model.denoiser.parameters())}
    for name, g in runs.items():
        fn = lambda: model.sample(n, policy if g else None, g, seed=0, batch_size=n)
        sec = _time(fn, args.repeats, args.device)
        out[f"{name}_traj_per_s"] = round(n / sec, 3)
        out[f"{name}_s"] = round(sec, 4)
    out["guided_over_unguided"] = round(out["guided_s"] / out["unguided_s"], 3)
    if args.denoised:
        out["guided_denoised_over_unguided"] = round(out["guided_denoised_s"] / out["unguided_s"], 3)
    return out


def configure(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--ckpt", default=None, help="out_dir of `worldgen pgd train` (default: a random model)")
    parser.add_argument("--n-traj", type=int, default=64, help="windows per sampling call")
    parser.add_argument("--n-steps", type=int, default=32, help="Heun steps")
    parser.add_argument("--horizon", type=int, default=32)
    parser.add_argument("--obs-dim", type=int, default=11, help="random model only (Hopper: 11)")
    parser.add_argument("--act-dim", type=int, default=3, help="random model only (Hopper: 3)")
    parser.add_argument("--features", type=int, default=64, help="random model only: U-Net width")
    parser.add_argument("--blocks", type=int, default=3, help="random model only: U-Net levels")
    parser.add_argument("--denoised", action="store_true", help="also time guidance on the denoised estimate")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--device", default="cpu")

    def handler(args: argparse.Namespace) -> int:
        print_json(main(from_args(PGDBenchConfig, args)))
        return 0
    return handler


__all__ = ["PGDBenchConfig", "main", "configure"]
