"""Summarise tools/artv_ablation.sh: mean ± std over seeds per variant and window, a Markdown table, JSON and a PNG.

    python tools/artv_ablation_summary.py runs/artv-ablate --out docs/results/artv_ablation.png

Reads ``<variant>-s<seed>.quality.json`` (``worldgen eval artv-quality`` records, one model each). Per window: the
rollout MSE beside the copy-first and mean-colour baselines (computed on the same episodes), the vehicle-pixel and
HF-energy ratios (generated / real); per run: the one-step MSE against copy-last.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

VARIANTS = ("plain", "mask", "anchor", "full", "scratch")
LABELS = {"plain": "plain conditioning", "mask": "+ mask", "anchor": "+ mask + anchor",
          "full": "+ mask + anchor + noise aug (full)", "scratch": "full, no prior (scratch)"}
KEYS = ("mse", "mse_copy_first", "mse_mean_colour", "vehicle_ratio", "hf_ratio")


def load(root: Path) -> dict:
    runs: dict = defaultdict(dict)  # variant -> seed -> model row
    for f in sorted(root.glob("*.quality.json")):
        m = re.fullmatch(r"(\w+)-s(\d+)\.quality", f.name[:-len(".json")])
        if m and m.group(1) in VARIANTS:
            row = next(iter(json.loads(f.read_text())["models"].values()))
            runs[m.group(1)][int(m.group(2))] = row
    return runs


def summarise(runs: dict) -> dict:
    out = {}
    for v in VARIANTS:
        if v not in runs:
            continue
        rows = list(runs[v].values())
        starts = [w["start"] for w in rows[0]["windows"]]
        per = {k: np.array([[w[k] for w in r["windows"]] for r in rows]) for k in KEYS}
        one = np.array([r["one_step_mse"] for r in rows])
        out[v] = {"seeds": sorted(runs[v]), "window_starts": starts,
                  **{k: {"mean": per[k].mean(0).tolist(), "std": per[k].std(0).tolist()} for k in KEYS},
                  "one_step_mse": {"mean": float(one.mean()), "std": float(one.std())},
                  "one_step_mse_copy_last": float(np.mean([r["one_step_mse_copy_last"] for r in rows])),
                  "beats_copy_first_every_window_after_first": [bool((per["mse"][i, 1:] < per["mse_copy_first"][i, 1:]).all())
                                                                for i in range(len(rows))]}
    return out


def table(summary: dict) -> str:
    lines = ["| variant | seeds | rollout MSE per window (mean ± std) | copy-first | last-window vehicles / real | "
             "last-window HF / real | one-step MSE (copy-last) |", "|---|---|---|---|---|---|---|"]
    for v, s in summary.items():
        mse = ", ".join(f"{m:.4f}±{d:.4f}" for m, d in zip(s["mse"]["mean"], s["mse"]["std"]))
        cf = ", ".join(f"{m:.4f}" for m in s["mse_copy_first"]["mean"])
        lines.append(f"| {LABELS[v]} | {len(s['seeds'])} | {mse} | {cf} | {s['vehicle_ratio']['mean'][-1]:.2f}"
                     f"±{s['vehicle_ratio']['std'][-1]:.2f} | {s['hf_ratio']['mean'][-1]:.2f}±"
                     f"{s['hf_ratio']['std'][-1]:.2f} | {s['one_step_mse']['mean']:.4f}±{s['one_step_mse']['std']:.4f}"
                     f" ({s['one_step_mse_copy_last']:.4f}) |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), dpi=110)
    for i, (v, s) in enumerate(summary.items()):
        x = np.array(s["window_starts"])
        for ax, k in zip(axes, ("mse", "vehicle_ratio", "hf_ratio")):
            m, d = np.array(s[k]["mean"]), np.array(s[k]["std"])
            ax.errorbar(x + i * 0.6, m, yerr=d, marker="o", capsize=3, label=LABELS[v])
    first = next(iter(summary.values()))
    axes[0].plot(first["window_starts"], first["mse_copy_first"]["mean"], "k--", label="copy first frame")
    axes[0].plot(first["window_starts"], first["mse_mean_colour"]["mean"], "k:", label="mean colour")
    axes[0].set(title="rollout MSE per window (mean ± std over seeds)", xlabel="window start (frame)")
    for ax, t in ((axes[1], "vehicle pixels / real"), (axes[2], "HF energy / real")):
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(title=t, xlabel="window start (frame)")
    for ax in axes:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, help="PNG (a .json summary goes beside it)")
    args = ap.parse_args(argv)
    runs = load(args.root)
    if not runs:
        print(f"{args.root}: no <variant>-s<seed>.quality.json files", file=sys.stderr)
        return 2
    summary = summarise(runs)
    print(table(summary))
    if args.out:
        plot(summary, args.out)
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
