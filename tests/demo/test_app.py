"""The demo's API, driven by gradio_client against a server started in the test (tests/demo/conftest.py)."""
from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file

from tests.demo.tiny import FRAME, write_mp4
from tests.helpers import videos_match
from worldgen.data.video import read_video

DEFAULTS = dict(preset="keep lane", speed=20, schedule="", horizon=16, temperature=1.0, top_k=30, top_p=1.0, seed=0)


def drive(client, context, upload=None, **kw):
    a = {**DEFAULTS, **kw}
    return client.predict(context, upload, a["preset"], a["speed"], a["schedule"], a["horizon"], a["temperature"],
                          a["top_k"], a["top_p"], a["seed"], api_name="/drive")


def video_path(out) -> str:
    return out["video"] if isinstance(out, dict) else out


def assert_message(excinfo, text: str) -> None:
    msg = str(excinfo.value)
    assert text in msg, msg
    assert "Traceback" not in msg and 'File "' not in msg


def test_server_binds_to_localhost(server):
    assert "127.0.0.1" in server[1]


def test_drive_returns_a_playable_video_and_a_trajectory_plot(server, client):
    demo, _ = server
    context = next(c for c in demo.contexts if c.startswith("episode: "))
    preview, status, video, plot = drive(client, context, preset="lane change left", horizon=24)
    frames = read_video(video_path(video))
    assert frames.shape == (24, *FRAME, 3)
    assert "done: 24 frames" in status
    from PIL import Image

    assert Image.open(plot).size[0] > 100


def test_drive_from_an_uploaded_mp4_with_a_custom_schedule(client, tmp_path):
    clip = write_mp4(tmp_path / "my clip.mp4", frames=12, size=(48, 96))
    out = drive(client, "(use the uploaded mp4)", handle_file(str(clip)), preset="custom schedule",
                schedule="0, 15, 0\n1, 15, 10", horizon=10)
    assert read_video(video_path(out[2])).shape == (10, *FRAME, 3)
    assert "upload: " in out[1]


@pytest.mark.parametrize("kw, text", [
    (dict(preset="custom schedule", schedule="0, 10"), "custom schedule line 1"),
    (dict(preset="custom schedule", schedule="0, 500, 0"), "speed (m/s): must be between"),
    (dict(horizon=5000), "greater than maximum"),
    (dict(top_p=0.0), "less than minimum value 0.05"),
    (dict(seed=-3), "seed: must be between 0 and"),
])
def test_invalid_driving_inputs_get_messages(server, client, kw, text):
    with pytest.raises(Exception) as e:
        drive(client, next(iter(server[0].contexts)), **kw)
    assert_message(e, text)


