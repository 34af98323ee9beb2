"""Long DrivingWorld rollouts with a KV cache (Hu et al., 2024, Sec. 3.5 inference; the cache is worldgen's own).

DrivingWorld generates frame ``t+1`` from a sliding window of context frames: the fusion stack summarises the
last ``context_frames`` frames (re-fused for every new frame, so no layer sees anything older; see
``DrivingWorldGPT.fuse_window``), then the internal-state AR stack samples yaw, x, y and the image tokens one at a
time. The public code re-runs the in-frame stack over the whole prefix for every token; here an **in-frame KV cache**
keeps the keys/values of the tokens already decoded, so token ``i`` costs one position, not ``i``. The history kept
is the last ``context_frames`` frames: memory is flat for any horizon.

Issue 16 (speed near the hardware limit), all without changing the sampled tokens:

* the window fusion computes the top fusion block for the newest frame only (``DrivingWorldGPT.fuse_last``) from
  embeddings gathered out of precomputed tables;
* the token step is ``TokenDecoder`` (``worldgen.worldmodel.model``): static KV buffers, QK-norm folded into the
  RoPE tables, residuals fused into ``addmm``, the next input one gather; ``FusedSampler`` does top-k, temperature,
  top-p and the inverse CDF in six operations; oneDNN is switched off while decoding (``native_kernels``);
* ``compile=True`` runs each image token as one ``torch.compile``d graph (measured: no faster than the eager step on
  a CPU, see docs/results/worldmodel.md; kept for devices where it pays);
* a batch of contexts decodes together, each sample with its own generator (``seed + i`` or ``seed[i]``) and one
  block of uniforms per frame (``uniforms``): the same tokens as each context alone.

``rollout(..., cached=False)`` is the reference: the paper's procedure, the window fused with ``fuse_window`` and a
full in-frame recomputation for every token with the model's own modules, consuming the same uniforms in the same
order, so for the same seed it gives the same tokens (tested, also batched and compiled). Ego motion is either forced
(``forced_ego``: pose tokens from a control file or a scripted manoeuvre) or sampled by the model. Sampling:
temperature, top-k (paper: 30), top-p (paper option: 0.8), and (worldgen's, off by default) ``ego_guidance``:
classifier-free guidance of the image tokens by the frame's ego tokens against the model's own pose-less
prediction (a second, ego-less half of the batch; needs a GPT trained with posedrop).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from tqdm import tqdm

from worldgen.worldmodel.model import N_EGO, DrivingWorldGPT, apply_head


@dataclass
class SamplingConfig:
    temperature: float = 1.0  # softmax temperature; 0 = greedy
    top_k: int = 30  # keep the k most likely tokens (0 = off); paper: 30
    top_p: float = 1.0  # nucleus sampling mass (1 = off); paper option: 0.8
    ego_guidance: float = 1.0  # classifier-free guidance of the image tokens by the frame's own ego tokens (1 = off)


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


def choose(logits: torch.Tensor, cfg: SamplingConfig, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF choice over the candidates with given uniforms ``u (b, 1)`` -> tokens ``(b,)`` (argmax if greedy)."""
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    probs, ids = candidates(logits, cfg)
    choice = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp_max(probs.shape[-1] - 1)
    return ids.gather(-1, choice)[:, 0]


class FusedSampler:
    """``choose`` in as few operations as possible (the decoding hot path): top-k on the raw logits (the order is
    the same as after dividing by a positive temperature), temperature on the k survivors only, softmax, the
    optional top-p cut exactly as ``candidates``, and the inverse CDF as one ``searchsorted``. Returns ``(b, 1)``."""

    def __init__(self, cfg: SamplingConfig, vocab: int):
        self.greedy = cfg.temperature <= 0
        self.use_topk = 0 < cfg.top_k < vocab
        self.k = cfg.top_k if self.use_topk else vocab
        self.scale = max(cfg.temperature, 1e-8)
        self.top_p = cfg.top_p

    def __call__(self, logits: torch.Tensor, u: Optional[torch.Tensor]) -> torch.Tensor:
        if self.greedy:
            return logits.argmax(-1, keepdim=True)
        if logits.dtype != torch.float32:
            logits = logits.float()  # before top-k, as ``candidates``: low-precision logits tie often
        vals, ids = torch.topk(logits, self.k) if self.use_topk else torch.sort(logits, descending=True)
        if self.scale != 1.0:
            vals = vals / self.scale
        probs = vals.softmax(-1)
        if self.top_p < 1.0:
            probs = probs.masked_fill(probs.cumsum(-1) - probs > self.top_p, 0.0)
            probs = probs / probs.sum(-1, keepdim=True)
        return ids.gather(-1, torch.searchsorted(probs.cumsum(-1), u).clamp_max_(self.k - 1))


