"""ART·V generation: one frame at a time from text, an image, or both, with a prompt schedule for long videos.

Weng et al. 2023 ("ART·V"), Sec. 3: frame i is sampled by the masked diffusion model conditioned on frame i-1, the
anchor frame (the image prompt, or the first generated frame for text-only prompts) and the text; several prompts
compose one long video. Details here (not published): the EDM sampler of ``worldgen.diffusion.samplers`` (Heun or
Euler) on a Karras ladder; classifier-free guidance for text and image composed as in InstructPix2Pix
(``cfg_combine2``), with all guidance passes batched into one forward; the previous frame is noise-augmented at a
fixed level ``gen_aug_sigma`` when the model was trained with noise augmentation. ``reanchor`` makes the frame at
each prompt switch the new anchor (off by default: the anchor stays the first frame).
Latent-space models (``model.latent.autoencoder`` set): the image prompt is encoded once, every frame is sampled and
fed back as a latent (no decode/re-encode inside the loop), and the whole video is decoded to pixels at the end;
frame 0 of the output is then the image prompt itself, not its reconstruction. ``load_checkpoint`` returns the model;
``build_codec`` (``worldgen.artv.model``) loads its frozen autoencoder (the folder's own copy first).

The model math lives here (``FrameSampler``, ``rollout``, the prompt schedule); loading a checkpoint with its codec
and text encoder, the CLI ``worldgen generate artv`` and the demo go through ``worldgen.pipelines.artv``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from worldgen.artv.model import ARTV, ARTVConfig, FrameCodec, check_codec, make_cond, resize_frames
from worldgen.artv.text import CachedTextEncoder
from worldgen.data.video import to_float, to_uint8 as video_to_uint8
from worldgen.diffusion.guidance import cfg_combine, cfg_combine2
from worldgen.diffusion.samplers import euler_sample, heun_sample, make_generator, randn

log = logging.getLogger(__name__)


@dataclass
class GenerateOptions:
    frames: int = 16  # frames to generate (including the first / image frame)
    seed: int = 0  # seeds every noise draw
    sampler: str = "heun"  # heun | euler (EDM samplers)
    steps: int = 12  # sampler steps per frame
    sigma_min: float = 0.002  # Karras ladder
    sigma_max: float = 80.0
    rho: float = 7.0
    S_churn: float = 0.0  # Heun stochasticity (EDM Algorithm 2); 0 = deterministic
    cfg_text: float = 2.0  # text guidance scale (1 = no text guidance)
    cfg_image: float = 1.0  # image guidance scale (1 = no image guidance)
    gen_aug_sigma: float = 0.02  # noise level added to the previous frame (used only if the model has noise_aug)
    reanchor: bool = False  # at each prompt switch the current frame becomes the anchor
    anchor_every: int = 64  # the current frame becomes the anchor every N frames (0 = the first frame stays anchor);
    # 64 keeps generation inside the anchor distances training saw (1-79 frames on 80-frame episodes)


def check_options(opts: GenerateOptions) -> GenerateOptions:
    """``opts`` once every value is usable; else a ``ValueError`` naming the setting and what it must be."""
    if opts.frames < 1 or opts.steps < 1:
        raise ValueError(f"--frames and --steps must be >= 1, got {opts.frames} and {opts.steps}")
    if opts.anchor_every < 0:
        raise ValueError(f"--anchor-every must be >= 0 (0 = never re-anchor), got {opts.anchor_every}")
    if opts.sampler not in ("heun", "euler"):
        raise ValueError(f"--sampler must be heun or euler, got {opts.sampler!r}")
    floats = {"--cfg-text": opts.cfg_text, "--cfg-image": opts.cfg_image, "--churn": opts.S_churn,
              "--aug-sigma": opts.gen_aug_sigma, "sigma_min": opts.sigma_min, "sigma_max": opts.sigma_max,
              "rho": opts.rho}
    bad = [k for k, v in floats.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{', '.join(bad)}: expected finite numbers, got {[floats[k] for k in bad]}")
    negative = [k for k in ("--churn", "--aug-sigma") if floats[k] < 0]
    if negative:
        raise ValueError(f"{', '.join(negative)}: expected numbers >= 0, got {[floats[k] for k in negative]}")
    if not 0 < opts.sigma_min < opts.sigma_max or opts.rho <= 0:
        raise ValueError(f"need 0 < sigma_min < sigma_max and rho > 0, got {opts.sigma_min}, {opts.sigma_max}, "
                         f"{opts.rho}")
    return opts


def prompt_schedule(prompts: Sequence[str], switch_at: Sequence[int], n_frames: int) -> list[str]:
    """The prompt of each frame: prompts[k] from frame switch_at[k-1] on."""
    if not prompts:
        raise ValueError("at least one prompt is needed (an empty string means: no text)")
    if len(switch_at) != len(prompts) - 1:
        raise ValueError(f"{len(prompts)} prompts need {len(prompts) - 1} --switch-at frame indices, "
                         f"got {len(switch_at)}")
    if list(switch_at) != sorted(switch_at) or any(not 0 < s < n_frames for s in switch_at):
        raise ValueError(f"--switch-at must be increasing frame indices inside (0, {n_frames}), got {list(switch_at)}")
    out, k = [], 0
    for i in range(n_frames):
        while k < len(switch_at) and i >= switch_at[k]:
            k += 1
        out.append(prompts[k])
    return out


class FrameSampler:
    """Samples one frame for a batch given previous/anchor frames and text, with batched CFG passes."""

    def __init__(self, model: ARTV, opts: GenerateOptions, generator: torch.Generator):
        self.model, self.opts, self.g = model, opts, generator
        self.cfg: ARTVConfig = model.cfg

    def _conds(self, prev, anchor, tokens, mask, b, shape, dev) -> tuple[dict, list[str]]:
        o, has_img, has_txt = self.opts, prev is not None, tokens is not None
        aug = o.gen_aug_sigma if (self.cfg.noise_aug and has_img) else 0.0
        aug_s = torch.full((b,), aug, device=dev)
        noise = randn((b, *shape), self.g, device=dev) if aug > 0 else None
        passes = ["full"]
        if has_txt and o.cfg_text != 1.0:
            passes.append("no_text")
        if has_img and o.cfg_image != 1.0:
            passes.append("none")
        conds = []
        for p in passes:
            img = has_img and p != "none"
            txt = has_txt and p == "full"
            conds.append(make_cond(prev if img else None, anchor if img else None, tokens if txt else None,
                                   mask if txt else None, b=b, shape=shape, device=dev,
                                   aug_sigma=aug_s if img else None, aug_noise=noise if img else None))
        return _cat_conds(conds, b, self.cfg.max_text_tokens, self.cfg.text_dim), passes

    def __call__(self, prev, anchor, tokens, mask, b: int, shape, dev) -> torch.Tensor:
        cond, passes = self._conds(prev, anchor, tokens, mask, b, shape, dev)
        k, o = len(passes), self.opts

        def denoise(x, sigma):
            out, _ = self.model(x.repeat(k, 1, 1, 1), sigma.repeat(k), cond)
            parts = dict(zip(passes, out.chunk(k)))
            if k == 1:
                return parts["full"]
            if prev is None:
                return cfg_combine(parts["full"], parts["no_text"], o.cfg_text)
            img_only = parts.get("no_text", parts["full"])
            none = parts.get("none", img_only)
            return cfg_combine2(none, img_only, parts["full"], o.cfg_image, o.cfg_text if "no_text" in parts else 1.0)

        sampler = {"heun": heun_sample, "euler": euler_sample}[o.sampler]
        extra = {"S_churn": o.S_churn} if o.sampler == "heun" else {}
        x = sampler(denoise, (b, *shape), n_steps=o.steps, sigma_min=o.sigma_min, sigma_max=o.sigma_max,
                    rho=o.rho, generator=self.g, device=dev, **extra)
        return x if self.cfg.is_latent else x.clamp(-1, 1)  # latents are not bounded


def _cat_conds(conds: list[dict], b: int, n_tok: int, dim: int) -> dict:
    """Stack the per-pass condition dicts along the batch (absent text becomes zeros + text_drop=True)."""
    out = {}
    for key in conds[0]:
        vals = [c[key] for c in conds]
        if key in ("text", "text_mask"):
            dev = conds[0]["prev"].device
            fill = (lambda: torch.zeros(b, n_tok, dim, device=dev)) if key == "text" else \
                (lambda: torch.ones(b, n_tok, dtype=torch.bool, device=dev))
            vals = [v if v is not None else fill() for v in vals]
        out[key] = torch.cat(vals)
    return out


def rollout(model: ARTV, text_at: Callable[[int], tuple[Optional[torch.Tensor], Optional[torch.Tensor]]],
            n_frames: int, opts: GenerateOptions, first: Optional[torch.Tensor] = None, b: int = 1,
            progress: bool = True, anchor_at: Sequence[int] = (), codec: Optional[FrameCodec] = None) -> torch.Tensor:
    """Generate ``n_frames`` frames (b c t h w in [-1, 1]). ``first`` (b c h w) is the image prompt (frame 0) or None
    for text-only; ``text_at(i)`` gives frame i's (tokens, mask) or (None, None); ``anchor_at`` frames re-anchor.
    ``codec``: the frozen autoencoder of a latent-space model (see ``build_codec``); None for pixel models."""
    cfg, dev = model.cfg, next(model.parameters()).device
    if not cfg.references:
        raise ValueError("this checkpoint is a stage-1 image prior (model.references: false): it makes single "
                         "frames (`worldgen generate image`), not videos; train stage 2 from it (init_from)")
    codec = check_codec(cfg, codec).to(dev)
    shape = cfg.state_shape()
    g = make_generator(opts.seed)
    sample = FrameSampler(model, opts, g)
    model.eval()
    frames, first_px = [], None
    if first is not None:
        first_px = resize_frames(first.to(dev).float(), cfg.frame_size)
        frames.append(codec.encode(first_px))
        b = first.shape[0]
    with torch.no_grad():
        for i in tqdm(range(len(frames), n_frames), desc="artv frames", disable=not progress):
            tokens, mask = text_at(i)
            prev = frames[-1] if frames else None
            anchor = frames[_anchor_index(i, anchor_at, opts.anchor_every)] if frames else None
            frames.append(sample(prev, anchor, tokens, mask, b, shape, dev))
    video = codec.decode_video(torch.stack(frames, dim=2))
    if first_px is not None and codec.is_latent:
        video[:, :, 0] = first_px
    return video


def _anchor_index(i: int, anchor_at: Sequence[int], every: int = 0) -> int:
    """The anchor of frame i: the latest of frame 0, the re-anchor frames before i, and the multiples of ``every``
    before i."""
    starts = [0] + [a for a in anchor_at if a < i] + ([(i - 1) // every * every] if every > 0 else [])
    return max(starts)


def sample_images(model: ARTV, tokens: Optional[torch.Tensor], mask: Optional[torch.Tensor], n: int,
                  opts: GenerateOptions, codec: Optional[FrameCodec] = None, batch: int = 16,
                  progress: bool = False) -> torch.Tensor:
    """``n`` single frames (n c h w in [-1, 1]) without any reference frame: the stage-1 prior's samples (or an
    ART·V model's first frame). ``tokens`` (n, k, d) / ``mask`` (n, k) are the captions, None = unconditional."""
    dev = next(model.parameters()).device
    codec = check_codec(model.cfg, codec).to(dev)
    g = make_generator(opts.seed)
    sample, out = FrameSampler(model, opts, g), []
    model.eval()
    with torch.no_grad():
        for s in tqdm(range(0, n, batch), desc="images", disable=not progress):
            b = min(batch, n - s)
            t = tokens[s:s + b] if tokens is not None else None
            m = mask[s:s + b] if mask is not None else None
            out.append(codec.decode(sample(None, None, t, m, b, model.cfg.state_shape(), dev)))
    return torch.cat(out).clamp(-1, 1)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(b c t h w) in [-1, 1] -> uint8 (b t h w c) (``worldgen.data.video.to_uint8``)."""
    return video_to_uint8(video)


def from_uint8(img: np.ndarray) -> torch.Tensor:
    """uint8 (h w c) or (b h w c) -> float (b c h w) in [-1, 1] (``worldgen.data.video.to_float``)."""
    img = np.asarray(img)
    return to_float(img[None] if img.ndim == 3 else img, "b h w c -> b c h w")


def read_image(path: str | Path) -> np.ndarray:
    """An image prompt: a PNG/JPEG file, or the first frame of a video file; uint8 (h w 3)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--image {path}: no such file")
    from worldgen.data.video import is_video_name

    if is_video_name(path):
        from worldgen.data.video import read_video

        return read_video(path)[0]
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:
        raise ValueError(f"--image {path}: not a readable image ({e})") from None


