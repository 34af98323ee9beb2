"""Offline-RL datasets in D4RL's HDF5 layout: read, validate, write, split into episodes, score.

Layout (Fu et al., "D4RL: Datasets for Deep Data-Driven Reinforcement Learning", 2020): one HDF5 file with flat
arrays ``observations (n, obs_dim)``, ``actions (n, act_dim)``, ``rewards (n,)``, ``next_observations (n, obs_dim)``,
``terminals (n,)`` (the MDP ended: no bootstrapping) and ``timeouts (n,)`` (the episode was cut by a time limit: keep
bootstrapping). An episode ends at the first transition with ``terminals | timeouts``. Metadata (env id, dataset
kind, seed, reference returns, provenance) lives in the root group's HDF5 attributes; D4RL's own files keep theirs in
a ``metadata/`` group, which :func:`load_dataset` also reads.

Normalised score (D4RL): ``100 * (R - R_random) / (R_expert - R_random)``. For the MuJoCo locomotion tasks the
reference returns are D4RL's (REFERENCES.md); every dataset worldgen generates also records *self-calibrated*
reference returns (``ref_min_score`` = uniform-random policy, ``ref_max_score`` = the converged behaviour policy),
which are the only ones available for the cheap test environment.

Deliberate deviations: D4RL files written by ``d4rl`` may lack ``next_observations``; :func:`load_dataset` then
derives it inside each episode (like ``d4rl.qlearning_dataset``) and drops each episode's final transition, whose
successor is not stored. Minari datasets are read from a local folder (``<dir>/data/main_data.hdf5`` with one group
per episode) -- never downloaded.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

KEYS = ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")

# D4RL reference returns (random, expert) for the MuJoCo locomotion tasks; REFERENCES.md (RAVL section).
D4RL_REF_RETURNS: dict[str, tuple[float, float]] = {
    "halfcheetah": (-280.178953, 12135.0),
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
}

# Observation / action sizes of the environments worldgen knows, used to reject files that do not match their env.
ENV_DIMS: dict[str, tuple[int, int]] = {
    "halfcheetah": (17, 6),
    "hopper": (11, 3),
    "walker2d": (17, 6),
    "pendulum": (3, 1),
}


class DatasetError(ValueError):
    """An offline-RL file is missing, malformed or inconsistent; the message names the file and the field."""


def env_family(env_id: str) -> str:
    """``"Hopper-v5"`` / ``"hopper-medium-v2"`` -> ``"hopper"``."""
    return env_id.split("-")[0].lower()


@dataclass
class OfflineDataset:
    """Flat transition arrays (D4RL layout) plus metadata; ``float32`` arrays, ``bool`` flags."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.actions.shape[1])

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in KEYS}

    def episode_bounds(self) -> list[tuple[int, int]]:
        """``[start, end)`` index pairs; an episode ends at a terminal or timeout, or at the end of the arrays."""
        ends = np.flatnonzero(self.terminals | self.timeouts) + 1
        if len(ends) == 0 or ends[-1] != len(self):
            ends = np.append(ends, len(self))
        starts = np.concatenate([[0], ends[:-1]])
        return [(int(s), int(e)) for s, e in zip(starts, ends) if e > s]

    def episodes(self) -> Iterator[dict[str, np.ndarray]]:
        for s, e in self.episode_bounds():
            yield {k: v[s:e] for k, v in self.arrays().items()}

    def episode_returns(self) -> np.ndarray:
        return np.array([float(self.rewards[s:e].sum()) for s, e in self.episode_bounds()])

    def subset(self, n: int) -> "OfflineDataset":
        return OfflineDataset(**{k: v[:n] for k, v in self.arrays().items()}, metadata=dict(self.metadata))


def from_episodes(episodes: list[dict[str, np.ndarray]], metadata: dict | None = None) -> OfflineDataset:
    """Concatenate per-episode dicts (keys = ``KEYS``) into one dataset."""
    if not episodes:
        raise DatasetError("no episodes to concatenate")
    cat = {k: np.concatenate([np.asarray(ep[k]) for ep in episodes]) for k in KEYS}
    return make_dataset(**cat, metadata=metadata)


def make_dataset(metadata: dict | None = None, **arrays: np.ndarray) -> OfflineDataset:
    """Cast arrays to the canonical dtypes and validate them."""
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        raise DatasetError(f"missing arrays {missing}")
    ds = OfflineDataset(
        observations=np.asarray(arrays["observations"], np.float32),
        actions=np.asarray(arrays["actions"], np.float32),
        rewards=np.asarray(arrays["rewards"], np.float32).reshape(-1),
        next_observations=np.asarray(arrays["next_observations"], np.float32),
        terminals=np.asarray(arrays["terminals"]).astype(bool).reshape(-1),
        timeouts=np.asarray(arrays["timeouts"]).astype(bool).reshape(-1),
        metadata=dict(metadata or {}),
    )
    validate(ds, source="<arrays>")
    return ds


