"""Policy-guided diffusion (Jackson et al., 2024, "Policy-Guided Diffusion", arXiv 2404.06356).

A diffusion model over whole trajectory windows generates synthetic offline-RL data; at sampling time the action
channels are pushed up the gradient of a *target* policy's log-likelihood, so the synthetic trajectories follow the
behaviour distribution's dynamics while their actions move toward the target policy (Sec. 4).

Data (Sec. 5 / App. B): each step is ``[obs, arctanh(clip(action, +-0.999)), reward, done]``; every dimension is
z-scored over the training windows; windows of ``horizon`` steps with stride ``stride`` never cross episodes; the
trained length is the sampled length. Decoding: action = tanh, done = (value > 0.5), next observation = next row.

Model: EDM (Karras et al., 2022) with sigma_data = 1, ``ln sigma ~ N(-1.2, 1.2^2)``, the 1D temporal U-Net of
``worldgen.rl.unet1d``, stochastic Heun sampling (S_churn 80, S_tmin 0.05, S_tmax 50, S_noise 1.003, sigma in
[0.002, 80], rho 7), EMA 0.995 of the weights for sampling. The diffusion core (preconditioning, loss, sampler) is
``worldgen.diffusion``; this file adds only the trajectory representation and the policy guidance.

Guidance (Eq. 6-7 and App. B): before sampler step ``i`` of ``N``,

    a <- a + lambda_i * g / (||g|| + 1e-8),    g = grad_a sum_t log pi(tanh(unnorm(a_t)) | unnorm(s_t)),
    lambda_i = coeff * ((1 - i/N) + 0.3 sin(pi (i+1)/N)),   lambda_{N-1} = 0,

where the gradient is taken with respect to the (normalised, pre-tanh) ACTION channels only -- states are inputs -- and
``||g||`` is the norm over one whole trajectory window. A deterministic actor is treated as ``N(mu(s), I)`` (the
"deterministic surrogate"; a stochastic actor can use it too via ``surrogate="deterministic"``). Optionally the
gradient is evaluated on the denoised estimate ``D(x; sigma_i)`` instead of the noisy sample (and still applied to the
noisy sample), as in the paper's code.

Deliberate deviations from the reference code: the gradient normalisation is ``g / (||g|| + eps)`` (the reference
computes ``g / ||g|| + eps``, which adds eps to every element); episodes that terminate before ``horizon`` steps are
padded with their final (absorbing) row instead of being dropped, so short-episode datasets (e.g. Hopper random) still
train; every window keeps its episode's final observation as an extra row, so decoded windows contain the terminal
transitions. Each decoded window is written as one episode: it ends at its first ``done`` (terminal) or otherwise with
a timeout flag on its last transition.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from einops import rearrange
from torch import nn
from tqdm.auto import tqdm

from worldgen.data.offline_rl import OfflineDataset, make_dataset
from worldgen.diffusion.edm import EDMConfig, EDMPrecond, edm_loss
from worldgen.diffusion.samplers import heun_sample, make_generator
from worldgen.diffusion.schedules import karras_sigmas
from worldgen.rl.unet1d import UNet1D, UNet1DConfig

ACTION_CLIP = 0.999  # actions are clipped to +-0.999 before arctanh (PGD App. B)


# ------------------------------------------------------------------------------------------------------- configs
@dataclass
class SamplerConfig:
    n_steps: int = 256  # Heun steps (PGD code default 256)
    sigma_min: float = 0.002  # smallest noise level
    sigma_max: float = 80.0  # largest noise level
    rho: float = 7.0  # Karras ladder curvature
    S_churn: float = 80.0  # stochasticity (EDM Alg. 2)
    S_tmin: float = 0.05  # churn only for sigma in [S_tmin, S_tmax]
    S_tmax: float = 50.0
    S_noise: float = 1.003  # noise inflation of the churn step


@dataclass
class GuidanceConfig:
    coeff: float = 0.0  # lambda, the guidance strength (0 = unguided)
    cosine_coeff: float = 0.3  # weight of the sin(pi (i+1)/N) bump in the schedule
    normalize: bool = True  # divide each window's gradient by its norm
    denoised: bool = False  # evaluate the gradient on the denoised estimate D(x; sigma_i)
    surrogate: str = "none"  # none | deterministic: score a stochastic actor as N(mode(s), I)
    delay_steps: int = 0  # first sampler steps without guidance (paper: 0)


@dataclass
class PGDModelConfig:
    horizon: int = 32  # steps per window, trained = sampled (PGD: 32)
    stride: int = 8  # window stride over each episode (PGD: 8)
    unet: UNet1DConfig = field(default_factory=UNet1DConfig)
    edm: EDMConfig = field(default_factory=lambda: EDMConfig(sigma_data=1.0))
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    ema_decay: float = 0.995  # EMA of the denoiser weights used for sampling
    ema_every: int = 10  # optimizer steps between EMA updates (PGD code)


# ------------------------------------------------------------------------------------------------ representation
def episode_rows(ep: dict[str, np.ndarray]) -> np.ndarray:
    """One episode (T transitions) -> (T+1, D) raw rows ``[obs, arctanh(a), r, done]``; row T holds the final
    observation with a zero action, zero reward and done = whether the episode terminated."""
    act = np.arctanh(np.clip(ep["actions"], -ACTION_CLIP, ACTION_CLIP))
    term = ep["terminals"].astype(np.float32)[:, None]
    rows = np.concatenate([ep["observations"], act, ep["rewards"][:, None], term], axis=1)
    last = np.concatenate([ep["next_observations"][-1], np.zeros(act.shape[1] + 1), [term[-1, 0]]])
    return np.concatenate([rows, last[None]], axis=0).astype(np.float32)


def _starts(n_rows: int, horizon: int, stride: int) -> list[int]:
    starts = list(range(0, n_rows - horizon + 1, stride))
    if starts and starts[-1] != n_rows - horizon:
        starts.append(n_rows - horizon)  # always keep the window that ends on the episode's last row
    return starts


def make_windows(ds: OfflineDataset, horizon: int, stride: int) -> np.ndarray:
    """(n, horizon, D) raw windows that never cross an episode boundary.

    Terminated episodes shorter than ``horizon`` are padded with their final (absorbing, done = 1) row; other short
    episodes (time-outs, the buffer's unfinished last episode) are skipped.
    """
    if horizon < 2:
        raise ValueError(f"horizon must be >= 2 (a transition needs two rows), got {horizon}")
    out = []
    for ep in ds.episodes():
        rows = episode_rows(ep)
        if len(rows) < horizon:
            if not ep["terminals"][-1]:
                continue
            rows = np.concatenate([rows, np.repeat(rows[-1:], horizon - len(rows), axis=0)])
        out.extend(rows[s:s + horizon] for s in _starts(len(rows), horizon, stride))
    if not out:
        raise ValueError(f"no episode yields a window of {horizon} steps; lower the horizon")
    return np.stack(out)


@dataclass
class Normalizer:
    """Per-dimension z-scoring; constant dimensions get std 1 (PGD code)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, windows: np.ndarray) -> "Normalizer":
        flat = windows.reshape(-1, windows.shape[-1]).astype(np.float64)
        std = flat.std(0)
        return cls(flat.mean(0).astype(np.float32), np.where(std < 1e-8, 1.0, std).astype(np.float32))

    def normalize(self, x):
        return (x - self.mean) / self.std

    def denormalize(self, x):
        return x * self.std + self.mean


