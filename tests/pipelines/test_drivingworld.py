"""The DrivingWorld pipeline: streamed decoding equals a one-pass decode pixel for pixel (through the pipeline API
and through ``worldgen generate drivingworld``), and the old chunk-without-past decoding would not."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from worldgen.data.video import to_uint8
from worldgen.pipelines.drivingworld import DrivingPipeline, StreamingDecoder


def one_pass(tok, codes: torch.Tensor, past: torch.Tensor) -> np.ndarray:
    """All generated codes decoded in one call, the context codes as their past: uint8 t h w c."""
    return to_uint8(tok.decode(codes, past=past))[0]


def chunks_without_past(tok, codes: torch.Tensor, chunk: int = 8) -> np.ndarray:
    """The decoding the CLI did before issue 12: every chunk alone, without the codes before it."""
    return np.concatenate([to_uint8(tok.decode(codes[:, s:s + chunk]))[0] for s in range(0, codes.shape[1], chunk)])


@pytest.fixture(scope="module")
def pipe(tiny_models):
    return DrivingPipeline.load(tiny_models["gpt"], tiny_models["tokenizer"], chunk=3)


def test_streamed_decoding_equals_one_pass_decode(pipe, tiny_models):
    context = pipe.context_from_tokens("ep0000", str(tiny_models["tokens"]))
    streamed = []
    res = pipe.run(context, 11, seed=3, on_frames=lambda i, f: streamed.append((i, f)))
    assert [i for i, _ in streamed] == [0, 3, 6, 9] and [len(f) for _, f in streamed] == [3, 3, 3, 2]
    assert np.array_equal(np.concatenate([f for _, f in streamed]), res.frames)
    whole = one_pass(pipe.tok, res.codes, context.codes)
    assert res.frames.shape == (11, 32, 64, 3) and res.frames.dtype == np.uint8
    assert np.array_equal(res.frames, whole)  # exact: not one grey level off anywhere
    old = chunks_without_past(pipe.tok, res.codes, chunk=3)
    assert np.abs(old.astype(int) - whole.astype(int)).max() > 10  # the bug this test guards against is visible


@pytest.mark.parametrize("chunk", [1, 4, 8])
def test_the_decode_chunk_size_changes_no_pixel(pipe, tiny_models, chunk):
    context = pipe.context_from_tokens(None, str(tiny_models["tokens"]))
    codes = pipe.run(context, 9, seed=1).codes
    dec = StreamingDecoder(pipe.tok, context.codes, chunk=chunk)
    for i in range(codes.shape[1]):
        dec.push(codes[:, i])
    dec.flush()
    assert np.array_equal(dec.frames, one_pass(pipe.tok, codes, context.codes))


def test_cli_video_equals_one_pass_decode(tiny_models, tmp_path):
    from worldgen.cli import main as cli
    from worldgen.data.tokens import load_episode
    from worldgen.data.video import read_video
    from worldgen.io import load_weights
    from worldgen.tokenizer import load_tokenizer

    out = tmp_path / "roll.mp4"
    rc = cli(["generate", "drivingworld", "--ckpt", str(tiny_models["gpt"]), "--tokenizer",
              str(tiny_models["tokenizer"]), "--tokens", str(tiny_models["tokens"]), "--context-from", "ep0001",
              "--frames", "19", "--manoeuvre", "lane_change_left", "--seed", "2", "--out", str(out),
              "--save-frames"])
    assert rc == 0
    frames = np.load(tmp_path / "roll.frames.npy")
    summary = json.loads((tmp_path / "roll.summary.json").read_text())
    assert frames.shape == (19, 32, 64, 3) and summary["frames_npy"].endswith("roll.frames.npy")
    assert read_video(out).shape == frames.shape  # the mp4 (lossy) holds the same frames
    codes = load_weights(tmp_path / "roll.tokens.safetensors")["codes"][None].long()  # 1 t h w
    context = load_episode(tiny_models["tokens"] / "episodes" / "ep0001.safetensors")["codes"]
    context = context[None, :summary["context_frames"]].long()
    tok = load_tokenizer(tiny_models["tokenizer"])
    whole = one_pass(tok, codes, context)
    assert np.array_equal(frames, whole)  # 19 frames: two full chunks of 8 and a partial one, all exact
    assert np.abs(chunks_without_past(tok, codes).astype(int) - whole.astype(int)).max() > 10


def test_tokens_only_and_a_tokenizer_that_does_not_fit(pipe, tiny_models, tmp_path):
    from tests.demo.tiny import make_tokenizer
    from worldgen.tokenizer import load_tokenizer

    bare = DrivingPipeline(pipe.gpt)
    res = bare.run(bare.context_from_tokens("ep0000", str(tiny_models["tokens"])), 4)
    assert res.frames is None and tuple(res.codes.shape) == (1, 4, 4, 8) and res.poses.shape == (4, 3)
    other = load_tokenizer(make_tokenizer(tmp_path / "tok"))
    other.cfg.frame_size = [64, 64]  # codes an 8x8 grid, the GPT predicts 4x8
    with pytest.raises(ValueError, match="does not fit"):
        DrivingPipeline(pipe.gpt, other)


def test_a_context_from_frames_must_have_the_tokenizer_size(pipe):
    with pytest.raises(ValueError, match="resize or crop"):
        pipe.context_from_frames(np.zeros((4, 16, 16, 3), np.uint8))
    ctx = pipe.context_from_frames(np.zeros((6, 32, 64, 3), np.uint8))
    assert tuple(ctx.codes.shape) == (1, pipe.context_frames, 4, 8) and not ctx.keep.any()
