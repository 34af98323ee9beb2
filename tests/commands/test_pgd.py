"""``worldgen pgd train|sample``: ``sample_main(SampleConfig)`` writes a D4RL-layout file; ``train_main`` refuses
configs of other tasks."""
import pytest

from worldgen.commands.pgd import SampleConfig, sample_main, train_main


def test_sample_main_unguided_and_guided(offline, tmp_path):
    from worldgen.data.offline_rl import load_dataset

    s = sample_main(SampleConfig(ckpt=str(offline["pgd"]), out=str(tmp_path / "u.hdf5"), n_traj=2))
    ds = load_dataset(tmp_path / "u.hdf5")
    assert s["transitions"] == len(ds) and ds.metadata["kind"] == "unguided" and "target_log_likelihood" not in s
    with pytest.raises(ValueError, match="needs --policy"):
        sample_main(SampleConfig(ckpt=str(offline["pgd"]), out=str(tmp_path / "g.hdf5"), n_traj=2, coeff=1.0))


def test_train_main_refuses_other_tasks():
    from worldgen.config import ExperimentConfig

    with pytest.raises(ValueError, match="expected 'pgd'"):
        train_main(ExperimentConfig(task="toy"))


# ------------------------------------------------------------------------------------------- sharded generation
def _arrays(path):
    from worldgen.data.offline_rl import load_dataset

    return load_dataset(path).arrays()


def _assert_same(a, b):
    import numpy as np

    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.fixture
def one_thread():
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # shard files from subprocesses (1 thread each) must match in-process sampling bitwise
    yield
    torch.set_num_threads(prev)


def test_sharded_sample_merge_equals_one_process(offline, tmp_path, one_thread):
    from worldgen.commands.pgd import MergeConfig, merge_main
    from worldgen.data.offline_rl import load_dataset

    common = dict(ckpt=str(offline["pgd"]), n_traj=5, shard_size=2, seed=3)
    one = sample_main(SampleConfig(out=str(tmp_path / "one.hdf5"), **common))
    assert one["shards"] == 3
    d = tmp_path / "shards"
    r0 = sample_main(SampleConfig(shard_dir=str(d), rank=0, world_size=2, **common))
    r1 = sample_main(SampleConfig(shard_dir=str(d), rank=1, world_size=2, **common))
    assert r0["shards_written"] == [0, 2] and r1["shards_written"] == [1]  # disjoint, and together all shards
    assert r0["transitions"] + r1["transitions"] == one["transitions"]
    assert sorted(p.name for p in d.glob("shard-*")) == [f"shard-0000{i}-of-00003.hdf5" for i in range(3)]
    m = merge_main(MergeConfig(shard_dir=str(d), out=str(tmp_path / "merged.hdf5")))
    assert m["n_shards"] == 3 and m["windows"] == 5 and m["episodes"] == 5
    _assert_same(_arrays(tmp_path / "merged.hdf5"), _arrays(tmp_path / "one.hdf5"))
    assert load_dataset(tmp_path / "merged.hdf5").metadata == load_dataset(tmp_path / "one.hdf5").metadata
    # shards differ from each other (their own seeds), so the merge is not one shard repeated
    s0, s1 = (load_dataset(d / f"shard-0000{i}-of-00003.hdf5") for i in (0, 1))
    assert not (s0.observations[0] == s1.observations[0]).all()


def test_sharded_sample_resumes_and_refuses_mixed_settings(offline, tmp_path):
    from worldgen.commands.pgd import MergeConfig, merge_main

    common = dict(ckpt=str(offline["pgd"]), n_traj=4, shard_size=2, shard_dir=str(tmp_path / "s"))
    first = sample_main(SampleConfig(rank=0, world_size=2, **common))
    with pytest.raises(FileNotFoundError, match="1 of 2 shards missing"):
        merge_main(MergeConfig(shard_dir=common["shard_dir"], out=str(tmp_path / "m.hdf5")))
    again = sample_main(SampleConfig(rank=0, world_size=2, **common))
    assert first["shards_written"] == [0] and again["shards_written"] == [] and again["shards_skipped"] == [0]
    with pytest.raises(ValueError, match="different settings .*seed"):
        sample_main(SampleConfig(rank=1, world_size=2, seed=7, **common))
    with pytest.raises(ValueError, match="--shard-dir"):
        sample_main(SampleConfig(ckpt=str(offline["pgd"]), n_traj=2, out=str(tmp_path / "x.hdf5"), rank=0,
                                 world_size=2))
    with pytest.raises(ValueError, match="exactly one of --out"):
        sample_main(SampleConfig(ckpt=str(offline["pgd"]), n_traj=2))


