"""``worldgen ravl train CONFIG`` and ``worldgen ravl edge-of-reach --out DIR``.

The edge-of-reach reproduction (Sims et al. 2024, section 4 / figure on the simple environment) trains agents on
the 2D point mass with the TRUE dynamics (no model error at all): **Base** (SAC, N 2, eta 0), **Base + oracle
patch** (Base with the true ``V*`` substituted at edge-of-reach next states), **RAVL** (N 10, eta 1), and the
uncertainty-penalty baselines **MOPO** and **MOBILE** (Base with a reward penalty on model transitions,
``worldgen.rl.penalties``). The paper's finding: Base's Q-values blow up although the dynamics are perfect; patching
only the edge-of-reach values fixes it; RAVL fixes it without the oracle; a penalty that measures *model*
uncertainty is 0 under the true dynamics, so MOPO / MOBILE become Base and overestimate like it. ``--dynamics
learned`` (or ``both``) runs the same variants on a learned ensemble instead, where the penalties are non-zero; the
summary then compares each variant's learned-model and true-dynamics runs. Output: ``edge_of_reach.csv`` (every
run's per-epoch metrics, with a ``dynamics`` column), ``edge_of_reach.png`` (Q at trained-on states and at
edge-of-reach states against the true optimal value, and the return) and ``summary.json`` (per run: peak / final
Q, the mean reward penalty, the return).

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

BASE = ["agent.num_critics=2", "agent.eta=0.0"]
VARIANTS: dict[str, list[str]] = {
    "base": [*BASE, "oracle_patch=false", "penalty.kind=none"],
    "base_oracle": [*BASE, "oracle_patch=true", "penalty.kind=none"],
    "ravl": ["agent.num_critics=10", "agent.eta=1.0", "oracle_patch=false", "penalty.kind=none"],
    "mopo": [*BASE, "oracle_patch=false", "penalty.kind=mopo"],  # penalty.coef from the config
    "mobile": [*BASE, "oracle_patch=false", "penalty.kind=mobile"],
}
DEFAULT_VARIANTS = ("base", "base_oracle", "ravl")
LABELS = {"base": "Base (SAC, N=2)", "base_oracle": "Base + oracle edge-of-reach patch", "ravl": "RAVL (N=10, eta=1)",
          "mopo": "MOPO (Base + max-std penalty)", "mobile": "MOBILE (Base + Bellman-std penalty)"}
DYNAMICS = {"true": ["true_dynamics=true"], "learned": ["true_dynamics=false"]}


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
    name, dyn, seed, config, overrides, progress = job
    try:
        history = train_main(load_ravl_config(config, overrides), progress=progress, threads=0)
    finally:
        torch.set_num_threads(prev)  # matters when variants run in the calling process (workers=1)
    return [{"variant": name, "dynamics": dyn, "seed": seed, **row} for row in history]


def run_name(variant: str, dynamics: str, seed: int) -> str:
    """``base_seed0`` under the true dynamics (the reproduction's own runs), ``base_learned_seed0`` otherwise."""
    return f"{variant}_seed{seed}" if dynamics == "true" else f"{variant}_{dynamics}_seed{seed}"


def edge_of_reach(
    out: str | Path,
    config: str | Path,
    overrides: list[str] | tuple = (),
    variants: list[str] | tuple = DEFAULT_VARIANTS,
    seeds: list[int] | tuple = (0,),
    workers: int = 3,
    progress: bool = False,
    dynamics: list[str] | tuple = ("true",),
) -> dict:
    """Train every variant x dynamics x seed; write CSV, PNG and summary into ``out``."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    bad = [d for d in dynamics if d not in DYNAMICS]
    if bad or not dynamics:
        raise ValueError(f"--dynamics: expected true, learned or both, got {list(dynamics)}")
    if not Path(config).is_file():
        raise FileNotFoundError(f"{config}: edge-of-reach config not found (pass --config PATH, or run from the "
                                f"repository root for the default {DEFAULT_EDGE_CONFIG})")
    out = Path(out)
    jobs = [(v, d, s, str(config), [*overrides, *VARIANTS[v], *DYNAMICS[d], f"seed={s}",
             f"out_dir={out / 'runs' / run_name(v, d, s)}", f"name={run_name(v, d, s)}"], progress)
            for d in dynamics for v in variants for s in seeds]
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
    if key in ("variant", "dynamics"):
        return value
    if value == "":
        return None
    return int(value) if key in ("seed", "epoch", "step", "diverged") else float(value)




def _key(r: dict) -> tuple:
    return r["variant"], r.get("dynamics") or "true", r["seed"]  # CSVs from before --dynamics hold true-dynamics runs


def _mean(values) -> float | None:
    vals = [float(v) for v in values if v not in (None, "")]
    return float(sum(vals) / len(vals)) if vals else None


def summarize(rows: list[dict]) -> dict:
    """Per run (variant, dynamics, seed): final and peak Q (trained and edge states), true values, the mean reward
    penalty on model transitions, the return, a divergence verdict; with both dynamics, each variant's
    true-dynamics return as a fraction of its learned-model return.

    Every reward of the point mass is negative, so any Q-value above 0 is an overestimation no policy can realise:
    ``impossible_q`` says the mean Q at trained-on or edge-of-reach states exceeded 0 at some epoch; ``diverged``
    says Q became non-finite or passed the config's ``stop_if_q_above``.
    """
    out: dict = {}
    for key in dict.fromkeys(_key(r) for r in rows):
        runs = [r for r in rows if _key(r) == key]
        last = runs[-1]
        peak_q = max(r["q_mean"] for r in runs)
        peak_edge = max(r["q_edge_mean"] for r in runs)
        out[run_name(*key)] = {
            "variant": key[0], "dynamics": key[1], "seed": key[2],
            "mean_penalty": _mean(r.get("penalty") for r in runs), "final_penalty": last.get("penalty"),
            "epochs": last["epoch"], "steps": last["step"], "final_q_mean": last["q_mean"],
            "final_q_edge_mean": last["q_edge_mean"], "peak_q_mean": peak_q, "peak_q_edge_mean": peak_edge,
            "final_v_true": last.get("v_true"), "final_v_true_edge": last.get("v_true_edge"),
            "final_return": last.get("return"), "final_normalized_score": last.get("normalized_score"),
            "impossible_q": bool(not math.isfinite(peak_q) or peak_q > 0.0 or peak_edge > 0.0),
            "diverged": bool(last["diverged"] or not math.isfinite(peak_q)),
        }
    _compare_dynamics(out)
    return out


def _compare_dynamics(out: dict) -> None:
    """``return_true_over_learned``: the true-dynamics final return over the learned-model one (returns are negative
    on the point mass, so 1.0 = equal, above 1 = worse under the true dynamics); ``within_10pct`` of it."""
    for name, s in out.items():
        if s["dynamics"] != "true":
            continue
        twin = out.get(run_name(s["variant"], "learned", s["seed"]))
        if twin and s["final_return"] is not None and twin["final_return"]:
            ratio = float(s["final_return"]) / float(twin["final_return"])
            s["return_true_over_learned"] = ratio
            s["within_10pct_of_learned"] = bool(abs(ratio - 1.0) <= 0.10)


def plot_edge_of_reach(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    panels = [("q_mean", "v_true", "Q at trained-on states"), ("q_edge_mean", "v_true_edge", "Q at edge-of-reach states"),
              ("return", None, "evaluation return")]
    for ax, (key, ref, title) in zip(axes, panels):
        for key_run in dict.fromkeys(_key(r) for r in rows):
            runs = [r for r in rows if _key(r) == key_run and r.get(key) not in (None, "")]
            color = f"C{list(VARIANTS).index(key_run[0])}"
            first = key_run[2] == min(r["seed"] for r in rows if _key(r)[:2] == key_run[:2])
            label = (LABELS[key_run[0]] + ("" if key_run[1] == "true" else f" [{key_run[1]} model]")) if first else None
            ax.plot([r["step"] for r in runs], [float(r[key]) for r in runs], color=color, label=label,
                    ls="-" if key_run[1] == "true" else "--")
            if ref and key_run[1] == "true":
                ax.plot([r["step"] for r in runs], [float(r[ref]) for r in runs], color=color, ls=":", lw=1)
        ax.set_title(title + (" (dotted: true V*)" if ref else ""))
        ax.set_xlabel("agent steps")
        if ref:
            ax.set_yscale("symlog", linthresh=1.0)
            ax.axhline(0.0, color="k", lw=0.6)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8)
    n_rows = math.ceil(len(labels) / 3)
    fig.suptitle("Edge-of-reach on the 2D point mass: solid = TRUE dynamics, dashed = learned ensemble "
                 "(rewards < 0: any Q > 0 is overestimation)")
    fig.tight_layout(rect=(0, 0.06 * n_rows, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _fmt(x) -> str:
    return "-" if x is None else f"{float(x):.3g}"


@dataclass
class EdgeConfig:
    out: str  # output folder (CSV, PNG, summary.json, per-run folders)
    config: str = DEFAULT_EDGE_CONFIG  # base point-mass config, relative to the working directory
    overrides: list = field(default_factory=list)  # key=value overrides for every variant, e.g. epochs=4
    variants: list = field(default_factory=lambda: list(DEFAULT_VARIANTS))  # any of VARIANTS
    dynamics: list = field(default_factory=lambda: ["true"])  # true and/or learned
    seeds: list = field(default_factory=lambda: [0])  # seeds per variant
    workers: int = 3  # parallel processes
    progress: bool = False  # progress bars of the training runs
    replot: bool = False  # only redraw the PNG/summary from the existing CSV


def edge_main(cfg: EdgeConfig) -> dict:
    """Run (or, with ``replot``, only redraw) the edge-of-reach reproduction; returns the summary."""
    if cfg.replot:
        return replot(cfg.out)
    return edge_of_reach(cfg.out, cfg.config, cfg.overrides, cfg.variants, cfg.seeds, cfg.workers, cfg.progress,
                         cfg.dynamics)


def configure_edge(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--out", required=True, help="output folder (CSV, PNG, summary.json, per-run folders)")
    parser.add_argument("--config", default=DEFAULT_EDGE_CONFIG,
                        help=f"base point-mass config (default: {DEFAULT_EDGE_CONFIG} in the working directory)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma list from {list(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--dynamics", default="true", choices=("true", "learned", "both"),
                        help="roll out in the true simulator, a learned ensemble, or both (default: true)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per variant")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed .. first-seed + seeds - 1")
    parser.add_argument("--workers", type=int, default=3, help="parallel processes")
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG/summary from the existing CSV")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every variant, e.g. epochs=4")

    def handler(args: argparse.Namespace) -> int:
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        dyn = ["true", "learned"] if args.dynamics == "both" else [args.dynamics]
        summary = edge_main(from_args(EdgeConfig, args, variants=args.variants.split(","), seeds=seeds, dynamics=dyn))
        for name, s in summary.items():
            pen = s.get("mean_penalty")
            ratio = s.get("return_true_over_learned")
            print(f"{name:>26}: penalty {'-' if pen is None else f'{pen:.3g}'}, final Q {s['final_q_mean']:.3g} "
                  f"(true {_fmt(s['final_v_true'])}), edge Q {s['final_q_edge_mean']:.3g} "
                  f"(true {_fmt(s['final_v_true_edge'])}), peak Q {s['peak_q_mean']:.3g} / edge "
                  f"{s['peak_q_edge_mean']:.3g}, return {_fmt(s['final_return'])}"
                  + ("" if ratio is None else f" ({ratio:.2f}x learned)")
                  + f", Q>0 (impossible) seen={s['impossible_q']}, diverged={s['diverged']}")
        print(f"wrote {Path(args.out) / 'edge_of_reach.png'} and edge_of_reach.csv")
        return 0
    return handler


__all__ = ["load_ravl_config", "train_main", "configure_train", "EdgeConfig", "edge_main", "configure_edge",
           "edge_of_reach", "replot", "summarize", "VARIANTS", "DEFAULT_VARIANTS", "run_name"]
