"""``worldgen bench rollout`` and ``worldgen bench train``: DrivingWorld GPT speed/memory, one JSON object each.

rollout: KV-cached vs uncached (full recomputation) per-frame time and token identity for the same seed, per-frame
time at the start and the end of a long cached horizon, resident memory at the start/end and its peak, and frames
per second at batch 1 (tokens only, and including streamed decoding to pixels -- chunks with their past
codes, as ``worldgen generate drivingworld`` decodes -- when ``--tokenizer`` is given). Issue 16 adds the split of a
frame into window fusion and token decoding, ``per_token_ms``, the weight-streaming limit per token (weight bytes /
copy bandwidth measured in the same run: ``limit_ms_per_token``, ``limit_ratio`` = measured / limit, also against
cache bandwidth), ``realtime_factor`` = frames/s / data fps, ``--batch B`` throughput against batch 1 and
``--compile`` (the compiled image-token step against the eager one), and the compute bound: FLOPs per frame /
measured matmul peak = the most frames/s any batch could reach (``batch_speedup_compute_bound``).
train: tokens/s of full training steps (forward, backward, AdamW; ``--precision bf16``: autocast), achieved TFLOP/s
from a FLOP count of one step (``torch.utils.flop_counter``), the peak TFLOP/s of plain matmuls (the model's MLP
shape and 2048^3) measured in the same run and dtype, and MFU = achieved / peak. Weights are seeded random unless
``--ckpt`` is given: speed does not depend on training.
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


def copy_bandwidth_gbs(mbytes: float, reps: int = 5, min_s: float = 0.02) -> float:
    """Best bandwidth of ``dst.copy_(src)`` over buffers of ``mbytes`` MB, counting the bytes read plus written."""
    n = max(1024, int(mbytes * 2**20 / 4))
    src, dst = torch.randn(n), torch.empty(n)
    inner = max(1, int(min_s * 20e9 / (8 * n)))  # ~min_s per timing at ~20 GB/s
    dst.copy_(src)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            dst.copy_(src)
        best = min(best, (time.perf_counter() - t0) / inner)
    return 8 * n / best / 1e9


def bytes_per_token(model) -> dict:
    """Bytes one image token reads: weights of every AR block, the output norm and the image head (the ego heads
    serve 3 of ``n`` positions), plus the in-frame keys/values at the mean prefix length."""
    tensors = [*model.ar.parameters(), model.norm_out.weight, *model.head_img.parameters()]
    weights = sum(t.numel() * t.element_size() for t in tensors)
    elem = next(model.parameters()).element_size()
    kv = len(model.ar) * 2 * (model.n + 1) / 2 * model.cfg.width * elem
    return {"weight_bytes_per_token": weights, "kv_bytes_per_token_mean": kv}


def _median_ms(xs) -> float:
    return float(np.median(xs)) * 1e3


def _speed_fields(res: dict, n_tokens: int, k: int) -> dict:
    """Per-frame fusion vs decoding split and per-token cost of one long cached rollout (wall and process CPU)."""
    fs, cs = np.asarray(res["frame_s"]), np.asarray(res["frame_cpu_s"])
    fu, fuc = np.asarray(res["fuse_s"]), np.asarray(res["fuse_cpu_s"])
    return {"fuse_ms_per_frame": _median_ms(fu), "decode_ms_per_frame": _median_ms(fs - fu),
            "fuse_cpu_ms_per_frame": _median_ms(fuc), "decode_cpu_ms_per_frame": _median_ms(cs - fuc),
            "per_token_ms": _median_ms(fs - fu) / n_tokens, "per_token_cpu_ms": _median_ms(cs - fuc) / n_tokens,
            "per_frame_s_at_start": float(np.median(fs[:k])), "per_frame_s_at_end": float(np.median(fs[-k:])),
            "end_over_start": float(np.median(fs[-k:]) / np.median(fs[:k])),
            "cpu_s_at_start": float(np.median(cs[:k])), "cpu_s_at_end": float(np.median(cs[-k:])),
            "cpu_end_over_start": float(np.median(cs[-k:]) / np.median(cs[:k]))}


def _limit_fields(model, per_token_ms: float, per_token_cpu_ms: float) -> dict:
    """Weight-streaming limit per token: weight bytes / copy bandwidth measured now, from memory (a 256 MB copy) and
    from cache (a copy the size of the weights, which stay cache-resident across tokens at batch 1)."""
    b = bytes_per_token(model)
    dram, cache = copy_bandwidth_gbs(256), copy_bandwidth_gbs(b["weight_bytes_per_token"] / 2**20)
    limit, limit_cache = b["weight_bytes_per_token"] / dram / 1e6, b["weight_bytes_per_token"] / cache / 1e6
    return {**b, "copy_bandwidth_gbs": dram, "copy_bandwidth_gbs_weights_size": cache, "limit_ms_per_token": limit,
            "limit_ratio": per_token_ms / limit, "limit_ratio_cpu": per_token_cpu_ms / limit,
            "limit_ms_per_token_cache": limit_cache, "limit_ratio_cache": per_token_ms / limit_cache,
            "limit_ratio_cache_cpu": per_token_cpu_ms / limit_cache}


def batch_context(ctx: dict, batch: int) -> dict:
    return {k: v.expand(batch, *v.shape[1:]).clone() for k, v in ctx.items()}


def _batch_fields(model, ctx: dict, batch: int, frames: int, sampling, seed: int) -> dict:
    """Frames/s of ``batch`` independent rollouts (per-sample seeds) against batch 1, timed back to back."""
    from worldgen.worldmodel.rollout import rollout

    out = {"batch": batch, "batch_frames": frames}
    for b in (1, batch):
        r = rollout(model, batch_context(ctx, b), frames, sampling, seed)
        out[f"frames_per_s_batch{b}"] = b * frames / float(np.sum(r["frame_s"]))
        out[f"frames_per_s_cpu_batch{b}"] = b * frames / float(np.sum(r["frame_cpu_s"]))
    out["batch_speedup"] = out[f"frames_per_s_batch{batch}"] / out["frames_per_s_batch1"]
    out["batch_speedup_cpu"] = out[f"frames_per_s_cpu_batch{batch}"] / out["frames_per_s_cpu_batch1"]
    return out


def _compute_fields(model, ctx: dict, sampling, fps_batch1_cpu: Optional[float]) -> dict:
    """Compute bound: FLOPs of one frame (fusion + decoding, ``FlopCounterMode``) / the best matmul TFLOP/s measured
    now (2048^3 or the fusion MLP's shape, the model's dtype) = the most frames/s any batch could reach on this core;
    over batch 1's frames/s it bounds the batch speedup."""
    from torch.utils.flop_counter import FlopCounterMode

    from worldgen.worldmodel.rollout import FrameDecoder, uniforms

    dtype = next(model.parameters()).dtype
    dec = FrameDecoder(model, sampling, True, 1, "cpu", dtype)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as fc:
            fused = dec.fuse(ctx)
        fuse_flops = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            dec.decode(fused, None, uniforms([torch.Generator().manual_seed(0)], dec.draws(False), "cpu"))
        decode_flops = fc.get_total_flops()
    rows, d = model.cfg.context_frames * model.n, model.cfg.width
    peak = max(matmul_peak_tflops(2048, 2048, 2048, dtype), matmul_peak_tflops(rows, d, int(d * model.cfg.mlp_ratio),
                                                                              dtype))
    limit = peak * 1e12 / (fuse_flops + decode_flops)
    out = {"fuse_flops_per_frame": fuse_flops, "decode_flops_per_frame": decode_flops, "matmul_peak_tflops": peak,
           "compute_limit_frames_per_s": limit}
    if fps_batch1_cpu:
        out["batch_speedup_compute_bound"] = limit / fps_batch1_cpu
    return out


