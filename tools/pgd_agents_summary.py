"""Summarise tools/pgd_agents.sh: per (agent, data mode) and evaluation step, the return and D4RL-normalised score
as mean ± std (population) over seeds, the per-seed values, and PGD against real and unguided seed by seed.

    python tools/pgd_agents_summary.py runs/pgd-agents-halfcheetah [--json OUT.json]

Reads ``<agent>-<mode>-s<seed>/eval.json`` (written by ``worldgen train`` for the agent task).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

MODES = ("real", "unguided", "pgd")


def load(root: Path) -> dict:
    """(agent, mode) -> {seed: eval record}."""
    runs: dict = defaultdict(dict)
    for f in sorted(root.glob("*/eval.json")):
        m = re.fullmatch(r"(\w+)-(real|unguided|pgd)-s(\d+)", f.parent.name)
        if m:
            runs[(m.group(1), m.group(2))][int(m.group(3))] = json.loads(f.read_text())
    return runs


def summarise(runs: dict) -> dict:
    out: dict = {}
    for (agent, mode), seeds in sorted(runs.items()):
        steps = sorted({h["step"] for e in seeds.values() for h in e["history"]})
        rows = []
        for step in steps:
            per = {s: h for s, e in sorted(seeds.items()) for h in e["history"] if h["step"] == step}
            ret = np.array([h["return_mean"] for h in per.values()])
            norm = [h.get("normalized_score") for h in per.values()]
            norm = np.array(norm, dtype=float) if all(v is not None for v in norm) else None
            rows.append({"step": step, "seeds": list(per), "return_mean": float(ret.mean()),
                         "return_std": float(ret.std()), "per_seed": [float(x) for x in ret],
                         "normalized_mean": None if norm is None else float(norm.mean()),
                         "normalized_std": None if norm is None else float(norm.std())})
        loglik = {s: [x.get("target_log_likelihood") for x in e.get("synthetic", [])] for s, e in seeds.items()}
        out.setdefault(agent, {})[mode] = {"env_id": next(iter(seeds.values())).get("env_id"), "steps": rows,
                                           "synthetic_target_log_likelihood": {str(k): v for k, v in loglik.items()
                                                                              if v}}
    for agent, modes in out.items():  # PGD vs the others at the last common step, seed by seed
        if "pgd" not in modes:
            continue
        last = modes["pgd"]["steps"][-1]
        pgd = dict(zip(last["seeds"], last["per_seed"]))
        for other in ("real", "unguided"):
            rows = [r for r in modes.get(other, {}).get("steps", []) if r["step"] == last["step"]]
            if rows:
                o = dict(zip(rows[0]["seeds"], rows[0]["per_seed"]))
                common = sorted(set(o) & set(pgd))
                modes["pgd"][f"vs_{other}"] = {"step": last["step"], "seeds": common,
                                              "pgd_higher_in": sum(pgd[s] > o[s] for s in common),
                                              "mean_gain": float(np.mean([pgd[s] - o[s] for s in common]))
                                              if common else None}
    return out


def table(summary: dict) -> str:
    lines = []
    for agent, modes in summary.items():
        lines += [f"### {agent} ({next(iter(modes.values()))['env_id']})", "",
                  "| data | step | return (per seed) | D4RL-normalised |", "|---|---|---|---|"]
        for mode in MODES:
            for r in modes.get(mode, {}).get("steps", []):
                norm = "—" if r["normalized_mean"] is None else f"{r['normalized_mean']:.2f} ± {r['normalized_std']:.2f}"
                seeds = ", ".join(f"{x:.1f}" for x in r["per_seed"])
                lines.append(f"| {mode} | {r['step']} | {r['return_mean']:.1f} ± {r['return_std']:.1f} ({seeds}) | "
                             f"{norm} |")
        for other in ("real", "unguided"):
            c = modes.get("pgd", {}).get(f"vs_{other}")
            if c and c["seeds"]:
                lines.append(f"\nPGD vs {other} at step {c['step']}: higher in {c['pgd_higher_in']} of "
                             f"{len(c['seeds'])} seeds, mean gain {c['mean_gain']:+.1f} return.")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path)
    p.add_argument("--json", type=Path, default=None, help="write the summary JSON here")
    a = p.parse_args(argv)
    runs = load(a.root)
    if not runs:
        print(f"no <agent>-<mode>-s<seed>/eval.json in {a.root}", file=sys.stderr)
        return 1
    summary = summarise(runs)
    print(table(summary))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
