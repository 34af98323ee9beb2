"""``worldgen bench rollout|train``: ``rollout_main`` / ``train_main`` run from their dataclasses on a shrunk GPT."""
import pytest

from worldgen.commands.bench.worldmodel import RolloutBenchConfig, TrainBenchConfig, rollout_main, train_main

TINY = ["model.width=32", "model.heads=2", "model.codebook_size=32", "model.grid=[3,4]", "model.context_frames=2"]


def test_rollout_main():
    r = rollout_main(RolloutBenchConfig(frames=3, uncached_frames=1, batch=2, batch_frames=2, profile=3,
                                        overrides=TINY))
    assert r["tokens_identical"] is True and r["frames"] == 3 and r["frames_per_s"] is None
    assert r["per_token_ms"] > 0 and r["fuse_ms_per_frame"] > 0 and r["decode_ms_per_frame"] > 0
    assert r["limit_ms_per_token"] > 0 and r["limit_ratio"] == r["per_token_ms"] / r["limit_ms_per_token"]
    assert r["weight_bytes_per_token"] > 4 * 32 * 96 * 2  # at least the 2 blocks' qkv weights in fp32
    assert r["realtime_factor"] == r["frames_per_s_tokens_only"] / 10.0
    assert r["batch"] == 2 and r["frames_per_s_batch2"] > 0 and r["batch_speedup"] > 0
    assert r["fuse_flops_per_frame"] > 0 and r["decode_flops_per_frame"] > 0 and r["batch_speedup_compute_bound"] > 0
    for key in ("profile_fusion_batch1", "profile_decode_batch1", "profile_decode_batch2"):
        assert len(r[key]) == 3 and all(row[1] >= 0 and row[3] > 0 for row in r[key])


def test_rollout_main_rejects_bad_settings():
    with pytest.raises(ValueError, match="--frames"):
        rollout_main(RolloutBenchConfig(frames=0, overrides=TINY))


def test_rollout_main_with_streamed_decoding(tokenizer_dir):
    grid = ["model.grid=[4,8]", "model.codebook_size=64"]  # the tiny tokenizer's grid and codebook
    r = rollout_main(RolloutBenchConfig(frames=3, uncached_frames=1, tokenizer=str(tokenizer_dir),
                                        overrides=[*TINY, *grid]))
    assert r["decode_s_per_frame"] > 0 and 0 < r["frames_per_s"] < r["frames_per_s_tokens_only"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_main(precision):
    r = train_main(TrainBenchConfig(steps=1, batch=1, overrides=TINY, precision=precision, profile=2))
    assert r["tokens_per_s"] > 0 and r["flops_per_step"] > 0 and r["batch"] == 1
    assert r["matmul_dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[precision] and 0 < r["mfu"]
    assert len(r["profile_train_step"]) == 2
    with pytest.raises(ValueError, match="precision"):
        train_main(TrainBenchConfig(steps=1, batch=1, overrides=TINY, precision="fp8"))
