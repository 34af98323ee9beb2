"""DrivingWorld inference (Hu et al., 2024): checkpoints -> context -> KV-cached rollout -> streamed pixels -> files.

The one pipeline behind ``worldgen generate drivingworld`` and the demo's Driving tab:

1. ``DrivingPipeline.load(gpt, tokenizer)``: both checkpoint folders through ``worldgen.ckpt``; the tokenizer must
   code the GPT's grid and codebook. Without a tokenizer the pipeline is tokens-only.
2. A context: from pixels (``context_from_frames``: the VQ tokenizer codes the clip's last ``context_frames``
   frames, the GPT's pose tokenizer bins its ego motion) or from a token-shard episode (``context_from_tokens``).
3. ``run``: ``worldgen.worldmodel.rollout.rollout`` generates frame after frame, ego tokens forced from a plan
   (``plan_tokens``) or sampled by the model.
4. ``StreamingDecoder`` decodes the generated codes in chunks as they come, each chunk with the preceding codes
   (the context's, then the generated ones; as many as the tokenizer's temporal window reaches) as temporal
   context. ``VQVideoTokenizer.decode`` is bit-exact under such chunking, so the streamed video equals a one-pass
   decode of all generated codes (with the context codes as past) pixel for pixel. Issue 12 fixed here: the CLI
   used to decode each chunk without its past codes, off by up to ~50/255 at every chunk border.
5. ``generate(GenerateConfig)``: the CLI's job. Writes ``OUT`` (mp4, when a tokenizer is given),
   ``OUT.tokens.safetensors`` (generated codes + decoded relative poses), ``OUT.poses.json`` (relative and
   integrated poses), ``OUT.config.yaml`` (the resolved settings), ``OUT.summary.json``, and with ``save_frames``
   ``OUT.frames.npy`` (the decoded uint8 ``t h w c`` frames, lossless; the mp4 is H.264).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from einops import rearrange

from worldgen.data.video import to_float, to_uint8
from worldgen.worldmodel.generate import check_pair
from worldgen.worldmodel.model import N_EGO, DrivingWorldGPT
from worldgen.worldmodel.rollout import SamplingConfig, check_sampling, control_file_poses, integrate_poses, \
    rollout, scripted_poses

OnFrames = Callable[[int, np.ndarray], None]  # (index of the first frame, uint8 t h w c)


@dataclass
class GenerateConfig:
    ckpt: str = ""  # training output folder with config.yaml + model.safetensors
    frames: int = 400  # frames to generate after the context
    out: str = "rollout.mp4"  # output mp4 (sidecars share its stem)
    controls: Optional[str] = None  # control file (speed, yaw_rate[, lateral_speed] per frame)
    manoeuvre: Optional[str] = None  # scripted manoeuvre name (see rollout.MANOEUVRES)
    speed: Optional[float] = None  # m/s for manoeuvres; default: mean speed of the context
    context_from: Optional[str] = None  # episode id in `tokens`, or a shard .safetensors path
    context_frames: int = 0  # context frames taken from the episode (0 = model.context_frames)
    tokens: Optional[str] = None  # token shard folder (default: the training config's data.root)
    tokenizer: Optional[str] = None  # VQ tokenizer folder for decoding to pixels (tokens-only without it)
    fps: float = 10.0  # frame rate of the data (controls are per second)
    seed: int = 0
    threads: int = 1  # torch CPU threads (1 is fastest for batch-1 decoding on shared machines)
    chunk: int = 8  # frames decoded per streamed chunk (the pixels do not depend on it)
    save_frames: bool = False  # also write the decoded frames losslessly as OUT.frames.npy (uint8 t h w c)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class DriveContext:
    """A batch-1 starting context: image codes, ego tokens, which frames have a pose, and the relative poses."""
    codes: torch.Tensor  # 1 t h w image codes
    ego: torch.Tensor  # 1 t 3 ego tokens
    keep: torch.Tensor  # 1 t bool: the frame has a pose
    poses: np.ndarray | torch.Tensor  # t 3 relative poses (dx, dy, dyaw)
    source: str = ""  # where it came from (an episode path, an example clip)

    def tokens(self) -> dict:
        """The rollout's context dict: ego (1 t 3), img (1 t h*w), keep (1 t)."""
        return {"ego": self.ego, "img": self.codes.flatten(2), "keep": self.keep}


