"""Saving and loading policies as plain files: ``DIR/policy.json`` (kind and sizes) + ``DIR/policy.safetensors``.

The same format carries the SAC behaviour policies of ``worldgen data offline-rl`` and the TD3+BC / IQL actors
trained by ``worldgen.lit.agents``, so ``worldgen pgd sample --policy DIR`` can guide with any of them.
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from worldgen.io import load_weights, read_json, save_weights, write_json
from worldgen.rl.nets import ActorConfig, DeterministicActor, TanhGaussianActor

KINDS = {"tanh_gaussian": TanhGaussianActor, "deterministic": DeterministicActor}


def policy_kind(actor: nn.Module) -> str:
    for name, cls in KINDS.items():
        if isinstance(actor, cls):
            return name
    raise ValueError(f"cannot save a policy of type {type(actor).__name__}")


def save_policy(out_dir: str | os.PathLike, actor: nn.Module, extra: dict | None = None) -> Path:
    out = Path(out_dir)
    c: ActorConfig = actor.cfg
    write_json(out / "policy.json", {"kind": policy_kind(actor), "obs_dim": c.obs_dim, "act_dim": c.act_dim,
                                     "hidden": list(c.hidden), "max_action": c.max_action, **(extra or {})})
    save_weights(out / "policy.safetensors", actor.state_dict())
    return out


def load_policy(path: str | os.PathLike) -> nn.Module:
    """A policy from ``DIR`` (or ``DIR/policy``, e.g. an agent's training folder), in eval mode on the CPU."""
    root = Path(path)
    if (root / "policy" / "policy.json").is_file():
        root = root / "policy"
    if not (root / "policy.json").is_file():
        raise FileNotFoundError(f"{path}: no policy.json (expected a folder written by save_policy)")
    meta = read_json(root / "policy.json")
    if meta.get("kind") not in KINDS:
        raise ValueError(f"{root / 'policy.json'}: unknown policy kind {meta.get('kind')!r}; valid: {list(KINDS)}")
    cfg = ActorConfig(obs_dim=int(meta["obs_dim"]), act_dim=int(meta["act_dim"]), hidden=list(meta["hidden"]),
                      max_action=float(meta.get("max_action", 1.0)))
    actor = KINDS[meta["kind"]](cfg)
    actor.load_state_dict(load_weights(root / "policy.safetensors"))
    return actor.eval()


__all__ = ["save_policy", "load_policy", "policy_kind", "KINDS"]
