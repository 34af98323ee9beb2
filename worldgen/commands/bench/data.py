"""``worldgen bench data``: the driving generator's frames per second against highway-env's own step+render rate.

For each scenario, measured in the same run on the same episodes: (a) the simulator's own rate - frames per second
of the time spent inside ``env.step`` + ``env.render`` (every attempt, crashed restarts included); (b) the
generator's rate - kept frames per wall-clock second of everything: env creation, reset, scripted policy, pose
records, resize, H.264 encoding and the atomic episode write. The issue's target is (b)/(a) >= 0.8 per worker.
Then the generator runs with 1..K worker processes on ``K x episodes`` episodes to show how it scales with cores.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from typing import Optional

import numpy as np

from worldgen.commands import Handler, comma_list, from_args, print_json
from worldgen.commands.data import parse_size
from worldgen.data.generate import SCENARIOS, GenConfig, generate


def gen_rate(envs, episodes: int, frames: int, size, fps: float, workers: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="wg-bench-") as tmp:
        cfg = GenConfig(out=tmp, episodes=episodes, frames=frames, envs=tuple(envs), size=tuple(size), fps=fps,
                        workers=workers, seed=seed, progress=False)
        s = generate(cfg)
    sim_fps = s["sim_frames"] / s["sim_step_render_s"] if s["sim_step_render_s"] > 0 else 0.0
    return {"frames": s["frames"], "seconds": round(s["seconds"], 3), "frames_per_s": round(s["frames_per_s"], 2),
            "parallelism": round(s["parallelism"], 2), "sim_step_render_fps": round(sim_fps, 2)}


def measure(envs=tuple(SCENARIOS), frames: int = 60, episodes: int = 2, size=(64, 128), fps: float = 10.0,
         max_workers: int | None = None, seed: int = 0) -> dict:
    per_env = {}
    gen_rate(list(envs), len(envs), 2, size, fps, 1, seed + 999)  # warm-up: imports, pygame, fonts (once per process)
    for env_id in envs:
        gen = gen_rate([env_id], episodes, frames, size, fps, 1, seed)
        sim = gen["sim_step_render_fps"]
        per_env[env_id] = {"sim_step_render_fps": sim, "generator_fps": gen["frames_per_s"],
                           "ratio": round(gen["frames_per_s"] / sim, 3) if sim else None}
    k_max = max_workers or os.cpu_count() or 1
    if k_max > 1:  # start the forkserver (it imports the simulator once per process) outside the timed runs
        gen_rate([envs[0]], 2, 2, size, fps, 2, seed + 998)
    scaling = {}
    for k in sorted({1, *range(2, k_max + 1)}):
        scaling[str(k)] = gen_rate([envs[0]], episodes * k, frames, size, fps, k, seed)
    base = scaling["1"]["frames_per_s"]
    for k, row in scaling.items():
        row["speedup"] = round(row["frames_per_s"] / base, 3) if base else None
    return {"frames_per_episode": frames, "episodes": episodes, "size": list(size), "fps": fps,
            "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "per_env": per_env,
            "mean_ratio": round(float(np.mean([r["ratio"] for r in per_env.values()])), 3),
            "workers_scaling_env": envs[0], "workers": scaling}


@dataclass
class DataBenchConfig:
    envs: tuple = tuple(SCENARIOS)  # highway-env ids measured one by one; the first is also the scaling one
    frames: int = 60  # frames per episode
    episodes: int = 2  # episodes per measurement (per worker)
    size: tuple = (64, 128)  # frame height, width
    fps: float = 10.0
    max_workers: Optional[int] = None  # largest worker count; None = the CPU count
    seed: int = 0
    out: Optional[str] = None  # also write the JSON here


def main(cfg: DataBenchConfig) -> dict:
    """The bench's JSON object (also written to ``cfg.out`` when set)."""
    unknown = [e for e in cfg.envs if e not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown env(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    result = measure(tuple(cfg.envs), cfg.frames, cfg.episodes, tuple(cfg.size), cfg.fps, cfg.max_workers, cfg.seed)
    if cfg.out:
        from worldgen.io import write_json

        write_json(cfg.out, result)
    return result


def configure(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--envs", default=",".join(SCENARIOS), help="comma-separated highway-env ids")
    parser.add_argument("--frames", type=int, default=60, help="frames per episode")
    parser.add_argument("--episodes", type=int, default=2, help="episodes per measurement (per worker)")
    parser.add_argument("--size", default="64x128", help="frame size HxW")
    parser.add_argument("--max-workers", type=int, default=None, help="largest worker count (default: CPU count)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the JSON here")

    def handler(args: argparse.Namespace) -> int:
        print_json(main(from_args(DataBenchConfig, args, envs=comma_list(args.envs), size=parse_size(args.size))))
        return 0
    return handler


__all__ = ["DataBenchConfig", "main", "configure", "measure", "gen_rate"]
