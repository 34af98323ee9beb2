"""`make quickstart`'s script end to end at toy size: simulator -> tokenizer -> shards -> GPT -> a playable video."""
import importlib.util
from pathlib import Path

import pytest

from worldgen.data.video import read_video

pytestmark = pytest.mark.slow  # subprocess, ~90 s

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_writes_a_rollout_video(tmp_path):
    spec = importlib.util.spec_from_file_location("quickstart", ROOT / "tools/quickstart.py")
    qs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qs)
    video = qs.main(["--out", str(tmp_path / "qs"), "--episodes", "4", "--frames", "24", "--tok-steps", "5",
                     "--gpt-steps", "5", "--rollout-frames", "8"])
    frames = read_video(video)
    assert frames.shape[1:] == (64, 128, 3) and len(frames) >= 8
    # a rerun skips every finished step and returns the same file
    assert qs.main(["--out", str(tmp_path / "qs"), "--episodes", "4", "--frames", "24"]) == video
