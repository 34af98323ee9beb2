"""The worldgen Gradio demo: long DrivingWorld rollouts, ART-V text-to-video, and the FVD drift curve.

    worldgen demo [--host 127.0.0.1] [--port 7860] [--devices auto|cpu|cuda:0,cuda:1] [--checkpoints checkpoints]

Tabs (each main function is also an API endpoint for ``gradio_client``):

* **Driving** (``/drive``): a starting context (a held-out episode or an uploaded short mp4), an ego plan (preset
  manoeuvre, keyframed speed/yaw-rate schedule, or sampled by the model), horizon, sampling settings and seed;
  frames stream into the page while the KV-cached rollout runs, then the mp4 and the ego trajectory plot.
* **Text to video** (``/t2v``): ART-V with several prompts and switch points, an optional first image.
* **Drift** (``/drift``): FVD of each window of picked/uploaded videos against held-out real clips
  (``worldgen.eval.protocols.fvd_drift``), as a curve.

Serving: requests wait in Gradio's queue (bounded) and run on ``DevicePool`` workers, one per device. Text to video
and Drift share one concurrency group as large as the pool (at most one such request runs per device); Driving has
its own group of ``devices x drive_batch`` slots, so that concurrent Driving requests with the same horizon and
sampling settings reach the pool together and a worker runs up to ``drive_batch`` of them as one batched rollout
(``P.drive_batch``: per-request seeds, each request gets exactly the frames it would get alone). Safety:
127.0.0.1 unless told otherwise; every input is bounded and checked, and a refused request shows a message, never a
traceback; uploads live in a private temp folder (``GRADIO_TEMP_DIR``), files outside it are refused, and each
upload is deleted when the request using it ends; checkpoints come only from the checkpoints folder (or explicit
local folders) as safetensors. The model work is ``worldgen.pipelines`` (the same pipelines as ``worldgen
generate``), never Lightning; ``worldgen.demo.pipelines`` holds the device pool, input limits, upload checks and
plots.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np

from worldgen.data.video import VIDEO_SUFFIXES
from worldgen.demo import pipelines as P

log = logging.getLogger("worldgen.demo")
UPLOAD_OPTION = "(use the uploaded mp4)"
PREVIEW_EVERY_S = 0.25  # at most this often a streamed frame is sent to the page


@dataclass
class DemoConfig:
    checkpoints: str = "checkpoints"  # folder with tokenizer-tiny/, gpt-tiny/, artv-tiny/ (or explicit folders below)
    tokenizer: Optional[str] = None  # VQ tokenizer folder (default: <checkpoints>/tokenizer-tiny)
    gpt: Optional[str] = None  # DrivingWorld GPT folder (default: <checkpoints>/gpt-tiny)
    artv: Optional[str] = None  # ART-V folder (default: <checkpoints>/artv-tiny)
    examples: str = str(P.EXAMPLES)  # shipped context clips (.npz)
    data: Optional[str] = None  # optional driving dataset folder: its held-out episodes become contexts
    held_out: int = 4  # how many of the dataset's last episodes to offer
    devices: str = "auto"  # auto | cpu | cuda | cuda:0,cuda:1
    threads: int = 1  # torch CPU threads (batch-1 token-by-token decoding is fastest on 1 thread on a shared CPU)
    drive_batch: int = 4  # concurrent Driving requests one device rolls out as one batch (1 = one at a time)
    drive_batch_wait_s: float = 0.05  # a worker waits this long for more Driving requests before starting a batch
    i3d: Optional[str] = None  # local I3D weights for comparable FVD (random detector otherwise)
    fps: float = 10.0
    default_horizon: int = 64
    work_dir: Optional[str] = None  # uploads + outputs (default: a fresh temp folder)
    upload_ttl_s: float = 900.0  # an upload no request has used for this long is deleted (0 = when its last request ends)
    limits: P.Limits = field(default_factory=P.Limits)


def _tab_status(what: str, problem: Optional[str]) -> str:
    if problem is None:
        return ""
    return f"**{what} is not available on this server:** {problem}"


class Demo:
    """Server-side state: resolved checkpoints, contexts, the device pool, and the three request handlers."""

    def __init__(self, cfg: DemoConfig):
        from worldgen.checkpoints import resolve

        if not 1 <= int(cfg.drive_batch) <= 64:
            raise ValueError(f"drive_batch must be between 1 and 64, got {cfg.drive_batch}")
        if not 0.0 <= float(cfg.drive_batch_wait_s) <= 10.0:
            raise ValueError(f"drive_batch_wait_s must be between 0 and 10 s, got {cfg.drive_batch_wait_s}")
        self.cfg, self.limits = cfg, cfg.limits
        self.work = Path(cfg.work_dir or tempfile.mkdtemp(prefix="worldgen-demo-")).resolve()
        self.uploads, self.outputs = self.work / "uploads", self.work / "outputs"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.outputs.mkdir(parents=True, exist_ok=True)
        self.devices = P.parse_devices(cfg.devices)
        if "cpu" in self.devices:
            import torch

            torch.set_num_threads(max(1, int(cfg.threads)))
        self.paths, self.problems = {}, {}
        for key, default in (("tokenizer", "tokenizer-tiny"), ("gpt", "gpt-tiny"), ("artv", "artv-tiny")):
            try:
                self.paths[key] = resolve(getattr(cfg, key) or default, cfg.checkpoints)
            except ValueError as e:
                self.problems[key] = str(e)
        self.driving_problem = self._check_models("tokenizer", "gpt")
        self.artv_problem = self._check_models("artv")
        self.contexts = self._find_contexts()
        self.drive_batch = int(cfg.drive_batch)
        # the pool holds every request Gradio lets run (Driving: devices x drive_batch, the others: devices)
        n = len(self.devices)
        self.pool = P.DevicePool(self.devices, max(self.limits.queue_size, n * (self.drive_batch + 1)),
                                 max_batch=self.drive_batch, batch_wait_s=float(cfg.drive_batch_wait_s))
        self._in_use: dict[Path, int] = {}  # upload -> running requests using it
        self._last_used: dict[Path, float] = {}  # idle upload -> time.monotonic() when its last request ended
        self._in_use_lock = threading.Lock()

    @contextlib.contextmanager
    def using_uploads(self, *files):
        """Hold a request's uploads. An upload is deleted (with gradio's per-upload folder, when empty) once no
        request has used it for ``upload_ttl_s`` (checked when a request starts; immediately when the TTL is 0), so
        a user can try several plans on one uploaded clip. Only files inside the upload folder are ever deleted."""
        paths = []
        for f in files:
            for one in (f if isinstance(f, (list, tuple)) else [f]):
                if one and Path(one).resolve().is_relative_to(self.uploads):
                    paths.append(Path(one).resolve())
        with self._in_use_lock:
            self._sweep_idle_uploads()
            for p in paths:
                self._in_use[p] = self._in_use.get(p, 0) + 1
                self._last_used.pop(p, None)
        try:
            yield
        finally:
            with self._in_use_lock:
                for p in paths:
                    self._in_use[p] -= 1
                    if self._in_use[p]:
                        continue
                    del self._in_use[p]
                    self._last_used[p] = time.monotonic()
                self._sweep_idle_uploads()

    def _sweep_idle_uploads(self) -> None:
        """Delete idle uploads past their TTL (caller holds ``_in_use_lock``)."""
        now = time.monotonic()
        for p, t in list(self._last_used.items()):
            if now - t < self.cfg.upload_ttl_s:
                continue
            del self._last_used[p]
            p.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                if p.parent != self.uploads:
                    p.parent.rmdir()

    # ---- start-up checks ----------------------------------------------------------------------------------------
    def _check_models(self, *keys: str) -> Optional[str]:
        from worldgen.checkpoints import check_folder, loader_for, task_of

        for key in keys:
            if key in self.problems:
                return self.problems[key]
            try:
                check_folder(self.paths[key])
                loader_for(task_of(self.paths[key]))
            except ValueError as e:
                return str(e)
        return None

    def _find_contexts(self) -> dict:
        """label -> loader of a ``Context``: shipped example clips, then the last episodes of ``--data`` (the GPT's
        validation episodes when ``--data`` is its training set)."""
        found = {}
        for path in sorted(Path(self.cfg.examples).glob("*.npz")):
            found[f"example: {path.stem}"] = partial(P.load_example, path)
        if self.cfg.data:
            from worldgen.io import read_json

            ids = [e["id"] for e in read_json(Path(self.cfg.data) / "manifest.json").get("episodes", [])]
            for eid in sorted(ids)[-self.cfg.held_out:]:
                found[f"episode: {eid}"] = partial(P.load_episode_context, self.cfg.data, eid, 64)
        return found

    def new_output(self, job_id: str, suffix: str) -> Path:
        return self.outputs / f"{time.strftime('%H%M%S')}-{job_id}{suffix}"

    def generated_videos(self) -> list[str]:
        return sorted(p.name for p in self.outputs.glob("*.mp4"))

    # ---- Driving ------------------------------------------------------------------------------------------------
    def context(self, label: str, upload) -> P.Context:
        if upload:
            return P.context_from_upload(P.check_upload(upload, self.uploads, self.limits), self.limits)
        if label == UPLOAD_OPTION:
            raise P.InputError("choose a context clip or upload a short mp4 first")
        if label not in self.contexts:
            raise P.InputError(f"unknown context {label!r}; pick one from the list or upload an mp4")
        return self.contexts[label]()

    def drive_request(self, label, upload, preset, speed, schedule, horizon, temperature, top_k, top_p,
                      seed) -> P.DriveRequest:
        L = self.limits
        horizon = P.bounded_int(horizon, 1, L.max_horizon, "horizon (frames)")
        req = P.DriveRequest(
            context=self.context(label, upload),
            plan=P.plan_poses(preset, speed, schedule, horizon, self.cfg.fps, L), horizon=horizon,
            temperature=P.bounded_float(temperature, 0.0, 5.0, "temperature"),
            top_k=P.bounded_int(top_k, 0, 1 << 20, "top-k"),
            top_p=P.bounded_float(top_p, 0.01, 1.0, "top-p"),
            seed=P.bounded_int(seed, 0, 2 ** 31 - 1, "seed"), fps=self.cfg.fps)
        return req

    def _driving(self, device: str, cache: dict):
        from worldgen.pipelines.drivingworld import DrivingPipeline

        return P.cached(cache, "driving",
                        lambda: DrivingPipeline.load(self.paths["gpt"], self.paths["tokenizer"], device))

    def _artv(self, device: str, cache: dict):
        from worldgen.pipelines.artv import ArtvPipeline

        return P.cached(cache, "artv", lambda: ArtvPipeline.load(self.paths["artv"], device))

    def drive(self, context, upload, preset, speed, schedule, horizon, temperature, top_k, top_p, seed,
              progress=None):
        """Generator for the Driving tab: yields (preview frame, status, video, trajectory plot)."""
        with self.using_uploads(upload):
            yield from self._drive(context, upload, preset, speed, schedule, horizon, temperature, top_k, top_p, seed,
                                   progress)

    def _drive(self, context, upload, preset, speed, schedule, horizon, temperature, top_k, top_p, seed, progress):
        if self.driving_problem:
            raise P.InputError(f"The DrivingWorld model is not available on this server: {self.driving_problem}")
        req = self.drive_request(context, upload, preset, speed, schedule, horizon, temperature, top_k, top_p, seed)
        job = self.pool.submit(lambda device, cache, emit: P.drive_job(self._driving(device, cache), req, emit),
                               "drive", batch_key=P.drive_batch_key(req), payload=req,
                               batch_fn=lambda device, cache, reqs, emits: P.drive_batch(self._driving(device, cache),
                                                                                         reqs, emits))
        frames: list[np.ndarray] = []
        shown = 0.0
        try:
            for tag, payload in job.events():
                if tag == "waiting" and job.device is None:
                    yield None, f"waiting for a free device ({self.pool.waiting()} request(s) queued)", None, None
                elif tag == "started":
                    yield None, f"generating on {payload}: context {req.context.label}", None, None
                elif tag == "frames":
                    frames.extend(payload[2])
                    if time.monotonic() - shown >= PREVIEW_EVERY_S:  # the page cannot use more updates than this
                        shown = time.monotonic()
                        if progress is not None:
                            progress((len(frames), req.horizon), desc="frames")
                        yield P.enlarge(payload[2][-1]), f"{len(frames)} / {req.horizon} frames (device " \
                                                         f"{job.device})", None, None
                elif tag == "result":
                    yield P.enlarge(frames[-1]), *self._finish_drive(job, req, frames, payload)
        finally:
            job.cancel()

    def _finish_drive(self, job: P.Job, req: P.DriveRequest, frames: list, res: dict) -> tuple:
        from worldgen.data.video import write_video

        video = self.new_output(job.id, ".mp4")
        write_video(video, np.stack(frames), fps=req.fps)
        plan = "model decides" if req.plan is None else "plan"
        plot = P.trajectory_plot(self.new_output(job.id, ".png"), res["poses"], req.plan,
                                 f"ego path over {req.horizon} frames ({plan}); context: {req.context.label}")
        batch = int(res.get("batch", 1))
        together = f" (one batched rollout with {batch - 1} other request(s))" if batch > 1 else ""
        status = (f"done: {len(frames)} frames after {res['context_frames']} context frames of "
                  f"{req.context.label}, {1000 * res['frame_s']:.0f} ms/frame on {job.device}{together}")
        return status, str(video), str(plot)

    # ---- Text to video ------------------------------------------------------------------------------------------
    def t2v(self, prompts, switches, image, frames, seed, guidance, steps, progress=None):
        with self.using_uploads(image):
            yield from self._t2v(prompts, switches, image, frames, seed, guidance, steps, progress)

    def _t2v(self, prompts, switches, image, frames, seed, guidance, steps, progress):
        if self.artv_problem:
            raise P.InputError(f"The ART·V model is not available on this server: {self.artv_problem}")
        L = self.limits
        frames = P.bounded_int(frames, 2, L.max_t2v_frames, "frames")
        schedule = P.parse_prompts(prompts, switches, frames, L)
        first = None
        if image:
            first = self._read_image(image)
        req = P.ArtvRequest(schedule, first, frames, P.bounded_int(seed, 0, 2 ** 31 - 1, "seed"),
                            P.bounded_float(guidance, 0.0, 20.0, "guidance"),
                            P.bounded_int(steps, 1, 100, "sampling steps"))
        job = self.pool.submit(lambda device, cache, emit: P.t2v_job(self._artv(device, cache), req, emit), "t2v")
        out: list[np.ndarray] = []
        try:
            for tag, payload in job.events():
                if tag == "progress":
                    if progress is not None:
                        progress((payload[1], frames), desc="frames")
                    yield None, f"{payload[1]} / {frames} frames (device {job.device})", None
                elif tag == "frames":
                    out.extend(payload[2])
                elif tag == "started":
                    yield None, f"generating on {payload}", None
                elif tag == "result":
                    from worldgen.data.video import write_video

                    video = self.new_output(job.id, ".mp4")
                    write_video(video, np.stack(out), fps=self.cfg.fps)
                    starts = [s for s, _ in schedule]
                    yield P.enlarge(out[-1]), f"done: {len(out)} frames, prompts at frames {starts}", str(video)
        finally:
            job.cancel()

    def _read_image(self, path) -> np.ndarray:
        from PIL import Image

        p = P.check_upload(path, self.uploads, self.limits, suffixes=(".png", ".jpg", ".jpeg"))
        try:
            with Image.open(p) as im:
                if im.width * im.height > 4096 * 4096:
                    raise P.InputError(f"{p.name}: image larger than 4096x4096")
                return np.asarray(im.convert("RGB"))
        except OSError as e:
            raise P.InputError(f"{p.name}: not a readable image ({e})") from None

    # ---- Drift --------------------------------------------------------------------------------------------------
    def drift(self, picked, uploads, window, stride, progress=None):
        with self.using_uploads(uploads):
            yield from self._drift(picked, uploads, window, stride, progress)

    def _drift(self, picked, uploads, window, stride, progress):
        L = self.limits
        window = P.bounded_int(window, 9, 64, "window (frames)")
        stride = P.bounded_int(stride, 1, 256, "stride (frames)")
        paths = [self.outputs / name for name in (picked or []) if name in self.generated_videos()]
        paths += [P.check_upload(u, self.uploads, L) for u in (uploads or [])]
        if not paths:
            raise P.InputError("pick generated videos or upload mp4 files first")
        if len(paths) > L.max_drift_videos:
            raise P.InputError(f"{len(paths)} videos, at most {L.max_drift_videos}")
        fake = [P.read_upload_video(p, L, L.max_drift_frames) for p in paths]
        too_short = [p.name for p, v in zip(paths, fake) if len(v) < window]
        if too_short:
            raise P.InputError(f"videos shorter than the {window}-frame window: {', '.join(too_short)}")
        real = self._real_reference(window, fake[0].shape[1:3])
        detector, size = (f"i3d:{self.cfg.i3d}", 224) if self.cfg.i3d else ("random", 64)
        out_json = self.new_output("drift", ".json")
        job = self.pool.submit(lambda device, cache, emit: P.drift_curve(real, fake, window, stride, detector, size,
                                                                         out_json), "drift")
        try:
            for tag, payload in job.events():
                if tag == "started":
                    yield f"computing FVD windows on {payload} ...", None
                elif tag == "result":
                    yield self._drift_summary(payload, detector, len(real)), str(out_json.with_suffix(".png"))
        finally:
            job.cancel()

    def _real_reference(self, window: int, size) -> list[np.ndarray]:
        clips = []
        for label, load in self.contexts.items():
            frames = load().frames
            if len(frames) >= window:
                clips.append(P.fit_frames(frames, tuple(size)))
        if not clips:
            raise P.InputError(f"no real context clip has {window} frames for the reference; lower the window")
        return clips

    @staticmethod
    def _drift_summary(res: dict, detector: str, n_real: int) -> str:
        c = res["curve"]
        rows = "\n".join(f"| {x} | {m:.2f} |" for x, m in zip(c["x"], c["mean"]))
        note = "" if res["comparable_to_published"] else \
            "\n\n*Random-weight I3D detector: the numbers show the trend only, NOT comparable to published FVD.*"
        return (f"FVD drift, {len(c['x'])} windows, reference: {n_real} real clip(s) (the starting contexts), "
                f"detector {detector}"
                f"{note}\n\n| window start | FVD |\n|---|---|\n{rows}")


# ---- the page ---------------------------------------------------------------------------------------------------
def _guard(fn):
    """Wrap a generator handler: refused input -> ``gr.Error(message)``; any other failure -> a short message.

    The wrapper keeps the handler's parameters (Gradio maps inputs by signature) and adds ``progress`` so Gradio
    injects its progress tracker. Messages are HTML-escaped: Gradio renders error text as HTML.
    """
    import html

    import gradio as gr

    def wrapped(*args, progress=gr.Progress()):
        try:
            yield from fn(*args, progress=progress)
        except P.InputError as e:
            raise gr.Error(html.escape(str(e)), duration=None, print_exception=False) from None
        except Exception as e:  # the log has the traceback; the page gets one line
            log.exception("request failed")
            raise gr.Error(html.escape(f"generation failed: {type(e).__name__}: {str(e)[:300]}"), duration=None,
                           print_exception=False) from None

    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "progress"]
    progress = inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=gr.Progress())
    wrapped.__signature__ = inspect.Signature(params + [progress])
    wrapped.__name__ = fn.__name__
    return wrapped


def build_app(demo: Demo):
    import gradio as gr

    L, n = demo.limits, len(demo.devices)
    events = dict(concurrency_id="pool", concurrency_limit=n, show_progress="minimal")
    # Driving requests get n x drive_batch slots: up to drive_batch of them per device run as one batched rollout
    drive_events = dict(events, concurrency_id="drive", concurrency_limit=n * demo.drive_batch)
    with gr.Blocks(title="worldgen demo") as app:
        gr.Markdown(f"# worldgen demo\nDrivingWorld long rollouts · ART·V text-to-video · FVD drift — "
                    f"{n} worker(s) on {', '.join(demo.devices)}"
                    + (f"; concurrent Driving requests run batched, up to {demo.drive_batch} per device"
                       if demo.drive_batch > 1 else ""))
        with gr.Tab("Driving"):
            _driving_tab(demo, gr, L, drive_events)
        with gr.Tab("Text to video"):
            _t2v_tab(demo, gr, L, events)
        with gr.Tab("Drift") as drift_tab:
            picked = _drift_tab(demo, gr, L, events)
        drift_tab.select(lambda: gr.Dropdown(choices=demo.generated_videos()), None, picked, api_name=False)
    app.queue(max_size=L.queue_size, default_concurrency_limit=n)
    return app


def _driving_tab(demo: Demo, gr, L: P.Limits, events: dict) -> None:
    if demo.driving_problem:
        gr.Markdown(_tab_status("The DrivingWorld model", demo.driving_problem), elem_id="drive-unavailable")
    labels = list(demo.contexts) + [UPLOAD_OPTION]
    with gr.Row():
        with gr.Column(scale=1):
            context = gr.Dropdown(labels, value=labels[0], label="starting context")
            limit = f"≤ {L.max_upload_frames} frames, ≤ {L.max_upload_mb:g} MB"
            upload = gr.File(label=f"or upload a short video: mp4, mov, mkv, webm, avi ({limit})",
                             file_types=list(VIDEO_SUFFIXES), type="filepath", height=110)
            preset = gr.Dropdown(list(P.PRESETS), value="keep lane", label="ego plan")
            speed = gr.Slider(0, L.max_speed, value=20, step=0.5, label="speed for presets (m/s)")
            schedule = gr.Textbox(lines=3, label="custom schedule", placeholder=P.SCHEDULE_HELP,
                                  value="0, 20, 0\n3, 20, 8\n6, 12, 0")
            horizon = gr.Slider(1, L.max_horizon, value=demo.cfg.default_horizon, step=1, label="horizon (frames)")
            with gr.Accordion("sampling", open=False):
                temperature = gr.Slider(0, 2, value=1.0, step=0.05, label="temperature (0 = greedy)")
                top_k = gr.Slider(0, 1024, value=30, step=1, label="top-k (0 = off)")
                top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p")
            seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Generate", variant="primary", elem_id="drive-generate")
        with gr.Column(scale=2):
            preview = gr.Image(label="frames as they are generated", type="numpy", height=200)
            status = gr.Markdown(elem_id="drive-status")
            video = gr.Video(label="rollout (mp4)", elem_id="drive-video", autoplay=True, height=280)
            plot = gr.Image(label="ego trajectory", type="filepath")
    button.click(_guard(demo.drive), [context, upload, preset, speed, schedule, horizon, temperature, top_k, top_p,
                                      seed], [preview, status, video, plot], api_name="drive", **events)


def _t2v_tab(demo: Demo, gr, L: P.Limits, events: dict) -> None:
    if demo.artv_problem:
        gr.Markdown(_tab_status("The ART·V model", demo.artv_problem), elem_id="t2v-unavailable")
    with gr.Row():
        with gr.Column(scale=1):
            prompts = gr.Textbox(lines=3, label=f"prompts, one per line (≤ {L.max_prompts})",
                                 value="ego keeps its lane at a steady speed on a three-lane highway in light traffic\n"
                                       "ego changes lane to the left on a three-lane highway in light traffic")
            switches = gr.Textbox(label="switch frames between prompts (comma separated)", value="16")
            image = gr.File(label="optional first image (png/jpg)", file_types=[".png", ".jpg", ".jpeg"],
                            type="filepath")
            frames = gr.Slider(2, L.max_t2v_frames, value=32, step=1, label="frames")
            guidance = gr.Slider(0, 20, value=2.0, step=0.5, label="text guidance scale (1 = off)")
            steps = gr.Slider(1, 100, value=12, step=1, label="sampler steps per frame")
            seed = gr.Number(value=0, precision=0, label="seed")
            button = gr.Button("Generate", variant="primary", elem_id="t2v-generate")
        with gr.Column(scale=2):
            preview = gr.Image(label="frames as they are generated", type="numpy", height=200)
            status = gr.Markdown(elem_id="t2v-status")
            video = gr.Video(label="video (mp4)", elem_id="t2v-video", autoplay=True, height=280)
    button.click(_guard(demo.t2v), [prompts, switches, image, frames, seed, guidance, steps],
                 [preview, status, video], api_name="t2v", **events)


def _drift_tab(demo: Demo, gr, L: P.Limits, events: dict) -> None:
    gr.Markdown("FVD of each window of the chosen videos against real clips (the starting contexts) "
                "(`worldgen.eval.protocols.fvd_drift`). Videos generated in this session appear in the list.")
    with gr.Row():
        with gr.Column(scale=1):
            # custom values pass Gradio's check; drift() accepts only names of this session's outputs
            picked = gr.Dropdown(demo.generated_videos(), multiselect=True, allow_custom_value=True,
                                 label="generated videos (this session)")
            refresh = gr.Button("refresh list", size="sm")
            uploads = gr.File(label=f"or upload videos: mp4, mov, mkv, webm, avi (≤ {L.max_drift_videos})",
                              file_count="multiple", file_types=list(VIDEO_SUFFIXES), type="filepath")
            window = gr.Slider(9, 64, value=16, step=1, label="window (frames)")
            stride = gr.Slider(1, 256, value=8, step=1, label="stride between windows (frames)")
            button = gr.Button("Compute drift curve", variant="primary", elem_id="drift-generate")
        with gr.Column(scale=2):
            summary = gr.Markdown(elem_id="drift-summary")
            curve = gr.Image(label="FVD drift curve", type="filepath")
    refresh.click(lambda: gr.Dropdown(choices=demo.generated_videos()), None, picked, api_name=False)
    button.click(_guard(demo.drift), [picked, uploads, window, stride], [summary, curve], api_name="drift", **events)
    return picked


def launch(cfg: DemoConfig, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Build and start the server; returns ``(demo, app, url)``. ``block=False`` returns at once (tests)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo must run offline
    demo = Demo(cfg)
    os.environ["GRADIO_TEMP_DIR"] = str(demo.uploads)  # gradio stores every upload (and its cache) here
    app = build_app(demo)
    max_mb = int(cfg.limits.max_upload_mb * 1e6)
    kwargs = dict(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
                  show_error=False, allowed_paths=[str(demo.outputs)], max_file_size=max_mb, ssr_mode=False,
                  footer_links=["api"])
    accepted = inspect.signature(app.launch).parameters  # footer_links is Gradio 6; older versions lack it
    _, url, _ = app.launch(**{k: v for k, v in kwargs.items() if k in accepted})
    return demo, app, url
