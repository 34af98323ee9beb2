"""``worldgen ravl train CONFIG`` and ``worldgen ravl edge-of-reach --out DIR``.

The edge-of-reach reproduction (Sims et al. 2024, section 4 / figure on the simple environment) trains three
agents on the 2D point mass with the TRUE dynamics (no model error at all): **Base** (SAC, N 2, eta 0), **Base +
oracle patch** (Base with the true ``V*`` substituted at edge-of-reach next states) and **RAVL** (N 10, eta 1). The
paper's finding: Base's Q-values blow up although the dynamics are perfect; patching only the edge-of-reach values
fixes it; RAVL fixes it without the oracle. Output: ``edge_of_reach.csv`` (every variant's per-epoch metrics),
``edge_of_reach.png`` (Q at trained-on states and at edge-of-reach states against the true optimal value, and the
return) and ``summary.json``.

The base config is the ``--config`` argument; its default, ``configs/ravl/edge_of_reach.yaml``, is a path relative to
the working directory (the repository root), never found through this file's location.
"""
from __future__ import annotations

import argparse
import csv
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from worldgen.commands import Handler, from_args
from worldgen.config import load as load_config
from worldgen.io import atomic_path, write_csv, write_json

DEFAULT_EDGE_CONFIG = "configs/ravl/edge_of_reach.yaml"  # --config default, relative to the working directory

VARIANTS: dict[str, list[str]] = {
    "base": ["agent.num_critics=2", "agent.eta=0.0", "oracle_patch=false"],
    "base_oracle": ["agent.num_critics=2", "agent.eta=0.0", "oracle_patch=true"],
    "ravl": ["agent.num_critics=10", "agent.eta=1.0", "oracle_patch=false"],
}
LABELS = {"base": "Base (SAC, N=2)", "base_oracle": "Base + oracle edge-of-reach patch", "ravl": "RAVL (N=10, eta=1)"}


def load_ravl_config(config: str | Path, overrides: Sequence[str] = ()):
    from worldgen.rl.ravl import RAVLConfig

    return load_config(RAVLConfig, config, overrides)


def train_main(cfg, progress: bool = True, threads: int = 1) -> list[dict]:
    """Train RAVL / Base as ``cfg`` (a ``RAVLConfig``) says with ``threads`` torch threads (0 = torch's default;
    the caller's setting is restored); returns the per-epoch metric rows."""
    import torch

    from worldgen.rl.ravl import train

    prev = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        return train(cfg, progress=progress)
    finally:
        torch.set_num_threads(prev)


def configure_train(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("config", help="RAVL experiment YAML (configs/ravl/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. agent.eta=0 epochs=10")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the networks are tiny, and extra threads on a busy "
                             "machine made one Hopper dynamics epoch ~100x slower); 0 = torch's default")

    def handler(args: argparse.Namespace) -> int:
        cfg = load_ravl_config(args.config, args.overrides)
        history = train_main(cfg, progress=not args.no_progress, threads=args.threads)
        last = history[-1] if history else {}
        keep = ("epoch", "return", "normalized_score", "q_mean", "q_edge_mean", "diverged")
        print({k: last[k] for k in keep if k in last})
        return 0
    return handler


def _run_variant(job: tuple) -> list[dict]:
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # one process per variant; intra-op threads would only fight each other
    name, seed, config, overrides, progress = job
    try:
        history = train_main(load_ravl_config(config, overrides), progress=progress, threads=0)
    finally:
        torch.set_num_threads(prev)  # matters when variants run in the calling process (workers=1)
    return [{"variant": name, "seed": seed, **row} for row in history]


