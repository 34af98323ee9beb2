"""``worldgen generate drivingworld``: a long KV-cached rollout of a trained DrivingWorld GPT to mp4 + poses.

    worldgen generate drivingworld --ckpt runs/gpt-tiny --frames 400 --out out/roll.mp4 \
        [--controls FILE | --manoeuvre lane_change_left | (sampled ego)] [--context-from EPISODE] \
        [--tokenizer runs/tokenizer-tiny] [--top-k 30 --top-p 1.0 --temperature 1.0] [--seed 0]

``--ckpt`` is a training output folder (``config.yaml`` + ``model.safetensors``). The context comes from a token
shard episode (an id in ``--tokens``, default the training config's ``data.root``, or a path to a ``.safetensors``
shard); by default the first validation episode. Pixels are decoded with ``--tokenizer`` as the rollout goes; without
it the rollout is tokens-only (``OUT.tokens.safetensors``). Always written: ``OUT.poses.json`` (relative and
integrated poses per generated frame) and ``OUT.config.yaml`` (the resolved generation settings + model config).
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from worldgen.worldmodel.model import DrivingWorldGPT, GPTConfig
from worldgen.worldmodel.rollout import MANOEUVRES, SamplingConfig, control_file_poses, integrate_poses, rollout, \
    scripted_poses


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
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


def load_model(ckpt: str | Path, device: str = "cpu") -> tuple[DrivingWorldGPT, dict]:
    """Model from a training output folder; returns (model, the saved config as a plain dict)."""
    from omegaconf import OmegaConf

    from worldgen import config as C
    from worldgen.io import load_weights

    ckpt = Path(ckpt)
    cfg_path = ckpt / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: no config.yaml in the checkpoint folder")
    raw = OmegaConf.to_container(C.read_yaml(cfg_path), resolve=True)
    if "model" not in raw:
        raise ValueError(f"{cfg_path}: no 'model' section (is this a drivingworld run?)")
    model = DrivingWorldGPT(C.load(GPTConfig, data=raw["model"]))
    state = load_weights(ckpt / "model.safetensors", device=device)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{ckpt / 'model.safetensors'}: weights do not fit the config (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    return model.to(device).eval(), raw


def load_context(model: DrivingWorldGPT, source: Optional[str], tokens_root: Optional[str], n: int) -> dict:
    """The first ``n`` frames of a token episode as a batch-1 context (poses binned by the model's tokenizer)."""
    from worldgen.worldmodel.data import episode_ids, load_episode

    if source and source.endswith(".safetensors"):
        path = Path(source)
    else:
        if not tokens_root:
            raise ValueError("no token folder for the context: pass --tokens DIR or --context-from FILE.safetensors")
        eid = source or episode_ids(tokens_root)[-1]  # default: the last (held-out) episode
        path = Path(tokens_root) / "episodes" / f"{eid}.safetensors"
    ep = load_episode(path)
    if tuple(ep["codes"].shape[1:]) != (model.h, model.w):
        raise ValueError(f"{path}: code grid {tuple(ep['codes'].shape[1:])} != model grid {(model.h, model.w)}")
    n = min(n, ep["codes"].shape[0])
    ego = model.pose_tokenizer.encode(ep["poses"][:n], ep["pose_mask"][:n])
    return {"img": ep["codes"][:n].flatten(1)[None], "ego": ego[None], "keep": ep["pose_mask"][:n][None],
            "poses": ep["poses"][:n], "episode": str(path)}


def forced_ego(model: DrivingWorldGPT, g: GenerateConfig, context: dict) -> tuple[Optional[torch.Tensor], str]:
    """Ego tokens per generated frame from the controls, or None when the model samples its own motion."""
    if g.controls and g.manoeuvre:
        raise ValueError("pass either --controls or --manoeuvre, not both")
    if g.controls:
        rel, how = control_file_poses(g.controls, g.frames, g.fps), f"control file {g.controls}"
    elif g.manoeuvre:
        speed = g.speed if g.speed is not None else float(context["poses"][1:, 0].mean() * g.fps) \
            if len(context["poses"]) > 1 else 20.0
        rel, how = scripted_poses(g.manoeuvre, g.frames, g.fps, speed), f"manoeuvre {g.manoeuvre} at {speed:.1f} m/s"
    else:
        return None, "sampled by the model"
    tokens = model.pose_tokenizer.encode(torch.from_numpy(rel))
    return tokens[None], how


class StreamingDecoder:
    """Decodes generated tokens to uint8 frames in chunks as the rollout goes (bounded memory per chunk)."""

    def __init__(self, tokenizer, h: int, w: int, chunk: int = 8):
        self.tok, self.h, self.w, self.chunk = tokenizer, h, w, chunk
        self.pending: list[torch.Tensor] = []
        self.frames: list[np.ndarray] = []

    def push(self, i: int, toks: torch.Tensor) -> None:
        self.pending.append(toks[:, 3:].reshape(-1, self.h, self.w))
        if len(self.pending) >= self.chunk:
            self.flush()

    @torch.inference_mode()
    def flush(self) -> None:
        if not self.pending:
            return
        codes = torch.stack(self.pending, 1)  # b t h w
        video = self.tok.decode(codes)  # b c t h w in [-1, 1]
        u8 = ((video[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).cpu().numpy()
        self.frames.extend(list(u8))
        self.pending = []


def main(g: GenerateConfig) -> dict:
    from worldgen import config as C
    from worldgen.io import save_weights, write_json

    torch.set_num_threads(max(1, g.threads))
    model, raw = load_model(g.ckpt)
    tokens_root = g.tokens or raw.get("data", {}).get("root")
    context = load_context(model, g.context_from, tokens_root, g.context_frames or model.cfg.context_frames)
    forced, how = forced_ego(model, g, context)
    decoder = None
    if g.tokenizer:
        from worldgen.tokenizer import load_tokenizer

        decoder = StreamingDecoder(load_tokenizer(g.tokenizer), model.h, model.w)
    res = rollout(model, {k: context[k] for k in ("ego", "img", "keep")}, g.frames, g.sampling, g.seed, forced,
                  cached=True, progress=True, on_frame=decoder.push if decoder else None)
    out = Path(g.out)
    stem = out.with_suffix("")
    rel, _ = model.pose_tokenizer.decode(res["ego"][0])
    save_weights(f"{stem}.tokens.safetensors", {"codes": res["img"][0].reshape(-1, model.h, model.w).int(),
                                                "poses": rel, "pose_mask": torch.ones(len(rel), dtype=torch.uint8)})
    summary = {"frames": g.frames, "ego": how, "context_episode": context["episode"],
               "context_frames": int(context["img"].shape[1]), "mean_frame_s": float(np.mean(res["frame_s"])),
               "tokens": f"{stem}.tokens.safetensors"}
    write_json(f"{stem}.poses.json", {"relative_dx_dy_dyaw": rel.tolist(),
                                      "world_x_y_yaw": integrate_poses(rel.numpy()).tolist(), "ego": how})
    if decoder is not None:
        from worldgen.data.video import write_video

        decoder.flush()
        write_video(out, np.stack(decoder.frames), fps=g.fps)
        summary["video"] = str(out)
    C.save(g, f"{stem}.config.yaml")
    write_json(f"{stem}.summary.json", {**summary, "model": raw.get("model"), "generate": asdict(g)})
    return summary


def configure_cli(parser: argparse.ArgumentParser):
    parser.add_argument("--ckpt", required=True, help="training output folder (config.yaml + model.safetensors)")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--out", required=True, help="output .mp4 (sidecars: .poses.json, .config.yaml, .tokens)")
    parser.add_argument("--controls", help="control file: JSON or CSV with speed, yaw_rate[, lateral_speed] per frame")
    parser.add_argument("--manoeuvre", choices=MANOEUVRES, help="scripted ego manoeuvre instead of a control file")
    parser.add_argument("--speed", type=float, help="m/s for --manoeuvre (default: the context's mean speed)")
    parser.add_argument("--context-from", help="episode id in --tokens, or a shard .safetensors file")
    parser.add_argument("--context-frames", type=int, default=0)
    parser.add_argument("--tokens", help="token shard folder (default: the checkpoint config's data.root)")
    parser.add_argument("--tokenizer", help="VQ tokenizer folder; decodes to mp4 (tokens-only without it)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=30)
    parser.add_argument("--top-p", type=float, default=1.0)

    def run(a: argparse.Namespace) -> int:
        g = GenerateConfig(ckpt=a.ckpt, frames=a.frames, out=a.out, controls=a.controls, manoeuvre=a.manoeuvre,
                           speed=a.speed, context_from=a.context_from, context_frames=a.context_frames,
                           tokens=a.tokens, tokenizer=a.tokenizer, fps=a.fps, seed=a.seed, threads=a.threads,
                           sampling=SamplingConfig(a.temperature, a.top_k, a.top_p))
        import json

        print(json.dumps(main(g), indent=2))
        return 0
    return run
