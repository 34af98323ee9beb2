"""ART·V inference (Weng et al., 2023): checkpoint + codec + text encoder -> prompt schedule -> frame-by-frame
rollout -> uint8 video -> files.

The one pipeline behind ``worldgen generate artv`` and the demo's Text-to-video tab:

1. ``ArtvPipeline.load(folder)``: the ART·V folder through ``worldgen.ckpt`` (``artv.generate.load_checkpoint``),
   its frame codec (identity for pixel-space models, the frozen autoencoder for latent ones: ``build_codec``) and
   its text encoder (cached per caption).
2. ``run``: prompts with switch frames become one prompt per frame (``prompt_schedule``); an optional first image
   (uint8 ``h w 3``) is frame 0 and the anchor; ``worldgen.artv.generate.rollout`` samples frame after frame
   (``FrameSampler``); ``on_frame(i)`` is told before frame ``i`` is sampled. Returns uint8 ``t h w c``.
3. ``generate(GenerateConfig)``: the CLI's job; writes ``out`` (mp4) and ``out`` with suffix ``.yaml`` (the resolved
   generation settings + the model config).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from worldgen.artv.generate import GenerateOptions, check_options, from_uint8, load_for_sampling, prior_images, \
    prompt_schedule, read_image, rollout, text_schedule_fn, to_uint8


@dataclass
class GenerateConfig:
    ckpt: str = ""  # ART-V training output folder (config.yaml + model.safetensors)
    prompts: list = field(default_factory=lambda: [""])  # one prompt per segment ("" = no text)
    out: str = "artv.mp4"  # output mp4; the resolved config goes beside it as .yaml
    switch_at: list = field(default_factory=list)  # frame index where each next prompt starts
    image: Optional[str] = None  # first frame / anchor: PNG, JPEG or a video's first frame
    fps: float = 10.0
    device: str = "cpu"
    progress: bool = True  # a progress bar over frames
    options: GenerateOptions = field(default_factory=GenerateOptions)


class ArtvPipeline:
    """An ART·V checkpoint with its frame codec and text encoder on one device."""

    def __init__(self, model, codec, encoder, raw: Optional[dict] = None, folder: str = ""):
        self.model, self.codec, self.encoder, self.raw, self.folder = model, codec, encoder, raw or {}, folder

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> "ArtvPipeline":
        model, codec, encoder, raw = load_for_sampling(folder, device)
        return cls(model, codec, encoder, raw, str(folder))

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(int(v) for v in self.model.cfg.frame_size)

    def run(self, prompts: Sequence[str], switch_at: Sequence[int] = (), opts: Optional[GenerateOptions] = None,
            first: Optional[np.ndarray] = None, on_frame: Optional[Callable[[int], None]] = None,
            progress: bool = False) -> np.ndarray:
        """``opts.frames`` frames (uint8 ``t h w c``) from a prompt schedule and/or a first image (uint8 ``h w 3``,
        resized to the model's frame size)."""
        opts = check_options(opts or GenerateOptions())
        schedule = prompt_schedule(list(prompts), list(switch_at), opts.frames)
        if first is None and not any(schedule):
            raise ValueError("give --image, a non-empty --prompt, or both")
        text_at = text_schedule_fn(self.encoder, schedule, 1, self.device)

        def text_and_progress(i: int):
            if on_frame is not None:
                on_frame(i)  # frame i is next: frames < i are done
            return text_at(i)

        anchors = list(switch_at) if opts.reanchor else []
        image = from_uint8(first) if first is not None else None
        video = rollout(self.model, text_and_progress, opts.frames, opts, image, 1, progress, anchors, self.codec)
        return to_uint8(video)[0]


def generate(g: GenerateConfig) -> np.ndarray:
    """Generate one video and write ``g.out`` (mp4) and ``g.out`` with suffix .yaml; returns uint8 (t h w c)."""
    from omegaconf import OmegaConf

    from worldgen.config import check_device
    from worldgen.data.video import write_video
    from worldgen.io import check_output, write_text

    opts = check_options(g.options)  # bad settings fail before loading the model
    prompt_schedule(list(g.prompts), list(g.switch_at), opts.frames)
    if not (math.isfinite(g.fps) and g.fps > 0):
        raise ValueError(f"--fps: expected a positive frame rate, got {g.fps}")
    check_output(g.out, what="--out")
    check_device(g.device, "--device")
    pipe = ArtvPipeline.load(g.ckpt, g.device)
    frames = pipe.run(g.prompts, g.switch_at, opts, read_image(g.image) if g.image else None, progress=g.progress)
    write_video(g.out, frames, g.fps)
    resolved = {"checkpoint": str(g.ckpt), "prompts": list(g.prompts), "switch_at": list(g.switch_at),
                "image": str(g.image) if g.image else None, "fps": g.fps, "options": asdict(opts),
                "model": pipe.raw.get("model"), "output": str(g.out), "frames_shape": list(frames.shape)}
    write_text(Path(g.out).with_suffix(".yaml"), OmegaConf.to_yaml(OmegaConf.create(resolved)))
    return frames


def sample_prior_images(ckpt: str, prompts: Sequence[str], n: int, opts: GenerateOptions, device: str = "cpu",
                        progress: bool = True, out: Optional[str] = None) -> np.ndarray:
    """``n`` images per prompt from a stage-1 prior (uint8 ``b h w c``, prompt-major); with ``out`` also a PNG
    contact sheet (one row per prompt) and ``out`` with suffix ``.npy``."""
    from worldgen.eval.plots import write_sheet

    pipe = ArtvPipeline.load(ckpt, device)
    frames = prior_images(pipe.model, pipe.encoder, pipe.codec, [p for p in prompts for _ in range(n)], opts, progress)
    if out is not None:
        write_sheet(out, frames, n)
    return frames


__all__ = ["GenerateConfig", "ArtvPipeline", "generate", "sample_prior_images"]