def _compile_fields(model, ctx: dict, frames: int, sampling, seed: int) -> dict:
    """The ``torch.compile``d image-token step against the eager one: compile time, per-frame cost, same tokens."""
    from worldgen.worldmodel.rollout import rollout

    t0 = time.perf_counter()
    rollout(model, ctx, 1, sampling, seed, compile=True)
    compile_s = time.perf_counter() - t0
    c = rollout(model, ctx, frames, sampling, seed, compile=True)
    e = rollout(model, ctx, frames, sampling, seed)
    return {"compile_s": compile_s, "compiled_frames": frames,
            "compiled_cpu_ms_per_frame": _median_ms(c["frame_cpu_s"]), "eager_cpu_ms_per_frame": _median_ms(
                e["frame_cpu_s"]), "compiled_ms_per_frame": _median_ms(c["frame_s"]),
            "eager_ms_per_frame": _median_ms(e["frame_s"]),
            "compiled_tokens_identical": bool(torch.equal(c["img"], e["img"]) and torch.equal(c["ego"], e["ego"]))}


def top_ops(prof, n: int) -> list:
    """The ``n`` operators with most self CPU time of a ``torch.profiler`` run: [name, self ms, share, calls]."""
    ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ev) or 1.0
    return [[e.key, round(e.self_cpu_time_total / 1e3, 3), round(e.self_cpu_time_total / total, 4), e.count]
            for e in ev[:n]]


