"""Summarise tools/drift_ablation.sh: mean ± std over seeds per variant and window, a Markdown table and a PNG.

    python tools/drift_ablation_summary.py runs/ablate --out docs/results/worldmodel_drift_ablation.png

Reads ``<variant>-s<seed>.drift.json`` (``worldgen eval drift`` records). Drift of a run = its last window's score
relative to its first window's (PSNR drop in dB, code-JS rise in bits); the masking target compares those drifts.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

VARIANTS = ("none", "masking", "reweighting", "both")
METRICS = {"psnr": "decoded PSNR (dB)", "token_acc": "token accuracy", "code_js": "code JS (bits)"}


def load(root: Path) -> dict:
    runs: dict = defaultdict(dict)  # variant -> seed -> windows
    for f in sorted(root.glob("*.drift.json")):
        m = re.fullmatch(r"(\w+)-s(\d+)\.drift", f.stem.replace(".json", ""))
        if m and m.group(1) in VARIANTS:
            runs[m.group(1)][int(m.group(2))] = json.loads(f.read_text())["windows"]
    return runs


def summarise(runs: dict) -> dict:
    out = {}
    for variant, seeds in runs.items():
        rows = {}
        for key in METRICS:
            per_seed = np.array([[w[key] for w in wins] for wins in seeds.values()])  # seeds x windows
            drift = per_seed[:, -1] - per_seed[:, 0]
            rows[key] = {"mean": per_seed.mean(0).tolist(), "std": per_seed.std(0).tolist(),
                         "drift_mean": float(drift.mean()), "drift_std": float(drift.std())}
        out[variant] = {"seeds": sorted(seeds), "starts": [w["start"] for w in next(iter(seeds.values()))], **rows}
    return out


def table(summary: dict) -> str:
    lines = ["| variant | seeds | PSNR first → last window (dB) | PSNR drop | token acc first → last | "
             "code JS first → last (bits) |", "|---|---|---|---|---|---|"]
    for v in VARIANTS:
        if v not in summary:
            continue
        s = summary[v]
        p, a, j = s["psnr"], s["token_acc"], s["code_js"]
        lines.append(f"| {v} | {len(s['seeds'])} | {p['mean'][0]:.2f} ± {p['std'][0]:.2f} → {p['mean'][-1]:.2f} ± "
                     f"{p['std'][-1]:.2f} | {-p['drift_mean']:.2f} ± {p['drift_std']:.2f} | {a['mean'][0]:.3f} → "
                     f"{a['mean'][-1]:.3f} ± {a['std'][-1]:.3f} | {j['mean'][0]:.3f} → {j['mean'][-1]:.3f} ± "
                     f"{j['std'][-1]:.3f} |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(13, 3.6), dpi=110)
    for ax, (key, label) in zip(axes, METRICS.items()):
        for v in VARIANTS:
            if v not in summary:
                continue
            s = summary[v]
            x, m, sd = np.array(s["starts"]), np.array(s[key]["mean"]), np.array(s[key]["std"])
            ax.plot(x, m, marker="o", label=f"{v} ({len(s['seeds'])} seeds)")
            ax.fill_between(x, m - sd, m + sd, alpha=0.15)
        ax.set_xlabel("window start (generated frame)")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=8)
    fig.suptitle("Anti-drift ablation: held-out rollouts with the real ego motion forced (mean ± std over seeds)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, default=None, help="PNG of the per-window curves")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    a = p.parse_args(argv)
    runs = load(a.root)
    if not runs:
        print(f"no <variant>-s<seed>.drift.json in {a.root}", file=sys.stderr)
        return 1
    summary = summarise(runs)
    print(table(summary))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))
    if a.out:
        plot(summary, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