def uniforms(generators: list, count: int, device) -> torch.Tensor:
    """The frame's uniform draws ``(count, b, 1)``: sample ``i`` draws ``count`` numbers from its own generator.

    On a CPU generator ``rand(count)`` is the same stream as ``count`` successive single draws (tested), so a frame
    drawn at once samples the same tokens as drawing token by token, and sample ``i`` of a batch the same as run alone.
    """
    if count == 0:
        return torch.zeros(0, len(generators), 1, device=device)
    return torch.stack([torch.rand(count, generator=g, device=device) for g in generators], 1)[..., None]


class FrameDecoder:
    """Decodes one frame's ``n`` tokens given the fused state of the previous frame.

    ``cached=True``: ``TokenDecoder`` (static KV buffers, precomputed tables, fused sampling; optionally one
    ``torch.compile``d graph per image token). ``cached=False``: the reference, a full in-frame recomputation per
    token with the model's own modules (``autoregress``, ``logits_at``, ``embed_at``) and ``choose``.
    """

    def __init__(self, model: DrivingWorldGPT, sampling: SamplingConfig, cached: bool, batch: int, device,
                 dtype, compile: bool = False):
        self.model, self.sampling, self.cached = model, sampling, cached
        self.guidance = float(sampling.ego_guidance)
        self.guided = self.guidance != 1.0
        if self.guided and compile:
            raise ValueError("ego_guidance != 1 decodes eagerly: run without compile")
        rows = 2 * batch if self.guided else batch  # guided: a second, ego-less copy of every sample
        self.tokens = model.new_caches(rows, device, dtype) if cached else None
        if self.guided:
            self.null = torch.tensor(model.ego_vocab, device=device)  # posedrop null ids of (yaw, x, y)
            self.keep_next = torch.arange(rows, device=device)[:, None] < batch  # (rows, 1): the ego-less half False
            if cached:
                self.tokens.set_hidden_ego(~self.keep_next[:, 0])
        self.sample_img = FusedSampler(sampling, model.cfg.codebook_size)
        self.sample_ego = [FusedSampler(sampling, v) for v in model.ego_vocab]
        self.graph = compiled_image_step(self.tokens, self.sample_img) if cached and compile else None

    def draws(self, forced: bool) -> int:
        """Uniforms one frame consumes: one per sampled (not forced) token, none when greedy."""
        return 0 if self.sampling.temperature <= 0 else self.model.n - (N_EGO if forced else 0)

    def fuse(self, hist: dict) -> torch.Tensor:
        if not self.cached:
            return self.model.fuse_window(hist["ego"], hist["img"], hist["keep"])
        emb = self.tokens.embed_frames(hist["ego"], hist["img"])
        return self.model.fuse_last(hist["ego"], hist["img"], hist["keep"], embedded=emb)

    def decode(self, fused: torch.Tensor, forced: Optional[torch.Tensor], u: torch.Tensor) -> torch.Tensor:
        """``fused (b n d)`` -> tokens ``(b n)`` of the next frame (ego positions from ``forced`` when given);
        ``u (draws, b, 1)``: the frame's uniforms in token order."""
        if self.cached:
            return self._decode_cached(fused, forced, u)
        if self.guided:
            return self._decode_guided_reference(fused, forced, u)
        m = self.model
        toks = torch.zeros(fused.shape[0], m.n, dtype=torch.long, device=fused.device)
        x, inputs, j = fused[:, 0] + m.bos, [], 0
        for pos in range(m.n):
            inputs.append(x)
            logits = m.logits_at(m.autoregress(torch.stack(inputs, 1)[:, None])[:, 0, -1], pos)
            if forced is not None and pos < N_EGO:
                toks[:, pos] = forced[:, pos]
            else:
                toks[:, pos] = choose(logits, self.sampling, u[j] if len(u) else None)
                j += 1
            if pos + 1 < m.n:
                x = fused[:, pos + 1] + m.embed_at(toks[:, pos], pos)
        return toks

    def _decode_cached(self, fused: torch.Tensor, forced: Optional[torch.Tensor], u: torch.Tensor) -> torch.Tensor:
        with native_kernels(fused.device):
            return (self._decode_guided if self.guided else self._decode_tokens)(fused, forced, u)

    # ---- ego guidance: image logits = l_none + s (l_ego - l_none) ----------------------------------------------------
    # The ego-less half decodes every frame as a pose-less frame is decoded in training (posedrop: null ego ids, the
    # frame's ego keys hidden), so the model must have been trained with ``data.posedrop_prob`` > 0. Ego tokens are
    # decoded (or forced) from the conditional half only; both halves take the same image tokens.
    def _guide(self, logits: torch.Tensor) -> torch.Tensor:
        cond, none = logits.float().chunk(2)
        return none + self.guidance * (cond - none)

    def _both(self, tok: torch.Tensor, pos: int) -> torch.Tensor:
        """Token ids ``(b,)`` of both halves at position ``pos``: the ego-less half gets the null ids."""
        tok = tok.reshape(-1)
        return torch.cat([tok, self.null[pos].expand_as(tok) if pos < N_EGO else tok])

    def _decode_guided(self, fused: torch.Tensor, forced: Optional[torch.Tensor], u: torch.Tensor) -> torch.Tensor:
        dec, n, b = self.tokens, self.model.n, fused.shape[0]
        nxt = torch.cat([fused, fused]).unbind(1)
        x, toks, j = nxt[0] + dec.bos, [], 0
        for pos in range(n):
            hid = dec.step(x, pos)
            if pos < N_EGO and forced is not None:
                tok = forced[:, pos:pos + 1]
            else:
                logits = dec.logits(hid[:b], pos) if pos < N_EGO else self._guide(dec.logits(hid, pos))
                tok = (self.sample_ego[pos] if pos < N_EGO else self.sample_img)(logits, u[j] if len(u) else None)
                j += 1
            toks.append(tok)
            if pos + 1 < n:
                x = nxt[pos + 1] + dec.embed(self._both(tok, pos), pos)
        return torch.cat(toks, 1)

    def _decode_guided_reference(self, fused: torch.Tensor, forced: Optional[torch.Tensor],
                                 u: torch.Tensor) -> torch.Tensor:
        """``_decode_guided`` by full recomputation with the model's own modules and pose-less key masks."""
        m, b = self.model, fused.shape[0]
        both = torch.cat([fused, fused])
        toks = torch.zeros(b, m.n, dtype=torch.long, device=fused.device)
        x, inputs, j = both[:, 0] + m.bos, [], 0
        for pos in range(m.n):
            inputs.append(x)
            hid = m.autoregress(torch.stack(inputs, 1)[:, None], self.keep_next)[:, 0, -1]
            if pos < N_EGO and forced is not None:
                toks[:, pos] = forced[:, pos]
            else:
                logits = m.logits_at(hid[:b], pos) if pos < N_EGO else self._guide(m.logits_at(hid, pos))
                toks[:, pos] = choose(logits, self.sampling, u[j] if len(u) else None)
                j += 1
            if pos + 1 < m.n:
                x = both[:, pos + 1] + m.embed_at(self._both(toks[:, pos], pos), pos)
        return toks

    def _decode_tokens(self, fused: torch.Tensor, forced: Optional[torch.Tensor], u: torch.Tensor) -> torch.Tensor:
        dec, n = self.tokens, self.model.n
        nxt = fused.unbind(1)
        x, toks, j = nxt[0] + dec.bos, [], 0
        for pos in range(N_EGO):
            hid = dec.step(x, pos)
            if forced is not None:
                tok = forced[:, pos:pos + 1]
            else:
                tok, j = self.sample_ego[pos](dec.logits(hid, pos), u[j] if len(u) else None), j + 1
            toks.append(tok)
            x = nxt[pos + 1] + dec.embed(tok.view(-1), pos)
        if self.graph is not None:
            return self._image_compiled(fused, x, toks, u, j)
        img, emb, sample = dec.head_img, dec.emb_img, self.sample_img
        for pos in range(N_EGO, n):
            tok = sample(apply_head(dec.step(x, pos), img), u[j] if len(u) else None)
            j += 1
            toks.append(tok)
            if pos + 1 < n:
                x = torch.index_select(emb, 0, tok.view(-1)).add_(nxt[pos + 1])
        return torch.cat(toks, 1)

    def _image_compiled(self, fused, x, toks, u, j) -> torch.Tensor:
        dec = self.tokens
        for pos in range(N_EGO, self.model.n):
            tok, x = self.graph(x, dec.positions[pos:pos + 1], u[j] if len(u) else None, fused)
            j += 1
            toks.append(tok)
        return torch.cat(toks, 1)


