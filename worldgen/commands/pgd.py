"""``worldgen pgd train CONFIG``, ``worldgen pgd sample`` and ``worldgen pgd merge``: the policy-guided-diffusion
commands.

``sample`` rebuilds a trained trajectory model, optionally loads a target policy (a folder written by
``worldgen.rl.policy.save_policy``: an agent's training folder or a SAC behaviour policy), samples ``--n-traj``
windows with the guidance coefficient ``--coeff`` (0 = unguided) and writes them as a D4RL-layout HDF5 file
(``--out``). At scale, ``--shard-dir DIR`` splits the windows into shards of ``--shard-size`` with one seed each
(``worldgen.rl.shards``); every rank (torchrun, a SLURM array, or ``--rank/--world-size``) writes its shards as whole
files and skips those already there; ``merge DIR --out FILE`` then writes one D4RL-layout file, identical to what
``--out`` writes in one process with the same settings.

Multi-GPU example (one process per GPU, no process group needed)::

    torchrun --nproc_per_node 8 -m worldgen.cli pgd sample --ckpt CKPT --n-traj 100000 --shard-dir runs/syn \
        --device cuda   # under torchrun, cuda means cuda:$LOCAL_RANK
    worldgen pgd merge runs/syn --out runs/syn.hdf5

Or let Lightning's predict loop launch the ranks (``worldgen.lit.pgd_predict``; DDP, any number of nodes; the same
shard files)::

    worldgen pgd sample --ckpt CKPT --n-traj 100000 --shard-dir runs/syn --engine lightning --devices 8 --device cuda
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
    ckpt: str  # out_dir of `worldgen pgd train`, or a shipped checkpoint (checkpoints/pgd-hopper)
    n_traj: int  # trajectory windows to sample (the whole dataset, over all ranks)
    out: Optional[str] = None  # output .hdf5 (D4RL layout), written by this one process
    shard_dir: Optional[str] = None  # sharded run: this rank's shards land here (merge: `worldgen pgd merge`)
    shard_size: int = 256  # windows per shard; each shard has its own seed, so ranks never change the data
    rank: Optional[int] = None  # explicit rank (default: torchrun RANK, SLURM array task, else 0)
    world_size: Optional[int] = None  # explicit number of ranks (default: torchrun WORLD_SIZE, SLURM array count)
    policy: Optional[str] = None  # target policy folder (policy.json + policy.safetensors)
    coeff: float = 0.0  # guidance coefficient lambda (0 = unguided)
    seed: int = 0
    n_steps: Optional[int] = None  # override the sampler's Heun steps
    denoised: bool = False  # take the guidance gradient on the denoised estimate
    surrogate: str = "none"  # none | deterministic
    batch_size: int = 256  # windows per sampler call inside a shard
    device: str = "cpu"
    engine: str = "plain"  # plain (this process is one rank: torchrun / SLURM array / --rank) | lightning (predict loop)
    devices: int = 1  # --engine lightning: processes per node (CPU processes or GPUs)
    num_nodes: int = 1  # --engine lightning: nodes


def _plan(cfg: SampleConfig, info: dict, n_steps: int):
    """The shard plan: every setting that changes the samples, none that says where or by whom they are made."""
    from worldgen.rl.shards import ShardPlan

    settings = {"ckpt": str(cfg.ckpt), "policy": str(cfg.policy or ""), "coeff": cfg.coeff, "n_steps": n_steps,
                "denoised": cfg.denoised, "surrogate": cfg.surrogate, "batch_size": cfg.batch_size,
                "env_id": info.get("env_id")}
    return ShardPlan(cfg.n_traj, min(cfg.shard_size, cfg.n_traj), cfg.seed, settings)


def _metadata(cfg: SampleConfig, info: dict) -> dict:
    meta = {"env_id": info.get("env_id"), "kind": "pgd" if cfg.coeff else "unguided",
            "generator": "worldgen pgd sample", "guidance_coeff": cfg.coeff, "guidance_denoised": cfg.denoised,
            "guidance_surrogate": cfg.surrogate, "seed": cfg.seed, "n_traj": cfg.n_traj,
            "diffusion_ckpt": str(cfg.ckpt), "policy": str(cfg.policy) if cfg.policy else "",
            "source_dataset": info.get("dataset", "")}
    for k in ("ref_min_score", "ref_max_score"):
        if info.get(k) is not None:
            meta[k] = info[k]
    return meta


def _sample_shard(model, pol, gcfg, plan, i: int, cfg: SampleConfig, meta: dict):
    """Shard ``i`` as a dataset (its own seed; the same whichever rank samples it)."""
    x = model.sample(plan.size_of(i), pol, gcfg, seed=plan.seed_of(i), batch_size=cfg.batch_size)
    return model.to_dataset(x, {**meta, "shard": i, "n_shards": plan.n_shards, "shard_seed": plan.seed_of(i)})


def _rank_device(device: str) -> str:
    """``cuda`` under torchrun -> ``cuda:LOCAL_RANK``, so the ranks of one node use one GPU each."""
    import os

    return f"cuda:{os.environ['LOCAL_RANK']}" if device == "cuda" and "LOCAL_RANK" in os.environ else device


def sample_main(cfg: SampleConfig) -> dict:
    """Sample a synthetic dataset into ``cfg.out`` (one process), or this rank's shards into ``cfg.shard_dir``.

    Returns a summary (transitions, shards written/skipped, mean target log-likelihood when a policy is given)."""
    from worldgen.rl.pgd import GuidanceConfig, load_trajectory_model, mean_log_likelihood
    from worldgen.rl.policy import load_policy
    from worldgen.rl.shards import detect_rank

    check_sample_config(cfg)
    rank, world, source = detect_rank(cfg.rank, cfg.world_size)
    if cfg.out and world > 1:
        raise ValueError(f"{world} ranks ({source}) cannot all write --out {cfg.out}; pass --shard-dir DIR, "
                         f"then `worldgen pgd merge DIR --out FILE`")
    device = _rank_device(cfg.device)
    model, info = load_trajectory_model(cfg.ckpt, device)
    if cfg.n_steps is not None:
        model.cfg.sampler.n_steps = int(cfg.n_steps)
    pol = load_policy(cfg.policy).to(device) if cfg.policy else None
    gcfg = GuidanceConfig(coeff=cfg.coeff, denoised=cfg.denoised, surrogate=cfg.surrogate)
    job = (model, pol, gcfg, _plan(cfg, info, model.cfg.sampler.n_steps), _metadata(cfg, info))
    t0 = time.time()
    if cfg.engine == "lightning":
        ds, summary = _sample_lightning(cfg, *job)
    elif cfg.out:
        ds, summary = _sample_file(cfg, *job)
    else:
        ds, summary = _sample_rank_shards(cfg, rank, world, *job)
        summary["rank_source"] = source
    summary.update({"coeff": cfg.coeff, "wall_time_s": round(time.time() - t0, 2)})
    if ds is not None:
        summary["terminals"] = int(ds.terminals.sum())
        if pol is not None:
            summary["target_log_likelihood"] = mean_log_likelihood(pol, ds, cfg.surrogate)
    return summary


def _sample_file(cfg: SampleConfig, model, pol, gcfg, plan, meta: dict):
    """Every shard in this process, concatenated into ``cfg.out`` (what a merge of a sharded run writes)."""
    from worldgen.data.offline_rl import save_dataset
    from worldgen.rl.shards import concat, merged_metadata

    parts = [_sample_shard(model, pol, gcfg, plan, i, cfg, meta) for i in range(plan.n_shards)]
    ds = concat(parts, merged_metadata(parts[0].metadata, plan))
    save_dataset(cfg.out, ds)
    return ds, {"out": str(cfg.out), "transitions": len(ds), "windows": cfg.n_traj, "shards": plan.n_shards}


def _sample_rank_shards(cfg: SampleConfig, rank: int, world: int, model, pol, gcfg, plan, meta: dict):
    """This rank's shards, each written as a whole file; shards already on disk are skipped (resume)."""
    from worldgen.data.offline_rl import save_dataset
    from worldgen.rl.shards import concat, write_plan

    write_plan(cfg.shard_dir, plan)
    mine, done, parts = plan.shards_of(rank, world), [], []
    for i in mine:
        if plan.path(cfg.shard_dir, i).is_file():
            continue
        ds = _sample_shard(model, pol, gcfg, plan, i, cfg, {**meta, "shard_rank": rank, "shard_world_size": world})
        save_dataset(plan.path(cfg.shard_dir, i), ds)
        done.append(i)
        parts.append(ds)
    ds = concat(parts, meta) if parts else None
    return ds, {"shard_dir": str(cfg.shard_dir), "rank": rank, "world_size": world, "n_shards": plan.n_shards,
                "shards_written": done, "shards_skipped": sorted(set(mine) - set(done)),
                "transitions": len(ds) if ds is not None else 0}


