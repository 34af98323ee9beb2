"""Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", Eq. 6).

    D_w = D_uncond + w (D_cond - D_uncond)        (w = 1: plain conditional; w = 0: unconditional)

Applied to denoised estimates (x0 space), which is equivalent to guiding epsilon for a fixed x_t and noise level.
Two conditions (text and image) compose as in InstructPix2Pix (Brooks et al. 2023, Eq. 3):

    D = D(0, 0) + w_img (D(img, 0) - D(0, 0)) + w_txt (D(img, txt) - D(img, 0)).

``drop_condition`` implements condition dropout for training (replace a sample's condition by the null one with
probability p).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    return uncond + scale * (cond - uncond)


def cfg_combine2(uncond: torch.Tensor, img_only: torch.Tensor, both: torch.Tensor, w_img: float,
                 w_txt: float) -> torch.Tensor:
    """Two-condition guidance (image then text), InstructPix2Pix Eq. 3."""
    return uncond + w_img * (img_only - uncond) + w_txt * (both - img_only)


def cfg_denoiser(denoise: Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor], cond: Any, uncond: Any,
                 scale: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``denoise(x, level) -> x0`` that guides ``denoise(x, level, cond)`` with scale ``scale`` (skips the
    unconditional pass when scale == 1)."""
    def guided(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        c = denoise(x, level, cond)
        if scale == 1.0:
            return c
        return cfg_combine(c, denoise(x, level, uncond), scale)
    return guided


def drop_mask(b: int, p: float, generator: Optional[torch.Generator] = None, device=None) -> torch.Tensor:
    """Bool (b,): True where the condition is dropped (probability ``p``)."""
    return (torch.rand(b, generator=generator) < p).to(device)


def drop_condition(cond: torch.Tensor, null: torch.Tensor, p: float,
                   generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace rows of ``cond`` (b, ...) by ``null`` (broadcastable to one row) with probability ``p``."""
    drop = drop_mask(cond.shape[0], p, generator, cond.device)
    keep = (~drop).to(cond.dtype).reshape(-1, *([1] * (cond.ndim - 1)))
    return keep * cond + (1 - keep) * null.to(cond), drop


__all__ = ["cfg_combine", "cfg_combine2", "cfg_denoiser", "drop_mask", "drop_condition"]