def load_checkpoint(ckpt: str | Path, device: str = "cpu") -> tuple[ARTV, dict]:
    """An ART·V model from a training output folder (config.yaml + model.safetensors, through ``worldgen.ckpt``);
    returns (model, config dict). A latent-space model also needs ``build_codec(model.cfg, ckpt)``."""
    from worldgen import ckpt as C

    loaded = C.load(ckpt, ARTVConfig, ARTV, task="artv", device=device, what="ART-V")
    return loaded.module, loaded.raw


def load_for_sampling(ckpt: str | Path, device: str = "cpu") -> tuple[ARTV, FrameCodec, CachedTextEncoder, dict]:
    """Everything a folder needs to sample: the model, its frame codec (identity, or the frozen autoencoder of a
    latent-space model) and its cached text encoder; plus the raw config dict."""
    from worldgen.artv.model import build_codec
    from worldgen.artv.text import build_text_encoder

    model, raw = load_checkpoint(ckpt, device)
    c = model.cfg
    encoder = CachedTextEncoder(build_text_encoder(c.text_encoder, c.text_dim, device), c.max_text_tokens)
    return model, build_codec(c, ckpt, device), encoder, raw


def prior_images(model: ARTV, encoder: CachedTextEncoder, codec: Optional[FrameCodec], captions: Sequence[str],
                 opts: GenerateOptions, progress: bool = False) -> np.ndarray:
    """One image per caption from a stage-1 prior (uint8 ``b h w c``); all captions empty = unconditional."""
    if model.cfg.references:
        raise ValueError("this checkpoint is an ART-V frame generator (model.references: true), not a stage-1 "
                         "prior - use `worldgen generate artv` for videos")
    tokens = mask = None
    if any(captions):
        if not all(captions):
            raise ValueError("mix of empty and non-empty prompts: give captions for every row or none")
        tokens, mask = encoder(list(captions), device=next(model.parameters()).device)
    imgs = sample_images(model, tokens, mask, len(captions), opts, codec, progress=progress)
    return to_uint8(imgs[:, :, None])[:, 0]


def text_schedule_fn(encoder: CachedTextEncoder, schedule: Sequence[str], b: int, device) -> Callable:
    def text_at(i: int):
        p = schedule[i]
        if not p:
            return None, None
        tokens, mask = encoder([p] * b, device=device)
        return tokens, mask
    return text_at


__all__ = ["GenerateOptions", "check_options", "prompt_schedule", "FrameSampler", "rollout", "sample_images",
           "load_checkpoint", "load_for_sampling", "prior_images", "text_schedule_fn",
           "to_uint8", "from_uint8", "read_image"]
