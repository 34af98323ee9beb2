"""Samplers that meet a denoiser only through ``denoise(x, sigma_or_t) -> x0_hat``.

- ``ddpm_sample``: ancestral sampling with the posterior q(x_{t'} | x_t, x0_hat) (Ho et al. 2020, Eq. 6-7),
  generalised to strided timesteps (beta_eff = 1 - abar_t / abar_t').
- ``ddim_sample``: Song et al. 2021 ("Denoising Diffusion Implicit Models"), Eq. 12 with eta (eta = 0: deterministic).
- ``euler_sample``: Karras et al. 2022 (EDM), the deterministic Euler ODE step x <- x + (sigma' - sigma)(x - D)/sigma.
- ``heun_sample``: EDM Algorithm 2 (stochastic Heun with S_churn, S_tmin, S_tmax, S_noise); S_churn = 0 gives the
  deterministic Algorithm 1.
DDPM/DDIM work on a discrete alpha-bar table with integer t (x_t = sqrt(abar) x0 + sqrt(1 - abar) eps); Euler/Heun
work in the variance-exploding EDM form x = x0 + sigma eps with a sigma ladder (``karras_sigmas``).

Hooks (both optional; both run with autograd enabled, so they may take gradients, e.g. of a policy's log-likelihood):
- ``guidance(x, i, n_steps) -> x`` is called on the current sample before step i (0-based). Policy-guided diffusion
  adds ``lambda_i * grad`` to the action channels here.
- ``denoised_hook(x0_hat, i, n_steps) -> x0_hat`` is called on every denoised estimate inside step i, before the
  estimate is used. To guide on the denoised estimate instead of the noisy sample (PGD's option), shift x0_hat here.
The denoiser itself runs under ``torch.no_grad()``.

Randomness: all noise is drawn from a CPU ``torch.Generator`` (made from ``seed`` when no ``generator`` is given) and
then moved to the device, so the same seed gives the same sample on the same machine whatever the device.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from tqdm.auto import tqdm

from worldgen.diffusion.schedules import expand_like, karras_sigmas

Hook = Optional[Callable[[torch.Tensor, int, int], torch.Tensor]]


def make_generator(seed: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Generator:
    if generator is not None:
        return generator
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def randn(shape: Sequence[int], generator: torch.Generator, like: Optional[torch.Tensor] = None,
          device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the CPU generator, moved to ``like``'s (or the given) device and dtype."""
    z = torch.randn(tuple(shape), generator=generator)
    if like is not None:
        return z.to(like)
    return z.to(device=device, dtype=dtype)


def discrete_timesteps(n_train: int, n_steps: int) -> list[int]:
    """``n_steps`` descending, distinct timesteps from n_train-1 to 0 (evenly spaced)."""
    if not 1 <= n_steps <= n_train:
        raise ValueError(f"n_steps must be in [1, {n_train}], got {n_steps}")
    ts = torch.linspace(n_train - 1, 0, n_steps).round().long().tolist()
    return sorted(set(ts), reverse=True)


def _denoise(denoise: Callable, x: torch.Tensor, level, hook: Hook, i: int, n: int) -> torch.Tensor:
    with torch.no_grad():
        x0 = denoise(x, level)
    return hook(x0, i, n) if hook is not None else x0


def _levels(value, x: torch.Tensor, dtype) -> torch.Tensor:
    return torch.full((x.shape[0],), value, device=x.device, dtype=dtype)


def _init(shape, x_T, generator, device, scale: float) -> torch.Tensor:
    if x_T is not None:
        return x_T.clone()
    return randn(shape, generator, device=device) * scale


def ddpm_sample(denoise: Callable, shape: Sequence[int], alpha_bars: torch.Tensor, n_steps: Optional[int] = None, *,
                seed: Optional[int] = None, generator: Optional[torch.Generator] = None, guidance: Hook = None,
                denoised_hook: Hook = None, device=None, x_T: Optional[torch.Tensor] = None,
                progress: bool = False) -> torch.Tensor:
    """Ancestral DDPM sampling; ``denoise(x_t, t_long[b]) -> x0_hat``."""
    g = make_generator(seed, generator)
    ab = alpha_bars.double()
    ts = discrete_timesteps(len(ab), n_steps or len(ab))
    x = _init(shape, x_T, g, device, 1.0)
    for i, t in enumerate(tqdm(ts, desc="ddpm", disable=not progress)):
        if guidance is not None:
            x = guidance(x, i, len(ts))
        x0 = _denoise(denoise, x, _levels(t, x, torch.long), denoised_hook, i, len(ts))
        ab_t = ab[t].item()
        ab_prev = ab[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
        beta = 1 - ab_t / ab_prev
        mean = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_prev) * x) / (1 - ab_t)
        if i + 1 < len(ts):
            var = beta * (1 - ab_prev) / (1 - ab_t)
            mean = mean + math.sqrt(var) * randn(x.shape, g, like=x)
        x = mean
    return x