@dataclass
class DriveResult:
    codes: torch.Tensor  # 1 n h w generated image codes
    ego: torch.Tensor  # 1 n 3 generated (or forced) ego tokens
    poses: np.ndarray  # n 3 relative poses the ego tokens decode to
    frames: Optional[np.ndarray]  # uint8 n h w c decoded frames (None: tokens-only or keep_frames=False)
    frame_s: float  # mean rollout seconds per frame (decoding excluded)
    context_frames: int


class StreamingDecoder:
    """Decodes a batch-1 stream of generated codes to uint8 frames in chunks of ``chunk`` frames (bounded memory),
    each chunk with the preceding codes as the tokenizer's temporal context, starting from ``past`` (the context's
    codes). Every chunk goes to ``on_frames(first_index, frames)``; ``keep`` also collects them in ``frames``."""

    def __init__(self, tokenizer, past: Optional[torch.Tensor] = None, chunk: int = 8,
                 on_frames: Optional[OnFrames] = None, keep: bool = True):
        if chunk < 1:
            raise ValueError(f"decode chunk must be >= 1 frame, got {chunk}")
        self.tok, self.chunk, self.on_frames, self.keep = tokenizer, chunk, on_frames, keep
        self.window = tokenizer.context_frames  # None: every earlier frame matters
        self.past = self._trim(past)
        self.pending: list[torch.Tensor] = []
        self.chunks: list[np.ndarray] = []
        self.done = 0  # frames decoded so far

    def _trim(self, codes: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if codes is None or codes.shape[1] == 0 or self.window == 0:
            return None
        return codes if self.window is None else codes[:, -self.window:]

    def push(self, codes: torch.Tensor) -> None:
        """One generated frame's codes, ``1 h w``."""
        self.pending.append(codes)
        if len(self.pending) >= self.chunk:
            self.flush()

    @torch.inference_mode()
    def flush(self) -> None:
        if not self.pending:
            return
        codes = torch.stack(self.pending, 1)  # 1 t h w
        frames = to_uint8(self.tok.decode(codes, past=self.past))[0]  # t h w c
        self.past = self._trim(codes if self.past is None else torch.cat([self.past, codes.to(self.past)], 1))
        self.pending = []
        if self.keep:
            self.chunks.append(frames)
        if self.on_frames is not None:
            self.on_frames(self.done, frames)
        self.done += len(frames)

    @property
    def frames(self) -> np.ndarray:
        """All kept frames so far, uint8 ``t h w c``."""
        return np.concatenate(self.chunks) if self.chunks else np.zeros((0, 0, 0, 3), np.uint8)


class DrivingPipeline:
    """A DrivingWorld GPT and (optionally) the VQ tokenizer that codes its frames, on one device."""

    def __init__(self, gpt: DrivingWorldGPT, tokenizer=None, chunk: int = 8, raw: Optional[dict] = None,
                 names: tuple[str, str] = ("tokenizer", "GPT")):
        self.gpt, self.tok, self.chunk, self.raw = gpt, tokenizer, chunk, raw or {}
        if tokenizer is not None:
            check_pair(gpt, tokenizer, names)

    @classmethod
    def load(cls, gpt_dir: str | Path, tokenizer_dir: str | Path | None = None, device: str = "cpu",
             chunk: int = 8) -> "DrivingPipeline":
        from worldgen.tokenizer.vq import load_tokenizer
        from worldgen.worldmodel.generate import load_model

        gpt, raw = load_model(gpt_dir, device=device)
        tok = load_tokenizer(tokenizer_dir, device=device) if tokenizer_dir else None
        return cls(gpt, tok, chunk, raw, names=(str(tokenizer_dir), str(gpt_dir)))

    @property
    def device(self) -> torch.device:
        return next(self.gpt.parameters()).device

    @property
    def context_frames(self) -> int:
        return int(self.gpt.cfg.context_frames)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the frames the tokenizer codes."""
        if self.tok is None:
            raise ValueError("no tokenizer loaded: this pipeline is tokens-only")
        size = getattr(getattr(self.tok, "cfg", None), "frame_size", None) or self.tok.frame_size
        return int(size[0]), int(size[1])

    # ---- contexts -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def context_from_frames(self, frames: np.ndarray, poses: Optional[np.ndarray] = None,
                            pose_mask: Optional[np.ndarray] = None, source: str = "") -> DriveContext:
        """The clip's last ``context_frames`` uint8 ``t h w c`` frames (the rollout continues the clip) coded by the
        tokenizer; ``poses`` (t 3 relative) with ``pose_mask`` bin into ego tokens (no poses: null tokens)."""
        if tuple(frames.shape[1:3]) != self.frame_size:
            raise ValueError(f"context frames are {frames.shape[1]}x{frames.shape[2]}, the tokenizer codes "
                             f"{self.frame_size[0]}x{self.frame_size[1]} (resize or crop them first)")
        n = min(self.context_frames, len(frames))
        codes = self.tok.encode(to_float(frames[-n:][None], device=self.device))  # 1 t h w
        poses = np.zeros((n, 3), np.float32) if poses is None else np.asarray(poses[-n:], np.float32)
        mask = torch.from_numpy(np.zeros(n, bool) if pose_mask is None else np.asarray(pose_mask[-n:], bool))
        ego = self.gpt.pose_tokenizer.encode(torch.from_numpy(poses), mask).to(self.device)
        return DriveContext(codes, ego[None], mask[None].to(self.device), poses, source)

    def context_from_tokens(self, source: Optional[str], tokens_root: Optional[str], n: int = 0) -> DriveContext:
        """The first ``n`` frames (default ``context_frames``) of a token-shard episode: an id in ``tokens_root``
        or a shard ``.safetensors`` path; by default the last (held-out) episode."""
        from worldgen.worldmodel.generate import load_context

        c = load_context(self.gpt, source, tokens_root, n or self.context_frames)
        codes = rearrange(c["img"], "b t (h w) -> b t h w", h=self.gpt.h).to(self.device)
        return DriveContext(codes, c["ego"].to(self.device), c["keep"].to(self.device), c["poses"], c["episode"])

    def plan_tokens(self, rel_poses: np.ndarray) -> torch.Tensor:
        """Ego tokens ``1 n 3`` forcing the generated frames to follow relative poses ``(n, 3)``."""
        return self.gpt.pose_tokenizer.encode(torch.from_numpy(np.asarray(rel_poses)))[None].to(self.device)

    # ---- rollout ------------------------------------------------------------------------------------------------
    def run(self, context: DriveContext, horizon: int, sampling: Optional[SamplingConfig] = None, seed: int = 0,
            forced: Optional[torch.Tensor] = None, on_frames: Optional[OnFrames] = None, keep_frames: bool = True,
            progress: bool = False) -> DriveResult:
        """Roll out ``horizon`` frames after ``context``; with a tokenizer the frames are decoded in streamed
        chunks (``on_frames`` sees each chunk as soon as it is decoded)."""
        h, w = self.gpt.h, self.gpt.w
        decoder = None
        if self.tok is not None:
            decoder = StreamingDecoder(self.tok, context.codes, self.chunk, on_frames, keep_frames)

        def on_frame(i: int, toks: torch.Tensor) -> None:
            decoder.push(rearrange(toks[:, N_EGO:], "b (h w) -> b h w", h=h, w=w))

        res = rollout(self.gpt, context.tokens(), horizon, sampling or SamplingConfig(), seed, forced, cached=True,
                      progress=progress, on_frame=on_frame if decoder is not None else None)
        if decoder is not None:
            decoder.flush()
        rel, _ = self.gpt.pose_tokenizer.decode(res["ego"][0].cpu())
        return DriveResult(codes=rearrange(res["img"], "b n (h w) -> b n h w", h=h, w=w), ego=res["ego"],
                           poses=rel.numpy(), frames=decoder.frames if decoder is not None and keep_frames else None,
                           frame_s=float(np.mean(res["frame_s"])) if res["frame_s"] else 0.0,
                           context_frames=int(context.codes.shape[1]))


# ---- the CLI's job ----------------------------------------------------------------------------------------------
def forced_ego(pipe: DrivingPipeline, g: GenerateConfig, context: DriveContext) -> tuple[Optional[torch.Tensor], str]:
    """Ego tokens per generated frame from the controls, or None when the model samples its own motion."""
    if g.controls and g.manoeuvre:
        raise ValueError("pass either --controls or --manoeuvre, not both")
    if g.controls:
        rel, how = control_file_poses(g.controls, g.frames, g.fps), f"control file {g.controls}"
    elif g.manoeuvre:
        speed = g.speed if g.speed is not None else float(torch.as_tensor(context.poses)[1:, 0].mean() * g.fps) \
            if len(context.poses) > 1 else 20.0
        rel, how = scripted_poses(g.manoeuvre, g.frames, g.fps, speed), f"manoeuvre {g.manoeuvre} at {speed:.1f} m/s"
    else:
        return None, "sampled by the model"
    return pipe.plan_tokens(rel), how


def check_config(g: GenerateConfig) -> None:
    """Every setting in range and the output writable, before anything is loaded; else ``ValueError`` naming it."""
    from worldgen.io import check_output

    if g.frames < 1 or g.context_frames < 0 or g.chunk < 1:
        raise ValueError(f"--frames must be >= 1, --context-frames >= 0 (0 = the model's) and chunk >= 1, got "
                         f"{g.frames}, {g.context_frames} and {g.chunk}")
    if not (math.isfinite(g.fps) and g.fps > 0):
        raise ValueError(f"--fps: expected a positive frame rate, got {g.fps}")
    if g.speed is not None and not (math.isfinite(g.speed) and g.speed >= 0):
        raise ValueError(f"--speed: expected a finite speed >= 0 m/s, got {g.speed}")
    if g.save_frames and not g.tokenizer:
        raise ValueError("--save-frames needs --tokenizer (without it the rollout is tokens-only)")
    check_sampling(g.sampling)
    check_output(g.out, what="--out")


def generate(g: GenerateConfig) -> dict:
    """Load, roll out ``g.frames`` frames after a token-shard context, stream-decode, write the outputs; returns the
    summary (also written as ``OUT.summary.json``)."""
    check_config(g)
    torch.set_num_threads(max(1, g.threads))
    pipe = DrivingPipeline.load(g.ckpt, g.tokenizer, chunk=g.chunk)
    tokens_root = g.tokens or pipe.raw.get("data", {}).get("root")
    context = pipe.context_from_tokens(g.context_from, tokens_root, g.context_frames)
    forced, how = forced_ego(pipe, g, context)
    res = pipe.run(context, g.frames, g.sampling, g.seed, forced, progress=True)
    return write_outputs(g, pipe, context, res, how)


def write_outputs(g: GenerateConfig, pipe: DrivingPipeline, context: DriveContext, res: DriveResult,
                  how: str) -> dict:
    from worldgen import config as C
    from worldgen.data.video import write_video
    from worldgen.io import atomic_path, save_weights, write_json

    stem = Path(g.out).with_suffix("")
    rel = torch.from_numpy(res.poses)
    save_weights(f"{stem}.tokens.safetensors", {"codes": res.codes[0].int(), "poses": rel,
                                                "pose_mask": torch.ones(len(rel), dtype=torch.uint8)})
    summary = {"frames": g.frames, "ego": how, "context_episode": context.source,
               "context_frames": res.context_frames, "mean_frame_s": res.frame_s,
               "tokens": f"{stem}.tokens.safetensors"}
    write_json(f"{stem}.poses.json", {"relative_dx_dy_dyaw": res.poses.tolist(),
                                      "world_x_y_yaw": integrate_poses(res.poses).tolist(), "ego": how})
    if res.frames is not None:
        write_video(g.out, res.frames, fps=g.fps)
        summary["video"] = str(g.out)
        if g.save_frames:
            with atomic_path(f"{stem}.frames.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, res.frames)
            summary["frames_npy"] = f"{stem}.frames.npy"
    C.save(g, f"{stem}.config.yaml")
    write_json(f"{stem}.summary.json", {**summary, "model": pipe.raw.get("model"), "generate": asdict(g)})
    return summary


__all__ = ["GenerateConfig", "DriveContext", "DriveResult", "StreamingDecoder", "DrivingPipeline", "forced_ego",
           "check_config", "generate", "write_outputs"]
