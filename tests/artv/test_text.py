"""Text encoders: the packaged MiniLM loads offline; the cache encodes each caption once; errors are clear."""
import os

import pytest
import torch

from worldgen.artv.text import CachedTextEncoder, HashTextEncoder, build_text_encoder


@pytest.fixture(scope="module")
def minilm():
    os.environ["HF_HUB_OFFLINE"] = "1"
    return build_text_encoder("minilm")


def test_minilm_offline_token_embeddings(minilm):
    assert minilm.dim == 384 and minilm.name == "minilm"
    enc = CachedTextEncoder(minilm, max_tokens=16)
    caps = ["ego changes lane to the left on a highway", "ego waits at an intersection",
            "ego changes lane to the left on a highway"]
    tokens, mask = enc(caps)
    assert tokens.shape == (3, 16, 384) and mask.shape == (3, 16) and enc.calls == 2
    torch.testing.assert_close(tokens[0], tokens[2])
    assert not torch.allclose(tokens[0], tokens[1])
    assert (tokens[~mask] == 0).all() and mask[:, 0].all()
    # Similar sentences are closer than unrelated ones (the encoder carries meaning, not noise).
    pooled = lambda c: torch.nn.functional.normalize(minilm.encode([c])[0].mean(0), dim=-1)  # noqa: E731
    a, b = pooled("a car drives fast on a highway"), pooled("a vehicle speeds along the motorway")
    c = pooled("a recipe for apple pie")
    assert (a * b).sum() > (a * c).sum()


def test_cache_pads_truncates_and_counts():
    enc = CachedTextEncoder(HashTextEncoder(dim=8), max_tokens=3)
    tokens, mask = enc(["one two three four five", "one", "one"])
    assert tokens.shape == (3, 3, 8) and mask.tolist() == [[True] * 3, [True, False, False], [True, False, False]]
    assert enc.calls == 2
    enc(["one"])
    assert enc.calls == 2
    t2, _ = CachedTextEncoder(HashTextEncoder(dim=8), max_tokens=3)(["one"])
    torch.testing.assert_close(t2[0], tokens[1])


def test_encoder_errors():
    with pytest.raises(ValueError, match="unknown text encoder"):
        build_text_encoder("clip-xxl")
    with pytest.raises(FileNotFoundError, match="not a local sentence-transformers model"):
        build_text_encoder("st:/nonexistent/model")
    with pytest.raises(ValueError, match="expected 16"):
        enc = CachedTextEncoder(HashTextEncoder(dim=8), max_tokens=3)
        enc.dim = 16
        enc(["x"])
