"""ART·V frame denoiser: a masked diffusion model that generates the next frame from the previous and anchor frames.

Paper: Weng et al. 2023, "ART·V: Auto-Regressive Text-to-Video Generation with Diffusion Models" (arXiv 2311.18834).
Confirmed there: one frame at a time from an image diffusion model with minimal changes, conditioned on the previous
frame; a masked diffusion model that learns which information to draw from the reference image; anchor (first)
frame conditioning; text, image or both as prompts. The exact injection and mask formula are not published; this is
worldgen's documented reconstruction (shared/REFERENCES.md):

- The noisy frame, the previous frame and the anchor frame are concatenated as input channels; the weights of the
  extra (reference) channels of the first convolution are zero-initialised, so the network starts as a plain image
  denoiser ("minimal changes").
- EDM preconditioning (Karras et al. 2022, Table 1): D = c_skip x + c_out F(c_in x, c_noise), done by
  ``worldgen.diffusion.EDMPrecond`` around the raw network ``ARTVNet``; training draws sigma and the noise in the
  shared ``worldgen.diffusion.edm_loss`` (EDM weighting). The network never sees sigma or a schedule, only
  (c_in x, c_noise, cond).
- The network also outputs a mask logit map; with m = sigmoid(logit) the clean-frame estimate is
      x0_hat = m * x_ref + (1 - m) * D,     x_ref = the (clean) previous frame.
  Without a reference (first frame / image condition dropped) m = 0.
  Where the blend lives (a decision): it is ART·V's output parametrisation, applied by ``ARTV`` as a wrapper *over*
  the preconditioned denoiser, not inside the network's raw output. It must see D after c_skip/c_out (the reference
  is copied as a clean estimate, not scaled by c_out), so the mask logit leaves ``ARTVNet`` as a side output that
  ``EDMPrecond`` passes through untouched (``(F, {"mask_logit": ...})``). Weights live under ``denoiser.net.``;
  checkpoints written before this split (top-level ``unet.*`` etc.) are renamed on load.
- The previous frame is noise-augmented in training, x_prev_in = x_prev + s_aug n with s_aug ~ U(0, aug_sigma_max),
  and s_aug is embedded and added to the conditioning embedding (GameNGen, DIAMOND; "noise augmentation"); at
  generation a fixed small level (``gen_aug_sigma``) is used. The anchor is not augmented (it is a fixed prompt).
- Text: token embeddings of a frozen sentence encoder through cross-attention, their masked mean added to the
  conditioning embedding; a learned null text for classifier-free guidance. A learned "has reference" embedding
  tells the network whether the image condition is present (dropped for the first frame and for image CFG).
Switches ``use_mask``, ``use_anchor`` and ``noise_aug`` turn each of the three ideas off for the drift ablation.

Two stages, as the paper builds it (issue 15). No pretrained image model can be downloaded here, so stage 1 trains
one: ``references: false`` is a plain text-conditioned image denoiser (no reference channels, no mask, no "has
reference" or augmentation embedding), trained on single captioned frames. Stage 2 (``init_from_prior``) copies all
of it and adds exactly the paper's minimal changes - zero-initialised reference input channels, zero-initialised
mask output channels, zero-initialised new embeddings - so that without a reference it computes the prior exactly.
``patch: 2`` (space-to-depth, as in Hoogeboom et al. 2023, "simple diffusion") lets the U-Net run at half
resolution on 4x the channels: a lossless reshape (unlike the tiny autoencoder, it keeps 1-px lane lines) that made
64x128 frames cost what 32x64 frames did; the mask is predicted per pixel (p^2 mask channels per patch).

Pixel or latent space. By default (``latent.autoencoder: ""``) the denoiser works on pixels (a deviation at the tiny
scale: the paper works in Stable Diffusion's latent space). With ``latent.autoencoder: DIR`` (a ``frame_ae`` training
output folder, ``worldgen.artv.autoencoder``) it works in that frozen per-frame autoencoder's normalised latent space,
as the paper does: training encodes the target, previous and anchor frames (posterior mean, ``(mu - shift) * scale``),
the U-Net runs on (latent.channels, h/f, w/f) tensors, and generation keeps the whole autoregressive loop in latent
space and decodes frames to pixels at the end (``FrameCodec``). Consequently the mask blend
``x0_hat = m * z_prev + (1 - m) * D`` happens in latent space, with a mask map at latent resolution: m = 1 copies
the previous frame's latent, not its pixels. ``sigma_data`` should then be the latents' std (1.0 after calibration).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from worldgen.diffusion.edm import EDMConfig, EDMPrecond, edm_loss
from worldgen.diffusion.schedules import expand_like
from worldgen.nn.embeddings import ScalarEmbedding
from worldgen.nn.unet import UNet, UNetConfig


@dataclass
class LatentConfig:
    autoencoder: str = ""  # frame_ae training output folder (config.yaml + model.safetensors); "" = pixel space
    channels: int = 4  # latent channels of that autoencoder (checked when it is loaded)
    factor: int = 8  # its spatial downsampling factor (checked when it is loaded)


@dataclass
class ARTVConfig:
    frame_size: list = field(default_factory=lambda: [64, 128])  # (h, w) pixel frames; frames are resized to it
    channels: int = 3  # image channels
    latent: LatentConfig = field(default_factory=LatentConfig)  # optional frozen frame-autoencoder latent space
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(context_dim=384))  # denoiser backbone
    text_encoder: str = "minilm"  # minilm (packaged offline MiniLM-L6) | hash (tests) | st:/path/to/local/model
    text_dim: int = 384  # width of the text encoder's token embeddings (MiniLM-L6: 384)
    max_text_tokens: int = 32  # text tokens kept per caption (padded / truncated)
    use_mask: bool = True  # masked diffusion: blend the previous frame in with a predicted mask
    use_anchor: bool = True  # condition on the anchor (first) frame too
    noise_aug: bool = True  # noise-augment reference frames in training and embed the level
    aug_sigma_max: float = 0.7  # training augmentation levels s_aug ~ U(0, aug_sigma_max) (GameNGen: 0.7)
    sigma_data: float = 0.5  # EDM sigma_data for frames in [-1, 1]
    mask_bias_init: float = 0.0  # initial mask logit (0 -> m = 0.5)
    references: bool = True  # false = the stage-1 image prior: no reference channels, no mask, no augmentation
    patch: int = 1  # space-to-depth factor: the U-Net runs at (h/patch, w/patch) on c*patch^2 channels (lossless)

    @property
    def is_latent(self) -> bool:
        return bool(self.latent.autoencoder)

    def state_shape(self) -> tuple[int, int, int]:
        """(c, h, w) of the tensors the denoiser sees: the pixel frame, or its latent."""
        h, w = (int(s) for s in self.frame_size)
        if not self.is_latent:
            return self.channels, h, w
        f = self.latent.factor
        if h % f or w % f:
            raise ValueError(f"model.frame_size {[h, w]} must be divisible by model.latent.factor={f}")
        return self.latent.channels, h // f, w // f

    @property
    def n_refs(self) -> int:
        """Reference frames entering as input channels: previous (+ anchor); 0 for the image prior."""
        return (2 if self.use_anchor else 1) if self.references else 0

    @property
    def has_mask(self) -> bool:
        return self.references and self.use_mask

    @property
    def has_aug(self) -> bool:
        return self.references and self.noise_aug


class ARTVNet(nn.Module):
    """The raw network ``F(c_in x, c_noise, cond)``: the U-Net on [noisy, previous, anchor] channels with noise, aug,
    has-reference and text embeddings. Returns ``F`` (b c h w), or ``(F, {"mask_logit": b 1 h w})`` with the mask head.
    It never sees sigma itself: ``EDMPrecond`` scales its input and hands it ``c_noise = ln(sigma) / 4``."""

    def __init__(self, cfg: ARTVConfig):
        super().__init__()
        self.cfg = cfg
        c, h, w = cfg.state_shape()
        p, d = int(cfg.patch), cfg.unet.emb_dim
        if p < 1 or h % p or w % p:
            raise ValueError(f"model.patch={cfg.patch} must be >= 1 and divide the state size {(h, w)}")
        self.state_channels, self.pc = c, c * p * p
        ucfg = UNetConfig(**{**vars(cfg.unet), "in_channels": self.pc * (1 + cfg.n_refs),
                             "out_channels": self.pc + p * p * int(cfg.has_mask), "context_dim": cfg.text_dim})
        self.unet = UNet(ucfg)
        with torch.no_grad():
            self.unet.conv_in.weight[:, self.pc:].zero_()  # reference channels start switched off
            if cfg.has_mask:
                self.unet.conv_out.bias[self.pc:] = cfg.mask_bias_init
        self.noise_emb = ScalarEmbedding(d)
        self.aug_emb = ScalarEmbedding(d) if cfg.has_aug else None
        self.ref_emb = nn.Embedding(2, d) if cfg.references else None
        self.text_proj = nn.Linear(cfg.text_dim, d)
        self.null_text = nn.Parameter(torch.zeros(cfg.max_text_tokens, cfg.text_dim))

    def text_inputs(self, text: Optional[torch.Tensor], text_mask: Optional[torch.Tensor], drop: torch.Tensor):
        """Replace dropped (or absent) text by the learned null text; returns tokens (b n d), mask (b n)."""
        b, n = drop.shape[0], self.cfg.max_text_tokens
        null = self.null_text[None].expand(b, -1, -1)
        full = torch.ones(b, n, dtype=torch.bool, device=drop.device)
        if text is None:
            return null, full
        keep = rearrange(~drop, "b -> b 1 1")
        return torch.where(keep, text.to(null), null), torch.where(keep[..., 0], text_mask, full)

    def embed(self, c_noise, aug_sigma, has_ref, tokens, mask) -> torch.Tensor:
        emb = self.noise_emb(c_noise)
        if self.ref_emb is not None:
            emb = emb + self.ref_emb(has_ref.long())
        if self.aug_emb is not None:
            emb = emb + self.aug_emb(aug_sigma / max(self.cfg.aug_sigma_max, 1e-6))
        m = mask.to(tokens.dtype)[..., None]
        return emb + self.text_proj((tokens * m).sum(1) / m.sum(1).clamp(min=1))

    def _to_patches(self, x: torch.Tensor) -> torch.Tensor:
        p = self.cfg.patch
        return x if p == 1 else rearrange(x, "b c (h p1) (w p2) -> b (c p1 p2) h w", p1=p, p2=p)

    def _from_patches(self, x: torch.Tensor) -> torch.Tensor:
        p = self.cfg.patch
        return x if p == 1 else rearrange(x, "b (c p1 p2) h w -> b c (h p1) (w p2)", p1=p, p2=p)

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: dict):
        refs = []
        if self.cfg.references:
            r = expand_like(cond["has_ref"].float(), x_in)
            refs = [cond["prev_in"] * r] + ([cond["anchor_in"] * r] if self.cfg.use_anchor else [])
        tokens, mask = self.text_inputs(cond.get("text"), cond.get("text_mask"), cond["text_drop"])
        emb = self.embed(c_noise, cond["aug_sigma"], cond["has_ref"], tokens, mask)
        out = self.unet(self._to_patches(torch.cat([x_in, *refs], dim=1)), emb, tokens, mask)
        f = self._from_patches(out[:, :self.pc])
        return (f, {"mask_logit": self._from_patches(out[:, self.pc:])}) if self.cfg.has_mask else f


_LEGACY_NAMES = ("unet.", "noise_emb.", "aug_emb.", "ref_emb.", "text_proj.", "null_text")


def _rename_legacy_keys(module, state_dict, prefix, *args) -> None:
    """Checkpoints written before the EDM wrapper (e.g. checkpoints/artv-tiny) name the raw network's weights at the
    top level (``unet.*``); they now live under ``denoiser.net.``. Renamed in place so strict loading still works."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        if key[len(prefix):].startswith(_LEGACY_NAMES):
            state_dict[prefix + "denoiser.net." + key[len(prefix):]] = state_dict.pop(key)


