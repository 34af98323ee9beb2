"""Demo serving side: input checks, ego plans, the device pool, and a driving request through the shared pipeline
(``worldgen.pipelines.drivingworld``; its own tests, streamed = one-pass decoding included: tests/pipelines/)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from tests.helpers import container_params, write_container_video
from worldgen.demo import pipelines as P


def test_schedule_is_parsed_bounded_and_integrated():
    keys = P.parse_schedule("0, 10, 0\n2, 20, 9  # turn\n", P.Limits())
    assert keys.shape == (2, 4)
    rel = P.schedule_poses(keys, 30, fps=10.0)
    assert rel.shape == (30, 3)
    assert rel[0, 0] == pytest.approx(1.0) and np.hypot(*rel[25, :2]) == pytest.approx(2.0)  # speed / fps, held after 2 s
    assert rel[25, 2] == pytest.approx(np.radians(9) / 10)
    for bad, msg in [("", "empty"), ("0, 10", "time_s"), ("0, 99, 0", "speed"), ("1,10,0\n0,10,0", "increase"),
                     ("0, nan, 0", "speed"), ("a, b, c", "time")]:
        with pytest.raises(P.InputError, match=msg):
            P.parse_schedule(bad, P.Limits())


def test_presets_map_to_scripted_manoeuvres():
    lim = P.Limits()
    assert P.plan_poses("model decides", 20, "", 10, 10.0, lim) is None
    left = P.plan_poses("lane change left", 20, "", 60, 10.0, lim)
    end = P.integrate(left)[-1]
    assert end[1] == pytest.approx(4.0, abs=0.05)  # one lane width to the left
    brake = P.plan_poses("brake", 20, "", 60, 10.0, lim)
    assert brake[-1, 0] < brake[1, 0]
    with pytest.raises(P.InputError, match="ego plan"):
        P.plan_poses("fly", 20, "", 10, 10.0, lim)
    with pytest.raises(P.InputError, match="speed"):
        P.plan_poses("keep lane", 400, "", 10, 10.0, lim)


def test_prompts_and_switch_points():
    lim = P.Limits()
    assert P.parse_prompts("a\nb\n", "8", 16, lim) == [(0, "a"), (8, "b")]
    with pytest.raises(P.InputError, match="switch frame"):
        P.parse_prompts("a\nb", "", 16, lim)
    with pytest.raises(P.InputError, match="between 1 and 15"):
        P.parse_prompts("a\nb", "16", 16, lim)
    with pytest.raises(P.InputError, match="at least one prompt"):
        P.parse_prompts("  \n", "", 16, lim)


def test_uploads_must_stay_in_the_upload_folder(tmp_path):
    root = tmp_path / "uploads"
    root.mkdir()
    (tmp_path / "secret.mp4").write_bytes(b"x")
    with pytest.raises(P.InputError, match="outside"):
        P.check_upload(root / ".." / "secret.mp4", root, P.Limits())
    (root / "a.txt").write_text("x")
    with pytest.raises(P.InputError, match="expected a file ending in .mp4, .m4v, .mov, .mkv, .webm, .avi"):
        P.check_upload(root / "a.txt", root, P.Limits())
    (root / "big.mp4").write_bytes(b"0" * 2_000_000)
    with pytest.raises(P.InputError, match="MB"):
        P.check_upload(root / "big.mp4", root, P.Limits(max_upload_mb=1))


@pytest.mark.parametrize("suffix,codec,muxer", container_params())
def test_uploads_in_every_container_are_read(tmp_path, suffix, codec, muxer):
    frames = np.repeat(np.arange(8, dtype=np.uint8)[:, None, None, None] * 30, 32 * 48 * 3).reshape(8, 32, 48, 3)
    path = write_container_video(tmp_path / f"clip{suffix}", frames, codec, muxer)
    got = P.read_upload_video(P.check_upload(path, tmp_path, P.Limits()), P.Limits())
    assert got.shape == (8, 32, 48, 3) and np.abs(got.mean(axis=(1, 2, 3)) - frames[:, 0, 0, 0]).max() < 4


def test_unreadable_uploads_are_named(tmp_path):
    (tmp_path / "renamed.mp4").write_text("a text file renamed .mp4")
    (tmp_path / "empty.webm").write_bytes(b"")
    for name, why in [("renamed.mp4", "cannot open video"), ("empty.webm", r"empty file \(0 bytes\)")]:
        with pytest.raises(P.InputError, match=f"{name}: not a readable video \\({why}"):
            P.read_upload_video(P.check_upload(tmp_path / name, tmp_path, P.Limits()), P.Limits())


def test_fit_frames_crops_to_aspect_and_resizes():
    frames = np.zeros((3, 90, 90, 3), np.uint8)
    frames[:, :, 40:50] = 255  # a vertical bar in the middle survives the centre crop
    out = P.fit_frames(frames, (32, 64))
    assert out.shape == (3, 32, 64, 3) and out.dtype == np.uint8
    assert out[:, :, 28:36].mean() > 200 and out[:, :, :8].max() == 0


def test_device_pool_spreads_jobs_and_reports_errors_and_cancels():
    pool = P.DevicePool(["dev0", "dev1"], queue_size=8)
    try:
        def work(device, cache, emit):
            cache["n"] = cache.get("n", 0) + 1
            time.sleep(0.2)
            emit(("tick", device))
            return device

        jobs = [pool.submit(work, "w") for _ in range(4)]
        results = [dict(j.events())["result"] for j in jobs]
        assert set(results) == {"dev0", "dev1"}

        def boom(device, cache, emit):
            raise RuntimeError("kaput")
        with pytest.raises(RuntimeError, match="kaput"):
            list(pool.submit(boom, "b").events())

        def slow(device, cache, emit):
            for _ in range(100):
                time.sleep(0.02)
                emit(("tick",))
            return "finished"
        job = pool.submit(slow, "s")
        next(e for e in job.events() if e[0] == "tick")
        job.cancel()
        assert dict(job.events())["cancelled"] is None
    finally:
        pool.close()


def test_full_queue_refuses_new_requests():
    pool = P.DevicePool(["dev0"], queue_size=1)
    try:
        block = pool.submit(lambda d, c, e: time.sleep(0.5), "a")
        time.sleep(0.1)
        pool.submit(lambda d, c, e: None, "b")
        with pytest.raises(P.InputError, match="busy"):
            pool.submit(lambda d, c, e: None, "c")
        list(block.events())
    finally:
        pool.close()


def test_parse_devices():
    assert P.parse_devices("cpu") == ["cpu"]
    assert P.parse_devices("auto") == ([f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"])
    with pytest.raises(ValueError, match="cuda:N"):
        P.parse_devices("tpu")
    with pytest.raises(ValueError, match="visible"):
        P.parse_devices(f"cuda:{torch.cuda.device_count()}")


@pytest.fixture(scope="module")
def driving(tiny):
    from worldgen.pipelines.drivingworld import DrivingPipeline

    torch.set_num_threads(1)
    ck = tiny["checkpoints"]
    return DrivingPipeline.load(ck / "gpt-tiny", ck / "tokenizer-tiny")


def _run(pipe, ctx, plan, horizon, seed=0):
    chunks = []
    res = P.drive_job(pipe, P.DriveRequest(ctx, plan, horizon, seed=seed), chunks.append)
    return np.concatenate([c[2] for c in chunks]), res, chunks


def test_driving_request_streams_chunks_follows_the_plan_and_is_seeded(tiny, driving):
    ctx = P.load_example(sorted(tiny["examples"].glob("*.npz"))[0])
    plan = P.plan_poses("lane change left", 20, "", 20, 10.0, P.Limits())
    frames, res, chunks = _run(driving, ctx, plan, 20)
    assert frames.shape == (20, 32, 64, 3) and frames.dtype == np.uint8
    assert [c[:2] for c in chunks] == [("frames", 0), ("frames", 8), ("frames", 16)]  # decode chunks, in order
    assert res["context_frames"] == driving.context_frames and res["frame_s"] > 0
    # forced ego tokens: the decoded poses are the plan's bin centres (error <= half a bin)
    tok = driving.gpt.pose_tokenizer
    half = np.array([tok.bin_width("x"), tok.bin_width("y"), tok.bin_width("yaw")]) / 2 + 1e-6
    assert (np.abs(res["poses"] - np.clip(plan, [0, -0.5, -np.radians(4)], [4, 0.5, np.radians(4)])) <= half).all()
    again, _, _ = _run(driving, ctx, plan, 20)
    other, _, _ = _run(driving, ctx, plan, 20, seed=1)
    assert np.array_equal(frames, again) and not np.array_equal(frames, other)


def test_a_context_of_another_size_is_fitted_before_the_pipeline(tiny, driving):
    ctx = P.load_example(sorted(tiny["examples"].glob("*.npz"))[0])
    big = P.Context("big", np.repeat(np.repeat(ctx.frames, 2, 1), 2, 2), ctx.poses, ctx.pose_mask)
    frames, _, _ = _run(driving, big, None, 3)
    assert frames.shape == (3, 32, 64, 3)
