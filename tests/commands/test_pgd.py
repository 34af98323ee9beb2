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
