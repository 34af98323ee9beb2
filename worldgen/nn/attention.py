"""One attention entry point for all of worldgen: PyTorch SDPA everywhere, xformers on CUDA when installed.

``attention(q, k, v)`` takes ``b h n d`` tensors. xformers has no CPU kernels, so it is used only for CUDA tensors
and only for the cases it supports here (no mask, or plain causal with equal query/key lengths); everything else goes
to ``torch.nn.functional.scaled_dot_product_attention``. Both give the same result to float tolerance.
"""
from __future__ import annotations

import functools
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange


@functools.lru_cache(maxsize=1)
def xformers_available() -> bool:
    try:
        import xformers.ops  # noqa: F401
    except Exception:
        return False
    return True


def _use_xformers(q: torch.Tensor, k: torch.Tensor, mask: Optional[torch.Tensor], causal: bool, backend: str) -> bool:
    if backend == "sdpa":
        return False
    # causal is only delegated when query and key lengths match, where both libraries align the triangle alike
    ok = q.is_cuda and xformers_available() and mask is None and (not causal or q.shape[-2] == k.shape[-2])
    if backend == "xformers" and not ok:
        raise RuntimeError("attention backend 'xformers' requested but unavailable for this input (needs CUDA, "
                           "xformers installed, no explicit mask, equal lengths when causal)")
    return ok


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
              mask: Optional[torch.Tensor] = None, backend: str = "auto", dropout_p: float = 0.0) -> torch.Tensor:
    """Scaled dot-product attention over ``b h n d`` tensors; ``mask`` is boolean (True = attend) or additive."""
    if causal and mask is not None:
        raise ValueError("pass either causal=True or an explicit mask, not both")
    if _use_xformers(q, k, mask, causal, backend):
        import xformers.ops as xops

        q_, k_, v_ = (rearrange(x, "b h n d -> b n h d") for x in (q, k, v))
        bias = xops.LowerTriangularMask() if causal else None
        out = xops.memory_efficient_attention(q_, k_, v_, attn_bias=bias, p=dropout_p)
        return rearrange(out, "b n h d -> b h n d")
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, dropout_p=dropout_p)
