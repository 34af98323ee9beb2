"""Per-window drift of DrivingWorld rollouts against held-out real clips (the anti-drift ablation's measure).

For every held-out token episode: take its first ``context`` frames as context, roll the model forward with the
episode's *real* ego motion forced (so the real continuation is a valid reference), and score each window of
``window`` generated frames:

* ``token_acc``: fraction of image tokens equal to the real continuation's (exact-match; low in absolute terms),
* ``psnr``: PSNR in dB of decoded generated frames vs decoded real tokens (only with ``--tokenizer``),
* ``code_js``: Jensen-Shannon divergence (bits) between the window's code histogram and the histogram of all
  held-out real codes: needs no alignment, so it also scores horizons longer than the real episodes.

Drift shows as quality falling with the window index. This is worldgen's stand-in until an FVD detector with real
I3D weights is available here (``worldgen.eval.protocols.fvd_drift`` with the ``random`` detector is not comparable
to published FVDs and too slow on these CPUs for 4 runs).

    worldgen eval drift --ckpt runs/gpt-tiny --tokens data/tokens-tiny [--tokenizer DIR]
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from worldgen.data.tokens import episode_ids, load_episode
from worldgen.worldmodel.generate import load_model
from worldgen.worldmodel.rollout import SamplingConfig, rollout


def js_bits(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    kl = lambda a, b: float(np.sum(np.where(a > 0, a * np.log2(np.maximum(a, 1e-12) / np.maximum(b, 1e-12)), 0)))
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two videos in [-1, 1] (peak-to-peak 2)."""
    mse = float(((a.float() - b.float()) ** 2).mean())
    return 10 * np.log10(4.0 / max(mse, 1e-10))


def _decode(tok, codes: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """Pixels of ``codes`` (b t h w), decoded in chunks each with its past codes: equal to a one-pass decode."""
    with torch.inference_mode():
        return tok.decode_chunked(codes, chunk)


def _window_scores(gen: torch.Tensor, real: Optional[torch.Tensor], ref_hist: np.ndarray, window: int, k: int,
                   gen_px=None, real_px=None) -> list[dict]:
    out = []
    for w0 in range(0, gen.shape[0], window):
        g = gen[w0:w0 + window]
        row = {"start": w0, "code_js": js_bits(np.bincount(g.flatten().numpy(), minlength=k) + 1e-3, ref_hist)}
        if real is not None and w0 < real.shape[0]:
            r = real[w0:w0 + window]
            row["token_acc"] = float((g[:len(r)] == r).float().mean())
            if gen_px is not None:
                row["psnr"] = psnr(gen_px[:, :, w0:w0 + len(r)], real_px[:, :, w0:w0 + len(r)])  # b c t h w
        out.append(row)
    return out


def evaluate(ckpt: str, tokens: str, episodes: Optional[list] = None, n_val: int = 2, context: int = 0,
             horizon: int = 0, window: int = 10, tokenizer: Optional[str] = None, seed: int = 0,
             sampling: Optional[SamplingConfig] = None) -> dict:
    model, _ = load_model(ckpt)
    ids = episodes or episode_ids(tokens)[-n_val:]
    context = context or model.cfg.context_frames
    k = model.cfg.codebook_size
    eps = [load_episode(Path(tokens) / "episodes" / f"{e}.safetensors") for e in ids]
    ref_hist = sum(np.bincount(e["codes"].flatten().numpy(), minlength=k) for e in eps).astype(np.float64) + 1e-3
    tok = None
    if tokenizer:
        from worldgen.tokenizer import load_tokenizer

        tok = load_tokenizer(tokenizer)
    per_episode = []
    for eid, ep in zip(ids, eps):
        n_real = ep["codes"].shape[0] - context
        steps = horizon or n_real
        ego = model.pose_tokenizer.encode(ep["poses"], ep["pose_mask"])
        img = ep["codes"].flatten(1)
        ctx = {"img": img[None, :context], "ego": ego[None, :context], "keep": ep["pose_mask"][None, :context]}
        forced = None
        if bool(ep["pose_mask"][context:context + steps].all()) and steps <= n_real:
            forced = ego[None, context:context + steps]
        res = rollout(model, ctx, steps, sampling or SamplingConfig(), seed, forced)
        gen, real = res["img"][0], img[context:context + steps]
        gen_px = real_px = None
        if tok is not None:
            gen_px = _decode(tok, gen.reshape(1, -1, model.h, model.w))
            real_px = _decode(tok, real.reshape(1, -1, model.h, model.w))
        per_episode.append(_window_scores(gen, real, ref_hist, window, k, gen_px, real_px))
    return {"ckpt": ckpt, "episodes": ids, "context": context, "window": window, "ego_forced": True,
            "windows": _average(per_episode)}


def _average(per_episode: list) -> list[dict]:
    n = max(len(p) for p in per_episode)
    rows = []
    for i in range(n):
        cells = [p[i] for p in per_episode if i < len(p)]
        row = {"start": cells[0]["start"]}
        for key in ("token_acc", "psnr", "code_js"):
            vals = [c[key] for c in cells if key in c]
            if vals:
                row[key] = float(np.mean(vals))
        rows.append(row)
    return rows
