"""Sharded generation of synthetic offline-RL data: a fixed shard plan, rank detection, per-shard files, one merge.

The unit of work is the **shard**, not the rank: ``n_items`` trajectory windows are cut into ``ceil(n / shard_size)``
shards of ``shard_size`` windows (the last one shorter), and shard ``i`` is sampled with its own seed
``seed_of(i)`` (``numpy.random.SeedSequence([seed, i])``). Rank ``r`` of ``W`` takes the shards ``r, r + W, ...``
and writes each one as a whole D4RL-layout file (``worldgen.data.offline_rl.save_dataset``: temp file + rename), so
a killed rank leaves complete shards only, and a rerun skips the shards that exist (resume). Because the shard
contents depend on ``(seed, shard index, shard size, batch size)`` and never on the rank or the number of ranks,
the merged file is the same for 1, 2 or 64 ranks, and equals a single-process run that writes ``--out`` directly
(bit for bit on one machine with the same torch thread count: CPU kernels may round differently across thread
counts or devices, so shards sampled on different hardware are merged exactly but are not bitwise reproducible).

``plan.json`` in the shard folder fixes every setting that changes the samples; a rank started with different
settings on the same folder is refused, so shards of two different runs are never merged. The merge reads the plan,
refuses missing or foreign shards, concatenates the shards in index order (each shard ends with an episode end) and
writes one file.

Ranks come from, in order: explicit ``rank``/``world_size``; torchrun (``RANK``/``WORLD_SIZE``); a SLURM job array
(``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN`` of ``SLURM_ARRAY_TASK_COUNT``); otherwise rank 0 of 1. No process
group is needed: ranks never communicate.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from worldgen.data.offline_rl import OfflineDataset, load_dataset, make_dataset

PLAN_FILE = "plan.json"
SHARD_META = ("shard", "n_shards", "shard_seed", "shard_rank", "shard_world_size")  # per-shard metadata keys


@dataclass
class ShardPlan:
    n_items: int  # trajectory windows in the whole dataset
    shard_size: int  # windows per shard (the last shard may be shorter)
    seed: int  # base seed; shard i uses seed_of(i)
    settings: dict = field(default_factory=dict)  # everything else that changes the samples (ckpt, coeff, ...)

    def __post_init__(self):
        if self.n_items < 1 or self.shard_size < 1:
            raise ValueError(f"a shard plan needs n_items >= 1 and shard_size >= 1, got {self.n_items} and "
                             f"{self.shard_size}")

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_items / self.shard_size)

    def size_of(self, i: int) -> int:
        return min(self.shard_size, self.n_items - i * self.shard_size)

    def seed_of(self, i: int) -> int:
        """Shard ``i``'s sampling seed: independent streams per shard, whatever the number of ranks."""
        return int(np.random.SeedSequence([self.seed, i]).generate_state(1)[0])

    def shards_of(self, rank: int, world_size: int) -> list[int]:
        return list(range(rank, self.n_shards, world_size))

    def path(self, folder: str | Path, i: int) -> Path:
        return Path(folder) / f"shard-{i:05d}-of-{self.n_shards:05d}.hdf5"

    def to_dict(self) -> dict:
        return asdict(self)


def detect_rank(rank: Optional[int] = None, world_size: Optional[int] = None,
                env: Optional[Mapping[str, str]] = None) -> tuple[int, int, str]:
    """``(rank, world_size, source)`` from explicit values, torchrun, a SLURM array, or ``(0, 1, "single")``."""
    env = os.environ if env is None else env
    if (rank is None) != (world_size is None):
        raise ValueError("--rank and --world-size go together (or set neither and let torchrun/SLURM set them)")
    if rank is not None:
        found = (int(rank), int(world_size), "explicit")
    elif "RANK" in env and "WORLD_SIZE" in env:
        found = (int(env["RANK"]), int(env["WORLD_SIZE"]), "torchrun")
    elif "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
        first = int(env.get("SLURM_ARRAY_TASK_MIN", 0))
        found = (int(env["SLURM_ARRAY_TASK_ID"]) - first, int(env["SLURM_ARRAY_TASK_COUNT"]), "slurm-array")
    else:
        found = (0, 1, "single")
    r, w, src = found
    if w < 1 or not 0 <= r < w:
        raise ValueError(f"rank {r} of world size {w} ({src}): expected 0 <= rank < world_size")
    return found


def write_plan(folder: str | Path, plan: ShardPlan) -> Path:
    """Write ``plan.json`` (every rank writes the same content atomically), or check the one already there."""
    from worldgen.io import read_json, write_json

    path = Path(folder) / PLAN_FILE
    want = _jsonable(plan.to_dict())
    if path.is_file():
        have = read_json(path)
        if have != want:
            diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
            raise ValueError(f"{path}: this shard folder was planned with different settings ({', '.join(diff)}); "
                             f"use a new --shard-dir or the same settings")
        return path
    write_json(path, want)
    return path


def read_plan(folder: str | Path) -> ShardPlan:
    from worldgen.io import read_json

    path = Path(folder) / PLAN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no shard plan (is {folder} a `worldgen pgd sample --shard-dir` folder?)")
    d = read_json(path)
    return ShardPlan(int(d["n_items"]), int(d["shard_size"]), int(d["seed"]), dict(d.get("settings", {})))


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj, default=str))  # as read back from plan.json (tuples -> lists, paths -> str)


def concat(parts: list[OfflineDataset], metadata: dict) -> OfflineDataset:
    """Shards (each ending with an episode end) -> one dataset, in the given order."""
    if not parts:
        raise ValueError("no shards to concatenate")
    keys = parts[0].arrays().keys()
    return make_dataset(**{k: np.concatenate([p.arrays()[k] for p in parts]) for k in keys}, metadata=metadata)


def merged_metadata(shard_meta: dict, plan: ShardPlan) -> dict:
    """A shard's metadata without its shard-only keys, plus the plan's size (the merged file's metadata)."""
    meta = {k: v for k, v in shard_meta.items() if k not in SHARD_META and k != "format"}
    meta.update({"n_shards": plan.n_shards, "shard_size": plan.shard_size, "n_traj": plan.n_items})
    return meta


def load_shards(folder: str | Path) -> tuple[ShardPlan, list[OfflineDataset]]:
    """Every shard of the plan in index order; missing or foreign shards are an error naming them."""
    plan = read_plan(folder)
    missing = [i for i in range(plan.n_shards) if not plan.path(folder, i).is_file()]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise FileNotFoundError(f"{folder}: {len(missing)} of {plan.n_shards} shards missing (indices {shown}); "
                                f"rerun the ranks that own them (finished shards are skipped)")
    parts = []
    for i in range(plan.n_shards):
        ds = load_dataset(plan.path(folder, i))
        if ds.metadata.get("shard") != i or ds.metadata.get("shard_seed") != plan.seed_of(i):
            raise ValueError(f"{plan.path(folder, i)}: not shard {i} of this plan (metadata shard="
                             f"{ds.metadata.get('shard')}, seed={ds.metadata.get('shard_seed')})")
        parts.append(ds)
    return plan, parts


def merge_shards(folder: str | Path) -> OfflineDataset:
    plan, parts = load_shards(folder)
    return concat(parts, merged_metadata(parts[0].metadata, plan))


__all__ = ["ShardPlan", "detect_rank", "write_plan", "read_plan", "concat", "merged_metadata", "load_shards",
           "merge_shards", "PLAN_FILE", "SHARD_META"]