class ARTV(nn.Module):
    """The ART·V denoiser: the masked-diffusion head over ``EDMPrecond(ARTVNet)``.

    ``forward(x, sigma, cond) -> (x0_hat, extras)``; ``cond`` is a dict (see ``make_cond``); ``extras`` holds
    ``x0_theta`` (the EDM estimate D) and, with the mask, ``mask`` (m, b 1 h w)."""

    def __init__(self, cfg: ARTVConfig):
        super().__init__()
        self.cfg = cfg
        self.denoiser = EDMPrecond(ARTVNet(cfg), sigma_data=cfg.sigma_data)
        self.register_load_state_dict_pre_hook(_rename_legacy_keys)

    @property
    def net(self) -> ARTVNet:
        return self.denoiser.net

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: dict) -> tuple[torch.Tensor, dict]:
        out = self.denoiser(x, sigma, cond)
        if not self.cfg.has_mask:
            return out, {"x0_theta": out}
        denoised, aux = out
        m = torch.sigmoid(aux["mask_logit"]) * expand_like(cond["has_ref"].float(), x)
        return m * cond["prev"] + (1 - m) * denoised, {"x0_theta": denoised, "mask": m}


def make_cond(prev: Optional[torch.Tensor], anchor: Optional[torch.Tensor], text: Optional[torch.Tensor],
              text_mask: Optional[torch.Tensor], *, b: int, shape, device, aug_sigma: Optional[torch.Tensor] = None,
              aug_noise: Optional[torch.Tensor] = None, text_drop: Optional[torch.Tensor] = None,
              has_ref: Optional[torch.Tensor] = None) -> dict:
    """Assemble the condition dict. ``prev``/``anchor`` None = image condition absent; ``text`` None = null text.

    Only the previous frame is noise-augmented (``prev_in = prev + aug_sigma * aug_noise``): it carries the model's
    own accumulated errors at generation time, while the anchor is a fixed prompt image or the first frame.
    """
    zeros = torch.zeros(b, *shape, device=device)
    if has_ref is None:
        has_ref = torch.full((b,), prev is not None, dtype=torch.bool, device=device)
    if text_drop is None:
        text_drop = torch.full((b,), text is None, dtype=torch.bool, device=device)
    prev = zeros if prev is None else prev
    anchor = zeros if anchor is None else anchor
    aug_sigma = torch.zeros(b, device=device) if aug_sigma is None else aug_sigma
    prev_in = prev if aug_noise is None else prev + expand_like(aug_sigma, prev) * aug_noise
    return {"prev": prev, "prev_in": prev_in, "anchor_in": anchor, "aug_sigma": aug_sigma,
            "has_ref": has_ref, "text": text, "text_mask": text_mask, "text_drop": text_drop}


