"""Task ``ravl``: `worldgen train configs/ravl/<x>.yaml` runs RAVL / Base (Sims et al. 2024), like every other family.

RAVL's loop is not a Lightning one (``worldgen.rl.ravl.train``: MBPO-style model rollouts interleaved with SAC-N/EDAC
steps, its own per-epoch ``metrics.csv``, checkpoint, ``config.yaml`` and ``card.json``), so this task module
defines ``train(cfg, command)`` instead of ``build``; ``worldgen.lit.train.fit`` hands such tasks the whole run.
``Config`` is the loop's own schema (``RAVLConfig``, whose ``task`` field defaults to ``ravl``). As in
``worldgen ravl train`` (its default ``--threads 1``), torch runs single-threaded for the networks are tiny.
"""
from __future__ import annotations

import torch

from worldgen.rl.ravl import RAVLConfig

Config = RAVLConfig


def train(cfg: RAVLConfig, command: str = "", progress: bool = True) -> list[dict]:
    """Run RAVL as configured; returns the per-epoch metric rows (also in ``out_dir/metrics.csv``)."""
    from worldgen.rl.ravl import train as ravl_train

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return ravl_train(cfg, progress=progress)
    finally:
        torch.set_num_threads(prev)


__all__ = ["Config", "train"]