def decode_windows(raw: np.ndarray, obs_dim: int, act_dim: int, metadata: dict | None = None) -> OfflineDataset:
    """Raw (denormalised) windows (n, H, D) -> transitions in D4RL layout, one episode per window."""
    o, a = obs_dim, act_dim
    eps = []
    for w in raw:
        done = w[:-1, o + a + 1] > 0.5
        t_end = int(np.argmax(done)) + 1 if done.any() else len(w) - 1
        term = done[:t_end].copy()
        tout = np.zeros(t_end, bool)
        tout[-1] = not term[-1]
        eps.append({
            "observations": w[:t_end, :o], "actions": np.tanh(w[:t_end, o:o + a]),
            "rewards": w[:t_end, o + a], "next_observations": w[1:t_end + 1, :o],
            "terminals": term, "timeouts": tout,
        })
    cat = {k: np.concatenate([e[k] for e in eps]) for k in eps[0]}
    return make_dataset(**cat, metadata=metadata)


# ------------------------------------------------------------------------------------------------------ guidance
def guidance_weight(i: int, n_steps: int, coeff: float, cosine_coeff: float = 0.3, delay_steps: int = 0) -> float:
    """lambda_i = coeff ((1 - i/N) + cosine_coeff sin(pi (i+1)/N)); 0 on the last step and during the delay."""
    if coeff == 0.0 or i >= n_steps - 1 or i < delay_steps:
        return 0.0
    return coeff * ((1.0 - i / n_steps) + cosine_coeff * math.sin(math.pi * (i + 1) / n_steps))


