"""``worldgen pgd train CONFIG`` and ``worldgen pgd sample``: the policy-guided-diffusion commands.

``sample`` rebuilds a trained trajectory model, optionally loads a target policy (a folder written by
``worldgen.rl.policy.save_policy``: an agent's training folder or a SAC behaviour policy), samples ``--n-traj``
windows with the guidance coefficient ``--coeff`` (0 = unguided) and writes them as a D4RL-layout HDF5 file.
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from typing import Any, Optional

from worldgen.commands import Handler, from_args, print_json


def train_main(cfg: Any, command: str = "") -> Any:
    """Train ``cfg`` (an experiment config with ``task: pgd``) like ``worldgen train`` does."""
    from worldgen.commands.train import main

    if cfg.task != "pgd":
        raise ValueError(f"task is '{cfg.task}', expected 'pgd'")
    return main(cfg, command=command)


def configure_train(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("config", help="experiment YAML (task: pgd), e.g. configs/pgd/tiny.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.path=runs/hopper.hdf5")

    def handler(args: argparse.Namespace) -> int:
        from worldgen.registry import load_experiment

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        cfg = load_experiment(args.config, args.overrides)
        if cfg.task != "pgd":
            raise ValueError(f"{args.config}: task is '{cfg.task}', expected 'pgd'")
        train_main(cfg, command="worldgen pgd train " + " ".join([args.config, *args.overrides]))
        return 0
    return handler


@dataclass
class SampleConfig:
    ckpt: str  # out_dir of `worldgen pgd train`
    out: str  # output .hdf5 (D4RL layout)
    n_traj: int  # trajectory windows to sample
    policy: Optional[str] = None  # target policy folder (policy.json + policy.safetensors)
    coeff: float = 0.0  # guidance coefficient lambda (0 = unguided)
    seed: int = 0
    n_steps: Optional[int] = None  # override the sampler's Heun steps
    denoised: bool = False  # take the guidance gradient on the denoised estimate
    surrogate: str = "none"  # none | deterministic
    batch_size: int = 256
    device: str = "cpu"


def sample_main(cfg: SampleConfig) -> dict:
    """Sample a synthetic dataset; returns a summary (transitions, mean target log-likelihood when a policy is given)."""
    from worldgen.data.offline_rl import save_dataset
    from worldgen.rl.pgd import GuidanceConfig, load_trajectory_model, mean_log_likelihood
    from worldgen.rl.policy import load_policy

    check_sample_config(cfg)
    model, info = load_trajectory_model(cfg.ckpt, cfg.device)
    if cfg.n_steps is not None:
        model.cfg.sampler.n_steps = int(cfg.n_steps)
    if cfg.coeff != 0 and cfg.policy is None:
        raise ValueError("--coeff != 0 needs --policy (the target policy to guide toward)")
    pol = load_policy(cfg.policy).to(cfg.device) if cfg.policy else None
    gcfg = GuidanceConfig(coeff=cfg.coeff, denoised=cfg.denoised, surrogate=cfg.surrogate)
    t0 = time.time()
    x = model.sample(cfg.n_traj, pol, gcfg, seed=cfg.seed, batch_size=cfg.batch_size, progress=True)
    meta = {"env_id": info.get("env_id"), "kind": "pgd" if cfg.coeff else "unguided",
            "generator": "worldgen pgd sample", "guidance_coeff": cfg.coeff, "guidance_denoised": cfg.denoised,
            "guidance_surrogate": cfg.surrogate, "seed": cfg.seed, "n_traj": cfg.n_traj,
            "diffusion_ckpt": str(cfg.ckpt), "policy": str(cfg.policy) if cfg.policy else "",
            "source_dataset": info.get("dataset", "")}
    for k in ("ref_min_score", "ref_max_score"):
        if info.get(k) is not None:
            meta[k] = info[k]
    ds = model.to_dataset(x, meta)
    save_dataset(cfg.out, ds)
    summary = {"out": str(cfg.out), "transitions": len(ds), "windows": cfg.n_traj, "coeff": cfg.coeff,
               "terminals": int(ds.terminals.sum()), "wall_time_s": round(time.time() - t0, 2)}
    if pol is not None:
        summary["target_log_likelihood"] = mean_log_likelihood(pol, ds, cfg.surrogate)
    return summary


def check_sample_config(cfg: SampleConfig) -> None:
    """Every setting in range before the model is loaded; the output path writable."""
    import math

    from worldgen.config import check_device
    from worldgen.io import check_output

    counts = {"--n-traj": cfg.n_traj, "--batch-size": cfg.batch_size, "--n-steps": cfg.n_steps}
    bad = {k: v for k, v in counts.items() if v is not None and v < 1}
    if bad:
        raise ValueError(f"{', '.join(bad)}: expected whole numbers >= 1, got {', '.join(map(str, bad.values()))}")
    if not math.isfinite(cfg.coeff):
        raise ValueError(f"--coeff: expected a finite guidance coefficient, got {cfg.coeff}")
    check_output(cfg.out, what="--out")
    check_device(cfg.device, "--device")


def configure_sample(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--ckpt", required=True, help="out_dir of `worldgen pgd train`")
    parser.add_argument("--policy", default=None, help="target policy folder (policy.json + policy.safetensors)")
    parser.add_argument("--coeff", type=float, default=0.0, help="guidance coefficient lambda (0 = unguided)")
    parser.add_argument("--n-traj", type=int, required=True, help="trajectory windows to sample")
    parser.add_argument("--out", required=True, help="output .hdf5 (D4RL layout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-steps", type=int, default=None, help="override the sampler's Heun steps")
    parser.add_argument("--denoised", action="store_true", help="take the guidance gradient on the denoised estimate")
    parser.add_argument("--surrogate", default="none", choices=("none", "deterministic"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")

    def handler(args: argparse.Namespace) -> int:
        print_json(sample_main(from_args(SampleConfig, args)))
        return 0
    return handler


__all__ = ["train_main", "configure_train", "SampleConfig", "sample_main", "configure_sample"]