def edge_of_reach(
    out: str | Path,
    config: str | Path,
    overrides: list[str] | tuple = (),
    variants: list[str] | tuple = tuple(VARIANTS),
    seeds: list[int] | tuple = (0,),
    workers: int = 3,
    progress: bool = False,
) -> dict:
    """Train every variant x seed under the true dynamics; write CSV, PNG and summary into ``out``."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    if not Path(config).is_file():
        raise FileNotFoundError(f"{config}: edge-of-reach config not found (pass --config PATH, or run from the "
                                f"repository root for the default {DEFAULT_EDGE_CONFIG})")
    out = Path(out)
    jobs = [(v, s, str(config), [*overrides, *VARIANTS[v], "true_dynamics=true", f"seed={s}",
             f"out_dir={out / 'runs' / f'{v}_seed{s}'}", f"name={v}_seed{s}"], progress)
            for v in variants for s in seeds]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            results = list(pool.map(_run_variant, jobs))
    else:
        results = [_run_variant(j) for j in jobs]
    rows = [r for res in results for r in res]
    write_csv(out / "edge_of_reach.csv", rows)
    plot_edge_of_reach(rows, out / "edge_of_reach.png")
    summary = summarize(rows)
    write_json(out / "summary.json", summary)
    return summary


def replot(out: str | Path) -> dict:
    """Re-read ``out/edge_of_reach.csv`` and rewrite the PNG and ``summary.json`` without training."""
    path = Path(out) / "edge_of_reach.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no edge-of-reach results to replot")
    with open(path, newline="") as f:
        rows = [{k: _parse(k, v) for k, v in r.items()} for r in csv.DictReader(f)]
    plot_edge_of_reach(rows, Path(out) / "edge_of_reach.png")
    summary = summarize(rows)
    write_json(Path(out) / "summary.json", summary)
    return summary


def _parse(key: str, value: str):
    if key == "variant":
        return value
    if value == "":
        return None
    return int(value) if key in ("seed", "epoch", "step", "diverged") else float(value)




def summarize(rows: list[dict]) -> dict:
    """Per variant and seed: final and peak Q (trained and edge states), true values, return, divergence verdict.

    Every reward of the point mass is negative, so any Q-value above 0 is an overestimation no policy can realise:
    ``impossible_q`` says the mean Q at trained-on or edge-of-reach states exceeded 0 at some epoch; ``diverged``
    says Q became non-finite or passed the config's ``stop_if_q_above``.
    """
    out: dict = {}
    for key in dict.fromkeys((r["variant"], r["seed"]) for r in rows):
        runs = [r for r in rows if (r["variant"], r["seed"]) == key]
        last = runs[-1]
        peak_q = max(r["q_mean"] for r in runs)
        peak_edge = max(r["q_edge_mean"] for r in runs)
        out[f"{key[0]}_seed{key[1]}"] = {
            "epochs": last["epoch"], "steps": last["step"], "final_q_mean": last["q_mean"],
            "final_q_edge_mean": last["q_edge_mean"], "peak_q_mean": peak_q, "peak_q_edge_mean": peak_edge,
            "final_v_true": last.get("v_true"), "final_v_true_edge": last.get("v_true_edge"),
            "final_return": last.get("return"), "final_normalized_score": last.get("normalized_score"),
            "impossible_q": bool(not math.isfinite(peak_q) or peak_q > 0.0 or peak_edge > 0.0),
            "diverged": bool(last["diverged"] or not math.isfinite(peak_q)),
        }
    return out


def plot_edge_of_reach(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = [("q_mean", "v_true", "Q at trained-on states"), ("q_edge_mean", "v_true_edge", "Q at edge-of-reach states"),
              ("return", None, "evaluation return")]
    for ax, (key, ref, title) in zip(axes, panels):
        for i, key_run in enumerate(dict.fromkeys((r["variant"], r["seed"]) for r in rows)):
            runs = [r for r in rows if (r["variant"], r["seed"]) == key_run and r.get(key) not in (None, "")]
            color = f"C{list(VARIANTS).index(key_run[0])}"
            label = LABELS[key_run[0]] if key_run[1] == min(r["seed"] for r in rows if r["variant"] == key_run[0]) else None
            ax.plot([r["step"] for r in runs], [float(r[key]) for r in runs], color=color, label=label)
            if ref:
                ax.plot([r["step"] for r in runs], [float(r[ref]) for r in runs], color=color, ls=":", lw=1)
        ax.set_title(title + (" (dotted: true V*)" if ref else ""))
        ax.set_xlabel("agent steps")
        if ref:
            ax.set_yscale("symlog", linthresh=1.0)
            ax.axhline(0.0, color="k", lw=0.6)
    axes[0].legend(fontsize=8)
    fig.suptitle("Edge-of-reach on the 2D point mass with the TRUE dynamics (rewards < 0: any Q > 0 is overestimation)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


@dataclass
class EdgeConfig:
    out: str  # output folder (CSV, PNG, summary.json, per-run folders)
    config: str = DEFAULT_EDGE_CONFIG  # base point-mass config, relative to the working directory
    overrides: list = field(default_factory=list)  # key=value overrides for every variant, e.g. epochs=4
    variants: list = field(default_factory=lambda: list(VARIANTS))  # any of VARIANTS
    seeds: list = field(default_factory=lambda: [0])  # seeds per variant
    workers: int = 3  # parallel processes
    progress: bool = False  # progress bars of the training runs
    replot: bool = False  # only redraw the PNG/summary from the existing CSV


def edge_main(cfg: EdgeConfig) -> dict:
    """Run (or, with ``replot``, only redraw) the edge-of-reach reproduction; returns the summary."""
    if cfg.replot:
        return replot(cfg.out)
    return edge_of_reach(cfg.out, cfg.config, cfg.overrides, cfg.variants, cfg.seeds, cfg.workers, cfg.progress)


def configure_edge(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--out", required=True, help="output folder (CSV, PNG, summary.json, per-run folders)")
    parser.add_argument("--config", default=DEFAULT_EDGE_CONFIG,
                        help=f"base point-mass config (default: {DEFAULT_EDGE_CONFIG} in the working directory)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list from {list(VARIANTS)}")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per variant")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--workers", type=int, default=3, help="parallel processes")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG/summary from the existing CSV")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every variant, e.g. epochs=4")

    def handler(args: argparse.Namespace) -> int:
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        summary = edge_main(from_args(EdgeConfig, args, variants=args.variants.split(","), seeds=seeds))
        for name, s in summary.items():
            print(f"{name:>20}: final Q {s['final_q_mean']:.3g} (true {s['final_v_true']:.3g}), "
                  f"edge Q {s['final_q_edge_mean']:.3g} (true {s['final_v_true_edge']:.3g}), "
                  f"peak Q {s['peak_q_mean']:.3g} / edge {s['peak_q_edge_mean']:.3g}, return {s['final_return']:.3g}, "
                  f"Q>0 (impossible) seen={s['impossible_q']}, diverged={s['diverged']}")
        print(f"wrote {Path(args.out) / 'edge_of_reach.png'} and edge_of_reach.csv")
        return 0
    return handler


__all__ = ["load_ravl_config", "train_main", "configure_train", "EdgeConfig", "edge_main", "configure_edge",
           "edge_of_reach", "replot", "summarize", "VARIANTS"]
