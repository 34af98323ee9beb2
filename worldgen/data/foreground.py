"""Foreground and vehicle pixels of driving frames, and the 1-pixel-tolerance match scores built on them.

The simulator frames are mostly flat road. What a tokenizer or a world model must keep is the rest: lane markings
and vehicles. Both are defined here once, by colour, so that the tokenizer's loss weighting, ``worldgen eval
tokenizer`` and the world-model rollout statistics count the same pixels:

- **foreground**: a pixel whose colour differs from its frame's background colour (the per-channel median of the
  frame, i.e. the road) by more than ``threshold`` in any channel (L-infinity, in [0, 1] units);
- **vehicle**: a saturated pixel (max - min over RGB above ``threshold``). The road, its markings and the
  background are grey or white; every highway-env vehicle is coloured (ego green, others blue/yellow/red/purple).

Match scores (``match_scores``) use a tolerance of ``tol`` pixels: a predicted foreground pixel counts as correct
(precision) when a real one lies within ``tol`` px (Chebyshev distance), and a real one counts as recovered
(recall) when a predicted one lies within ``tol`` px; F1 is their harmonic mean. These are the usual boundary
F-measure conventions (Martin et al., 2004) with a square neighbourhood.

Inputs are float videos ``b c t h w`` in [-1, 1] (the house convention inside models) or ``c h w`` frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

FG_THRESHOLD = 0.12  # ~30/255: a faint anti-aliased marking still counts, video-codec noise (~3/255) does not
VEHICLE_THRESHOLD = 0.25  # ~64/255 of saturation: vehicle colours reach 150+, grey and white stay near 0


def _frames(video: torch.Tensor) -> torch.Tensor:
    """``(n, c, h, w)`` in [0, 1] from ``b c t h w`` / ``c t h w`` / ``c h w`` in [-1, 1]."""
    x = (video.float().clamp(-1, 1) + 1) / 2
    if x.ndim == 5:
        return rearrange(x, "b c t h w -> (b t) c h w")
    if x.ndim == 4:
        return rearrange(x, "c t h w -> t c h w")
    if x.ndim == 3:
        return x[None]
    raise ValueError(f"expected a video b c t h w, c t h w or a frame c h w; got shape {tuple(video.shape)}")


def _like(mask: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    """Back to the input's layout without the channel axis: ``b t h w`` / ``t h w`` / ``h w``."""
    if video.ndim == 5:
        return rearrange(mask, "(b t) h w -> b t h w", b=video.shape[0])
    return mask if video.ndim == 4 else mask[0]


def background_colour(frames: torch.Tensor) -> torch.Tensor:
    """Per-frame median colour ``(n, c, 1, 1)`` of ``(n, c, h, w)`` frames in [0, 1]."""
    return rearrange(frames, "n c h w -> n c (h w)").median(dim=-1).values[..., None, None]


def foreground_mask(video: torch.Tensor, threshold: float = FG_THRESHOLD) -> torch.Tensor:
    """Boolean mask of pixels far from their frame's background colour (layout as ``_like``)."""
    x = _frames(video)
    mask = (x - background_colour(x)).abs().amax(dim=1) > threshold
    return _like(mask, video)


def vehicle_mask(video: torch.Tensor, threshold: float = VEHICLE_THRESHOLD) -> torch.Tensor:
    """Boolean mask of saturated (coloured) pixels: the vehicles of highway-env frames."""
    x = _frames(video)
    mask = (x.amax(dim=1) - x.amin(dim=1)) > threshold
    return _like(mask, video)


def dilate(mask: torch.Tensor, tol: int = 1) -> torch.Tensor:
    """Binary dilation of a ``... h w`` mask by a ``(2 tol + 1)^2`` square."""
    if tol <= 0:
        return mask
    shape = mask.shape
    m = mask.reshape(-1, 1, *shape[-2:]).float()
    return (F.max_pool2d(m, 2 * tol + 1, stride=1, padding=tol) > 0).reshape(shape)


def match_counts(real: torch.Tensor, pred: torch.Tensor, tol: int = 1) -> dict:
    """Counts behind precision / recall with a ``tol``-pixel tolerance, for summing over batches."""
    if real.shape != pred.shape:
        raise ValueError(f"masks differ in shape: {tuple(real.shape)} vs {tuple(pred.shape)}")
    return {"real": int(real.sum()), "pred": int(pred.sum()),
            "recovered": int((real & dilate(pred, tol)).sum()), "correct": int((pred & dilate(real, tol)).sum())}


def scores_from_counts(c: dict) -> dict:
    """precision, recall, F1 from summed ``match_counts`` (an empty side scores 1 if the other is empty too)."""
    precision = c["correct"] / c["pred"] if c["pred"] else float(c["real"] == 0)
    recall = c["recovered"] / c["real"] if c["real"] else float(c["pred"] == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def match_scores(real: torch.Tensor, pred: torch.Tensor, tol: int = 1) -> dict:
    return scores_from_counts(match_counts(real, pred, tol))


def foreground_weights(video: torch.Tensor, weight: float, threshold: float = FG_THRESHOLD, tol: int = 1,
                       vehicle_weight: float = 0.0) -> torch.Tensor:
    """Per-pixel loss weights ``b 1 t h w``: 1 on background, ``+ weight`` on foreground and ``+ vehicle_weight``
    on vehicle pixels, each mask dilated by ``tol`` px (so the edges around a marking or car, where blur shows,
    weigh as much as the object)."""
    w = 1.0 + weight * dilate(foreground_mask(video, threshold), tol).float()
    if vehicle_weight > 0:
        w = w + vehicle_weight * dilate(vehicle_mask(video), tol).float()
    return w[:, None]
