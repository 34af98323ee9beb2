"""Summarise tools/drift_ablation.sh: mean ± std over seeds per variant and window, a Markdown table and a PNG.

    python tools/drift_ablation_summary.py runs/ablate --out docs/results/worldmodel_drift_ablation.png
    python tools/drift_ablation_summary.py runs/ablate-fvd --fvd --out docs/results/worldmodel_drift_ablation_fvd.png

Reads ``<variant>-s<seed>.drift.json`` (``worldgen eval drift`` records). Drift of a run = its last window's score
relative to its first window's (PSNR drop in dB, code-JS rise in bits); the masking target compares those drifts.

With ``--fvd`` it reads ``<variant>-s<seed>.json`` (``worldgen eval drivingworld`` records, tools/drift_ablation_fvd.sh)
instead: the sim-detector FVD per window, mean ± std over seeds, and each variant's last-window FVD relative to
``none`` (the ratio of seed means, and the mean ± std of the per-seed ratios, seeds paired: same seed, same contexts).
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


def load_fvd(root: Path) -> dict:
    """variant -> seed -> {"fvd": [per window], "code_js": [...], "vehicle_ratio": [...], "starts": [...],
    "real_floor": float} from ``worldgen eval drivingworld`` JSONs."""
    runs: dict = defaultdict(dict)
    for f in sorted(root.glob("*-s*.json")):
        m = re.fullmatch(r"(\w+)-s(\d+)", f.stem)
        if not (m and m.group(1) in VARIANTS):
            continue
        rec = json.loads(f.read_text())
        if "fvd" not in rec:
            raise ValueError(f"{f}: no FVD in this record (was it run with --detector none?)")
        wins = rec["rollout"]["windows"]
        runs[m.group(1)][int(m.group(2))] = {
            "starts": [w["start"] for w in rec["fvd"]["windows"]],
            "fvd": [w["fvd"] for w in rec["fvd"]["windows"]],
            "code_js": [w["code_js_bits"] for w in wins], "vehicle_ratio": [w["vehicle_ratio"] for w in wins],
            "real_floor": rec["fvd"]["real_floor"], "clips_per_window": rec["fvd"]["clips_per_window"]}
    return runs


def summarise_fvd(runs: dict) -> dict:
    out = {}
    for variant, seeds in runs.items():
        row = {"seeds": sorted(seeds), "starts": next(iter(seeds.values()))["starts"],
               "real_floor": float(np.mean([r["real_floor"] for r in seeds.values()])),
               "clips_per_window": next(iter(seeds.values()))["clips_per_window"]}
        for key in ("fvd", "code_js", "vehicle_ratio"):
            per_seed = np.array([seeds[s][key] for s in sorted(seeds)])
            row[key] = {"mean": per_seed.mean(0).tolist(), "std": per_seed.std(0).tolist()}
        rise = np.array([seeds[s]["fvd"][-1] - seeds[s]["fvd"][0] for s in sorted(seeds)])
        row["fvd_rise"] = {"mean": float(rise.mean()), "std": float(rise.std())}  # last window - first, per seed
        later = np.array([np.mean(seeds[s]["fvd"][1:]) for s in sorted(seeds)])  # all windows after the first
        row["fvd_after_first"] = {"mean": float(later.mean()), "std": float(later.std())}
        out[variant] = row
    base = runs.get("none", {})
    for variant, seeds in runs.items():
        paired = sorted(set(seeds) & set(base))
        if not paired:
            continue
        last = np.array([seeds[s]["fvd"][-1] for s in paired])
        ref = np.array([base[s]["fvd"][-1] for s in paired])
        ratios = last / ref
        out[variant]["last_fvd_vs_none"] = {"seeds": paired, "ratio_of_means": float(last.mean() / ref.mean()),
                                            "ratio_mean": float(ratios.mean()), "ratio_std": float(ratios.std())}
    return out


def table_fvd(summary: dict) -> str:
    lines = ["| variant | seeds | FVD first window | FVD last window | rise (last - first) | mean after the first | last / none (ratio of "
             "means; per-seed mean ± std) | vehicle ratio last window |", "|---|---|---|---|---|---|---|---|"]
    for v in VARIANTS:
        if v not in summary:
            continue
        s = summary[v]
        f, vr = s["fvd"], s["vehicle_ratio"]
        r = s.get("last_fvd_vs_none")
        rel = f"{r['ratio_of_means']:.2f} ({r['ratio_mean']:.2f} ± {r['ratio_std']:.2f})" if r else "—"
        lines.append(f"| {v} | {len(s['seeds'])} | {f['mean'][0]:.1f} ± {f['std'][0]:.1f} | {f['mean'][-1]:.1f} ± "
                     f"{f['std'][-1]:.1f} | {s['fvd_rise']['mean']:.1f} ± {s['fvd_rise']['std']:.1f} | "
                     f"{s['fvd_after_first']['mean']:.1f} ± {s['fvd_after_first']['std']:.1f} | {rel} | "
                     f"{vr['mean'][-1]:.2f} ± {vr['std'][-1]:.2f} |")
    return "\n".join(lines)


FVD_METRICS = {"fvd": "sim-detector FVD per window", "code_js": "code JS (bits)",
               "vehicle_ratio": "vehicle pixels / real"}


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


def plot(summary: dict, path: Path, metrics: dict = METRICS,
         title: str = "held-out rollouts with the real ego motion forced") -> None:
    """One panel per metric: each variant's per-window mean ± std over seeds (the FVD panel with the real floor)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(13, 3.6), dpi=110)
    for ax, (key, label) in zip(axes, metrics.items()):
        for v in VARIANTS:
            if v not in summary:
                continue
            s = summary[v]
            x, m, sd = np.array(s["starts"]), np.array(s[key]["mean"]), np.array(s[key]["std"])
            ax.plot(x, m, marker="o", label=f"{v} ({len(s['seeds'])} seeds)")
            ax.fill_between(x, m - sd, m + sd, alpha=0.15)
        if key == "fvd":
            ax.axhline(next(iter(summary.values()))["real_floor"], color="grey", ls="--", label="real clips, same N")
            ax.set_ylim(bottom=0)
        ax.set_xlabel("window start (generated frame)")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7, loc="lower right", ncol=2)
    fig.suptitle(f"Anti-drift ablation: {title} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--out", type=Path, default=None, help="PNG of the per-window curves")
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    p.add_argument("--fvd", action="store_true",
                   help="root holds `worldgen eval drivingworld` records (tools/drift_ablation_fvd.sh)")
    a = p.parse_args(argv)
    runs = load_fvd(a.root) if a.fvd else load(a.root)
    if not runs:
        pattern = "<variant>-s<seed>.json" if a.fvd else "<variant>-s<seed>.drift.json"
        print(f"no {pattern} in {a.root}", file=sys.stderr)
        return 1
    summary = summarise_fvd(runs) if a.fvd else summarise(runs)
    print(table_fvd(summary) if a.fvd else table(summary))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))
    if a.out:
        if a.fvd:
            plot(summary, a.out, FVD_METRICS, "400-frame rollouts, the model's own ego motion")
        else:
            plot(summary, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