@contextmanager
def native_kernels(device):
    """oneDNN off while a CPU decodes token by token: its per-call setup (~5 us for the GELU of 384 values, measured)
    costs more than the work at batch 1; PyTorch's own kernels are ~20% faster per frame here (docs/results). The
    switch is process-wide, so it is restored after every frame; it changes which kernel runs, not the maths."""
    if torch.device(device).type != "cpu" or not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True


def compiled_image_step(dec, sample: FusedSampler) -> Callable:
    """One image position (AR step, image head, fused sampling, next input) as one ``torch.compile`` graph."""
    n = dec.n

    def image_step(x, pos, u, fused):
        tok = sample(apply_head(dec.step_at(x, pos), dec.head_img), u)
        nxt = fused.index_select(1, (pos + 1).clamp_max(n - 1))[:, 0]
        return tok, nxt + dec.emb_img.index_select(0, tok.view(-1))

    return torch.compile(image_step, dynamic=False, fullgraph=True)


def per_sample_seeds(seed, batch: int) -> list[int]:
    """``seed`` int -> ``seed, seed + 1, ...`` (one per sample); a sequence gives one seed per sample."""
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(batch)]
    seeds = [int(s) for s in seed]
    if len(seeds) != batch:
        raise ValueError(f"rollout: {len(seeds)} seeds for a batch of {batch} contexts (give one per sample)")
    return seeds


