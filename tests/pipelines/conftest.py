"""Tiny seeded random-weight checkpoints (the demo tests' builders, tests/demo/tiny.py) and a token-shard folder
whose code grid fits them: the pipelines run end to end in seconds on one CPU thread."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    from tests.demo.tiny import CODES, FRAME, make_artv, make_gpt, make_tokenizer
    from worldgen.data.tokens import make_synthetic_shards

    root = tmp_path_factory.mktemp("pipelines-tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {"tokenizer": make_tokenizer(root / "tokenizer-tiny"), "gpt": make_gpt(root / "gpt-tiny"),
           "artv": make_artv(root / "artv-tiny"),
           "tokens": make_synthetic_shards(root / "tokens", n_episodes=2, n_frames=8,
                                           grid=(FRAME[0] // 8, FRAME[1] // 8), codebook_size=CODES, seed=4)}
    yield out
    torch.set_num_threads(threads)