def validate(ds: OfflineDataset, source: str = "<dataset>", env_id: str | None = None) -> None:
    """Raise :class:`DatasetError` naming ``source`` and the field for any inconsistency."""
    n = len(ds.rewards)
    if n == 0:
        raise DatasetError(f"{source}: dataset is empty")
    for k, ndim in (("observations", 2), ("actions", 2), ("next_observations", 2)):
        a = getattr(ds, k)
        if a.ndim != ndim:
            raise DatasetError(f"{source}: '{k}' must be 2-d (n, dim), got shape {a.shape}")
    for k in KEYS:
        if len(getattr(ds, k)) != n:
            raise DatasetError(f"{source}: '{k}' has {len(getattr(ds, k))} rows but 'rewards' has {n}")
    if ds.next_observations.shape[1] != ds.observations.shape[1]:
        raise DatasetError(f"{source}: 'next_observations' width {ds.next_observations.shape[1]} != "
                           f"'observations' width {ds.observations.shape[1]}")
    for k in ("observations", "actions", "rewards", "next_observations"):
        bad = ~np.isfinite(getattr(ds, k))
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DatasetError(f"{source}: '{k}' has {int(bad.sum())} NaN/inf values (first at row {row})")
    env_id = env_id or ds.metadata.get("env_id")
    if env_id and env_family(str(env_id)) in ENV_DIMS:
        want_obs, want_act = ENV_DIMS[env_family(str(env_id))]
        if ds.obs_dim != want_obs or ds.act_dim != want_act:
            raise DatasetError(f"{source}: env '{env_id}' has observations of size {want_obs} and actions of size "
                               f"{want_act}, the file has {ds.obs_dim} and {ds.act_dim}")


# ----------------------------------------------------------------------------------------------------------- write
def _attr(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    if v is None:
        return "null"
    return v


def save_dataset(path: str | os.PathLike, ds: OfflineDataset) -> Path:
    """Write ``ds`` in D4RL layout (gzip-compressed datasets, metadata as root attributes), atomically."""
    import h5py

    from worldgen.io import atomic_path

    validate(ds, source=str(path))
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in ds.arrays().items():
                f.create_dataset(k, data=v, compression="gzip", compression_opts=4)
            for k, v in ds.metadata.items():
                f.attrs[k] = _attr(v)
            f.attrs["format"] = "d4rl"
    return path


# ------------------------------------------------------------------------------------------------------------ read
def _decode_attr(v: Any) -> Any:
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, str) and v[:1] in "[{" or v == "null":
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v
    return v


def _read_metadata(f) -> dict:
    meta = {k: _decode_attr(v) for k, v in f.attrs.items()}
    if "metadata" in f and hasattr(f["metadata"], "keys"):
        def visit(name, obj):
            if hasattr(obj, "shape") and obj.shape == ():
                meta.setdefault(name, _decode_attr(obj[()]))
        f["metadata"].visititems(visit)
    return meta