@torch.inference_mode()
def rollout(model: DrivingWorldGPT, context: dict, n_frames: int, sampling: SamplingConfig | None = None,
            seed: int | Sequence[int] = 0, forced_ego: Optional[torch.Tensor] = None, cached: bool = True,
            progress: bool = False, on_frame: Optional[Callable[[int, torch.Tensor], None]] = None,
            compile: bool = False) -> dict:
    """Generate ``n_frames`` frames after ``context = {ego (b tc 3), img (b tc hw), keep (b tc)}``.

    Samples are independent: sample ``i`` draws from its own generator seeded ``seed + i`` (or ``seed[i]`` when a
    sequence is given), so a batch gives the same tokens as running each context alone with its seed (tested).
    ``forced_ego (b, n_frames, 3)`` fixes the ego tokens of each generated frame (controls); ``on_frame(i, tokens)``
    is called with each new frame's tokens ``(b, n)`` (e.g. to decode to pixels as the rollout goes). ``compile``:
    ``torch.compile`` the image-token step (see ``compiled_image_step``; it pays after a one-off compile).
    Returns ``{ego (b n_frames 3), img (b n_frames hw), frame_s, frame_cpu_s, fuse_s, fuse_cpu_s}`` (wall and
    process-CPU seconds per frame, and of its window fusion alone; CPU time is the load-independent cost).
    """
    model.eval()
    sampling = check_sampling(sampling or SamplingConfig())
    b, tc = context["img"].shape[:2]
    if tc < 1:
        raise ValueError("rollout needs at least one context frame")
    device = context["img"].device
    generators = [torch.Generator(device=device).manual_seed(s) for s in per_sample_seeds(seed, b)]
    decoder = FrameDecoder(model, sampling, cached, b, device, next(model.parameters()).dtype, compile)
    w = model.cfg.context_frames
    hist = {k: context[k][:, -w:] for k in ("ego", "img", "keep")}
    out = torch.zeros(b, n_frames, model.n, dtype=torch.long, device=device)  # preallocated: flat memory
    draws = decoder.draws(forced_ego is not None)
    times, cpu, fuse_s, fuse_cpu = [], [], [], []
    for i in tqdm(range(n_frames), desc="rollout", disable=not progress):
        t0, c0 = time.perf_counter(), time.process_time()
        fused = decoder.fuse(hist)
        fuse_s.append(time.perf_counter() - t0)
        fuse_cpu.append(time.process_time() - c0)
        u = uniforms(generators, draws, device)
        toks = decoder.decode(fused, None if forced_ego is None else forced_ego[:, i], u)
        new = {"ego": toks[:, :N_EGO], "img": toks[:, N_EGO:], "keep": torch.ones(b, dtype=torch.bool, device=device)}
        hist = {k: torch.cat([hist[k], new[k][:, None]], 1)[:, -w:] for k in hist}
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        out[:, i] = toks
        if on_frame is not None:
            on_frame(i, toks)
    return {"ego": out[..., :N_EGO], "img": out[..., N_EGO:], "frame_s": times, "frame_cpu_s": cpu,
            "fuse_s": fuse_s, "fuse_cpu_s": fuse_cpu}