class GaussianSurrogate(nn.Module):
    """Score a policy as ``N(mode(s), I)`` over squashed actions (PGD's deterministic-actor treatment)."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.policy(obs, deterministic=True, need_log_prob=False) if hasattr(self.policy, "dist") \
            else self.policy(obs)
        return out[0] if isinstance(out, tuple) else out

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        diff = action - self.mode(obs)
        return -0.5 * diff.pow(2).sum(-1) - 0.5 * action.shape[-1] * math.log(2 * math.pi)


# ----------------------------------------------------------------------------------------------------- the model
class TrajectoryDiffusion(nn.Module):
    """EDM trajectory model: U-Net denoiser + its EMA + the normaliser (buffers, so they travel with the weights)."""

    def __init__(self, cfg: PGDModelConfig, obs_dim: int, act_dim: int, normalizer: Optional[Normalizer] = None):
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim = cfg, obs_dim, act_dim
        self.channels = obs_dim + act_dim + 2
        unet_cfg = copy.deepcopy(cfg.unet)
        unet_cfg.channels = self.channels
        self.denoiser = EDMPrecond(UNet1D(unet_cfg), sigma_data=cfg.edm.sigma_data)
        self.ema = copy.deepcopy(self.denoiser).requires_grad_(False)
        norm = normalizer or Normalizer(np.zeros(self.channels, np.float32), np.ones(self.channels, np.float32))
        self.register_buffer("norm_mean", torch.as_tensor(norm.mean, dtype=torch.float32))
        self.register_buffer("norm_std", torch.as_tensor(norm.std, dtype=torch.float32))

    @property
    def act_slice(self) -> slice:
        return slice(self.obs_dim, self.obs_dim + self.act_dim)

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer(self.norm_mean.cpu().numpy(), self.norm_std.cpu().numpy())

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.norm_std + self.norm_mean

    def loss(self, x0: torch.Tensor, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, dict]:
        """EDM loss on normalised windows ``b t c``."""
        return edm_loss(self.denoiser, x0, None, self.cfg.edm, generator)

    @torch.no_grad()
    def update_ema(self, decay: Optional[float] = None) -> None:
        d = self.cfg.ema_decay if decay is None else decay
        for p_ema, p in zip(self.ema.parameters(), self.denoiser.parameters()):
            p_ema.lerp_(p, 1 - d)

    def sigmas(self) -> torch.Tensor:
        s = self.cfg.sampler
        return karras_sigmas(s.n_steps, s.sigma_min, s.sigma_max, s.rho)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, use_ema: bool = True) -> torch.Tensor:
        return (self.ema if use_ema else self.denoiser)(x, sigma)

    def action_grad(self, policy: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """grad of sum log pi(tanh(unnorm(a)) | unnorm(s)) w.r.t. the normalised action channels of ``x`` (b t a)."""
        sl = self.act_slice
        with torch.enable_grad():
            a = x[..., sl].detach().requires_grad_(True)
            raw = self.denormalize(torch.cat([x[..., :sl.start].detach(), a, x[..., sl.stop:].detach()], -1))
            obs = rearrange(raw[..., :self.obs_dim], "b t d -> (b t) d")
            act = rearrange(torch.tanh(raw[..., sl]), "b t d -> (b t) d")
            lp = policy.log_prob(obs, act).sum()
            (g,) = torch.autograd.grad(lp, a)
        return g

    def guidance_hook(self, policy: nn.Module, gcfg: GuidanceConfig, sigmas: torch.Tensor,
                      use_ema: bool = True) -> Callable[[torch.Tensor, int, int], torch.Tensor]:
        """The sampler's ``guidance(x, i, n_steps)`` hook for ``policy`` (see the module docstring)."""
        scorer = GaussianSurrogate(policy) if gcfg.surrogate == "deterministic" else policy
        if gcfg.surrogate not in ("none", "deterministic"):
            raise ValueError(f"guidance.surrogate must be none or deterministic, got '{gcfg.surrogate}'")

        def hook(x: torch.Tensor, i: int, n: int) -> torch.Tensor:
            lam = guidance_weight(i, n, gcfg.coeff, gcfg.cosine_coeff, gcfg.delay_steps)
            if lam == 0.0:
                return x
            ref = x
            if gcfg.denoised:
                with torch.no_grad():
                    ref = self.denoise(x, torch.full((x.shape[0],), float(sigmas[i]), device=x.device), use_ema)
            g = self.action_grad(scorer, ref)
            if gcfg.normalize:
                g = g / (g.flatten(1).norm(dim=1)[:, None, None] + 1e-8)
            out = x.clone()
            out[..., self.act_slice] += lam * g
            return out
        return hook

    @torch.no_grad()
    def sample(self, n: int, policy: Optional[nn.Module] = None, guidance: Optional[GuidanceConfig] = None,
               seed: int = 0, batch_size: int = 256, use_ema: bool = True, progress: bool = False) -> torch.Tensor:
        """``n`` normalised windows (n, horizon, channels), guided by ``policy`` when given with coeff != 0."""
        gcfg = guidance or GuidanceConfig()
        s = self.cfg.sampler
        sig = self.sigmas()
        device = self.norm_mean.device
        gen = make_generator(seed)
        hook = self.guidance_hook(policy, gcfg, sig, use_ema) if policy is not None and gcfg.coeff != 0 else None
        out = []
        for start in tqdm(range(0, n, batch_size), desc="pgd sample", disable=not progress):
            b = min(batch_size, n - start)
            out.append(heun_sample(
                lambda x, sigma: self.denoise(x, sigma, use_ema), (b, self.cfg.horizon, self.channels), sig,
                S_churn=s.S_churn, S_tmin=s.S_tmin, S_tmax=s.S_tmax, S_noise=s.S_noise, generator=gen,
                guidance=hook, device=device))
        return torch.cat(out)

    def to_dataset(self, x: torch.Tensor, metadata: dict | None = None) -> OfflineDataset:
        raw = self.denormalize(x).detach().cpu().numpy()
        return decode_windows(raw, self.obs_dim, self.act_dim, metadata)


