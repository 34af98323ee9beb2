"""Diffusion core: schedules, objectives (eps/v/x0, EDM), samplers (DDPM, DDIM, Euler, stochastic Heun), guidance.

Imports nothing from model packages; a denoiser meets a sampler only through ``denoise(x, sigma_or_t) -> x0_hat``.
"""
from worldgen.diffusion.edm import EDMConfig, EDMPrecond, edm_coeffs, edm_loss, edm_weight
from worldgen.diffusion.guidance import cfg_combine, cfg_combine2, cfg_denoiser, drop_condition
from worldgen.diffusion.objectives import diffusion_loss, pred_to_x0, x0_denoiser
from worldgen.diffusion.samplers import SAMPLERS, ddim_sample, ddpm_sample, euler_sample, heun_sample
from worldgen.diffusion.schedules import karras_sigmas, make_alpha_bars, q_sample

__all__ = [
    "EDMConfig", "EDMPrecond", "edm_coeffs", "edm_loss", "edm_weight", "cfg_combine", "cfg_combine2",
    "cfg_denoiser", "drop_condition", "diffusion_loss", "pred_to_x0", "x0_denoiser", "SAMPLERS", "ddim_sample",
    "ddpm_sample", "euler_sample", "heun_sample", "karras_sigmas", "make_alpha_bars", "q_sample",
]