@dataclass
class ARTVLossConfig:
    P_mean: float = -1.2  # EDM: ln sigma ~ N(P_mean, P_std^2)
    P_std: float = 1.2
    p_drop_text: float = 0.1  # text condition dropout (classifier-free guidance)
    p_drop_image: float = 0.1  # image condition (previous + anchor frames) dropout; also trains first frames
    pairs_per_clip: int = 2  # unused (the task reads one (anchor, previous, target) item at a time); kept so that
    # configs saved before, including the shipped checkpoints', still load


def artv_pair_loss(model: ARTV, anchor: Optional[torch.Tensor], prev: Optional[torch.Tensor], x0: torch.Tensor,
                   text: torch.Tensor, text_mask: torch.Tensor, cfg: ARTVLossConfig,
                   generator: Optional[torch.Generator] = None,
                   encode: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> tuple[torch.Tensor, dict]:
    """EDM-weighted masked-diffusion loss on (anchor, previous, target) frames (n c h w in [-1, 1]) with their text
    tokens; the stage-1 prior (``references: false``) takes ``anchor = prev = None`` and learns single frames.

    ``encode`` (latent mode: a frozen autoencoder's ``encode_latent``) maps the pixel frames to the denoiser's state
    space. Draw order from ``generator``: augmentation level, augmentation noise, text drop, image drop, then
    ``edm_loss``'s sigma and noise."""
    g = generator if generator is not None else torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    mc = model.cfg
    refs = mc.references and prev is not None
    if encode is not None:
        with torch.no_grad():
            parts = encode(torch.cat([anchor, prev, x0]) if refs else x0)
            anchor, prev, x0 = parts.chunk(3) if refs else (None, None, parts)
    n, dev = x0.shape[0], x0.device
    rand = lambda *s: torch.rand(*s, generator=g).to(dev)  # noqa: E731
    randn = lambda *s: torch.randn(*s, generator=g).to(dev)  # noqa: E731
    aug = rand(n) * mc.aug_sigma_max if mc.has_aug else torch.zeros(n, device=dev)
    aug_noise = randn(*x0.shape) if mc.has_aug else None
    text_drop = rand(n) < cfg.p_drop_text
    has_ref = (rand(n) >= cfg.p_drop_image) if refs else torch.zeros(n, dtype=torch.bool, device=dev)
    cond = make_cond(prev if refs else None, anchor if refs else None, text, text_mask, b=n, shape=x0.shape[1:],
                     device=dev, aug_sigma=aug, aug_noise=aug_noise if refs else None, text_drop=text_drop,
                     has_ref=has_ref)
    edm = EDMConfig(sigma_data=mc.sigma_data, P_mean=cfg.P_mean, P_std=cfg.P_std)
    return edm_loss(model, x0, cond, edm, g, aux_logs=_mask_logs)


def init_from_prior(model: ARTV, prior_state: dict, prior_cfg: ARTVConfig) -> dict:
    """Stage 2 from stage 1 with ART·V's minimal changes: every prior weight is copied; the first convolution gains
    zero-initialised reference channels, the last one zero-initialised mask channels (bias ``mask_bias_init``), and
    the new "has reference" and augmentation embeddings start at zero - so with no reference the new model computes
    exactly the prior's denoiser. Returns what was copied and what was added."""
    mc = model.cfg
    same = ("frame_size", "channels", "patch", "text_dim", "max_text_tokens", "sigma_data")
    bad = [k for k in same if getattr(mc, k) != getattr(prior_cfg, k)] + \
        [f"unet.{k}" for k in ("base", "mults", "blocks_per_level", "attn_levels", "emb_dim", "head_dim", "groups")
         if getattr(mc.unet, k) != getattr(prior_cfg.unet, k)]
    if prior_cfg.references or bad:
        why = "it has reference channels (not a stage-1 prior)" if prior_cfg.references else f"{bad} differ"
        raise ValueError(f"cannot initialise ART-V from this prior: {why}")
    own = model.state_dict()
    copied, added = [], []
    pc = model.net.pc
    with torch.no_grad():
        for key, val in own.items():
            src = prior_state.get(key)
            if key.endswith("unet.conv_in.weight"):
                val.zero_()
                val[:, :pc] = src
            elif key.endswith("unet.conv_out.weight") or key.endswith("unet.conv_out.bias"):
                val[:pc] = src
                if mc.has_mask:
                    val[pc:] = 0.0 if key.endswith("weight") else mc.mask_bias_init
            elif src is not None:
                val.copy_(src)
            else:
                if "ref_emb" in key or ".aug_emb.mlp.2." in key:  # new embeddings add nothing at first
                    val.zero_()
                added.append(key)
                continue
            copied.append(key)
    model.load_state_dict(own)
    return {"copied": len(copied), "added": added}


def _mask_logs(extras: dict, cond: dict) -> dict:
    """Mean mask value over the samples that had a reference (the fraction of the frame copied)."""
    if "mask" not in extras:
        return {}
    ref = cond["has_ref"]
    return {"mask_mean": extras["mask"][ref].mean().detach() if ref.any() else torch.tensor(0.0)}


def resize_frames(frames: torch.Tensor, size) -> torch.Tensor:
    """Area-resize (b c t h w) or (b c h w) frames to ``size`` (h, w); no-op when they already match."""
    size = tuple(int(s) for s in size)
    if tuple(frames.shape[-2:]) == size:
        return frames
    if frames.ndim == 5:
        b = frames.shape[0]
        flat = rearrange(frames, "b c t h w -> (b t) c h w")
        out = F.interpolate(flat, size=size, mode="area" if flat.shape[-1] > size[1] else "bilinear")
        return rearrange(out, "(b t) c h w -> b c t h w", b=b)
    return F.interpolate(frames, size=size, mode="area" if frames.shape[-1] > size[1] else "bilinear")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class FrameCodec(nn.Module):
    """Pixel frames (b c h w in [-1, 1]) <-> the denoiser's state: identity in pixel mode, the frozen autoencoder's
    normalised latents in latent mode (``ae`` a ``worldgen.artv.autoencoder.FrameAE``)."""

    def __init__(self, ae: Optional[nn.Module] = None):
        super().__init__()
        self.ae = ae.eval().requires_grad_(False) if ae is not None else None

    @property
    def is_latent(self) -> bool:
        return self.ae is not None

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.ae is None else self.ae.encode_latent(x)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.ae is None else self.ae.decode_latent(z)

    @torch.no_grad()
    def decode_video(self, z: torch.Tensor, chunk: int = 32) -> torch.Tensor:
        """(b c t h w) states -> (b c t h w) pixel frames, decoded ``chunk`` frames at a time."""
        if self.ae is None:
            return z
        b = z.shape[0]
        flat = rearrange(z, "b c t h w -> (b t) c h w")
        out = torch.cat([self.decode(part) for part in flat.split(chunk)])
        return rearrange(out, "(b t) c h w -> b c t h w", b=b)


def check_codec(cfg: ARTVConfig, codec: Optional[FrameCodec]) -> FrameCodec:
    """The codec a model of config ``cfg`` needs; a latent-space model without its autoencoder is an error."""
    if codec is None:
        codec = FrameCodec()
    if cfg.is_latent != codec.is_latent:
        need = f"its frame autoencoder ({cfg.latent.autoencoder})" if cfg.is_latent else "no autoencoder"
        raise ValueError(f"this ART-V model works in {'latent' if cfg.is_latent else 'pixel'} space and needs {need}")
    if codec.is_latent:
        a = codec.ae.cfg
        if (a.latent_channels, a.factor) != (cfg.latent.channels, cfg.latent.factor):
            raise ValueError(f"autoencoder {cfg.latent.autoencoder} has {a.latent_channels} latent channels and "
                             f"factor {a.factor}; model.latent says {cfg.latent.channels} and {cfg.latent.factor}")
    return codec


def build_codec(cfg: ARTVConfig, ckpt_dir: str | Path | None = None, device="cpu") -> FrameCodec:
    """Pixel codec, or the frozen autoencoder named by ``cfg.latent.autoencoder``. For a trained ART·V folder
    ``ckpt_dir`` its own copy ``ckpt_dir/autoencoder`` (written at export) is preferred over the configured path."""
    if not cfg.is_latent:
        return FrameCodec()
    from worldgen.artv.autoencoder import load_autoencoder

    own = Path(ckpt_dir) / "autoencoder" if ckpt_dir is not None else None
    path = own if own is not None and (own / "config.yaml").is_file() else Path(cfg.latent.autoencoder)
    if not path.is_dir():
        raise FileNotFoundError(f"model.latent.autoencoder={cfg.latent.autoencoder}: no such frame_ae output folder")
    return check_codec(cfg, FrameCodec(load_autoencoder(path))).to(device)


__all__ = [
    "ARTVConfig", "LatentConfig", "FrameCodec", "check_codec", "build_codec", "ARTV", "ARTVNet",
    "ARTVLossConfig", "make_cond", "artv_pair_loss", "init_from_prior", "resize_frames", "count_params",
]
