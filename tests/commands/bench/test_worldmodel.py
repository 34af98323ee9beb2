"""``worldgen bench rollout|train``: ``rollout_main`` / ``train_main`` run from their dataclasses on a shrunk GPT."""
from worldgen.commands.bench.worldmodel import RolloutBenchConfig, TrainBenchConfig, rollout_main, train_main

TINY = ["model.width=32", "model.heads=2", "model.codebook_size=32", "model.grid=[3,4]", "model.context_frames=2"]


def test_rollout_main():
    r = rollout_main(RolloutBenchConfig(frames=3, uncached_frames=1, overrides=TINY))
    assert r["tokens_identical"] is True and r["frames"] == 3 and r["frames_per_s"] is None


def test_rollout_main_with_streamed_decoding(tokenizer_dir):
    grid = ["model.grid=[4,8]", "model.codebook_size=64"]  # the tiny tokenizer's grid and codebook
    r = rollout_main(RolloutBenchConfig(frames=3, uncached_frames=1, tokenizer=str(tokenizer_dir),
                                        overrides=[*TINY, *grid]))
    assert r["decode_s_per_frame"] > 0 and 0 < r["frames_per_s"] < r["frames_per_s_tokens_only"]


def test_train_main():
    r = train_main(TrainBenchConfig(steps=1, batch=1, overrides=TINY))
    assert r["tokens_per_s"] > 0 and r["flops_per_step"] > 0 and r["batch"] == 1