@pytest.mark.slow  # two torchrun worker processes (~10 s)
def test_torchrun_two_ranks_match_one_process(offline, tmp_path, one_thread):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from worldgen.commands.pgd import MergeConfig, merge_main

    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.is_file():
        pytest.skip("torchrun not installed beside this python")
    common = dict(ckpt=str(offline["pgd"]), n_traj=7, shard_size=2, seed=11)
    sample_main(SampleConfig(out=str(tmp_path / "one.hdf5"), **common))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_port", "0", "-m", "worldgen.cli", "pgd", "sample",
           "--ckpt", common["ckpt"], "--n-traj", "7", "--shard-size", "2", "--seed", "11",
           "--shard-dir", str(tmp_path / "s")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    from worldgen.data.offline_rl import load_dataset

    owners = {i: load_dataset(tmp_path / "s" / f"shard-0000{i}-of-00004.hdf5").metadata["shard_rank"] for i in range(4)}
    assert owners == {0: 0, 1: 1, 2: 0, 3: 1}  # each shard written once, by the rank that owns it
    merge_main(MergeConfig(shard_dir=str(tmp_path / "s"), out=str(tmp_path / "merged.hdf5")))
    _assert_same(_arrays(tmp_path / "merged.hdf5"), _arrays(tmp_path / "one.hdf5"))


def test_lightning_predict_engine_writes_the_same_shards(offline, tmp_path, one_thread):
    """--engine lightning (one process here): the predict loop writes the shard files the plain engine writes,
    bitwise, skips existing shards on a rerun, and refuses settings it cannot honour."""
    from worldgen.commands.pgd import MergeConfig, merge_main

    common = dict(ckpt=str(offline["pgd"]), n_traj=5, shard_size=2, seed=3)
    sample_main(SampleConfig(out=str(tmp_path / "one.hdf5"), **common))
    res = sample_main(SampleConfig(shard_dir=str(tmp_path / "s"), engine="lightning", **common))
    assert res["engine"] == "lightning" and res["shards_written"] == [0, 1, 2] and res["rank"] == 0
    merge_main(MergeConfig(shard_dir=str(tmp_path / "s"), out=str(tmp_path / "merged.hdf5")))
    _assert_same(_arrays(tmp_path / "merged.hdf5"), _arrays(tmp_path / "one.hdf5"))
    again = sample_main(SampleConfig(shard_dir=str(tmp_path / "s"), engine="lightning", **common))
    assert again["shards_written"] == [] and again["shards_skipped"] == [0, 1, 2]
    for bad in (dict(out=str(tmp_path / "x.hdf5")), dict(shard_dir=str(tmp_path / "t"), rank=0, world_size=1),
                dict(shard_dir=str(tmp_path / "t"), devices=0)):
        with pytest.raises(ValueError, match="--engine lightning"):
            sample_main(SampleConfig(engine="lightning", **common, **bad))


@pytest.mark.slow  # Lightning launches a second process (DDP on CPU, gloo)
def test_lightning_predict_two_processes_match_one_process(offline, tmp_path, one_thread):
    import os
    import subprocess
    import sys

    from worldgen.commands.pgd import MergeConfig, merge_main
    from worldgen.data.offline_rl import load_dataset

    common = dict(ckpt=str(offline["pgd"]), n_traj=7, shard_size=2, seed=11)
    sample_main(SampleConfig(out=str(tmp_path / "one.hdf5"), **common))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "worldgen.cli", "pgd", "sample", "--ckpt", common["ckpt"], "--n-traj", "7",
           "--shard-size", "2", "--seed", "11", "--shard-dir", str(tmp_path / "s"), "--engine", "lightning",
           "--devices", "2"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    owners = {i: load_dataset(tmp_path / "s" / f"shard-0000{i}-of-00004.hdf5").metadata["shard_rank"] for i in range(4)}
    assert owners == {0: 0, 1: 1, 2: 0, 3: 1}
    merge_main(MergeConfig(shard_dir=str(tmp_path / "s"), out=str(tmp_path / "merged.hdf5")))
    _assert_same(_arrays(tmp_path / "merged.hdf5"), _arrays(tmp_path / "one.hdf5"))


# ------------------------------------------------------------------------------------ the shipped Hopper model
SHIPPED = __import__("pathlib").Path(__file__).resolve().parents[2] / "checkpoints" / "pgd-hopper"


def test_shipped_pgd_hopper_samples_hopper_transitions(tmp_path):
    """`worldgen pgd sample --ckpt checkpoints/pgd-hopper` works from a fresh clone, and what it samples is Hopper:
    the simulator, loaded with each sampled state and action, lands near the sampled next state (far nearer than a
    shuffled next state)."""
    import numpy as np

    from worldgen.data.offline_rl import load_dataset
    from worldgen.io import read_json
    from worldgen.rl.diagnostics import dynamics_error

    card = read_json(SHIPPED / "card.json")
    assert card["command"].startswith("worldgen") and card["metrics"] and card["data"]["command"]
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 3e6
    s = sample_main(SampleConfig(ckpt=str(SHIPPED), n_traj=4, n_steps=16, seed=0, out=str(tmp_path / "h.hdf5")))
    ds = load_dataset(tmp_path / "h.hdf5")
    assert s["transitions"] == len(ds) > 4 and ds.metadata["env_id"] == "Hopper-v5"
    assert ds.obs_dim == 11 and ds.act_dim == 3 and np.isfinite(ds.observations).all()
    err = dynamics_error(ds, "Hopper-v5", max_transitions=200)["dynamics_mse_median"]
    shuffled = ds.next_observations[np.random.default_rng(0).permutation(len(ds))]
    baseline = float(np.median(((ds.next_observations - shuffled) ** 2).mean(1)))
    assert err < 0.2 * baseline, (err, baseline)
