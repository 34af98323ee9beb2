"""Long DrivingWorld rollouts with a KV cache (Hu et al., 2024, Sec. 3.5 inference; the cache is worldgen's own).

DrivingWorld generates frame ``t+1`` from a sliding window of context frames: the fusion stack summarises the
last ``context_frames`` frames (re-fused for every new frame, so no layer sees anything older; see
``DrivingWorldGPT.fuse_window``), then the internal-state AR stack samples yaw, x, y and the image tokens one at a
time. The public code re-runs the in-frame stack over the whole prefix for every token; here an **in-frame KV cache**
(``PrefixKVCache`` per AR block) keeps the keys/values of the tokens already decoded, so token ``i`` costs one
position, not ``i``. The history kept is the last ``context_frames`` frames: memory is flat for any horizon.

``rollout(..., cached=False)`` is the reference: the paper's procedure, the same window fusion and a full in-frame
recomputation for every token, with the same sampling order, so for the same seed it gives the same tokens
(tested). Ego motion is either forced (``forced_ego``: pose tokens from a control file or a scripted manoeuvre) or
sampled by the model. Sampling: temperature, top-k (paper: 30), top-p (paper option: 0.8).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from tqdm import tqdm

from worldgen.worldmodel.model import N_EGO, DrivingWorldGPT


@dataclass
class SamplingConfig:
    temperature: float = 1.0  # softmax temperature; 0 = greedy
    top_k: int = 30  # keep the k most likely tokens (0 = off); paper: 30
    top_p: float = 1.0  # nucleus sampling mass (1 = off); paper option: 0.8


def candidates(logits: torch.Tensor, cfg: SamplingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens that survive temperature, top-k and top-p, most likely first: (probs ``(b, k)``, ids ``(b, k)``).

    Top-k is taken first (paper: 30), then the smallest prefix whose mass reaches ``top_p``; removed candidates get
    probability 0. Working on the k survivors instead of the whole vocabulary keeps per-token sampling cheap.
    """
    logits = logits.float() / max(cfg.temperature, 1e-8)
    if 0 < cfg.top_k < logits.shape[-1]:
        vals, ids = torch.topk(logits, cfg.top_k, dim=-1)
    else:
        vals, ids = torch.sort(logits, descending=True, dim=-1)
    probs = vals.softmax(-1)
    if cfg.top_p < 1.0:
        drop = probs.cumsum(-1) - probs > cfg.top_p
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs, ids


def sample_token(logits: torch.Tensor, cfg: SamplingConfig, generator: Optional[torch.Generator]) -> torch.Tensor:
    """One token per row by inverse-CDF sampling over the candidates (one uniform draw per row from ``generator``)."""
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    probs, ids = candidates(logits, cfg)
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)
    choice = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp_max(probs.shape[-1] - 1)
    return ids.gather(-1, choice)[:, 0]


class FrameDecoder:
    """Decodes one frame's ``n`` tokens given the fused state of the previous frame, cached or not."""

    def __init__(self, model: DrivingWorldGPT, sampling: SamplingConfig, generator: torch.Generator, cached: bool):
        self.model, self.sampling, self.generator, self.cached = model, sampling, generator, cached

    def _token(self, logits: torch.Tensor, pos: int, forced: Optional[torch.Tensor]) -> torch.Tensor:
        if forced is not None and pos < N_EGO:
            return forced[:, pos]
        return sample_token(logits, self.sampling, self.generator)

    def decode(self, fused: torch.Tensor, prefix: list, forced: Optional[torch.Tensor]) -> torch.Tensor:
        """``fused (b n d)`` -> tokens ``(b n)`` of the next frame (ego positions from ``forced`` when given)."""
        m = self.model
        toks = torch.zeros(fused.shape[0], m.n, dtype=torch.long, device=fused.device)
        x = fused[:, 0] + m.bos
        for p in prefix:
            p.reset()
        inputs = []
        for pos in range(m.n):
            if self.cached:
                logits = m.logits_at(m.ar_step(x, prefix, pos), pos)
            else:
                inputs.append(x)
                hidden = m.autoregress(torch.stack(inputs, 1)[:, None])[:, 0, -1]
                logits = m.logits_at(hidden, pos)
            toks[:, pos] = self._token(logits, pos, forced)
            if pos + 1 < m.n:
                x = fused[:, pos + 1] + m.embed_at(toks[:, pos], pos)
        return toks


