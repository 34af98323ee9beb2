"""Noise schedules: discrete DDPM-style beta / alpha-bar tables and continuous EDM (Karras) sigma ladders.

- Linear betas: Ho et al. 2020 ("Denoising Diffusion Probabilistic Models"), beta_1 = 1e-4 .. beta_T = 0.02, T = 1000.
- Cosine alpha-bar: Nichol & Dhariwal 2021 ("Improved DDPM"), Eq. 17:
  abar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) * pi/2), s = 0.008, betas clipped at 0.999.
- Karras sigmas: Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based Generative Models", EDM), Eq. 5:
  sigma_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, followed by sigma_N = 0.

A discrete schedule relates to the EDM variance-exploding form through x_t = sqrt(abar_t) (x0 + sigma_t eps) with
sigma_t = sqrt((1 - abar_t) / abar_t); `abar_to_sigma` / `sigma_to_abar` convert. Indices follow the 0-based
convention t = 0 .. T-1 (t = 0 is the least noisy step).
"""
from __future__ import annotations

import math

import torch


def linear_betas(n: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM linear beta table, float64, shape (n,)."""
    if n < 1:
        raise ValueError(f"linear_betas: n must be >= 1, got {n}")
    return torch.linspace(beta_start, beta_end, n, dtype=torch.float64)


def cosine_alpha_bars(n: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Improved-DDPM cosine alpha-bar table, float64, shape (n,); index t holds abar after t+1 noising steps."""
    return betas_to_alpha_bars(cosine_betas(n, s, max_beta))


def cosine_betas(n: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Betas of the cosine schedule: beta_t = 1 - abar(t+1)/abar(t), clipped at ``max_beta`` (Nichol & Dhariwal)."""
    if n < 1:
        raise ValueError(f"cosine_betas: n must be >= 1, got {n}")
    steps = torch.arange(n + 1, dtype=torch.float64) / n
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


def betas_to_alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas.double(), dim=0)


def make_alpha_bars(kind: str, n: int = 1000) -> torch.Tensor:
    """Alpha-bar table for ``kind`` in {"linear", "cosine"}."""
    if kind == "linear":
        return betas_to_alpha_bars(linear_betas(n))
    if kind == "cosine":
        return cosine_alpha_bars(n)
    raise ValueError(f"unknown schedule '{kind}'; valid: linear, cosine")


def abar_to_sigma(abar: torch.Tensor) -> torch.Tensor:
    """EDM sigma equivalent to a discrete alpha-bar: sigma = sqrt((1 - abar) / abar)."""
    return ((1 - abar) / abar).sqrt()


def sigma_to_abar(sigma: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + sigma**2)


def karras_sigmas(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """EDM Eq. 5: ``n`` decreasing noise levels from sigma_max to sigma_min, then a final 0 (length n + 1, float64)."""
    if n < 1:
        raise ValueError(f"karras_sigmas: n must be >= 1, got {n}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"karras_sigmas: need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sig, sig.new_zeros(1)])


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    """Forward noising x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps for integer timesteps ``t`` of shape (b,)."""
    ab = expand_like(alpha_bars.to(x0.device)[t].to(x0.dtype), x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def expand_like(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector (b,) (or a scalar) to broadcast against ``x`` of shape (b, ...)."""
    v = torch.as_tensor(v, device=x.device, dtype=x.dtype)
    if v.ndim == 0:
        v = v.expand(x.shape[0])
    return v.reshape(-1, *([1] * (x.ndim - 1)))


__all__ = [
    "linear_betas", "cosine_betas", "cosine_alpha_bars", "betas_to_alpha_bars", "make_alpha_bars",
    "abar_to_sigma", "sigma_to_abar", "karras_sigmas", "q_sample", "expand_like",
]
