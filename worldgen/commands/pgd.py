"""``worldgen pgd train CONFIG`` and ``worldgen pgd sample``: the policy-guided-diffusion commands.

``sample`` rebuilds a trained trajectory model, optionally loads a target policy (a folder written by
``worldgen.rl.policy.save_policy``: an agent's training folder or a SAC behaviour policy), samples ``--n-traj``
windows with the guidance coefficient ``--coeff`` (0 = unguided) and writes them as a D4RL-layout HDF5 file.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Optional


from worldgen.data.offline_rl import save_dataset
from worldgen.rl.pgd import GuidanceConfig, mean_log_likelihood


def sample_main(ckpt: str | Path, out: str | Path, n_traj: int, policy: Optional[str | Path] = None,
                coeff: float = 0.0, seed: int = 0, n_steps: Optional[int] = None, denoised: bool = False,
                surrogate: str = "none", batch_size: int = 256, device: str = "cpu") -> dict:
    """Sample a synthetic dataset; returns a summary (transitions, mean target log-likelihood when a policy is given)."""
    from worldgen.rl.pgd import load_trajectory_model
    from worldgen.rl.policy import load_policy

    model, info = load_trajectory_model(ckpt, device)
    if n_steps:
        model.cfg.sampler.n_steps = int(n_steps)
    if coeff != 0 and policy is None:
        raise ValueError("--coeff != 0 needs --policy (the target policy to guide toward)")
    pol = load_policy(policy).to(device) if policy else None
    gcfg = GuidanceConfig(coeff=coeff, denoised=denoised, surrogate=surrogate)
    t0 = time.time()
    x = model.sample(n_traj, pol, gcfg, seed=seed, batch_size=batch_size, progress=True)
    meta = {"env_id": info.get("env_id"), "kind": "pgd" if coeff else "unguided", "generator": "worldgen pgd sample",
            "guidance_coeff": coeff, "guidance_denoised": denoised, "guidance_surrogate": surrogate, "seed": seed,
            "n_traj": n_traj, "diffusion_ckpt": str(ckpt), "policy": str(policy) if policy else "",
            "source_dataset": info.get("dataset", "")}
    for k in ("ref_min_score", "ref_max_score"):
        if info.get(k) is not None:
            meta[k] = info[k]
    ds = model.to_dataset(x, meta)
    save_dataset(out, ds)
    summary = {"out": str(out), "transitions": len(ds), "windows": n_traj, "coeff": coeff,
               "terminals": int(ds.terminals.sum()), "wall_time_s": round(time.time() - t0, 2)}
    if pol is not None:
        summary["target_log_likelihood"] = mean_log_likelihood(pol, ds, surrogate)
    return summary


def configure_train(parser: argparse.ArgumentParser):
    parser.add_argument("config", help="experiment YAML (task: pgd), e.g. configs/pgd/tiny.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.path=runs/hopper.hdf5")

    def run(args: argparse.Namespace) -> int:
        from worldgen.lit import train

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        cfg = train.load_experiment(args.config, args.overrides)
        if cfg.task != "pgd":
            raise ValueError(f"{args.config}: task is '{cfg.task}', expected 'pgd'")
        train.main(cfg, command="worldgen pgd train " + " ".join([args.config, *args.overrides]))
        return 0
    return run


def configure_sample(parser: argparse.ArgumentParser):
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

    def run(args: argparse.Namespace) -> int:
        print(json.dumps(sample_main(args.ckpt, args.out, args.n_traj, args.policy, args.coeff, args.seed,
                                     args.n_steps, args.denoised, args.surrogate, args.batch_size, args.device),
                         indent=2))
        return 0
    return run


__all__ = ["sample_main", "configure_train", "configure_sample"]