def _sample_lightning(cfg: SampleConfig, model, pol, gcfg, plan, meta: dict):
    """This process's shards through Lightning's predict loop (``worldgen.lit.pgd_predict``)."""
    from worldgen.data.offline_rl import save_dataset
    from worldgen.lit.pgd_predict import ShardPredictor, run_predict
    from worldgen.rl.shards import write_plan

    write_plan(cfg.shard_dir, plan)

    def sample(m, p, i, rank, world):
        return _sample_shard(m, p, gcfg, plan, i, cfg, {**meta, "shard_rank": rank, "shard_world_size": world})

    accel = "gpu" if str(cfg.device).startswith("cuda") else "cpu"
    rows = run_predict(ShardPredictor(model, pol, plan, cfg.shard_dir, sample,
                                      lambda i, ds: save_dataset(plan.path(cfg.shard_dir, i), ds)),
                       accel, cfg.devices, cfg.num_nodes)
    return None, {"shard_dir": str(cfg.shard_dir), "engine": "lightning", "n_shards": plan.n_shards,
                  "rank": rows[0]["rank"] if rows else None, "shards_written": [r["shard"] for r in rows if r["written"]],
                  "shards_skipped": [r["shard"] for r in rows if not r["written"]],
                  "transitions": sum(r["transitions"] for r in rows)}


