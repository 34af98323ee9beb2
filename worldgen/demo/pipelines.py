"""The demo's serving side: a device pool of streaming jobs, input limits, upload checks, ego plans and plots.

The model work is ``worldgen.pipelines`` (the same pipelines as the CLI); this module turns a validated page request
into a pipeline call and the pipeline's streamed output into job events:

* ``drive_job``: ``worldgen.pipelines.drivingworld.DrivingPipeline`` (DrivingWorld, Hu et al., 2024). The context
  clip is fitted to the tokenizer's frame size here; the pipeline codes it, rolls out with ego tokens forced from the
  plan (a preset manoeuvre from ``rollout.scripted_poses`` or a keyframed speed/yaw-rate schedule) or sampled, and
  decodes chunks with the preceding codes as temporal context (equal to a one-pass decode), streamed as they come.
* ``t2v_job``: ``worldgen.pipelines.artv.ArtvPipeline`` (ART-V, Weng et al., 2023): prompts with switch points and
  an optional first image.
* ``drift_curve``: ``worldgen.eval.protocols.fvd_drift`` on picked/uploaded videos against real clips (the contexts).
* ``DevicePool``: one worker thread per device (each GPU, or the CPU); requests wait in one shared queue, so the
  next free device takes the next request. Every worker keeps its own loaded pipelines. A job streams events
  ``(tag, payload)`` back to the web handler and is cancelled when the handler goes away. With ``max_batch > 1`` a
  worker that takes a job with a ``batch_key`` also takes the queued jobs with the same key (up to ``max_batch``)
  and runs them as one call of their ``batch_fn`` (issue 16), waiting up to ``batch_wait_s`` for mates that are
  about to arrive: ``drive_batch`` rolls out concurrent Driving requests as one batched rollout, each with its own
  seed, so every request gets exactly the frames it would get alone.

Everything that reaches a model is validated first; bad input raises ``InputError`` with a message for the page.
"""
from __future__ import annotations

import itertools
import logging
import math
import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

log = logging.getLogger("worldgen.demo")
EXAMPLES = Path(__file__).resolve().parent / "examples"  # shipped context clips (.npz), package data


class InputError(ValueError):
    """A request the demo refuses; the message is shown in the page as is."""


class JobCancelled(Exception):
    """The page that asked for a job went away."""


@dataclass
class Limits:
    max_horizon: int = 2000  # frames one driving rollout may generate
    max_upload_mb: float = 20.0  # size of one uploaded file
    max_upload_frames: int = 600  # frames of one uploaded video
    max_schedule_rows: int = 64  # keyframes of a custom ego schedule
    max_speed: float = 40.0  # m/s in plans and schedules
    max_yaw_rate: float = 45.0  # deg/s in schedules
    max_lateral: float = 5.0  # m/s in schedules
    max_prompts: int = 8  # text-to-video prompts per request
    max_prompt_chars: int = 300
    max_t2v_frames: int = 256
    max_drift_videos: int = 8
    max_drift_frames: int = 2000  # frames of one video in the drift tab
    queue_size: int = 16  # requests waiting for a device before new ones are refused


