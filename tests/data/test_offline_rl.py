"""D4RL-layout datasets: write/read round trip, bad-file rejection, D4RL files without next_observations, Minari
folders, episode splitting and normalised scores."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from worldgen.data.offline_rl import (D4RL_REF_RETURNS, DatasetError, KEYS, load_dataset, make_dataset,
                                      normalized_score, reference_returns, save_dataset)


def _arrays(n=30, obs=11, act=3, seed=0):
    rng = np.random.default_rng(seed)
    o = rng.normal(size=(n + 1, obs)).astype(np.float32)
    term = np.zeros(n, bool)
    tout = np.zeros(n, bool)
    term[9] = True  # episode 0: 10 steps ending in a terminal
    tout[19] = True  # episode 1: 10 steps cut by a time limit
    return {"observations": o[:-1], "actions": rng.uniform(-1, 1, (n, act)).astype(np.float32),
            "rewards": rng.normal(size=n).astype(np.float32), "next_observations": o[1:],
            "terminals": term, "timeouts": tout}


def test_round_trip_keeps_arrays_flags_and_metadata(tmp_path):
    meta = {"env_id": "Hopper-v5", "kind": "medium", "ref_min_score": -1.5, "checkpoint_returns": [[1, 2.0]]}
    ds = make_dataset(**_arrays(), metadata=meta)
    path = save_dataset(tmp_path / "d.hdf5", ds)
    back = load_dataset(path)
    for k in KEYS:
        np.testing.assert_array_equal(getattr(back, k), getattr(ds, k))
    assert back.terminals.dtype == bool and back.timeouts.dtype == bool
    assert back.metadata["env_id"] == "Hopper-v5" and back.metadata["ref_min_score"] == -1.5
    assert back.metadata["checkpoint_returns"] == [[1, 2.0]]
    with h5py.File(path) as f:  # plain h5py sees the D4RL keys
        assert set(KEYS) <= set(f.keys())


def test_episode_bounds_split_at_terminals_and_timeouts():
    ds = make_dataset(**_arrays())
    assert ds.episode_bounds() == [(0, 10), (10, 20), (20, 30)]
    np.testing.assert_allclose(ds.episode_returns()[0], ds.rewards[:10].sum(), rtol=1e-6)


def _write_raw(path, arrays, drop=(), **attrs):
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            if k not in drop:
                f.create_dataset(k, data=v)
        for k, v in attrs.items():
            f.attrs[k] = v


@pytest.mark.parametrize("mutate, message", [
    (lambda a: a.pop("rewards"), "missing D4RL keys"),
    (lambda a: a.__setitem__("actions", a["actions"][:-1]), "'actions' has 29 rows"),
    (lambda a: a["rewards"].__setitem__(3, np.nan), "'rewards' has 1 NaN/inf"),
    (lambda a: a["observations"].__setitem__((5, 0), np.inf), "'observations' has 1 NaN/inf"),
])
def test_bad_files_are_rejected_with_the_field_named(tmp_path, mutate, message):
    a = _arrays()
    mutate(a)
    _write_raw(tmp_path / "bad.hdf5", a)
    with pytest.raises(DatasetError, match=message) as e:
        load_dataset(tmp_path / "bad.hdf5")
    assert "bad.hdf5" in str(e.value)


def test_wrong_observation_size_for_the_named_env(tmp_path):
    _write_raw(tmp_path / "d.hdf5", _arrays(obs=5), env_id="Hopper-v5")
    with pytest.raises(DatasetError, match="observations of size 11"):
        load_dataset(tmp_path / "d.hdf5")
    _write_raw(tmp_path / "e.hdf5", _arrays(obs=11))
    with pytest.raises(DatasetError, match="size 17"):
        load_dataset(tmp_path / "e.hdf5", env_id="Walker2d-v5")


def test_not_hdf5_and_missing_file(tmp_path):
    (tmp_path / "x.hdf5").write_bytes(b"not an hdf5 file")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        load_dataset(tmp_path / "x.hdf5")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nope.hdf5")


def test_d4rl_file_without_next_observations_is_derived_inside_episodes(tmp_path):
    a = _arrays()
    _write_raw(tmp_path / "d4rl.hdf5", a, drop=("next_observations",))
    ds = load_dataset(tmp_path / "d4rl.hdf5")
    # the timeout row (19) and the last row (29, no successor) are dropped, terminal row 9 is kept
    assert len(ds) == 28
    np.testing.assert_array_equal(ds.next_observations[:9], a["observations"][1:10])
    assert ds.terminals[9] and not ds.terminals[10:].any()
    assert ds.timeouts[18] and ds.timeouts[-1]  # rows before the dropped ones end their episodes
    assert [e - s for s, e in ds.episode_bounds()] == [10, 9, 9]


def test_minari_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "pendulum-test-v0"
    (root / "data").mkdir(parents=True)
    with h5py.File(root / "data" / "main_data.hdf5", "w") as f:
        f.attrs["env_spec"] = '{"id": "Pendulum-v1"}'
        for i, t in enumerate((5, 7)):
            g = f.create_group(f"episode_{i}")
            g["observations"] = rng.normal(size=(t + 1, 3)).astype(np.float32)
            g["actions"] = rng.uniform(-1, 1, (t, 1)).astype(np.float32)
            g["rewards"] = rng.normal(size=t)
            g["terminations"] = np.zeros(t, bool)
            g["truncations"] = np.eye(1, t, t - 1, dtype=bool)[0]
    ds = load_dataset(root)
    assert len(ds) == 12 and ds.metadata["env_id"] == "Pendulum-v1"
    assert ds.episode_bounds() == [(0, 5), (5, 12)]
    with pytest.raises(DatasetError, match="main_data.hdf5"):
        load_dataset(tmp_path)


def test_normalized_score_uses_d4rl_then_self_calibrated_references():
    lo, hi = D4RL_REF_RETURNS["hopper"]
    ref = reference_returns("Hopper-v5")
    assert normalized_score(lo, ref) == pytest.approx(0.0) and normalized_score(hi, ref) == pytest.approx(100.0)
    assert normalized_score(lo + (hi - lo) / 3, ref) == pytest.approx(100 / 3)
    own = reference_returns("Pendulum-v1", {"ref_min_score": -1200.0, "ref_max_score": -200.0})
    assert normalized_score(-700.0, own) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="no reference returns"):
        reference_returns("Pendulum-v1", {})