# ---- ego controls ------------------------------------------------------------------------------------------------
MANOEUVRES = ("straight", "lane_change_left", "lane_change_right", "turn_left", "turn_right", "slow_down", "speed_up")


# The generator's lane change (highway-env's ControlledVehicle on its kinematic bicycle model, one Euler step per
# recorded frame because the generator runs the simulator at the video's fps): a proportional lateral controller
# (time constant 0.6 s) gives a lateral speed, turned into a heading reference, which a heading controller (0.2 s)
# follows through the steering angle of a 5 m long vehicle.
SIM_KP_LATERAL = 1 / 0.6  # 1/s
SIM_KP_HEADING = 1 / 0.2  # 1/s
SIM_HALF_LENGTH = 2.5  # m
SIM_MAX_STEERING = math.pi / 3  # rad


def simulator_lane_change(speed, fps: float, start: int, offset: float) -> np.ndarray:
    """Relative poses ``(n, 3)`` = (dx, dy, dyaw) of the generator's own lane change: the simulator's lane-following
    controller is switched at frame ``start`` to a lane ``offset`` metres to the side (+ = left) and drives there at
    ``speed`` (m/s, one value per frame; its length is the number of frames), exactly as highway-env steps it at
    ``fps``. The heading jumps toward the new lane within two frames (~0.2 rad at 20 m/s, the body slipping sideways
    by the same angle) and settles back over ~2 s: the shape of every lane change in the training data. Frame 0 is
    the start (zeros).
    """
    v = np.asarray(speed, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"simulator_lane_change: speed must hold one value per frame (1-D), got shape {v.shape}")
    n, dt = len(v), 1.0 / fps
    out = np.zeros((n, 3), np.float64)
    lat = heading = 0.0  # across the road from the start lane's centre (+ = left); heading from the road direction
    for i in range(1, n):
        s = max(float(v[i - 1]), 1e-9)
        target = offset if i - 1 >= start else 0.0
        lat_cmd = -SIM_KP_LATERAL * (lat - target)
        ref = float(np.clip(math.asin(min(max(lat_cmd / s, -1.0), 1.0)), -math.pi / 4, math.pi / 4))
        slip = math.asin(min(max(SIM_HALF_LENGTH / s * SIM_KP_HEADING * (ref - heading), -1.0), 1.0))
        steer = float(np.clip(math.atan(2 * math.tan(slip)), -SIM_MAX_STEERING, SIM_MAX_STEERING))
        beta = math.atan(0.5 * math.tan(steer))
        step = s * dt
        out[i] = (step * math.cos(beta), step * math.sin(beta), s * math.sin(beta) / SIM_HALF_LENGTH * dt)
        lat += step * math.sin(heading + beta)
        heading += out[i, 2]
    return out.astype(np.float32)


