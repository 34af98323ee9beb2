"""Replay buffer, FIFO model buffer and real/model batch mixing (worldgen/rl/buffers.py)."""
import numpy as np
import pytest
import torch

from worldgen.rl.buffers import ReplayBuffer, mixed_batch


def _rows(start, n, obs_dim=2):
    ids = np.arange(start, start + n, dtype=np.float32)
    return {"observations": np.repeat(ids[:, None], obs_dim, 1), "actions": ids[:, None], "rewards": ids,
            "next_observations": np.repeat(ids[:, None], obs_dim, 1) + 1, "terminals": np.zeros(n)}


def test_fifo_overwrites_oldest_first():
    buf = ReplayBuffer.for_env(capacity=5, obs_dim=2, act_dim=1)
    buf.add(**_rows(0, 3))
    assert len(buf) == 3
    buf.add(**_rows(3, 4))  # 7 rows into 5 slots: rows 0 and 1 are gone
    assert len(buf) == 5
    assert sorted(buf.valid()["rewards"].tolist()) == [2, 3, 4, 5, 6]
    buf.add(**_rows(100, 12))  # more than capacity at once: only the newest 5 survive
    assert sorted(buf.valid()["rewards"].tolist()) == [107, 108, 109, 110, 111]


def test_sample_shapes_seed_and_errors():
    buf = ReplayBuffer.for_env(capacity=10, obs_dim=2, act_dim=1, extra={"edge": ()}, seed=3)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)
    with pytest.raises(KeyError, match="edge"):
        buf.add(**_rows(0, 4))
    buf.add(**_rows(0, 4), edge=np.ones(4))
    batch = buf.sample(8)
    assert batch["observations"].shape == (8, 2) and batch["rewards"].shape == (8,)
    assert batch["observations"].dtype == torch.float32
    assert set(batch["rewards"].tolist()) <= {0, 1, 2, 3}
    other = ReplayBuffer.for_env(capacity=10, obs_dim=2, act_dim=1, extra={"edge": ()}, seed=3)
    other.add(**_rows(0, 4), edge=np.ones(4))
    torch.testing.assert_close(other.sample(8)["rewards"], batch["rewards"])


def test_from_arrays_and_mixed_batch_ratio():
    real = ReplayBuffer.from_arrays(_rows(0, 50))
    model = ReplayBuffer.for_env(100, 2, 1, extra={"edge": ()})
    model.add(**_rows(1000, 100), edge=np.ones(100))
    batch = mixed_batch(real, model, batch_size=20, real_ratio=0.25)
    assert batch["rewards"].shape == (20,)
    assert (batch["rewards"][:5] < 50).all() and (batch["rewards"][5:] >= 1000).all()
    assert batch["edge"][:5].sum() == 0 and (batch["edge"][5:] == 1).all()
    only_real = mixed_batch(real, ReplayBuffer.for_env(10, 2, 1), batch_size=8, real_ratio=0.05)
    assert (only_real["rewards"] < 50).all()
    with pytest.raises(KeyError, match="terminals"):
        ReplayBuffer.from_arrays({k: v for k, v in _rows(0, 3).items() if k != "terminals"})