def load_trajectory_model(ckpt_dir, device: str = "cpu") -> tuple[TrajectoryDiffusion, dict]:
    """Rebuild a trained model from a ``worldgen pgd train`` out_dir (``pgd.json`` + ``model.safetensors``) through
    ``worldgen.ckpt``; returns (model, pgd.json as a dict: model config, obs/act sizes, normaliser)."""
    from worldgen import ckpt

    d = ckpt.check_folder(ckpt_dir, ("pgd.json", ckpt.WEIGHTS), "`worldgen pgd train` out_dir")
    if "model" not in ckpt.read_raw(d / "pgd.json"):
        raise ckpt.CheckpointError(f"{d / 'pgd.json'}: no 'model' section (written by an older worldgen?)")
    cfg, info = ckpt.read_config(d / "pgd.json", PGDModelConfig)
    model = TrajectoryDiffusion(cfg, int(info["obs_dim"]), int(info["act_dim"]))
    return ckpt.load_state(model, d / ckpt.WEIGHTS).to(device).eval(), info


def mean_log_likelihood(policy: nn.Module, ds: OfflineDataset, surrogate: str = "none", device="cpu") -> float:
    """Mean ``log pi(a|s)`` of a dataset's actions under ``policy`` (the PGD likelihood diagnostic)."""
    scorer = GaussianSurrogate(policy) if surrogate == "deterministic" else policy
    obs = torch.as_tensor(ds.observations, device=device)
    act = torch.as_tensor(np.clip(ds.actions, -ACTION_CLIP, ACTION_CLIP), device=device)
    with torch.no_grad():
        return float(scorer.log_prob(obs, act).mean())


__all__ = [
    "SamplerConfig", "GuidanceConfig", "PGDModelConfig", "episode_rows", "make_windows", "Normalizer",
    "decode_windows", "guidance_weight", "GaussianSurrogate", "TrajectoryDiffusion", "mean_log_likelihood",
    "load_trajectory_model",
    "ACTION_CLIP",
]