@torch.inference_mode()
def rollout(model: DrivingWorldGPT, context: dict, n_frames: int, sampling: SamplingConfig | None = None,
            seed: int = 0, forced_ego: Optional[torch.Tensor] = None, cached: bool = True, progress: bool = False,
            on_frame: Optional[Callable[[int, torch.Tensor], None]] = None) -> dict:
    """Generate ``n_frames`` frames after ``context = {ego (b tc 3), img (b tc hw), keep (b tc)}``.

    ``forced_ego (b, n_frames, 3)`` fixes the ego tokens of each generated frame (controls); ``on_frame(i, tokens)``
    is called with each new frame's tokens ``(b, n)`` (e.g. to decode to pixels as the rollout goes).
    Returns ``{ego (b n_frames 3), img (b n_frames hw), frame_s, frame_cpu_s}`` (wall and process-CPU seconds per
    frame; CPU time is the load-independent cost on a shared machine).
    """
    model.eval()
    sampling = check_sampling(sampling or SamplingConfig())
    generator = torch.Generator(device=context["img"].device).manual_seed(seed)
    decoder = FrameDecoder(model, sampling, generator, cached)
    b, tc = context["img"].shape[:2]
    if tc < 1:
        raise ValueError("rollout needs at least one context frame")
    device = context["img"].device
    prefix = model.new_caches(b, device=device, dtype=next(model.parameters()).dtype)
    w = model.cfg.context_frames
    hist = {k: context[k][:, -w:] for k in ("ego", "img", "keep")}
    out = torch.zeros(b, n_frames, model.n, dtype=torch.long, device=device)  # preallocated: flat memory
    times, cpu = [], []
    for i in tqdm(range(n_frames), desc="rollout", disable=not progress):
        t0, c0 = time.perf_counter(), time.process_time()
        fused = model.fuse_window(hist["ego"], hist["img"], hist["keep"])
        toks = decoder.decode(fused, prefix, None if forced_ego is None else forced_ego[:, i])
        new = {"ego": toks[:, :N_EGO], "img": toks[:, N_EGO:], "keep": torch.ones(b, dtype=torch.bool, device=device)}
        hist = {k: torch.cat([hist[k], new[k][:, None]], 1)[:, -w:] for k in hist}
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        out[:, i] = toks
        if on_frame is not None:
            on_frame(i, toks)
    return {"ego": out[..., :N_EGO], "img": out[..., N_EGO:], "frame_s": times, "frame_cpu_s": cpu}


# ---- ego controls ------------------------------------------------------------------------------------------------
MANOEUVRES = ("straight", "lane_change_left", "lane_change_right", "turn_left", "turn_right", "slow_down", "speed_up")


def scripted_poses(name: str, n_frames: int, fps: float, speed: float, start_s: float = 1.0,
                   duration_s: float = 3.0, lane_width: float = 4.0, turn_deg: float = 90.0) -> np.ndarray:
    """Relative poses ``(n_frames, 3)`` = (dx, dy, dyaw) per frame for a named manoeuvre at ``speed`` m/s.

    Lateral ``dy`` is positive to the left (ISO 8855 vehicle frame). A lane change moves ``lane_width`` sideways
    with a smooth (raised-cosine) lateral speed profile over ``duration_s`` starting at ``start_s``; a turn
    changes the heading by ``turn_deg`` over ``duration_s``; slow_down/speed_up ramp the speed to 0.5x / 1.5x.
    """
    if name not in MANOEUVRES:
        raise ValueError(f"unknown manoeuvre '{name}'; choose one of {', '.join(MANOEUVRES)}")
    t = np.arange(n_frames) / fps
    phase = np.clip((t - start_s) / duration_s, 0.0, 1.0)
    bump = np.where((t >= start_s) & (t <= start_s + duration_s), 1 - np.cos(2 * np.pi * phase), 0.0)
    v = np.full(n_frames, float(speed))
    lat_speed = np.zeros(n_frames)
    yaw_rate = np.zeros(n_frames)
    side = 1.0 if name.endswith("left") else -1.0
    if name.startswith("lane_change"):
        lat_speed = side * lane_width / duration_s * bump  # integrates to lane_width over the manoeuvre
    elif name.startswith("turn"):
        yaw_rate = side * math.radians(turn_deg) / duration_s * bump
    elif name in ("slow_down", "speed_up"):
        v = speed * (1 + (0.5 if name == "speed_up" else -0.5) * phase)
    poses = np.stack([v / fps, lat_speed / fps, yaw_rate / fps], axis=1).astype(np.float32)
    poses[0] = 0.0
    return poses


