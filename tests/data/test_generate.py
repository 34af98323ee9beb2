"""highway-env generator: real (non-blank) frames, poses, captions, determinism, shards, resume after a kill."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import videos_match
from worldgen.cli import main as cli_main
from worldgen.data.generate import (SCENARIOS, GenConfig, ScriptedPolicy, caption, ensure_offscreen, generate,
                                     lane_changes)
from worldgen.data.video import read_video

pytest.importorskip("highway_env")
SMALL = dict(frames=6, size=(32, 64), progress=False)


def _episodes(root):
    return sorted(p.name for p in (Path(root) / "episodes").iterdir() if not p.name.startswith("."))


def _load(root, eid):
    d = Path(root) / "episodes" / eid
    return read_video(d / "video.mp4"), json.loads((d / "meta.json").read_text())


@pytest.fixture(scope="module")
def every_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    summary = generate(GenConfig(out=str(root), episodes=len(SCENARIOS), **SMALL))
    return root, summary


def test_all_scenarios_render_real_frames(every_env):
    root, summary = every_env
    assert summary["written"] == len(SCENARIOS) and summary["frames"] == 6 * len(SCENARIOS)
    envs = set()
    for eid in _episodes(root):
        frames, meta = _load(root, eid)
        envs.add(meta["env_id"])
        assert frames.shape == (6, 32, 64, 3)
        assert frames.mean() > 20 and frames.std() > 10, f"{eid}: blank frames"  # 'dummy' SDL gives all-black
        assert len(meta["poses"]) == len(meta["speed"]) == len(meta["actions"]) == len(meta["controls"]) == 6
        assert meta["caption"].startswith("ego ") and meta["fps"] == 10.0
        assert all(len(p) == 3 and all(np.isfinite(p)) for p in meta["poses"])
    assert envs == set(SCENARIOS)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["n_episodes"] == len(SCENARIOS) and manifest["size"] == [32, 64]


def test_ego_moves_consistently_with_speed(every_env):
    root, _ = every_env
    _, meta = _load(root, "highway-fast-s0-00000")
    poses, speed = np.array(meta["poses"]), np.array(meta["speed"])
    step = np.linalg.norm(np.diff(poses[:, :2], axis=0), axis=1)
    assert np.allclose(step, speed[1:] / 10.0, rtol=0.2, atol=0.3)  # distance per frame ~ speed / fps


def test_same_seed_same_output_independent_of_shards_and_workers(tmp_path):
    full = generate(GenConfig(out=str(tmp_path / "full"), episodes=3, envs=("highway-fast-v0", "roundabout-v0"),
                              **SMALL))
    for k in range(2):
        generate(GenConfig(out=str(tmp_path / "sharded"), episodes=3, envs=("highway-fast-v0", "roundabout-v0"),
                           shard=(k, 2), **SMALL))
    assert full["written"] == 3 and _episodes(tmp_path / "full") == _episodes(tmp_path / "sharded")
    for eid in _episodes(tmp_path / "full"):
        (fa, ma), (fb, mb) = _load(tmp_path / "full", eid), _load(tmp_path / "sharded", eid)
        assert videos_match(fa, fb) and ma == mb
    parallel = generate(GenConfig(out=str(tmp_path / "parallel"), episodes=3, workers=2,
                                  envs=("highway-fast-v0", "roundabout-v0"), **SMALL))
    assert parallel["written"] == 3
    for eid in _episodes(tmp_path / "full"):
        (fa, ma), (fb, mb) = _load(tmp_path / "full", eid), _load(tmp_path / "parallel", eid)
        assert videos_match(fa, fb) and ma == mb
    other = generate(GenConfig(out=str(tmp_path / "other"), episodes=1, seed=1, envs=("highway-fast-v0",), **SMALL))
    assert other["written"] == 1 and _episodes(tmp_path / "other") == ["highway-fast-s1-00000"]
    # the tolerance for encoder jitter still tells episodes apart
    assert not videos_match(_load(tmp_path / "full", "highway-fast-s0-00000")[0],
                            _load(tmp_path / "other", "highway-fast-s1-00000")[0])


@pytest.mark.slow  # subprocess
def test_resume_after_kill(tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "worldgen.cli", "data", "driving", "--out", str(out), "--episodes", "6",
           "--frames", "30", "--size", "32x64", "--envs", "highway-fast-v0", "--no-progress"]
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ((out / "episodes").is_dir() and _episodes(out)):
        assert proc.poll() is None, "generator exited before it could be killed"
        assert time.time() < deadline, "no episode written within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # SDL would swallow it unless its signal handlers are off
    proc.wait(timeout=30)
    first = _episodes(out)
    assert 1 <= len(first) < 6
    for eid in first:  # only whole episodes are visible
        frames, meta = _load(out, eid)
        assert len(frames) == 30 and len(meta["poses"]) == 30
    stamps = {eid: (out / "episodes" / eid / "video.mp4").stat().st_mtime_ns for eid in first}
    summary = generate(GenConfig(out=str(out), episodes=6, frames=30, size=(32, 64), envs=("highway-fast-v0",),
                                 progress=False))
    assert summary["skipped_existing"] == len(first) and summary["written"] == 6 - len(first)
    assert len(_episodes(out)) == 6 and not list((out / "episodes").glob(".*"))
    assert all((out / "episodes" / e / "video.mp4").stat().st_mtime_ns == t for e, t in stamps.items())


def test_dummy_driver_is_replaced(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    ensure_offscreen()
    assert os.environ["SDL_VIDEODRIVER"] == "offscreen"


def test_captions_follow_what_happened():
    lanes = [["a", "b", "1"], ["a", "b", "1"], ["a", "b", "0"], ["b", "c", "0"], ["b", "c", "1"]]
    assert lane_changes(lanes) == ["left", "right"]
    rec = {"lanes": lanes, "poses": [[0, 0, 0]] * 5, "speed": [20, 21, 23, 25, 26], "neighbours": [6] * 5,
           "crashed": False, "lanes_count": 4}
    text = caption(SCENARIOS["highway-fast-v0"], rec)
    assert text == ("ego changes lane to the left, changes lane to the right and speeds up "
                    "on a four-lane highway in dense traffic")
    rec["lanes"] = [["a", "b", "2"], ["a", "b", "1"], ["a", "b", "1"], ["a", "b", "0"], ["a", "b", "0"]]
    rec["speed"] = [20] * 5
    assert caption(SCENARIOS["highway-fast-v0"], rec).startswith("ego changes two lanes to the left on a four-lane")
    turn = {"lanes": [None] * 3, "poses": [[0, 0, 0], [1, 1, 0.8], [1, 3, 1.6]], "speed": [8, 8, 8],
            "neighbours": [0] * 3, "crashed": False, "lanes_count": None}
    assert caption(SCENARIOS["intersection-v0"], turn) == "ego turns left at a four-way intersection in light traffic"


def test_policy_is_varied_and_seeded():
    plans = [ScriptedPolicy(SCENARIOS["highway-fast-v0"].maneuvers, 200, 10, np.random.default_rng(s)).plan
             for s in (0, 0, 1)]
    assert plans[0] == plans[1] and plans[0] != plans[2]
    assert {"left", "right", "faster", "slower"} <= set(plans[0] + plans[2])


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert cli_main(["data", "driving", "--out", str(tmp_path), "--envs", "nope-v0"]) == 2
    assert "unknown env" in capsys.readouterr().err
    assert cli_main(["data", "driving", "--out", str(tmp_path), "--shard", "3/2"]) == 2
    assert cli_main(["data", "driving", "--out", str(tmp_path), "--size", "64by128"]) == 2


def test_resize_is_an_exact_box_filter():
    from PIL import Image

    from worldgen.data.generate import resize

    frame = np.random.default_rng(0).integers(0, 256, (128, 256, 3), dtype=np.uint8)
    assert np.array_equal(resize(frame[:, ::-1], (64, 128)), np.asarray(Image.fromarray(frame[:, ::-1].copy()).reduce(2)))
    assert resize(frame, (48, 100)).shape == (48, 100, 3)


def test_close_look_halves_the_view(tmp_path):
    """--look close: the same episode at twice the pixels per metre (the sidecar's view_m halves, the ego car, the
    vehicle blob at the camera's centring point, covers about four times the pixels)."""
    from scipy import ndimage

    from worldgen.data.foreground import VEHICLE_THRESHOLD

    sizes = {}
    for look in ("crisp", "close"):
        out = tmp_path / look
        generate(GenConfig(out=str(out), episodes=1, frames=4, size=(64, 128), envs=("highway-fast-v0",), look=look,
                           progress=False))
        video, meta = _load(out, _episodes(out)[0])
        rgb = np.asarray(video[0], dtype=np.float64) / 255  # h w c
        blobs, _ = ndimage.label((rgb.max(-1) - rgb.min(-1)) > VEHICLE_THRESHOLD)
        ego = blobs[32, int(0.35 * 128)]  # highway-fast centres the ego car at (0.35, 0.5) of the frame
        assert ego > 0
        sizes[look] = (meta["view_m"], float((blobs == ego).sum()))
    (v_crisp, px_crisp), (v_close, px_close) = sizes["crisp"], sizes["close"]
    assert v_crisp == pytest.approx(48.0) and v_close == pytest.approx(24.0)
    assert 3.0 < px_close / max(px_crisp, 1.0) < 8.0  # measured 252 / 44 px = 5.7 (crisp rounds the car down)
