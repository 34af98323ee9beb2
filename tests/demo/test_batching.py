"""Issue 16: the device pool batches queued jobs with one batch key; batched Driving requests equal single runs."""
import threading
import time

import numpy as np
import pytest
import torch

from worldgen.demo import pipelines as P


def test_pool_runs_queued_jobs_with_one_key_as_one_batch():
    pool = P.DevicePool(["dev0"], queue_size=8, max_batch=3)
    gate, calls = threading.Event(), []
    try:
        blocker = pool.submit(lambda d, c, e: gate.wait(5), "block")
        time.sleep(0.1)  # the worker is busy: the next jobs queue up

        def batch_fn(device, cache, payloads, emits):
            calls.append(list(payloads))
            for p, emit in zip(payloads, emits):
                emit(("tick", p))
            return [p * 10 for p in payloads]

        def single(p):
            return lambda d, c, e: p * 100
        jobs = [pool.submit(single(p), "b", batch_key="k", batch_fn=batch_fn, payload=p) for p in (1, 2, 3, 4)]
        other = pool.submit(single(5), "o", batch_key="other", batch_fn=batch_fn, payload=5)
        gate.set()
        list(blocker.events())
        results = [dict(j.events()) for j in jobs]
        assert [r["result"] for r in results] == [10, 20, 30, 40] and [r["tick"][1] for r in results] == [1, 2, 3, 4]
        assert dict(other.events())["result"] == 50
        assert calls == [[1, 2, 3], [4], [5]] and pool.batches == [3, 1, 1]  # at most max_batch, keys never mixed
        assert pool.started == pool.submitted == 6 and pool.served["dev0"] == 6
    finally:
        pool.close()
    with pytest.raises(ValueError, match="together"):
        P.DevicePool(["dev0"]).submit(lambda d, c, e: None, "x", batch_key="k")


def test_the_pool_waits_briefly_for_batch_mates_that_are_about_to_arrive():
    def batch_fn(device, cache, payloads, emits):
        return list(payloads)

    def run(wait_s: float) -> tuple[list, float]:
        pool = P.DevicePool(["dev0"], max_batch=2, batch_wait_s=wait_s)
        try:
            first = pool.submit(lambda d, c, e: "solo", "a", batch_key="k", batch_fn=batch_fn, payload=1)
            time.sleep(0.1)  # the second request arrives while the worker holds the first
            second = pool.submit(lambda d, c, e: "solo", "b", batch_key="k", batch_fn=batch_fn, payload=2)
            assert [dict(j.events())["result"] for j in (first, second)] == [1, 2]
            return pool.batches, first.started_at - first.submitted_at
        finally:
            pool.close()

    batches, waited = run(3.0)
    assert batches == [2] and waited < 2.0  # batched, and started as soon as the batch was full
    batches, waited = run(0.0)
    assert batches == [1, 1]  # without the wait the first ran alone
    with pytest.raises(ValueError, match="batch_wait_s"):
        P.DevicePool(["dev0"], batch_wait_s=-1)


def test_a_failing_batch_reports_the_error_to_every_job():
    pool = P.DevicePool(["dev0"], max_batch=4)
    try:
        def boom(device, cache, payloads, emits):
            raise RuntimeError("kaput")
        job = pool.submit(lambda d, c, e: None, "b", batch_key="k", batch_fn=boom, payload=1)
        with pytest.raises(RuntimeError, match="kaput"):
            list(job.events())
    finally:
        pool.close()


@pytest.fixture(scope="module")
def driving(tiny):
    from worldgen.pipelines.drivingworld import DrivingPipeline

    torch.set_num_threads(1)
    ck = tiny["checkpoints"]
    return DrivingPipeline.load(ck / "gpt-tiny", ck / "tokenizer-tiny")


def _frames(chunks):
    return np.concatenate([c[2] for c in chunks])


@pytest.mark.parametrize("preset", ["lane change left", "model decides"])
def test_batched_driving_requests_equal_single_runs(tiny, driving, preset):
    examples = sorted(tiny["examples"].glob("*.npz"))
    ctx = P.load_example(examples[0])
    short = P.Context("short", ctx.frames[-2:], ctx.poses[-2:], ctx.pose_mask[-2:])  # another context length
    plan = P.plan_poses(preset, 15, "", 10, 10.0, P.Limits())
    reqs = [P.DriveRequest(c, plan, 10, seed=s) for c, s in ((ctx, 0), (ctx, 1), (short, 2))]
    chunks = [[] for _ in reqs]
    out = P.drive_batch(driving, reqs, [c.append for c in chunks])
    for req, got, res in zip(reqs, chunks, out):
        alone = []
        ref = P.drive_job(driving, req, alone.append)
        assert [c[:2] for c in got] == [c[:2] for c in alone] and np.array_equal(_frames(got), _frames(alone))
        assert np.array_equal(res["poses"], ref["poses"]) and res["context_frames"] == ref["context_frames"]
    assert [r["batch"] for r in out] == [2, 2, 1]
    empty = P.Context("empty", ctx.frames[:0], ctx.poses[:0], ctx.pose_mask[:0])
    mixed = P.drive_batch(driving, [reqs[0], P.DriveRequest(empty, plan, 10)], [[].append, [].append])
    assert isinstance(mixed[1], Exception) and mixed[0]["batch"] == 1  # a bad request fails alone
    with pytest.raises(ValueError, match="differ"):
        P.drive_batch(driving, [reqs[0], P.DriveRequest(ctx, plan, 9)], [print, print])


def test_a_cancelled_request_leaves_the_rest_of_its_batch_running(tiny, driving):
    ctx = P.load_example(sorted(tiny["examples"].glob("*.npz"))[0])
    reqs = [P.DriveRequest(ctx, None, 12, seed=s) for s in (0, 1)]
    kept = []

    def gone(item):
        raise P.JobCancelled("page closed")
    out = P.drive_batch(driving, reqs, [gone, kept.append])
    assert isinstance(out[0], P.JobCancelled) and out[1]["batch"] == 2 and len(_frames(kept)) == 12
    alone = []
    P.drive_job(driving, reqs[1], alone.append)
    assert np.array_equal(_frames(kept), _frames(alone))
