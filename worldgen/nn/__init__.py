"""Shared building blocks only: attention (SDPA/xformers, KV cache, RoPE), embeddings, norms, U-Net blocks."""
