"""Training objectives for discrete (DDPM-style) schedules: epsilon, v and x0 prediction.

- epsilon prediction: Ho et al. 2020, Eq. 14 (L_simple = |eps - eps_theta(x_t, t)|^2).
- v prediction: Salimans & Ho 2022 ("Progressive Distillation"), v = sqrt(abar) eps - sqrt(1 - abar) x0.
- x0 prediction: the network outputs the clean sample directly.
Conversions between the three parameterisations let any of them drive the x0-based samplers in ``samplers.py``:
``x0_denoiser(model, alpha_bars, prediction)`` returns ``denoise(x_t, t) -> x0_hat``.

The network is called ``model(x_t, t, cond)`` with integer timesteps ``t`` of shape (b,), 0-based (t = 0 least
noisy). Losses are plain means over elements (no SNR weighting); the `logs` dict carries the x0-space error too.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from worldgen.diffusion.schedules import expand_like

PREDICTIONS = ("eps", "v", "x0")


def _check(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"unknown prediction '{prediction}'; valid: {', '.join(PREDICTIONS)}")


def _coefs(t: torch.Tensor, alpha_bars: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ab = expand_like(alpha_bars.to(like.device)[t].to(like.dtype), like)
    return ab.sqrt(), (1 - ab).sqrt()


def target_for(prediction: str, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
               alpha_bars: torch.Tensor) -> torch.Tensor:
    """What the network should output for ``prediction``."""
    _check(prediction)
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    a, s = _coefs(t, alpha_bars, x0)
    return a * noise - s * x0


def pred_to_x0(pred: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, alpha_bars: torch.Tensor,
               prediction: str) -> torch.Tensor:
    _check(prediction)
    a, s = _coefs(t, alpha_bars, x_t)
    if prediction == "x0":
        return pred
    if prediction == "eps":
        return (x_t - s * pred) / a
    return a * x_t - s * pred


def x0_to_eps(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, alpha_bars: torch.Tensor) -> torch.Tensor:
    a, s = _coefs(t, alpha_bars, x_t)
    return (x_t - a * x0) / s


def diffusion_loss(model: Callable, x0: torch.Tensor, cond: Any, alpha_bars: torch.Tensor, prediction: str = "eps",
                   generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
    """Uniform-t denoising loss for ``prediction`` in {eps, v, x0}; returns (loss, logs)."""
    _check(prediction)
    b, n = x0.shape[0], alpha_bars.shape[0]
    t = torch.randint(0, n, (b,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    a, s = _coefs(t, alpha_bars, x0)
    x_t = a * x0 + s * noise
    pred = model(x_t, t, cond)
    loss = (pred - target_for(prediction, x0, noise, t, alpha_bars)).pow(2).mean()
    with torch.no_grad():
        mse_x0 = (pred_to_x0(pred, x_t, t, alpha_bars, prediction) - x0).pow(2).mean()
    return loss, {"loss": loss.detach(), "mse_x0": mse_x0}


def x0_denoiser(model: Callable, alpha_bars: torch.Tensor, prediction: str, cond: Any = None) -> Callable:
    """``denoise(x_t, t) -> x0_hat`` for the DDPM/DDIM samplers from a model of any parameterisation."""
    _check(prediction)

    def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return pred_to_x0(model(x_t, t, cond), x_t, t, alpha_bars, prediction)
    return denoise


__all__ = ["PREDICTIONS", "target_for", "pred_to_x0", "x0_to_eps", "diffusion_loss", "x0_denoiser"]