@dataclass
class MergeConfig:
    shard_dir: str  # a `worldgen pgd sample --shard-dir` folder with every shard of its plan
    out: str  # the merged D4RL-layout .hdf5


def merge_main(cfg: MergeConfig) -> dict:
    """Concatenate every shard of ``cfg.shard_dir`` (index order) into one D4RL-layout file."""
    from worldgen.data.offline_rl import save_dataset
    from worldgen.io import check_output
    from worldgen.rl.shards import merge_shards

    check_output(cfg.out, what="--out")
    ds = merge_shards(cfg.shard_dir)
    save_dataset(cfg.out, ds)
    return {"out": str(cfg.out), "transitions": len(ds), "episodes": len(ds.episode_bounds()),
            "n_shards": ds.metadata["n_shards"], "windows": ds.metadata["n_traj"]}


def configure_merge(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("shard_dir", help="folder written by `worldgen pgd sample --shard-dir` (all ranks done)")
    parser.add_argument("--out", required=True, help="merged output .hdf5 (D4RL layout)")

    def handler(args: argparse.Namespace) -> int:
        print_json(merge_main(from_args(MergeConfig, args)))
        return 0
    return handler


def check_sample_config(cfg: SampleConfig) -> None:
    """Every setting in range before the model is loaded; the output path writable."""
    import math

    from worldgen.config import check_device
    from worldgen.io import check_output

    counts = {"--n-traj": cfg.n_traj, "--batch-size": cfg.batch_size, "--n-steps": cfg.n_steps,
              "--shard-size": cfg.shard_size}
    bad = {k: v for k, v in counts.items() if v is not None and v < 1}
    if bad:
        raise ValueError(f"{', '.join(bad)}: expected whole numbers >= 1, got {', '.join(map(str, bad.values()))}")
    if not math.isfinite(cfg.coeff):
        raise ValueError(f"--coeff: expected a finite guidance coefficient, got {cfg.coeff}")
    if cfg.coeff != 0 and cfg.policy is None:
        raise ValueError("--coeff != 0 needs --policy (the target policy to guide toward)")
    if (cfg.out is None) == (cfg.shard_dir is None):
        raise ValueError("give exactly one of --out FILE (one process) and --shard-dir DIR (sharded by rank)")
    if cfg.engine not in ("plain", "lightning"):
        raise ValueError(f"--engine must be plain or lightning, got {cfg.engine!r}")
    if cfg.engine == "lightning" and (cfg.shard_dir is None or cfg.devices < 1 or cfg.num_nodes < 1
                                      or cfg.rank is not None):
        raise ValueError("--engine lightning writes shards: it needs --shard-dir, --devices >= 1, --num-nodes >= 1 "
                         "and no --rank/--world-size (Lightning assigns the ranks)")
    if cfg.out is not None:
        check_output(cfg.out, what="--out")
    else:
        check_output(cfg.shard_dir, folder=True, what="--shard-dir")
    check_device(cfg.device, "--device")


def configure_sample(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--ckpt", required=True, help="out_dir of `worldgen pgd train`")
    parser.add_argument("--policy", default=None, help="target policy folder (policy.json + policy.safetensors)")
    parser.add_argument("--coeff", type=float, default=0.0, help="guidance coefficient lambda (0 = unguided)")
    parser.add_argument("--n-traj", type=int, required=True, help="trajectory windows to sample (all ranks together)")
    parser.add_argument("--out", default=None, help="output .hdf5 (D4RL layout), one process")
    parser.add_argument("--shard-dir", default=None,
                        help="sharded run: each rank writes its shards here; then `worldgen pgd merge DIR --out F`")
    parser.add_argument("--shard-size", type=int, default=256, help="windows per shard (each shard has its own seed)")
    parser.add_argument("--rank", type=int, default=None, help="this rank (default: torchrun RANK, SLURM array task)")
    parser.add_argument("--world-size", type=int, default=None, help="number of ranks (default: torchrun/SLURM)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-steps", type=int, default=None, help="override the sampler's Heun steps")
    parser.add_argument("--denoised", action="store_true", help="take the guidance gradient on the denoised estimate")
    parser.add_argument("--surrogate", default="none", choices=("none", "deterministic"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--engine", default="plain", choices=("plain", "lightning"),
                        help="plain: this process is one rank (torchrun/SLURM/--rank); lightning: the predict loop "
                             "launches --devices x --num-nodes processes")
    parser.add_argument("--devices", type=int, default=1, help="--engine lightning: processes (or GPUs) per node")
    parser.add_argument("--num-nodes", type=int, default=1, help="--engine lightning: nodes")

    def handler(args: argparse.Namespace) -> int:
        print_json(sample_main(from_args(SampleConfig, args)))
        return 0
    return handler


__all__ = ["train_main", "configure_train", "SampleConfig", "sample_main", "configure_sample", "MergeConfig",
           "merge_main", "configure_merge"]
