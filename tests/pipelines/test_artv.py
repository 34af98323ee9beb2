"""The ART·V pipeline: one load (model + codec + text encoder), a prompt schedule, progress per frame, seeded output;
the CLI writes what the pipeline returns."""
from __future__ import annotations

import numpy as np
import pytest

from worldgen.artv.generate import GenerateOptions
from worldgen.pipelines.artv import ArtvPipeline


@pytest.fixture(scope="module")
def artv(tiny_models):
    return ArtvPipeline.load(tiny_models["artv"])


def test_prompt_schedule_progress_and_seed(artv):
    seen = []
    opts = GenerateOptions(frames=4, steps=2, seed=5)
    frames = artv.run(["a road", "a turn"], [2], opts, on_frame=seen.append)
    assert frames.shape == (4, 16, 32, 3) and frames.dtype == np.uint8
    assert seen == [0, 1, 2, 3]
    assert np.array_equal(frames, artv.run(["a road", "a turn"], [2], opts))
    assert not np.array_equal(frames, artv.run(["a road", "a turn"], [2], GenerateOptions(frames=4, steps=2, seed=6)))


def test_an_image_prompt_is_frame_zero_and_bad_requests_are_refused(artv):
    first = np.zeros((16, 32, 3), np.uint8)
    first[:, :16] = 255
    frames = artv.run([""], (), GenerateOptions(frames=3, steps=2), first=first)
    assert frames[0, :, :14].mean() > 200 and frames[0, :, 18:].mean() < 50
    with pytest.raises(ValueError, match="--image, a non-empty --prompt"):
        artv.run([""], (), GenerateOptions(frames=3, steps=2))
    with pytest.raises(ValueError, match="switch-at"):
        artv.run(["a", "b"], (), GenerateOptions(frames=3, steps=2))


def test_cli_writes_the_pipeline_output(artv, tiny_models, tmp_path):
    from worldgen.cli import main as cli
    from worldgen.data.video import read_video

    out = tmp_path / "t2v.mp4"
    assert cli(["generate", "artv", "--ckpt", str(tiny_models["artv"]), "--prompt", "a road", "--frames", "3",
                "--steps", "2", "--seed", "1", "--out", str(out)]) == 0
    assert read_video(out).shape == (3, 16, 32, 3) and "steps: 2" in (tmp_path / "t2v.yaml").read_text()