def _profile_fields(model, ctx: dict, sampling, n: int, batch: int = 1, frames: int = 5) -> dict:
    """Top operators (``torch.profiler``, self CPU time) of the window fusion and of the token decoding, apart."""
    from torch.profiler import ProfilerActivity, profile

    from worldgen.worldmodel.rollout import FrameDecoder, uniforms

    c = batch_context(ctx, batch)
    dec = FrameDecoder(model, sampling, True, batch, "cpu", next(model.parameters()).dtype)
    gens = [torch.Generator().manual_seed(i) for i in range(batch)]
    out = {}
    with torch.inference_mode():
        fused = dec.fuse(c)
        dec.decode(fused, None, uniforms(gens, dec.draws(False), "cpu"))  # warm-up
        for part in ("fusion", "decode"):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(frames):
                    if part == "fusion":
                        dec.fuse(c)
                    else:
                        dec.decode(fused, None, uniforms(gens, dec.draws(False), "cpu"))
            out[f"profile_{part}_batch{batch}"] = top_ops(prof, n)
    return out


def bench_rollout(config: str, frames: int = 400, uncached_frames: int = 2, ckpt: str | None = None,
                  tokenizer: str | None = None, threads: int = 1, seed: int = 0, overrides=(), batch: int = 0,
                  compile: bool = False, fps: float = 10.0, batch_frames: int = 40, profile: int = 0) -> dict:
    from worldgen.worldmodel.rollout import SamplingConfig, rollout

    torch.set_num_threads(threads)
    load_start = os.getloadavg()[0]
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
    fs, cs = np.asarray(long["frame_s"]), np.asarray(long["frame_cpu_s"])
    k = max(1, frames // 10)
    cached_s, uncached_s = float(np.median(fs)), float(np.median(short_u["frame_s"]))
    cached_cpu, uncached_cpu = float(np.median(cs)), float(np.median(short_u["frame_cpu_s"]))
    out = {
        "config": config, "overrides": list(overrides), "parameters": sum(p.numel() for p in model.parameters()),
        "frames": frames, "tokens_per_frame": model.n, "context_frames": model.cfg.context_frames,
        "threads": threads, "per_frame_s_cached": cached_s, "per_frame_s_uncached": uncached_s,
        "uncached_frames_timed": uncached_frames, "speedup": uncached_s / cached_s, "tokens_identical": identical,
        "cpu_s_per_frame_cached": cached_cpu, "cpu_s_per_frame_uncached": uncached_cpu,
        "speedup_cpu": uncached_cpu / cached_cpu, **_speed_fields(long, model.n, k),
        "rss_mb_after_10pct": rss_marks[0] if rss_marks else rss_start, "rss_mb_at_end": rss_marks[-1] if rss_marks
        else rss_start, "peak_rss_mb": _peak_rss_mb(), "frames_per_s_tokens_only": 1.0 / float(np.mean(fs)),
        "frames_per_s_tokens_only_cpu": 1.0 / float(np.mean(cs)), "data_fps": fps,
    }
    out.update(_limit_fields(model, out["per_token_ms"], out["per_token_cpu_ms"]))
    if batch > 1:
        out.update(_batch_fields(model, ctx, batch, min(frames, batch_frames), sampling, seed))
    out.update(_compute_fields(model, ctx, sampling, out.get("frames_per_s_cpu_batch1")))
    if compile:
        out.update(_compile_fields(model, ctx, min(frames, batch_frames), sampling, seed))
    if profile:
        for b in sorted({1, max(batch, 1)}):
            out.update(_profile_fields(model, ctx, sampling, profile, b))
    out.update(_decode_rate(tokenizer, long, model, fs, ctx, cs=cs))
    rate = out["frames_per_s"] or out["frames_per_s_tokens_only"]
    rate_cpu = out.get("frames_per_s_cpu") or out["frames_per_s_tokens_only_cpu"]
    out.update({"realtime_factor": rate / fps, "realtime_factor_cpu": rate_cpu / fps,
                "realtime_factor_includes_decoding": out["frames_per_s"] is not None,
                "load_avg_1min": os.getloadavg()[0], "load_avg_1min_at_start": load_start,
                "cpu_count": os.cpu_count()})
    return out


def _decode_rate(tokenizer: str | None, long: dict, model, fs: np.ndarray, context: dict, frames: int = 50,
                 chunk: int = 8, cs: Optional[np.ndarray] = None) -> dict:
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
    t0, c0 = time.perf_counter(), time.process_time()
    for c in codes:
        decoder.push(c)
    decoder.flush()
    dec, dec_cpu = (time.perf_counter() - t0) / len(codes), (time.process_time() - c0) / len(codes)
    out = {"decode_s_per_frame": dec, "decode_cpu_s_per_frame": dec_cpu, "decode_chunk": chunk,
           "frames_per_s": 1.0 / (float(np.mean(fs)) + dec)}
    if cs is not None:
        out["frames_per_s_cpu"] = 1.0 / (float(np.mean(cs)) + dec_cpu)
    return out


def _train_batch(model, batch: int, frames: int, seed: int) -> dict:
    ctx = random_context(model, frames, seed)
    return {k: v.expand(batch, *v.shape[1:]).clone() for k, v in ctx.items()}


def matmul_peak_tflops(m: int, k: int, n: int, dtype=torch.float32, reps: int = 5, min_s: float = 0.05) -> float:
    """Best TFLOP/s of ``(m, k) @ (k, n)`` in ``dtype`` (each timing repeats the product for ~``min_s``)."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    t0 = time.perf_counter()
    a @ b
    inner = max(1, int(min_s / max(time.perf_counter() - t0, 1e-6)))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2 * m * k * n / best / 1e12


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def bench_train(config: str, steps: int = 5, batch: int | None = None, threads: int | None = None,
                seed: int = 0, overrides=(), precision: str = "fp32", profile: int = 0) -> dict:
    """Training-step speed and MFU: FLOPs of one step (``FlopCounterMode``) / median step time / the best matmul
    TFLOP/s measured in the same run and dtype (the model's MLP shape and a 2048^3 product, whichever is faster).
    ``bf16`` runs forward and loss under CPU autocast (Lightning's ``bf16-mixed``), weights and AdamW in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    from worldgen.worldmodel.drift import world_model_loss

    if precision not in PRECISIONS:
        raise ValueError(f"bench train: --precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if threads:
        torch.set_num_threads(threads)
    load_start = os.getloadavg()[0]
    model, cfg = _model(config, None, overrides)
    model.train()
    b = batch or cfg.data.batch_size
    frames = cfg.data.clip_frames or cfg.model.context_frames + 1
    data = _train_batch(model, b, frames, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dtype = PRECISIONS[precision]

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
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
    peak_model = matmul_peak_tflops(tokens, cfg.model.width, int(cfg.model.width * cfg.model.mlp_ratio), dtype)
    peak_square = matmul_peak_tflops(2048, 2048, 2048, dtype)
    peak = max(peak_model, peak_square)
    extra = {}
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        extra["profile_train_step"] = top_ops(prof, profile)
    return {"config": config, "overrides": list(overrides), "parameters": sum(p.numel() for p in model.parameters()),
            "width": cfg.model.width, "precision": precision, "batch": b, "frames": frames, "tokens_per_step": tokens,
            "threads": torch.get_num_threads(), "step_s": step_s, "tokens_per_s": tokens / step_s,
            "flops_per_step": flops, "achieved_tflops": achieved, "matmul_peak_tflops": peak,
            "matmul_peak_tflops_model_shape": peak_model, "matmul_peak_tflops_2048": peak_square,
            "matmul_dtype": str(dtype).removeprefix("torch."), "mfu": achieved / peak,
            "load_avg_1min_at_start": load_start, "load_avg_1min": os.getloadavg()[0], **extra}


@dataclass
class RolloutBenchConfig:
    config: str = "configs/drivingworld/gpt_tiny.yaml"  # experiment YAML of the GPT (seeded random weights)
    ckpt: Optional[str] = None  # trained run folder instead of random weights
    frames: int = 400  # cached rollout length
    uncached_frames: int = 2  # frames timed without the KV cache (slow)
    tokenizer: Optional[str] = None  # VQ tokenizer folder: include decoding to pixels in frames_per_s
    threads: int = 1  # torch CPU threads
    seed: int = 0
    batch: int = 0  # > 1: also frames/s of this many independent rollouts against batch 1
    batch_frames: int = 40  # frames of the batch (and compile) comparison
    compile: bool = False  # also time the torch.compile'd image-token step (one-off compile first)
    fps: float = 10.0  # frame rate of the data: realtime_factor = frames_per_s / fps
    profile: int = 0  # > 0: also the top-N operators (torch.profiler) of fusion and decoding (at 1 and --batch)
    overrides: list = field(default_factory=list)  # key=value config overrides (e.g. model.width=512)


def rollout_main(cfg: RolloutBenchConfig) -> dict:
    if cfg.frames < 1 or cfg.uncached_frames < 1 or cfg.batch < 0 or cfg.batch_frames < 1 or not cfg.fps > 0:
        raise ValueError("bench rollout: --frames, --uncached-frames and --batch-frames must be >= 1, --batch >= 0, "
                         f"--fps > 0 (got {cfg.frames}, {cfg.uncached_frames}, {cfg.batch_frames}, {cfg.batch}, "
                         f"{cfg.fps})")
    return bench_rollout(cfg.config, cfg.frames, cfg.uncached_frames, cfg.ckpt, cfg.tokenizer, cfg.threads, cfg.seed,
                         cfg.overrides, cfg.batch, cfg.compile, cfg.fps, cfg.batch_frames, cfg.profile)


def configure_rollout(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--config", default=RolloutBenchConfig.config)
    parser.add_argument("--ckpt", help="trained run folder (default: seeded random weights from --config)")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--uncached-frames", type=int, default=2, help="frames timed without the cache (slow)")
    parser.add_argument("--tokenizer", help="VQ tokenizer folder: include decoding to pixels in frames_per_s")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=0, help="> 1: also frames/s of B independent rollouts vs 1")
    parser.add_argument("--batch-frames", type=int, default=40, help="frames of the batch / compile comparison")
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd image-token step")
    parser.add_argument("--fps", type=float, default=10.0, help="data frame rate for realtime_factor")
    parser.add_argument("--profile", type=int, default=0, help="> 0: top-N profiler ops of fusion and decoding")
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
    precision: str = "fp32"  # fp32 or bf16 (CPU autocast, as bf16-mixed training)
    profile: int = 0  # > 0: also the top-N operators (torch.profiler) of one training step
    overrides: list = field(default_factory=list)  # key=value config overrides


def train_main(cfg: TrainBenchConfig) -> dict:
    return bench_train(cfg.config, cfg.steps, cfg.batch, cfg.threads, cfg.seed, cfg.overrides, cfg.precision,
                       cfg.profile)


def configure_train(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--config", default=TrainBenchConfig.config)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--precision", default="fp32", choices=sorted(PRECISIONS))
    parser.add_argument("--profile", type=int, default=0, help="> 0: top-N profiler ops of one training step")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")

    def handler(args: argparse.Namespace) -> int:
        print_json(train_main(from_args(TrainBenchConfig, args)), indent=None)
        return 0
    return handler


__all__ = ["bench_rollout", "bench_train", "RolloutBenchConfig", "rollout_main", "configure_rollout",
           "TrainBenchConfig", "train_main", "configure_train"]
