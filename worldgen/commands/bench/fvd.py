"""``worldgen bench fvd``: the FVD evaluator's overhead over the raw detector, and its peak memory at N and 4N videos.

Targets (issue 5): the evaluator's time per video (decode + clip cutting + range check + detector + float64 stats)
at most 10% above the raw detector forward on the same clips already in memory, and peak memory flat from N to 4N
videos (the statistics stream; nothing grows with N). Videos are synthetic driving episodes
(``worldgen.data.synthetic``) written to a temporary folder. Peak memory is measured in a fresh child process per
size (``ru_maxrss``, plus ``torch.cuda.max_memory_allocated`` on CUDA), so the two sizes do not share a peak.
Prints one JSON object.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from worldgen.commands import Handler, from_args, print_json


@dataclass
class FVDBenchConfig:
    n: int = 8  # videos for the timing and the small memory point (4N for the large one)
    frames: int = 16  # frames per video (one 16-frame clip each)
    height: int = 64  # video height in pixels
    width: int = 128  # video width in pixels
    size: int = 224  # detector input resolution
    detector: str = "random"  # 'random' or 'i3d:PATH'
    batch_size: int = 8  # clips per detector call
    device: str = "cpu"  # torch device
    repeats: int = 2  # timed repeats (the best is reported)
    out: Optional[str] = None  # also write the JSON here


def configure(parser: argparse.ArgumentParser) -> Handler:
    d = FVDBenchConfig()
    a = parser.add_argument
    a("--n", type=int, default=d.n, help="videos for the timing and the small memory point (4N for the large one)")
    a("--frames", type=int, default=d.frames, help="frames per video (one 16-frame clip each)")
    a("--height", type=int, default=d.height, help="video height in pixels")
    a("--width", type=int, default=d.width, help="video width in pixels")
    a("--size", type=int, default=d.size, help="detector input resolution")
    a("--detector", default=d.detector, help="'random' or 'i3d:PATH'")
    a("--batch-size", type=int, default=d.batch_size, help="clips per detector call")
    a("--device", default=d.device, help="torch device")
    a("--repeats", type=int, default=d.repeats, help="timed repeats (the best is reported)")
    a("--out", default=None, help="also write the JSON here")

    def handler(args: argparse.Namespace) -> int:
        print_json(main(from_args(FVDBenchConfig, args)))
        return 0
    return handler


def _setup(cfg: dict):
    from worldgen.eval.detectors import load_detector
    from worldgen.eval.protocols import Options, get_protocol

    det = load_detector(cfg["detector"], size=cfg["size"], device=cfg["device"])
    opts = Options(offsets="start", batch_size=cfg["batch_size"], progress=False)
    return det, get_protocol("fvd16"), opts


def _evaluator_pass(det, proto, opts, root: Path, n: int):
    from worldgen.eval.protocols import clip_plan, extract
    from worldgen.eval.videos import VideoSet

    videos = VideoSet.from_any(root, limit=n)
    return extract(det, videos, proto, clip_plan(proto, opts, 0, 0), opts)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _raw_pass(det, clips: torch.Tensor, batch_size: int, device: str) -> float:
    """The detector alone on the same clips, already decoded and converted, in the same batches."""
    _sync(device)
    t0 = time.perf_counter()
    for i in range(0, len(clips), batch_size):
        det(clips[i:i + batch_size])
    _sync(device)
    return time.perf_counter() - t0


def _decoded_clips(root: Path, n: int, span: int) -> torch.Tensor:
    from worldgen.eval.detectors import to_detector_input
    from worldgen.eval.videos import VideoSet

    videos = VideoSet.from_any(root, limit=n)
    return to_detector_input(np.stack([videos.get(i)[:span] for i in range(n)]))


def _timing(cfg: dict, root: Path) -> dict:
    det, proto, opts = _setup(cfg)
    clips = _decoded_clips(root, cfg["n"], proto.span)
    _raw_pass(det, clips[: cfg["batch_size"]], cfg["batch_size"], cfg["device"])  # warm-up
    raw, ev, inside = [], [], []
    for _ in range(cfg["repeats"]):
        raw.append(_raw_pass(det, clips, cfg["batch_size"], cfg["device"]))
        _sync(cfg["device"])
        ext = _evaluator_pass(det, proto, opts, root, cfg["n"])
        _sync(cfg["device"])
        ev.append(ext.total_s)
        inside.append(ext.detector_s)
    n = cfg["n"]
    return {"raw_detector_s_per_video": min(raw) / n, "evaluator_s_per_video": min(ev) / n,
            "detector_inside_evaluator_s_per_video": min(inside) / n,
            "overhead": min(ev) / min(raw) - 1.0, "detector": det.info()}


def _peak_worker(cfg: dict, root: str, n: int, queue) -> None:
    torch.set_num_threads(cfg.get("threads") or torch.get_num_threads())
    det, proto, opts = _setup(cfg)
    if cfg["device"].startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    ext = _evaluator_pass(det, proto, opts, Path(root), n)
    cuda = torch.cuda.max_memory_allocated() / 2**20 if cfg["device"].startswith("cuda") else None
    queue.put({"videos": n, "clips": ext.n_clips, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
               / 1024, "peak_cuda_mib": cuda})


def _peak(cfg: dict, root: Path, n: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(cfg, str(root), n, queue))
    proc.start()
    result = queue.get(timeout=3600)
    proc.join()
    return result


def main(cfg: FVDBenchConfig) -> dict:
    """The bench's JSON object (also written to ``cfg.out`` when set)."""
    from worldgen.data.synthetic import make_synthetic_episodes
    from worldgen.io import write_json

    cfg = asdict(cfg)  # a plain dict travels to the spawned memory-measuring processes
    if cfg["n"] < 1 or cfg["frames"] < 16:
        raise ValueError("bench fvd: need --n >= 1 and --frames >= 16")
    with tempfile.TemporaryDirectory(prefix="worldgen-bench-fvd-") as tmp:
        root = Path(tmp) / "videos"
        make_synthetic_episodes(root, 4 * cfg["n"], cfg["frames"], size=(cfg["height"], cfg["width"]), seed=0)
        timing = _timing(cfg, root)
        cfg = {**cfg, "threads": torch.get_num_threads()}
        small, large = _peak(cfg, root, cfg["n"]), _peak(cfg, root, 4 * cfg["n"])
    result = {"bench": "fvd", **{k: cfg[k] for k in ("n", "frames", "height", "width", "size", "batch_size",
                                                      "device", "repeats")},
              "torch_threads": cfg["threads"], "machine": platform.processor() or platform.machine(), **timing,
              "overhead_target": 0.10, "memory": [small, large],
              "peak_rss_ratio_4n_over_n": large["peak_rss_mib"] / small["peak_rss_mib"]}
    if cfg.get("out"):
        write_json(cfg["out"], result)
    return result


__all__ = ["FVDBenchConfig", "main", "configure"]