def _derive_next_observations(arr: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """D4RL files without ``next_observations``, the way ``d4rl.qlearning_dataset`` does it.

    Successor = next row. A timeout row (its successor is the next episode's start) and the file's last row (no
    successor) are dropped; the row before a dropped one is marked as a timeout so episodes still split there.
    Terminal rows are kept: their successor is never bootstrapped from.
    """
    n = len(arr["rewards"])
    term, tout = arr["terminals"].astype(bool), arr["timeouts"].astype(bool)
    keep = ~tout
    keep[-1] = bool(term[-1])
    nxt = np.concatenate([arr["observations"][1:], arr["observations"][-1:]])
    before_drop = np.zeros(n, bool)
    before_drop[:-1] = ~keep[1:]
    out = {k: np.asarray(v)[keep] for k, v in arr.items()}
    out["next_observations"] = nxt[keep]
    out["terminals"] = term[keep]
    out["timeouts"] = (before_drop & ~term)[keep]
    return out


def _load_d4rl(path: Path) -> OfflineDataset:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        required = [k for k in KEYS if k != "next_observations"]
        missing = [k for k in required if k not in f]
        if missing:
            raise DatasetError(f"{path}: missing D4RL keys {missing} (expected {list(KEYS)})")
        arr = {k: np.asarray(f[k]) for k in KEYS if k in f}
        meta = _read_metadata(f)
    if "next_observations" not in arr:
        arr = _derive_next_observations(arr)
    try:
        ds = make_dataset(**arr, metadata=meta)
    except DatasetError as e:
        raise DatasetError(f"{path}: {str(e).replace('<arrays>: ', '')}") from None
    return ds


def _minari_file(root: Path) -> Path:
    for cand in (root / "data" / "main_data.hdf5", root / "main_data.hdf5"):
        if cand.is_file():
            return cand
    raise DatasetError(f"{root}: not a Minari dataset folder (no data/main_data.hdf5)")


def _load_minari(root: Path) -> OfflineDataset:
    import h5py

    path = _minari_file(root)
    episodes = []
    with h5py.File(path, "r") as f:
        meta = _read_metadata(f)
        names = sorted((k for k in f.keys() if k.startswith("episode_")), key=lambda s: int(s.split("_")[1]))
        if not names:
            raise DatasetError(f"{path}: no 'episode_*' groups")
        for name in names:
            g = f[name]
            miss = [k for k in ("observations", "actions", "rewards", "terminations", "truncations") if k not in g]
            if miss:
                raise DatasetError(f"{path}: group '{name}' is missing {miss}")
            if not hasattr(g["observations"], "shape"):
                raise DatasetError(f"{path}: '{name}/observations' is a dict observation; flatten it first")
            obs = np.asarray(g["observations"])
            t = len(g["rewards"])
            if len(obs) != t + 1:
                raise DatasetError(f"{path}: '{name}' has {len(obs)} observations for {t} steps (expected {t + 1})")
            episodes.append({
                "observations": obs[:-1], "next_observations": obs[1:], "actions": np.asarray(g["actions"]),
                "rewards": np.asarray(g["rewards"]), "terminals": np.asarray(g["terminations"]),
                "timeouts": np.asarray(g["truncations"]),
            })
    meta_json = root / "metadata.json"
    if meta_json.is_file():
        meta.update(json.loads(meta_json.read_text()))
    if "env_spec" in meta and "env_id" not in meta:
        spec = meta["env_spec"]
        spec = json.loads(spec) if isinstance(spec, str) else spec
        if isinstance(spec, dict) and "id" in spec:
            meta["env_id"] = spec["id"]
    try:
        return from_episodes(episodes, meta)
    except DatasetError as e:
        raise DatasetError(f"{path}: {str(e).replace('<arrays>: ', '')}") from None


def load_dataset(path: str | os.PathLike, env_id: str | None = None) -> OfflineDataset:
    """Read a D4RL-layout HDF5 file or a local Minari dataset folder; reject bad files with a clear error.

    ``env_id`` (optional) checks the observation/action sizes against that environment; otherwise the file's own
    ``env_id`` metadata is used when present.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset file or folder")
    ds = _load_minari(path) if path.is_dir() else _load_d4rl(path)
    validate(ds, source=str(path), env_id=env_id)
    if env_id:
        ds.metadata.setdefault("env_id", env_id)
    return ds


# ----------------------------------------------------------------------------------------------------------- score
def reference_returns(env_id: str | None, metadata: dict | None = None) -> tuple[float, float]:
    """(random, expert) returns: D4RL's for its locomotion tasks, else the dataset's self-calibrated ones."""
    metadata = metadata or {}
    fam = env_family(env_id or str(metadata.get("env_id", "")))
    if fam in D4RL_REF_RETURNS and not metadata.get("prefer_self_calibrated", False):
        return D4RL_REF_RETURNS[fam]
    if "ref_min_score" in metadata and "ref_max_score" in metadata:
        return float(metadata["ref_min_score"]), float(metadata["ref_max_score"])
    raise ValueError(f"no reference returns for env '{env_id}': not a D4RL task and the dataset records none "
                     f"(ref_min_score / ref_max_score)")


def normalized_score(ret: float | np.ndarray, ref: tuple[float, float]) -> float | np.ndarray:
    """D4RL: ``100 * (R - R_random) / (R_expert - R_random)``."""
    lo, hi = ref
    if hi == lo:
        raise ValueError(f"reference returns must differ (random {lo}, expert {hi})")
    return 100.0 * (np.asarray(ret, dtype=np.float64) - lo) / (hi - lo)


__all__ = [
    "KEYS", "D4RL_REF_RETURNS", "ENV_DIMS", "DatasetError", "OfflineDataset", "make_dataset", "from_episodes",
    "validate", "save_dataset", "load_dataset", "reference_returns", "normalized_score", "env_family",
]