CONTROL_COLUMNS = ("speed", "lateral_speed", "yaw_rate")  # m/s, m/s, rad/s; lateral_speed optional


def _read_controls(p) -> dict:
    """A control file's columns as ``{name: list}``: JSON object of lists, or CSV with a header row."""
    import csv
    import json

    if p.suffix.lower() not in (".json", ".csv"):
        raise ValueError(f"{p}: expected a .json or .csv control file")
    text = p.read_text(errors="replace")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a JSON object {{\"speed\": [...], \"yaw_rate\": [...]}}, "
                             f"got {type(data).__name__}")
        return data
    rows = list(csv.DictReader(text.splitlines()))
    return {k.strip(): [r[k] for r in rows] for k in (rows[0] if rows else {}) if k}


def _control_column(p, data: dict, key: str) -> np.ndarray:
    values = data[key] if isinstance(data[key], list) else [data[key]]
    try:
        col = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{p}: '{key}' must be numbers, one per frame, got {str(values)[:60]}") from None
    if col.ndim != 1:
        raise ValueError(f"{p}: '{key}' must be a flat list of numbers, one per frame, got shape {col.shape}")
    bad = np.flatnonzero(~np.isfinite(col))
    if len(bad):
        raise ValueError(f"{p}: '{key}' must be finite numbers (row {bad[0]} is {col[bad[0]]})")
    return col


def control_file_poses(path: str, n_frames: int, fps: float) -> np.ndarray:
    """Relative poses from a control file: JSON ``{"speed": [...], "yaw_rate": [...], "lateral_speed": [...]}``
    or CSV with a header naming those columns (m/s, rad/s, m/s; lateral optional). Shorter files hold the last value.
    Anything else (another format, a missing column, a value that is not a finite number) is a ``ValueError``
    naming the file.
    """
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: control file not found")
    data = _read_controls(p)
    if "speed" not in data or "yaw_rate" not in data:
        raise ValueError(f"{p}: control file needs 'speed' (m/s) and 'yaw_rate' (rad/s) per frame, "
                         f"got columns {sorted(data)}")
    cols = [_control_column(p, data, k) if k in data else None for k in CONTROL_COLUMNS]
    if cols[1] is None:
        cols[1] = np.zeros_like(cols[0])
    if not all(len(c) == len(cols[0]) and len(c) > 0 for c in cols):
        raise ValueError(f"{p}: control columns must be non-empty and of equal length")
    idx = np.minimum(np.arange(n_frames), len(cols[0]) - 1)
    return (np.stack([c[idx] for c in cols], axis=1) / fps).astype(np.float32)


def check_sampling(cfg: SamplingConfig) -> SamplingConfig:
    """``cfg`` once its values are usable; else a ``ValueError`` naming the setting."""
    if not (math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise ValueError(f"temperature: expected a finite number >= 0 (0 = greedy), got {cfg.temperature}")
    if cfg.top_k < 0:
        raise ValueError(f"top_k: expected a whole number >= 0 (0 = off), got {cfg.top_k}")
    if not 0 < cfg.top_p <= 1:
        raise ValueError(f"top_p: expected a probability mass in (0, 1] (1 = off), got {cfg.top_p}")
    return cfg


def integrate_poses(rel: np.ndarray, start=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Relative (dx, dy, dyaw) per frame -> world (x, y, yaw): each step is in the previous frame's vehicle frame."""
    x, y, yaw = start
    out = []
    for dx, dy, dyaw in rel:
        x += dx * math.cos(yaw) - dy * math.sin(yaw)
        y += dx * math.sin(yaw) + dy * math.cos(yaw)
        yaw += dyaw
        out.append((x, y, yaw))
    return np.asarray(out, dtype=np.float64).reshape(-1, 3)
