"""``worldgen data rl-card DIR``: the card of a folder of offline-RL datasets (D4RL layout, one environment).

For every ``*.hdf5`` in the folder: transitions, episodes, episode return (mean, std, min, max), mean episode
length, terminal fraction and the D4RL-normalised score of the mean return (D4RL's reference returns for its
locomotion tasks, else the file's self-calibrated ``ref_min_score`` / ``ref_max_score``). From the metadata that
``worldgen data offline-rl`` writes: the behaviour SAC run's length, its evaluation curve, and which checkpoints
became ``medium`` and ``expert``. Two checks of the D4RL recipe (Fu et al., 2020) are reported, not enforced:

- ``expert_normalised``: D4RL's experts are converged SAC policies, which score about 100 by construction of the
  normalisation (the reference expert return is such a policy's); a run stopped early scores lower and the card
  says so;
- ``medium_to_expert``: the medium policy's evaluation return over the expert's, which the recipe puts near 1/3.

Writes ``card.json`` (everything above), ``CARD.md`` (a table for people) and ``card.png`` (the SAC curve with the
medium/expert picks, and the per-file episode-return distributions) into the folder, each atomically. A file that
is not a valid dataset stops the card with an error naming it; nothing is written then.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from worldgen.data.offline_rl import DatasetError, load_dataset, normalized_score, reference_returns
from worldgen.eval.plots import save_figure
from worldgen.io import atomic_path, write_json

KIND_ORDER = ("random", "medium-replay", "medium", "medium-expert", "expert")
EXPERT_LEVEL = 90.0  # normalised score below which an expert is flagged as not converged (D4RL's are ~100)


def _kind(path: Path, meta: dict) -> str:
    return str(meta.get("kind") or path.stem)


def _order(kind: str) -> tuple:
    return (KIND_ORDER.index(kind), "") if kind in KIND_ORDER else (len(KIND_ORDER), kind)


def dataset_row(path: Path) -> tuple[dict, dict]:
    """Statistics of one file (loads and validates it) and the file's metadata."""
    ds = load_dataset(path)
    meta = ds.metadata
    rets = ds.episode_returns()
    lengths = np.array([e - s for s, e in ds.episode_bounds()])
    row = {
        "file": path.name, "kind": _kind(path, meta), "env_id": meta.get("env_id"), "transitions": len(ds),
        "episodes": int(len(rets)), "return_mean": float(rets.mean()), "return_std": float(rets.std()),
        "return_min": float(rets.min()), "return_max": float(rets.max()), "episode_length_mean": float(lengths.mean()),
        "terminal_fraction": float(ds.terminals.mean()), "size_bytes": path.stat().st_size,
        "returns": rets.tolist(),
    }
    try:
        ref = reference_returns(meta.get("env_id"), meta)
        row["reference_returns"] = [float(ref[0]), float(ref[1])]
        row["normalised_mean"] = float(normalized_score(rets.mean(), ref))
        row["normalised_std"] = float(100.0 * rets.std() / (ref[1] - ref[0]))
    except ValueError:
        row["reference_returns"] = None  # neither a D4RL task nor self-calibrated: no normalised score
    return row, meta


def behaviour_summary(meta: dict) -> dict | None:
    """The SAC run recorded in a file's metadata (``worldgen data offline-rl``), or None for foreign files."""
    curve = meta.get("checkpoint_returns")
    if curve is None:
        return None
    curve = np.asarray(curve, dtype=float).reshape(-1, 2)
    out = {"train_steps": meta.get("behaviour_train_steps"), "agent": meta.get("behaviour"),
           "curve": curve.tolist(), "medium_step": meta.get("medium_checkpoint_step"),
           "medium_return": meta.get("medium_checkpoint_return"), "expert_step": meta.get("expert_checkpoint_step"),
           "expert_return": meta.get("ref_max_score"), "random_return": meta.get("ref_min_score")}
    try:
        ref = reference_returns(meta.get("env_id"), meta)
    except ValueError:
        return out
    if out["expert_return"] is not None:
        out["expert_normalised"] = float(normalized_score(float(out["expert_return"]), ref))
        out["expert_converged"] = bool(out["expert_normalised"] >= EXPERT_LEVEL)
    if out["medium_return"] is not None and out["expert_return"]:
        out["medium_to_expert"] = float(out["medium_return"]) / float(out["expert_return"])
    out["best_return"] = float(curve[:, 1].max())
    out["best_step"] = int(curve[int(curve[:, 1].argmax()), 0])
    return out