def test_bad_uploads_get_messages(client, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01 definitely not a video" * 100)
    with pytest.raises(Exception) as e:
        drive(client, "(use the uploaded mp4)", handle_file(str(corrupt)))
    assert_message(e, "not a readable video")
    long = write_mp4(tmp_path / "long.mp4", frames=45, size=(32, 64))
    with pytest.raises(Exception) as e:
        drive(client, "(use the uploaded mp4)", handle_file(str(long)))
    assert_message(e, "more than the 40-frame limit")
    with pytest.raises(Exception) as e:
        drive(client, "(use the uploaded mp4)", None)
    assert_message(e, "upload a short mp4 first")


def test_several_concurrent_requests_all_complete(server, client):
    context = next(iter(server[0].contexts))
    jobs = [client.submit(context, None, "brake", 20, "", 12, 1.0, 30, 1.0, seed, api_name="/drive")
            for seed in range(4)]
    videos = [read_video(video_path(j.result(timeout=120)[2])) for j in jobs]
    assert all(v.shape == (12, *FRAME, 3) for v in videos)
    assert not np.array_equal(videos[0], videos[1])  # different seeds, different rollouts


def test_concurrent_driving_requests_run_as_one_batched_rollout_with_their_solo_frames(server, client, tmp_path):
    """Issue 16: two Driving requests sent together (same horizon and sampling, different seeds) run on the one CPU
    worker as one batched rollout, and each page gets exactly the video of its request run alone (``drive_job``)."""
    import threading
    import time

    from worldgen.data.video import write_video
    from worldgen.demo import pipelines as P

    demo, _ = server
    assert demo.drive_batch >= 2 and demo.pool.max_batch == demo.drive_batch
    context, args = next(iter(demo.contexts)), ("lane change left", 15, "", 10, 1.0, 30, 1.0)
    batches, gate = len(demo.pool.batches), threading.Event()
    blocker = demo.pool.submit(lambda d, c, e: gate.wait(60), "block")  # hold the worker: both requests queue up
    try:
        jobs = [client.submit(context, None, *args, seed, api_name="/drive") for seed in (3, 4)]
        deadline = time.monotonic() + 60
        while (demo.pool.waiting() < 2 or blocker.started_at is None) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert demo.pool.waiting() == 2 and blocker.started_at is not None
    finally:
        gate.set()
    outs = [j.result(timeout=120) for j in jobs]
    assert demo.pool.batches[batches:] == [2]  # one batched call for the two requests
    assert all("one batched rollout with 1 other request(s)" in o[1] for o in outs), [o[1] for o in outs]
    videos = [read_video(video_path(o[2])) for o in outs]
    assert not videos_match(videos[0], videos[1])  # own seeds
    pipe = demo._driving("cpu", {})
    for seed, video in zip((3, 4), videos):
        req = demo.drive_request(context, None, *args, seed)
        chunks = []
        P.drive_job(pipe, req, chunks.append)  # the unbatched path, alone
        write_video(tmp_path / f"solo-{seed}.mp4", np.concatenate([c[2] for c in chunks]), fps=req.fps)
        assert videos_match(video, read_video(tmp_path / f"solo-{seed}.mp4"))  # same frames, up to x264 jitter


def test_drift_tab_returns_a_curve_for_a_generated_video(server, client):
    demo, _ = server
    drive(client, next(iter(demo.contexts)), horizon=32, seed=7)
    picked = [v for v in demo.generated_videos()][-1:]
    summary, curve = client.predict(picked, [], 16, 8, api_name="/drift")
    assert "| 0 |" in summary and "| 16 |" in summary and "NOT comparable" in summary
    from PIL import Image

    assert Image.open(curve).size[0] > 100
    with pytest.raises(Exception) as e:
        client.predict([], [], 16, 8, api_name="/drift")
    assert_message(e, "pick generated videos or upload")


def test_text_to_video_with_prompt_switches_and_a_first_image(server, client, tmp_path):
    demo, _ = server
    if demo.artv_problem:
        with pytest.raises(Exception) as e:
            client.predict("a road", "", None, 8, 0, 4.0, 4, api_name="/t2v")
        assert_message(e, "ART·V model is not available")
        return
    from PIL import Image

    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :40] = (200, 30, 30)
    Image.fromarray(img).save(tmp_path / "first.png")
    _, status, video = client.predict("a road\na turn", "4", handle_file(str(tmp_path / "first.png")), 8, 0, 2.0, 3,
                                      api_name="/t2v")
    frames = read_video(video_path(video))
    assert frames.shape[0] == 8 and "prompts at frames [0, 4]" in status
    first = frames[0].astype(float)
    w = first.shape[1]
    assert first[:, : w // 2 - 2, 0].mean() > 150 and first[:, w // 2 + 2:].mean() < 40  # the image is frame 0
    _, _, text_only = client.predict("a road", "", None, 6, 1, 2.0, 3, api_name="/t2v")
    assert read_video(video_path(text_only)).shape[0] == 6
    with pytest.raises(Exception) as e:
        client.predict("a\nb\nc", "4", None, 8, 0, 2.0, 3, api_name="/t2v")
    assert_message(e, "3 prompts need 2 switch frame(s)")


def test_a_missing_model_is_reported_in_its_tab(tiny, tmp_path):
    import shutil

    from worldgen.demo.app import Demo, DemoConfig, build_app
    from worldgen.demo.pipelines import InputError

    ck = tmp_path / "checkpoints"
    shutil.copytree(tiny["checkpoints"] / "gpt-tiny", ck / "gpt-tiny")
    shutil.copytree(tiny["checkpoints"] / "tokenizer-tiny", ck / "tokenizer-tiny")
    demo = Demo(DemoConfig(checkpoints=str(ck), examples=str(tiny["examples"]), devices="cpu",
                           work_dir=str(tmp_path / "work")))
    try:
        assert demo.driving_problem is None and "artv-tiny" in demo.artv_problem
        app = build_app(demo)
        assert any("ART·V model is not available" in str(getattr(b, "value", "")) for b in app.blocks.values())
        with pytest.raises(InputError, match="ART·V model is not available"):
            next(demo.t2v("a road", "", None, 8, 0, 2.0, 3))
    finally:
        demo.pool.close()


@pytest.mark.slow  # 13 s rollout
def test_a_1000_frame_rollout_streams_and_completes(server, client):
    job = client.submit(next(iter(server[0].contexts)), None, "lane change right", 25, "", 1000, 1.0, 30, 1.0, 5,
                        api_name="/drive")
    preview, status, video, plot = job.result(timeout=300)
    assert read_video(video_path(video)).shape == (1000, *FRAME, 3)
    assert "done: 1000 frames" in status
    statuses = [o[1] for o in job.outputs() if o[1]]
    assert sum(" / 1000 frames" in s for s in statuses) >= 5  # frames streamed while it ran


def test_a_cancelled_request_frees_its_device(server, client):
    import time

    demo, _ = server
    context, cancelled = next(iter(demo.contexts)), demo.pool.cancelled
    job = client.submit(context, None, "keep lane", 20, "", 2000, 1.0, 30, 1.0, 0, api_name="/drive")
    deadline = time.monotonic() + 60
    while not any(" / 2000 frames" in (o[1] or "") for o in job.outputs()) and time.monotonic() < deadline:
        time.sleep(0.2)
    job.cancel()
    t0 = time.monotonic()
    out = drive(client, context, horizon=8)
    assert read_video(video_path(out[2])).shape[0] == 8
    assert time.monotonic() - t0 < 30  # did not wait for the 2000-frame rollout
    assert demo.pool.cancelled == cancelled + 1 and demo.pool.busy == {"cpu": None}
