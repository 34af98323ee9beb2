"""EDM preconditioning and training loss (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
Generative Models"), Table 1 and Eq. 7-8.

    D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma))
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)      c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)
    c_in   = 1 / sqrt(sigma^2 + sigma_data^2)             c_noise = ln(sigma) / 4
    loss   = E[ lambda(sigma) |D(x0 + sigma n; sigma) - x0|^2 ],
    lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2,
    ln sigma ~ N(P_mean, P_std^2).

The raw network is called ``net(x_in, c_noise, cond)``; ``c_noise`` is a (b,) vector. A network may also return
``(F, aux)``: then ``EDMPrecond`` returns ``(D, aux)``, passing ``aux`` (side outputs that are not part of the clean
estimate, e.g. ART·V's mask logits) through untouched. A denoiser that returns ``(x0_hat, aux)`` works with
``edm_loss`` too; ``aux_logs(aux, cond)`` then adds its entries to the logs. Deviation: the loss is the mean over
elements (not the sum), which only rescales the learning rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from worldgen.diffusion.schedules import expand_like


@dataclass
class EDMConfig:
    sigma_min: float = 0.002  # smallest sampling noise level
    sigma_max: float = 80.0  # largest sampling noise level
    sigma_data: float = 0.5  # std of the data (0.5 for images in [-1, 1]; PGD uses 1.0 for z-scored data)
    rho: float = 7.0  # Karras ladder curvature (Eq. 5)
    P_mean: float = -1.2  # mean of ln(sigma) in training
    P_std: float = 1.2  # std of ln(sigma) in training


def edm_coeffs(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in, c_noise) for noise levels ``sigma`` (any shape; float)."""
    s2, d2 = sigma**2, sigma_data**2
    c_skip = d2 / (s2 + d2)
    c_out = sigma * sigma_data / (s2 + d2).sqrt()
    c_in = 1 / (s2 + d2).sqrt()
    c_noise = sigma.log() / 4
    return c_skip, c_out, c_in, c_noise


def edm_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM loss weighting lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (= 1 / c_out^2)."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


class EDMPrecond(nn.Module):
    """Wrap a raw network ``net(x_in, c_noise, cond)`` into the denoiser ``D(x, sigma, cond) -> x0_hat``
    (or ``(x0_hat, aux)`` when the network returns ``(F, aux)``)."""

    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, cond: Any = None):
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = edm_coeffs(sigma.float(), self.sigma_data)
        out = self.net(expand_like(c_in, x) * x, c_noise.to(x.dtype), cond)
        f, aux = out if isinstance(out, tuple) else (out, None)
        denoised = expand_like(c_skip, x) * x + expand_like(c_out, x) * f
        return (denoised, aux) if isinstance(out, tuple) else denoised


def sample_training_sigma(n: int, cfg: EDMConfig, device=None,
                          generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """ln sigma ~ N(P_mean, P_std^2), drawn on the CPU generator for device-independent reproducibility."""
    z = torch.randn(n, generator=generator)
    return (cfg.P_mean + cfg.P_std * z).exp().to(device)


def edm_loss(precond: Callable, x0: torch.Tensor, cond: Any, cfg: EDMConfig,
             generator: Optional[torch.Generator] = None,
             aux_logs: Optional[Callable[[Any, Any], dict]] = None) -> tuple[torch.Tensor, dict]:
    """EDM training loss for one batch ``x0`` (b, ...); returns (loss, logs).

    Draws sigma (b,) and then the noise (x0's shape) from ``generator``, in that order. ``precond`` returns
    ``x0_hat`` or ``(x0_hat, aux)``; ``aux_logs(aux, cond)`` (optional) returns extra detached scalars to log."""
    b = x0.shape[0]
    sigma = sample_training_sigma(b, cfg, x0.device, generator)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    x_noisy = x0 + expand_like(sigma, x0) * noise
    out = precond(x_noisy, sigma, cond)
    denoised, aux = out if isinstance(out, tuple) else (out, None)
    per_sample = (denoised - x0).pow(2).flatten(1).mean(1)
    loss = (edm_weight(sigma, cfg.sigma_data).to(x0) * per_sample).mean()
    logs = {"loss": loss.detach(), "mse_x0": per_sample.mean().detach()}
    if aux_logs is not None:
        logs.update(aux_logs(aux, cond))
    return loss, logs


__all__ = ["EDMConfig", "EDMPrecond", "edm_coeffs", "edm_weight", "edm_loss", "sample_training_sigma"]
