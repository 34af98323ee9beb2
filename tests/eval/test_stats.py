import numpy as np
import pytest
import torch

from worldgen.eval.stats import FeatureStats


def test_merge_of_two_halves_equals_the_whole():
    x = np.random.default_rng(0).normal(size=(101, 12))
    whole = FeatureStats(12).update(x)
    merged = FeatureStats(12).update(x[:40]).merge(FeatureStats(12).update(x[40:]))
    assert merged.count == whole.count == 101
    for a, b in zip(merged.mean_cov(), whole.mean_cov()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_one_over_n_convention():
    x = np.random.default_rng(1).normal(size=(30, 5))
    mu, cov = FeatureStats(5).update(x).mean_cov()
    np.testing.assert_allclose(mu, x.mean(0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False, bias=True), atol=1e-12)  # 1/N, not 1/(N-1)


def test_float64_accumulation_survives_large_offsets():
    # Features with a large common offset: a float32 sum of outer products loses the variance entirely.
    rng = np.random.default_rng(2)
    x = (1e4 + rng.normal(size=(4000, 3))).astype(np.float32)
    stats = FeatureStats(3)
    for chunk in np.array_split(x, 40):
        stats.update(torch.from_numpy(chunk))
    assert stats.sum.dtype == stats.sum_outer.dtype == torch.float64
    _, cov = stats.mean_cov()
    np.testing.assert_allclose(np.diag(cov), x.astype(np.float64).var(0), rtol=1e-6)
    x32 = torch.from_numpy(x)
    cov32 = (x32.T @ x32) / len(x32) - torch.outer(x32.mean(0), x32.mean(0))
    assert abs(float(cov32[0, 0]) - float(cov[0, 0])) > 0.05  # float32 would be visibly wrong


def test_save_load_round_trip(tmp_path):
    s = FeatureStats(7).update(np.random.default_rng(3).normal(size=(9, 7)))
    s.save(tmp_path / "s.safetensors")
    t = FeatureStats.load(tmp_path / "s.safetensors")
    assert t.count == 9 and t.dim == 7
    assert torch.equal(t.sum, s.sum) and torch.equal(t.sum_outer, s.sum_outer)


def test_rejects_bad_features(tmp_path):
    s = FeatureStats(4)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        s.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        s.update(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="no features"):
        s.mean_cov()
    with pytest.raises(FileNotFoundError):
        FeatureStats.load(tmp_path / "missing.safetensors")


def _ddp_worker(rank: int, world: int, port: int, x: np.ndarray, out) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    s = FeatureStats(x.shape[1]).update(np.array_split(x, world)[rank]).all_reduce()
    out.put((rank, s.count, s.sum.numpy(), s.sum_outer.numpy()))
    dist.destroy_process_group()


@pytest.mark.slow  # two processes, ~7 s
def test_all_reduce_across_two_ranks_equals_the_whole():
    import socket

    import torch.multiprocessing as tmp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    x = np.random.default_rng(4).normal(size=(11, 6))
    ctx = tmp.get_context("spawn")
    out = ctx.SimpleQueue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, x, out)) for r in range(2)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join(60)
    whole = FeatureStats(6).update(x)
    for _, count, s1, s2 in results:
        assert count == 11
        np.testing.assert_allclose(s1, whole.sum.numpy(), atol=1e-12)
        np.testing.assert_allclose(s2, whole.sum_outer.numpy(), atol=1e-12)