def make_card(folder: str | os.PathLike) -> dict:
    """Read every ``*.hdf5`` in ``folder`` and write its card; returns the card (without per-episode returns)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = sorted(folder.glob("*.hdf5"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .hdf5 datasets in this folder")
    rows, behaviour, envs = [], None, set()
    for p in files:
        try:
            row, meta = dataset_row(p)
        except (DatasetError, OSError) as e:
            raise DatasetError(f"card of {folder}: {p.name} is not a valid dataset: {e}") from None
        rows.append(row)
        envs.add(row["env_id"])
        if behaviour is None:
            behaviour = behaviour_summary(meta)
    if len(envs - {None}) > 1:
        raise DatasetError(f"{folder}: datasets of several environments {sorted(envs - {None})}; one card per env")
    rows.sort(key=lambda r: _order(r["kind"]))
    card = {"folder": str(folder), "env_id": next(iter(envs - {None}), None), "datasets": rows,
            "behaviour": behaviour}
    _plot(card, folder / "card.png")
    with atomic_path(folder / "CARD.md") as tmp:
        Path(tmp).write_text(card_markdown(card))
    slim = {**card, "datasets": [{k: v for k, v in r.items() if k != "returns"} for r in rows]}
    write_json(folder / "card.json", slim)
    return slim


def card_markdown(card: dict) -> str:
    lines = [f"# Offline-RL datasets: {card['env_id']}", ""]
    b = card["behaviour"]
    if b:
        lines += [f"Behaviour policy: {b.get('agent')}, {b.get('train_steps')} online steps (D4RL: 1M). "
                  f"Random policy return {_f(b.get('random_return'))}; medium = checkpoint at step "
                  f"{b.get('medium_step')} (evaluation return {_f(b.get('medium_return'))}); expert = checkpoint at "
                  f"step {b.get('expert_step')} (evaluation return {_f(b.get('expert_return'))}); best evaluation "
                  f"{_f(b.get('best_return'))} at step {b.get('best_step')}.", ""]
        if "expert_normalised" in b:
            verdict = ("at D4RL's expert level" if b["expert_converged"] else
                       f"BELOW D4RL's expert level (~100; flagged under {EXPERT_LEVEL:.0f}): the run was not converged")
            lines += [f"Expert D4RL-normalised score {b['expert_normalised']:.1f}: {verdict}. Medium/expert return "
                      f"ratio {b.get('medium_to_expert', float('nan')):.2f} (recipe: about 1/3).", ""]
    lines += ["| file | kind | transitions | episodes | return mean +- std (min .. max) | mean length | "
              "terminal fraction | D4RL-normalised |", "|---|---|---|---|---|---|---|---|"]
    for r in card["datasets"]:
        norm = (f"{r['normalised_mean']:.1f} +- {r['normalised_std']:.1f}" if r.get("reference_returns") else "-")
        lines.append(f"| {r['file']} | {r['kind']} | {r['transitions']} | {r['episodes']} | {r['return_mean']:.1f} "
                     f"+- {r['return_std']:.1f} ({r['return_min']:.1f} .. {r['return_max']:.1f}) | "
                     f"{r['episode_length_mean']:.1f} | {r['terminal_fraction']:.4f} | {norm} |")
    lines += ["", "Written by `worldgen data rl-card`; normalised = 100 (R - R_random) / (R_expert - R_random) with "
              "D4RL's reference returns where the task has them.", ""]
    return "\n".join(lines)


def _f(x) -> str:
    return "-" if x is None else f"{float(x):.1f}"


def _plot(card: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b, rows = card["behaviour"], card["datasets"]
    fig, axes = plt.subplots(1, 2 if b else 1, figsize=(11 if b else 6, 3.6), dpi=110, squeeze=False)
    if b:
        ax = axes[0, 0]
        curve = np.asarray(b["curve"], dtype=float)
        ax.plot(curve[:, 0], curve[:, 1], marker=".", label="SAC evaluation return")
        for step, name, colour in ((b.get("medium_step"), "medium", "tab:orange"),
                                   (b.get("expert_step"), "expert", "tab:green")):
            if step is not None:
                ax.axvline(float(step), color=colour, ls="--", label=f"{name} checkpoint ({int(step)})")
        ax.set_xlabel("SAC environment steps")
        ax.set_ylabel("return")
        ax.set_title(f"behaviour run, {card['env_id']}", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[0, -1]
    ax.boxplot([r["returns"] for r in rows], showfliers=False)
    ax.set_xticks(range(1, len(rows) + 1), [r["kind"] for r in rows], fontsize=8)
    ax.set_ylabel("episode return")
    ax.set_title("episode returns per dataset", fontsize=9)
    return save_figure(fig, path)


__all__ = ["make_card", "dataset_row", "behaviour_summary", "card_markdown", "EXPERT_LEVEL"]