def scripted_poses(name: str, n_frames: int, fps: float, speed: float, start_s: float = 1.0,
                   duration_s: float | None = None, lane_width: float = 4.0, turn_deg: float = 90.0) -> np.ndarray:
    """Relative poses ``(n_frames, 3)`` = (dx, dy, dyaw) per frame for a named manoeuvre at ``speed`` m/s.

    Lateral ``dy`` is positive to the left (ISO 8855 vehicle frame). A lane change is the generator's own
    (``simulator_lane_change``): highway-env's controller switched at ``start_s`` to the lane ``lane_width`` to the
    side, so its ego tokens are the ones the GPT saw in every lane change of its training data (the heading jumps by
    ~0.2 rad within two frames at 20 m/s and settles over ~2 s; ``duration_s`` does not apply). A turn changes the
    heading by ``turn_deg`` over ``duration_s`` (default 3 s), driven along the heading (``drive_poses``);
    slow_down/speed_up ramp the speed to 0.5x / 1.5x over ``duration_s``.
    """
    if name not in MANOEUVRES:
        raise ValueError(f"unknown manoeuvre '{name}'; choose one of {', '.join(MANOEUVRES)}")
    side = 1.0 if name.endswith("left") else -1.0
    v = np.full(n_frames, float(speed))
    if name.startswith("lane_change"):
        return simulator_lane_change(v, fps, int(math.ceil(start_s * fps - 1e-9)), side * lane_width)
    if duration_s is None:
        duration_s = 3.0
    t = np.arange(n_frames) / fps
    phase = np.clip((t - start_s) / duration_s, 0.0, 1.0)
    bump = np.where((t >= start_s) & (t <= start_s + duration_s), 1 - np.cos(2 * np.pi * phase), 0.0)
    yaw_rate = np.zeros(n_frames)
    if name.startswith("turn"):
        yaw_rate = side * math.radians(turn_deg) / duration_s * bump
    elif name in ("slow_down", "speed_up"):
        v = speed * (1 + (0.5 if name == "speed_up" else -0.5) * phase)
    poses = drive_poses(v, yaw_rate, np.zeros(n_frames), fps)
    poses[0] = 0.0
    return poses


def drive_poses(speed, yaw_rate, lateral_speed, fps: float) -> np.ndarray:
    """Relative poses ``(n, 3)`` = (dx, dy, dyaw) per frame for a car driven at ``speed`` (m/s) whose road direction
    turns at ``yaw_rate`` (rad/s) and which crosses the road at ``lateral_speed`` (m/s, + = left), as a car does it:
    the heading turns toward the side by ``asin(lateral / speed)`` (clipped at 90 deg: slower than the lateral speed,
    the offset falls short) and each frame moves ``speed / fps`` along its new heading, seen from the previous
    frame's vehicle frame. So a lateral speed is a yaw rate plus forward motion, never a sideways slide (the
    simulator never drives sideways; a vehicle-frame ``dy`` step is outside the GPT's training data). Frame 0 turns
    from heading 0 (straight along the road). Arrays of one length, or scalars.
    """
    v, yr, lat = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (speed, yaw_rate, lateral_speed)))
    crossing = np.arcsin(np.clip(lat / np.maximum(np.abs(v), 1e-9), -1.0, 1.0))
    turn = yr / fps + np.diff(crossing, prepend=0.0)
    return np.stack([v / fps * np.cos(turn), v / fps * np.sin(turn), turn], axis=1).astype(np.float32)


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
    The lateral speed is driven along the heading (``drive_poses``), never as a sideways slide.
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
    return drive_poses(cols[0][idx], cols[2][idx], cols[1][idx], fps)


def check_sampling(cfg: SamplingConfig) -> SamplingConfig:
    """``cfg`` once its values are usable; else a ``ValueError`` naming the setting."""
    if not (math.isfinite(cfg.temperature) and cfg.temperature >= 0):
        raise ValueError(f"temperature: expected a finite number >= 0 (0 = greedy), got {cfg.temperature}")
    if cfg.top_k < 0:
        raise ValueError(f"top_k: expected a whole number >= 0 (0 = off), got {cfg.top_k}")
    if not 0 < cfg.top_p <= 1:
        raise ValueError(f"top_p: expected a probability mass in (0, 1] (1 = off), got {cfg.top_p}")
    if not (math.isfinite(cfg.ego_guidance) and cfg.ego_guidance >= 0):
        raise ValueError(f"ego_guidance: expected a finite number >= 0 (1 = off, 0 = ignore the ego tokens), "
                         f"got {cfg.ego_guidance}")
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