def ddim_step(x: torch.Tensor, x0: torch.Tensor, ab_t: float, ab_prev: float, eta: float = 0.0,
              noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One DDIM update from abar_t to abar_prev given the denoised estimate (Song et al. Eq. 12)."""
    eps = (x - math.sqrt(ab_t) * x0) / math.sqrt(1 - ab_t)
    s = eta * math.sqrt((1 - ab_prev) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_prev)
    out = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - s**2, 0.0)) * eps
    if s > 0 and noise is not None:
        out = out + s * noise
    return out


def ddim_sample(denoise: Callable, shape: Sequence[int], alpha_bars: torch.Tensor, n_steps: int = 50, *,
                eta: float = 0.0, seed: Optional[int] = None, generator: Optional[torch.Generator] = None,
                guidance: Hook = None, denoised_hook: Hook = None, device=None, x_T: Optional[torch.Tensor] = None,
                progress: bool = False) -> torch.Tensor:
    """DDIM sampling over ``n_steps`` strided timesteps; ``denoise(x_t, t_long[b]) -> x0_hat``."""
    g = make_generator(seed, generator)
    ab = alpha_bars.double()
    ts = discrete_timesteps(len(ab), n_steps)
    x = _init(shape, x_T, g, device, 1.0)
    for i, t in enumerate(tqdm(ts, desc="ddim", disable=not progress)):
        if guidance is not None:
            x = guidance(x, i, len(ts))
        x0 = _denoise(denoise, x, _levels(t, x, torch.long), denoised_hook, i, len(ts))
        ab_prev = ab[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
        noise = randn(x.shape, g, like=x) if eta > 0 else None
        x = ddim_step(x, x0, ab[t].item(), ab_prev, eta, noise)
    return x


def euler_sample(denoise: Callable, shape: Sequence[int], sigmas: Optional[torch.Tensor] = None, *,
                 n_steps: int = 32, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                 seed: Optional[int] = None, generator: Optional[torch.Generator] = None, guidance: Hook = None,
                 denoised_hook: Hook = None, device=None, x_T: Optional[torch.Tensor] = None,
                 progress: bool = False) -> torch.Tensor:
    """Deterministic Euler on the EDM probability-flow ODE; ``denoise(x, sigma_float[b]) -> x0_hat``."""
    g = make_generator(seed, generator)
    sig = karras_sigmas(n_steps, sigma_min, sigma_max, rho) if sigmas is None else sigmas.double()
    n = len(sig) - 1
    x = _init(shape, x_T, g, device, float(sig[0]))
    for i in tqdm(range(n), desc="euler", disable=not progress):
        if guidance is not None:
            x = guidance(x, i, n)
        s, s_next = float(sig[i]), float(sig[i + 1])
        x0 = _denoise(denoise, x, _levels(s, x, x.dtype), denoised_hook, i, n)
        x = x + (s_next - s) * (x - x0) / s
    return x


def heun_sample(denoise: Callable, shape: Sequence[int], sigmas: Optional[torch.Tensor] = None, *,
                n_steps: int = 32, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                S_churn: float = 0.0, S_tmin: float = 0.0, S_tmax: float = float("inf"), S_noise: float = 1.0,
                seed: Optional[int] = None, generator: Optional[torch.Generator] = None, guidance: Hook = None,
                denoised_hook: Hook = None, device=None, x_T: Optional[torch.Tensor] = None,
                progress: bool = False) -> torch.Tensor:
    """EDM Algorithm 2 (stochastic Heun); ``denoise(x, sigma_float[b]) -> x0_hat``."""
    g = make_generator(seed, generator)
    sig = karras_sigmas(n_steps, sigma_min, sigma_max, rho) if sigmas is None else sigmas.double()
    n = len(sig) - 1
    x = _init(shape, x_T, g, device, float(sig[0]))
    for i in tqdm(range(n), desc="heun", disable=not progress):
        if guidance is not None:
            x = guidance(x, i, n)
        s, s_next = float(sig[i]), float(sig[i + 1])
        gamma = min(S_churn / n, math.sqrt(2) - 1) if S_tmin <= s <= S_tmax else 0.0
        s_hat = s * (1 + gamma)
        if gamma > 0:
            x = x + math.sqrt(s_hat**2 - s**2) * S_noise * randn(x.shape, g, like=x)
        x0 = _denoise(denoise, x, _levels(s_hat, x, x.dtype), denoised_hook, i, n)
        d = (x - x0) / s_hat
        x_next = x + (s_next - s_hat) * d
        if s_next > 0:
            x0_next = _denoise(denoise, x_next, _levels(s_next, x, x.dtype), denoised_hook, i, n)
            d_next = (x_next - x0_next) / s_next
            x_next = x + (s_next - s_hat) * (d + d_next) / 2
        x = x_next
    return x


SAMPLERS = {"ddpm": ddpm_sample, "ddim": ddim_sample, "euler": euler_sample, "heun": heun_sample}

__all__ = ["SAMPLERS", "ddpm_sample", "ddim_sample", "ddim_step", "euler_sample", "heun_sample",
           "discrete_timesteps", "make_generator", "randn", "expand_like"]
