"""``worldgen bench rollout`` and ``worldgen bench train``: DrivingWorld GPT speed/memory, one JSON object each.

rollout: KV-cached vs uncached (full recomputation) per-frame time and token identity for the same seed, per-frame
time at the start and the end of a long cached horizon, resident memory at the start/end and its peak, and frames
per second at batch 1 (tokens only, and including streamed decoding to pixels -- chunks with their past
codes, as ``worldgen generate drivingworld`` decodes -- when ``--tokenizer`` is given).
train: tokens/s of full training steps (forward, backward, AdamW), achieved TFLOP/s from a FLOP count of one step
(``torch.utils.flop_counter``), the peak TFLOP/s of a plain matmul of similar shape measured in the same run, and
MFU = achieved / peak. Weights are seeded random unless ``--ckpt`` is given: speed does not depend on training.
On a shared CPU wall times depend on the load, so the rollout bench also reports process-CPU seconds per frame and
the 1-minute load average.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from worldgen.commands import Handler, from_args, print_json


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(config: str, ckpt: str | None, overrides=()):
    from worldgen.registry import load_experiment
    from worldgen.worldmodel.model import DrivingWorldGPT

    if ckpt:
        from worldgen.worldmodel.generate import load_model

        model, _ = load_model(ckpt)
        return model, None
    cfg = load_experiment(config, overrides)
    torch.manual_seed(cfg.seed)
    return DrivingWorldGPT(cfg.model).eval(), cfg


def random_context(model, frames: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, model.cfg.codebook_size, (1, frames, model.n_img), generator=g)
    ego = torch.stack([torch.randint(0, v, (1, frames), generator=g) for v in model.ego_vocab], -1)
    return {"img": img, "ego": ego, "keep": torch.ones(1, frames, dtype=torch.bool)}


def bench_rollout(config: str, frames: int = 400, uncached_frames: int = 2, ckpt: str | None = None,
                  tokenizer: str | None = None, threads: int = 1, seed: int = 0, overrides=()) -> dict:
    from worldgen.worldmodel.rollout import SamplingConfig, rollout

    torch.set_num_threads(threads)
    model, _ = _model(config, ckpt, overrides)
    ctx = random_context(model, model.cfg.context_frames, seed)
    sampling = SamplingConfig()
    short_c = rollout(model, ctx, uncached_frames, sampling, seed, cached=True)
    short_u = rollout(model, ctx, uncached_frames, sampling, seed, cached=False)
    identical = bool(torch.equal(short_c["img"], short_u["img"]) and torch.equal(short_c["ego"], short_u["ego"]))
    rss_start = _rss_mb()
    rss_marks = []
    long = rollout(model, ctx, frames, sampling, seed + 1, cached=True, progress=True,
                   on_frame=lambda i, _: rss_marks.append(_rss_mb()) if i in (frames // 10, frames - 1) else None)
    fs = np.asarray(long["frame_s"])
    k = max(1, frames // 10)
    cached_s = float(np.median(fs))
    uncached_s = float(np.median(short_u["frame_s"]))
    out = {
        "config": config, "overrides": list(overrides), "parameters": sum(p.numel() for p in model.parameters()),
        "frames": frames, "tokens_per_frame": model.n, "context_frames": model.cfg.context_frames,
        "threads": threads, "per_frame_s_cached": cached_s, "per_frame_s_uncached": uncached_s,
        "uncached_frames_timed": uncached_frames, "speedup": uncached_s / cached_s, "tokens_identical": identical,
        "per_frame_s_at_start": float(np.median(fs[:k])), "per_frame_s_at_end": float(np.median(fs[-k:])),
        "end_over_start": float(np.median(fs[-k:]) / np.median(fs[:k])),
        "rss_mb_after_10pct": rss_marks[0] if rss_marks else rss_start, "rss_mb_at_end": rss_marks[-1] if rss_marks
        else rss_start, "peak_rss_mb": _peak_rss_mb(), "frames_per_s_tokens_only": 1.0 / float(np.mean(fs)),
    }
    cs, cu = np.asarray(long["frame_cpu_s"]), short_u["frame_cpu_s"]
    out.update({"cpu_s_per_frame_cached": float(np.median(cs)), "cpu_s_per_frame_uncached": float(np.median(cu)),
                "speedup_cpu": float(np.median(cu) / np.median(cs)), "cpu_s_at_start": float(np.median(cs[:k])),
                "cpu_s_at_end": float(np.median(cs[-k:])), "cpu_end_over_start": float(np.median(cs[-k:]) /
                                                                                     np.median(cs[:k])),
                "load_avg_1min": os.getloadavg()[0], "cpu_count": os.cpu_count()})
    out.update(_decode_rate(tokenizer, long, model, fs, ctx))
    return out


def _decode_rate(tokenizer: str | None, long: dict, model, fs: np.ndarray, context: dict, frames: int = 50,
                 chunk: int = 8) -> dict:
    """Frames/s including decoding the generated frames to pixels the way ``worldgen generate drivingworld`` does:
    streamed in chunks of ``chunk`` frames, each with its past codes (the context's first), batch 1."""
    if not tokenizer:
        return {"frames_per_s": None, "decode_note": "no --tokenizer given: frames_per_s_tokens_only excludes decoding"}
    from worldgen.pipelines.drivingworld import StreamingDecoder
    from worldgen.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    codes = long["img"].reshape(-1, 1, model.h, model.w)[:frames]  # t 1 h w: one generated frame after another
    past = context["img"].reshape(1, -1, model.h, model.w)
    decoder = StreamingDecoder(tok, past=past, chunk=chunk, keep=False)
    t0 = time.perf_counter()
    for c in codes:
        decoder.push(c)
    decoder.flush()
    dec = (time.perf_counter() - t0) / len(codes)
    return {"decode_s_per_frame": dec, "decode_chunk": chunk, "frames_per_s": 1.0 / (float(np.mean(fs)) + dec)}


def _train_batch(model, batch: int, frames: int, seed: int) -> dict:
    ctx = random_context(model, frames, seed)
    return {k: v.expand(batch, *v.shape[1:]).clone() for k, v in ctx.items()}


def matmul_peak_tflops(m: int, k: int, n: int, dtype=torch.float32, reps: int = 5) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e12


def bench_train(config: str, steps: int = 5, batch: int | None = None, threads: int | None = None,
                seed: int = 0, overrides=()) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from worldgen.worldmodel.drift import world_model_loss

    if threads:
        torch.set_num_threads(threads)
    model, cfg = _model(config, None, overrides)
    model.train()
    b = batch or cfg.data.batch_size
    frames = cfg.data.clip_frames or cfg.model.context_frames + 1
    data = _train_batch(model, b, frames, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss, _ = world_model_loss(model, data, cfg.drift, train=True)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    tokens = b * frames * model.n
    achieved = flops / step_s / 1e12
    peak = matmul_peak_tflops(tokens, cfg.model.width, int(cfg.model.width * cfg.model.mlp_ratio))
    return {"config": config, "batch": b, "frames": frames, "tokens_per_step": tokens, "threads":
            torch.get_num_threads(), "step_s": step_s, "tokens_per_s": tokens / step_s, "flops_per_step": flops,
            "achieved_tflops": achieved, "matmul_peak_tflops": peak, "matmul_dtype": "float32", "mfu": achieved / peak}


@dataclass
class RolloutBenchConfig:
    config: str = "configs/drivingworld/gpt_tiny.yaml"  # experiment YAML of the GPT (seeded random weights)
    ckpt: Optional[str] = None  # trained run folder instead of random weights
    frames: int = 400  # cached rollout length
    uncached_frames: int = 2  # frames timed without the KV cache (slow)
    tokenizer: Optional[str] = None  # VQ tokenizer folder: include decoding to pixels in frames_per_s
    threads: int = 1  # torch CPU threads
    seed: int = 0
    overrides: list = field(default_factory=list)  # key=value config overrides (e.g. model.width=512)


def rollout_main(cfg: RolloutBenchConfig) -> dict:
    return bench_rollout(cfg.config, cfg.frames, cfg.uncached_frames, cfg.ckpt, cfg.tokenizer, cfg.threads, cfg.seed,
                         cfg.overrides)


def configure_rollout(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--config", default=RolloutBenchConfig.config)
    parser.add_argument("--ckpt", help="trained run folder (default: seeded random weights from --config)")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--uncached-frames", type=int, default=2, help="frames timed without the cache (slow)")
    parser.add_argument("--tokenizer", help="VQ tokenizer folder: include decoding to pixels in frames_per_s")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. model.width=512)")

    def handler(args: argparse.Namespace) -> int:
        print_json(rollout_main(from_args(RolloutBenchConfig, args)), indent=None)
        return 0
    return handler


@dataclass
class TrainBenchConfig:
    config: str = "configs/drivingworld/gpt_tiny.yaml"  # experiment YAML of the GPT (seeded random weights)
    steps: int = 5  # timed training steps
    batch: Optional[int] = None  # None = the config's data.batch_size
    threads: Optional[int] = None  # torch CPU threads; None = torch's default
    seed: int = 0
    overrides: list = field(default_factory=list)  # key=value config overrides


def train_main(cfg: TrainBenchConfig) -> dict:
    return bench_train(cfg.config, cfg.steps, cfg.batch, cfg.threads, cfg.seed, cfg.overrides)


def configure_train(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--config", default=TrainBenchConfig.config)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")

    def handler(args: argparse.Namespace) -> int:
        print_json(train_main(from_args(TrainBenchConfig, args)), indent=None)
        return 0
    return handler


__all__ = ["bench_rollout", "bench_train", "RolloutBenchConfig", "rollout_main", "configure_rollout",
           "TrainBenchConfig", "train_main", "configure_train"]