# ---- small checks -----------------------------------------------------------------------------------------------
def bounded_int(value, lo: int, hi: int, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a whole number, got {value!r}") from None
    if not math.isfinite(f) or f != int(f):
        raise InputError(f"{what}: expected a whole number, got {value!r}")
    if not lo <= int(f) <= hi:
        raise InputError(f"{what}: must be between {lo} and {hi}, got {int(f)}")
    return int(f)


def bounded_float(value, lo: float, hi: float, what: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a number, got {value!r}") from None
    if not math.isfinite(f) or not lo <= f <= hi:
        raise InputError(f"{what}: must be between {lo:g} and {hi:g}, got {value!r}")
    return f


def inside(path: str | Path, folder: str | Path) -> Path:
    """``path`` resolved; ``InputError`` unless it lies inside ``folder`` (uploads never leave the temp folder)."""
    p, root = Path(path).resolve(), Path(folder).resolve()
    if not p.is_relative_to(root):
        raise InputError(f"file {Path(path).name!r} is outside the demo's upload folder; upload it through the page")
    return p


def check_upload(path: str | Path, upload_root: str | Path, limits: Limits, suffixes=None) -> Path:
    """The upload's resolved path, after the folder, suffix (default: any video container, ``VIDEO_SUFFIXES``),
    presence and size checks; the content is checked when it is read (``read_upload_video``)."""
    from worldgen.data.video import VIDEO_SUFFIXES

    suffixes = tuple(suffixes or VIDEO_SUFFIXES)
    p = inside(path, upload_root)
    if p.suffix.lower() not in suffixes:
        raise InputError(f"{p.name}: expected a file ending in {', '.join(suffixes)}")
    if not p.is_file():
        raise InputError(f"{p.name}: the uploaded file is gone; upload it again")
    mb = p.stat().st_size / 1e6
    if mb > limits.max_upload_mb:
        raise InputError(f"{p.name}: {mb:.1f} MB, larger than the {limits.max_upload_mb:g} MB limit")
    return p


def read_upload_video(path: Path, limits: Limits, max_frames: Optional[int] = None) -> np.ndarray:
    from worldgen.data.video import VideoError, read_video, video_length

    max_frames = max_frames or limits.max_upload_frames
    try:
        n = video_length(path)
        if n > max_frames:
            raise InputError(f"{path.name}: {n} frames, more than the {max_frames}-frame limit; trim it first")
        frames = read_video(path)
    except VideoError as e:
        raise InputError(f"{path.name}: not a readable video ({str(e).split(': ', 1)[-1]})") from None
    return frames[:max_frames]


def fit_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``t h w 3`` -> centre-cropped to the aspect of ``size`` (H, W) and resized to it (bilinear)."""
    import torch.nn.functional as F

    h, w = frames.shape[1:3]
    H, W = size
    if (h, w) == (H, W):
        return frames
    if h * W > w * H:  # too tall: crop rows
        ch = max(1, round(w * H / W))
        frames = frames[:, (h - ch) // 2:(h - ch) // 2 + ch]
    else:
        cw = max(1, round(h * W / H))
        frames = frames[:, :, (w - cw) // 2:(w - cw) // 2 + cw]
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def enlarge(frame: np.ndarray, width: int = 512) -> np.ndarray:
    """Nearest-neighbour upscale of one small ``h w c`` frame for the live preview (pixels stay visible as pixels)."""
    k = max(1, width // frame.shape[1])
    return np.repeat(np.repeat(frame, k, axis=0), k, axis=1)


# ---- contexts ---------------------------------------------------------------------------------------------------
@dataclass
class Context:
    """A starting clip: uint8 frames, relative poses (dx, dy, dyaw) per frame and which frames have one."""
    label: str
    frames: np.ndarray
    poses: np.ndarray
    pose_mask: np.ndarray
    caption: str = ""


def load_example(path: str | Path) -> Context:
    """A shipped context clip (``worldgen/demo/examples/*.npz``: frames, poses, pose_mask, caption; no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        return Context(f"example: {Path(path).stem}", z["frames"], z["poses"].astype(np.float32),
                       z["pose_mask"].astype(bool), str(z["caption"]) if "caption" in z else "")


def load_episode_context(root: str | Path, episode_id: str, max_frames: int) -> Context:
    """The first ``max_frames`` frames of a driving episode (``worldgen.data`` format) with relative poses."""
    from worldgen.data.episodes import check_episode_id, episode_dir, read_meta, relative_poses
    from worldgen.data.video import read_frames, video_length

    check_episode_id(episode_id)
    video = episode_dir(root, episode_id) / "video.mp4"
    n = min(max_frames, video_length(video))
    frames = read_frames(video, range(n))
    meta = read_meta(root, episode_id)
    if meta.get("poses"):
        poses, mask = relative_poses(np.asarray(meta["poses"], np.float64)[:n]).astype(np.float32), np.ones(n, bool)
    else:
        poses, mask = np.zeros((n, 3), np.float32), np.zeros(n, bool)
    return Context(f"episode: {episode_id}", frames, poses, mask, str(meta.get("caption", "")))


def export_examples(data_root: str | Path, ids: list[str], out_dir: str | Path, n_frames: int = 24) -> list[Path]:
    """Save the first ``n_frames`` of held-out episodes as small ``.npz`` context clips the demo ships."""
    from worldgen.io import atomic_path

    out = []
    for eid in ids:
        ctx = load_episode_context(data_root, eid, n_frames)
        path = Path(out_dir) / f"{eid}.npz"
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, frames=ctx.frames, poses=ctx.poses, pose_mask=ctx.pose_mask,
                                    caption=np.array(ctx.caption))
        out.append(path)
    return out


def context_from_upload(path: Path, limits: Limits) -> Context:
    frames = read_upload_video(path, limits)
    n = len(frames)
    return Context(f"upload: {path.name}", frames, np.zeros((n, 3), np.float32), np.zeros(n, bool))


# ---- ego plans --------------------------------------------------------------------------------------------------
PRESETS = {  # label in the page -> scripted manoeuvre (worldgen.worldmodel.rollout.MANOEUVRES); None = sampled
    "keep lane": "straight",
    "lane change left": "lane_change_left",
    "lane change right": "lane_change_right",
    "brake": "slow_down",
    "speed up": "speed_up",
    "turn left": "turn_left",
    "turn right": "turn_right",
    "custom schedule": "schedule",
    "model decides": None,
}
SCHEDULE_HELP = ("one keyframe per line: time_s, speed_m_s, yaw_rate_deg_s[, lateral_m_s] "
                 "(linear in between, the last one held)")


def parse_schedule(text: str, limits: Limits) -> np.ndarray:
    """Keyframes ``(k, 4)`` = time s, speed m/s, yaw rate deg/s, lateral speed m/s, validated and bounded."""
    rows = [ln.split("#")[0].strip() for ln in (text or "").strip().splitlines()]
    rows = [r for r in rows if r]
    if not rows:
        raise InputError(f"custom schedule is empty: {SCHEDULE_HELP}")
    if len(rows) > limits.max_schedule_rows:
        raise InputError(f"custom schedule: {len(rows)} lines, at most {limits.max_schedule_rows}")
    out = []
    for i, row in enumerate(rows, 1):
        parts = [p for p in row.replace(";", ",").replace(" ", ",").split(",") if p]
        if len(parts) not in (3, 4):
            raise InputError(f"custom schedule line {i} ({row!r}): {SCHEDULE_HELP}")
        t = bounded_float(parts[0], 0, 3600, f"schedule line {i} time")
        v = bounded_float(parts[1], 0, limits.max_speed, f"schedule line {i} speed (m/s)")
        yr = bounded_float(parts[2], -limits.max_yaw_rate, limits.max_yaw_rate, f"schedule line {i} yaw rate (deg/s)")
        lat = bounded_float(parts[3], -limits.max_lateral, limits.max_lateral,
                            f"schedule line {i} lateral speed (m/s)") if len(parts) == 4 else 0.0
        if out and t <= out[-1][0]:
            raise InputError(f"custom schedule line {i}: times must increase ({t:g} after {out[-1][0]:g})")
        out.append((t, v, yr, lat))
    return np.asarray(out, np.float64)


def schedule_poses(keys: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Relative poses ``(n, 3)`` (dx, dy, dyaw per frame) from keyframes, linearly interpolated; the lateral speed
    is driven along the heading as a car does it (``rollout.drive_poses``), like the lane-change presets."""
    from worldgen.worldmodel.rollout import drive_poses

    t = np.arange(n_frames) / fps
    v, yr, lat = (np.interp(t, keys[:, 0], keys[:, j]) for j in (1, 2, 3))
    return drive_poses(v, np.radians(yr), lat, fps)


def plan_poses(preset: str, speed: float, schedule: str, n_frames: int, fps: float,
               limits: Limits) -> Optional[np.ndarray]:
    """The planned relative poses of the generated frames, or None when the model samples its own motion."""
    from worldgen.worldmodel.rollout import scripted_poses

    if preset not in PRESETS:
        raise InputError(f"ego plan {preset!r}: choose one of {', '.join(PRESETS)}")
    name = PRESETS[preset]
    if name is None:
        return None
    if name == "schedule":
        return schedule_poses(parse_schedule(schedule, limits), n_frames, fps)
    speed = bounded_float(speed, 0.0, limits.max_speed, "speed (m/s)")
    return scripted_poses(name, n_frames, fps, speed)


def integrate(rel: np.ndarray) -> np.ndarray:
    from worldgen.worldmodel.rollout import integrate_poses

    return integrate_poses(np.asarray(rel, np.float64))


def trajectory_plot(path: str | Path, driven: np.ndarray, planned: Optional[np.ndarray], title: str) -> Path:
    """PNG of the ego path (x forward, y left, metres): what the generated frames' ego tokens say, and the plan."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldgen.io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    if planned is not None:
        p = integrate(planned)
        ax.plot(p[:, 0], p[:, 1], "--", color="0.5", label="plan")
    d = integrate(driven)
    ax.plot(d[:, 0], d[:, 1], color="C0", label="generated ego tokens")
    ax.plot([0], [0], "o", color="C2", label="start")
    ax.set_xlabel("x forward (m)")
    ax.set_ylabel("y left (m)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


# ---- DrivingWorld -----------------------------------------------------------------------------------------------
@dataclass
class DriveRequest:
    context: Context
    plan: Optional[np.ndarray]  # (horizon, 3) relative poses, or None = sampled by the model
    horizon: int
    temperature: float = 1.0
    top_k: int = 30
    top_p: float = 1.0
    seed: int = 0
    fps: float = 10.0


def drive_job(pipe, req: DriveRequest, emit: Callable[[tuple], None]) -> dict:
    """Run ``req`` on a ``worldgen.pipelines.drivingworld.DrivingPipeline``; emits ``("frames", first_index, uint8
    t h w c)`` per decoded chunk; returns the poses the ego tokens decode to, seconds per frame, context length."""
    from worldgen.worldmodel.rollout import SamplingConfig

    ctx = req.context
    n = min(pipe.context_frames, len(ctx.frames))
    frames = fit_frames(ctx.frames[-n:], pipe.frame_size)
    context = pipe.context_from_frames(frames, ctx.poses[-n:], ctx.pose_mask[-n:], ctx.label)
    forced = pipe.plan_tokens(req.plan[:req.horizon]) if req.plan is not None else None
    res = pipe.run(context, req.horizon, SamplingConfig(req.temperature, req.top_k, req.top_p), req.seed, forced,
                   on_frames=lambda i, chunk: emit(("frames", i, chunk)), keep_frames=False)
    return {"poses": res.poses, "frame_s": res.frame_s, "context_frames": res.context_frames}


def drive_batch_key(req: DriveRequest) -> tuple:
    """Requests with equal keys can share one batched rollout: same horizon and sampling, all planned or all free."""
    return ("drive", req.horizon, req.temperature, req.top_k, req.top_p, req.plan is None)


def _drive_context(pipe, req: DriveRequest):
    ctx = req.context
    n = min(pipe.context_frames, len(ctx.frames))
    return pipe.context_from_frames(fit_frames(ctx.frames[-n:], pipe.frame_size), ctx.poses[-n:], ctx.pose_mask[-n:],
                                    ctx.label)


def drive_batch(pipe, reqs: list[DriveRequest], emits: list[Callable[[tuple], None]]) -> list:
    """``drive_job`` for several requests with one ``drive_batch_key`` as batched rollouts (one per context length):
    per-sample seeds make every request's frames and poses equal to running it alone (tested). Each request streams
    to its own ``emit``; a request whose page went away stops receiving frames and ends as cancelled (its entry is a
    ``JobCancelled``), the others go on. Returns one result (or exception) per request."""
    if len({drive_batch_key(r) for r in reqs}) != 1:
        raise ValueError("drive_batch: the requests differ in horizon, sampling or plan/no plan")
    out: list = [None] * len(reqs)
    contexts: dict = {}
    for i, r in enumerate(reqs):
        try:  # a request whose context fails fails alone, as it would unbatched
            contexts[i] = _drive_context(pipe, r)
        except Exception as e:
            out[i] = e
    for length in sorted({int(c.codes.shape[1]) for c in contexts.values()}):
        idx = [i for i, c in contexts.items() if int(c.codes.shape[1]) == length]
        try:
            res = _drive_group(pipe, [reqs[i] for i in idx], [contexts[i] for i in idx], [emits[i] for i in idx])
        except Exception as e:  # this group failed (or all its pages went away); the other groups go on
            if not isinstance(e, JobCancelled):
                log.error("drive batch group of %d failed:\n%s", len(idx), traceback.format_exc())
            res = [e] * len(idx)
        for i, r in zip(idx, res):
            out[i] = r
    return out


def _drive_group(pipe, reqs: list[DriveRequest], contexts: list, emits: list) -> list:
    from einops import rearrange

    from worldgen.pipelines.drivingworld import StreamingDecoder
    from worldgen.worldmodel.model import N_EGO
    from worldgen.worldmodel.rollout import SamplingConfig, rollout

    gone: list = [None] * len(reqs)

    def sender(j: int) -> Callable:
        def send(first: int, frames: np.ndarray) -> None:
            if gone[j] is None:
                try:
                    emits[j](("frames", first, frames))
                except JobCancelled as e:
                    gone[j] = e
                    if all(g is not None for g in gone):
                        raise
        return send

    decoders = [StreamingDecoder(pipe.tok, c.codes, pipe.chunk, sender(j), keep=False) for j, c in enumerate(contexts)]
    h, w = pipe.gpt.h, pipe.gpt.w

    def on_frame(i: int, toks: torch.Tensor) -> None:
        codes = rearrange(toks[:, N_EGO:], "b (h w) -> b h w", h=h, w=w)
        for j, d in enumerate(decoders):
            if gone[j] is None:
                d.push(codes[j:j + 1])

    r0 = reqs[0]
    batch = {k: torch.cat([c.tokens()[k] for c in contexts]) for k in ("ego", "img", "keep")}
    forced = None if r0.plan is None else torch.cat([pipe.plan_tokens(r.plan[:r.horizon]) for r in reqs])
    res = rollout(pipe.gpt, batch, r0.horizon, SamplingConfig(r0.temperature, r0.top_k, r0.top_p),
                  [r.seed for r in reqs], forced, on_frame=on_frame)
    for j, d in enumerate(decoders):
        if gone[j] is None:
            d.flush()
    frame_s = float(np.mean(res["frame_s"])) if res["frame_s"] else 0.0
    return [gone[j] or {"poses": pipe.gpt.pose_tokenizer.decode(res["ego"][j].cpu())[0].numpy(), "frame_s": frame_s,
                        "context_frames": int(c.codes.shape[1]), "batch": len(reqs)}
            for j, c in enumerate(contexts)]


# ---- ART-V ------------------------------------------------------------------------------------------------------
@dataclass
class ArtvRequest:
    schedule: list  # [(start frame, prompt), ...] from parse_prompts
    first: Optional[np.ndarray]  # uint8 h w 3 image prompt (frame 0), or None for text only
    frames: int
    seed: int = 0
    guidance: float = 2.0  # text classifier-free guidance scale (1 = off)
    steps: int = 12  # sampler steps per frame


def t2v_job(pipe, req: ArtvRequest, emit: Callable[[tuple], None]) -> dict:
    """Run ``req`` on a ``worldgen.pipelines.artv.ArtvPipeline``; emits ``("progress", frame_index)`` as frames are
    reached, then ``("frames", 0, uint8 t h w c)``."""
    from worldgen.artv.generate import GenerateOptions

    starts, prompts = [s for s, _ in req.schedule], [p for _, p in req.schedule]
    first = fit_frames(req.first[None], pipe.frame_size)[0] if req.first is not None else None
    opts = GenerateOptions(frames=req.frames, seed=req.seed, steps=req.steps, cfg_text=req.guidance)
    frames = pipe.run(prompts, starts[1:], opts, first, on_frame=lambda i: emit(("progress", i)))
    emit(("frames", 0, frames))
    return {"frames": len(frames)}


def parse_prompts(text: str, switches: str, frames: int, limits: Limits) -> list[tuple[int, str]]:
    """Prompts (one per line) and switch frames ("8, 16") -> [(start frame, prompt), ...] starting at frame 0."""
    prompts = [p.strip() for p in (text or "").splitlines() if p.strip()]
    if not prompts:
        raise InputError("enter at least one prompt (one per line)")
    if len(prompts) > limits.max_prompts:
        raise InputError(f"{len(prompts)} prompts, at most {limits.max_prompts}")
    for i, p in enumerate(prompts, 1):
        if len(p) > limits.max_prompt_chars:
            raise InputError(f"prompt {i} has {len(p)} characters, at most {limits.max_prompt_chars}")
    parts = [s for s in (switches or "").replace(";", ",").replace(" ", ",").split(",") if s]
    if len(parts) != len(prompts) - 1:
        raise InputError(f"{len(prompts)} prompts need {len(prompts) - 1} switch frame(s) (comma separated), "
                         f"got {len(parts)}")
    starts = [0] + [bounded_int(s, 1, frames - 1, f"switch point {i}") for i, s in enumerate(parts, 1)]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise InputError(f"switch points must increase: {starts[1:]}")
    return list(zip(starts, prompts))


# ---- FVD drift --------------------------------------------------------------------------------------------------
def drift_curve(real: list[np.ndarray], fake: list[np.ndarray], window: int, stride: int, detector: str,
                size: int, out_json: Path) -> dict:
    """``worldgen.eval.protocols.fvd_drift`` (seed 0); writes the JSON + PNG beside ``out_json``."""
    from worldgen.eval.protocols import fvd_drift

    return fvd_drift(real, fake, window=window, stride=stride, detector=detector, size=size, out=str(out_json))


# ---- the device pool --------------------------------------------------------------------------------------------
def parse_devices(spec: str | None) -> list[str]:
    """``auto`` (every CUDA device, else the CPU), ``cpu``, ``cuda`` (all GPUs) or a list ``cuda:0,cuda:1``."""
    spec = (spec or "auto").strip()
    n_gpu = torch.cuda.device_count()
    if spec == "auto":
        return [f"cuda:{i}" for i in range(n_gpu)] or ["cpu"]
    if spec == "cuda":
        if not n_gpu:
            raise ValueError("--devices cuda: no CUDA device is visible")
        return [f"cuda:{i}" for i in range(n_gpu)]
    out = []
    for d in (s.strip() for s in spec.split(",") if s.strip()):
        if d == "cpu":
            out.append(d)
            continue
        if not d.startswith("cuda:") or not d[5:].isdigit():
            raise ValueError(f"--devices: {d!r} is not 'cpu' or 'cuda:N'")
        if int(d[5:]) >= n_gpu:
            raise ValueError(f"--devices: {d} requested but {n_gpu} CUDA device(s) are visible")
        out.append(d)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"--devices {spec!r}: give each device once")
    return out


class Job:
    """One request on the pool. ``fn(device, cache, emit) -> result``; ``events()`` yields ``(tag, payload)``.

    ``emit(item)`` with a tuple ``item = (tag, ...)`` arrives as ``(tag, item)``; the pool adds ``("started",
    device)`` and finally ``("result", value)`` (or re-raises the job's exception in ``events``).
    """

    _ids = itertools.count()

    def __init__(self, fn: Callable, name: str, batch_key=None, batch_fn: Optional[Callable] = None, payload=None):
        self.fn, self.name, self.id = fn, name, f"{next(self._ids):04d}-{uuid.uuid4().hex[:6]}"
        # batching: jobs with equal batch_key may run together as batch_fn(device, cache, payloads, emits) -> results
        self.batch_key, self.batch_fn, self.payload = batch_key, batch_fn, payload
        self.queue: queue.Queue = queue.Queue()
        self.cancelled = threading.Event()
        self.device: Optional[str] = None
        self.submitted_at, self.started_at = time.monotonic(), None  # the pool wait is started_at - submitted_at
        self.finished_at: Optional[float] = None  # time.monotonic() when its outcome was posted

    def emit(self, item: tuple) -> None:
        if self.cancelled.is_set():
            raise JobCancelled(self.id)
        self.queue.put((item[0], item))

    def cancel(self) -> None:
        self.cancelled.set()

    def events(self, poll_s: float = 0.5) -> Iterator[tuple]:
        """Yields emitted items, then ``("result", value)``; re-raises the job's error; ends on cancel."""
        while True:
            try:
                tag, payload = self.queue.get(timeout=poll_s)
            except queue.Empty:
                yield ("waiting", None)
                continue
            if tag == "error":
                raise payload
            yield tag, payload
            if tag in ("result", "cancelled"):
                return


class DevicePool:
    """One worker thread per device; one shared FIFO of jobs (bounded: a full queue refuses new requests).

    ``max_batch > 1``: a worker taking a job that has a ``batch_key`` also takes up to ``max_batch - 1`` queued jobs
    with the same key (in queue order) and runs them as one ``batch_fn`` call. ``batch_wait_s > 0``: before starting
    a batch smaller than ``max_batch`` it waits up to this long for more jobs with the key (requests sent together
    reach the pool a few milliseconds apart; without the wait the first would run alone and the rest after it).
    """

    def __init__(self, devices: list[str], queue_size: int = 16, max_batch: int = 1, batch_wait_s: float = 0.0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if not 0.0 <= batch_wait_s <= 10.0:
            raise ValueError(f"batch_wait_s must be between 0 and 10 s, got {batch_wait_s}")
        self.devices, self.max_batch, self.batch_wait_s = list(devices), max_batch, float(batch_wait_s)
        self.batches: list[int] = []  # size of every batch run (jobs with batch_key only)
        self.jobs: queue.Queue = queue.Queue(maxsize=queue_size)
        self.busy: dict[str, Optional[str]] = {d: None for d in self.devices}
        self.served: dict[str, int] = {d: 0 for d in self.devices}
        self.cancelled = 0  # jobs stopped because their page went away
        self.submitted = 0  # jobs accepted into the queue
        self.started = 0  # jobs a worker began (a refused request never gets here)
        self._count = threading.Lock()
        self.threads = [threading.Thread(target=self._work, args=(d,), name=f"demo-worker-{d}", daemon=True)
                        for d in self.devices]
        for t in self.threads:
            t.start()

    def submit(self, fn: Callable, name: str, batch_key=None, batch_fn: Optional[Callable] = None,
               payload=None) -> Job:
        """Queue ``fn(device, cache, emit)``; with ``batch_key`` and ``batch_fn`` it may run batched with others."""
        if (batch_key is None) != (batch_fn is None):
            raise ValueError("submit: give batch_key and batch_fn together")
        job = Job(fn, name, batch_key, batch_fn, payload)
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise InputError(f"the server is busy ({self.jobs.qsize()} requests waiting); try again in a minute") \
                from None
        with self._count:
            self.submitted += 1
        return job

    def waiting(self) -> int:
        return self.jobs.qsize()

    def _take_mates(self, job: Job) -> list[Job]:
        """``job`` and the queued jobs that may run batched with it (removed from the queue)."""
        if job.batch_key is None or self.max_batch <= 1:
            return [job]
        deadline, mates = time.monotonic() + self.batch_wait_s, []
        while True:
            with self.jobs.mutex:
                found = [j for j in self.jobs.queue if j is not None and j.batch_key == job.batch_key
                         and not j.cancelled.is_set()][:self.max_batch - 1 - len(mates)]
                for j in found:
                    self.jobs.queue.remove(j)
                if found:
                    self.jobs.not_full.notify(len(found))
            mates += found
            left = deadline - time.monotonic()
            if len(mates) >= self.max_batch - 1 or left <= 0 or job.cancelled.is_set():
                return [job, *mates]
            time.sleep(min(0.005, left))

    def _start(self, device: str, jobs: list[Job]) -> None:
        for job in jobs:
            job.device, job.started_at = device, time.monotonic()
            with self._count:
                self.started += 1
            job.queue.put(("started", device))
        self.busy[device] = jobs[0].id

    def _finish(self, job: Job, device: str, outcome, t0: float) -> None:
        job.finished_at = time.monotonic()  # counters first: whoever reads the outcome sees them updated
        self.served[device] += 1
        if isinstance(outcome, JobCancelled):
            self.cancelled += 1
            job.queue.put(("cancelled", None))
        elif isinstance(outcome, Exception):
            job.queue.put(("error", outcome))
        else:
            job.queue.put(("result", outcome))
        log.info("job %s (%s) on %s: %.1fs", job.id, job.name, device, time.perf_counter() - t0)

    def _run(self, device: str, cache: dict, jobs: list[Job]) -> list:
        """Outcomes (result or exception) of running ``jobs``: one ``fn`` call, or one ``batch_fn`` call."""
        try:
            if len(jobs) == 1 and (jobs[0].batch_key is None or self.max_batch <= 1):
                return [jobs[0].fn(device, cache, jobs[0].emit)]
            self.batches.append(len(jobs))
            out = list(jobs[0].batch_fn(device, cache, [j.payload for j in jobs], [j.emit for j in jobs]))
            if len(out) != len(jobs):
                raise RuntimeError(f"batch_fn returned {len(out)} results for {len(jobs)} jobs")
            return out
        except JobCancelled as e:
            return [e] * len(jobs)
        except Exception as e:  # the page gets a message; the server log keeps the traceback
            log.error("job %s (%s) failed on %s:\n%s", jobs[0].id, jobs[0].name, device, traceback.format_exc())
            return [e] * len(jobs)

    def _work(self, device: str) -> None:
        cache: dict = {}
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        while True:
            job = self.jobs.get()
            if job is None:
                return
            if job.cancelled.is_set():
                continue
            jobs = self._take_mates(job)
            t0 = time.perf_counter()
            self._start(device, jobs)
            try:
                outcomes = self._run(device, cache, jobs)
            finally:
                self.busy[device] = None
            for j, outcome in zip(jobs, outcomes):
                self._finish(j, device, outcome, t0)

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)


def cached(cache: dict, key, factory: Callable):
    """A worker's loaded model for ``key``, built on first use (each worker owns its models; no locks needed)."""
    if key not in cache:
        cache[key] = factory()
    return cache[key]
