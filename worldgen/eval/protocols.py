"""FVD protocols, short and long horizon, and the Python API the model packages use for their drift ablations.

FVD (Unterthiner et al., 2018) compares I3D features of real and generated clips with the Fréchet distance of their
Gaussians (``worldgen.eval.frechet``; 1/N covariances, ``worldgen.eval.stats``). Protocols (``PROTOCOLS``):

- ``fvd16``      one 16-frame clip per video (``clips_per_video`` of them) at a seeded random offset or at frame 0.
- ``fvd128``     the same with 128-frame clips (I3D sees all 128 frames).
- ``fvd128_s8``  16 frames taken every 8th frame of a 128-frame span (frames 0, 8, ..., 120 of the span).
- ``block16``    NUWA-XL (Yin et al., 2023) style: the videos are cut into consecutive 16-frame blocks from frame 0;
                 FVD of real block k against generated block k, for every block all videos have; the blocks' mean.
- ``drift``      a fixed reference of real 16-frame clips (as ``fvd16``) against each 16-frame window of the long
                 generated videos, windows starting at 0, stride, 2*stride, ...: a curve of FVD over the horizon.
- ``prefix``     the same reference against all windows inside the first L frames, for L = 16, 32, 64, ... and the
                 whole horizon: how quality accumulates as the videos grow.

Every protocol needs clips of at least ``worldgen.eval.i3d.MIN_FRAMES`` frames; a video shorter than what the
protocol needs raises ``ValueError`` naming it. Seeds pick the random clip offsets (and so the real reference); runs
over several seeds report the mean and the spread (sample standard deviation over seeds, ``ddof=1``). A video's
random offsets come from the seed, its length and a digest of its pixels (``content_key``), never from its side or its
place in the list: the same video gets the same clips on either side, so FVD of a set against itself is 0 with
random offsets too, while different videos get independent offsets.

Python API (used by the world model and ART-V)::

    from worldgen.eval.protocols import fvd_drift, evaluate
    res = fvd_drift(real_videos, fake_videos, window=16, stride=8, detector="random", seeds=(0, 1))
    res["curve"]["x"], res["curve"]["mean"]      # window start frames, FVD per window (mean over seeds)
    res = evaluate(real, fake, protocol="fvd16", detector="i3d:/path/i3d_torchscript.pt")
    res["fvd"], res["fvd_std"]

``real_videos``/``fake_videos``: uint8 arrays ``b t h w c``, lists of ``t h w c`` arrays, or paths (a folder of mp4,
an episode folder); float arrays need ``input_range=(lo, hi)``. ``detector`` is ``"random"``, ``"i3d:PATH"`` or a
``Detector``. The returned dict is the JSON ``worldgen eval fvd`` writes (``write_result`` adds the PNG plot).
"""
from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from worldgen.eval.detectors import Detector, load_detector, to_detector_input
from worldgen.eval.frechet import frechet_from_stats
from worldgen.eval.i3d import MIN_FRAMES
from worldgen.eval.stats import FeatureStats
from worldgen.eval.videos import VideoSet


@dataclass(frozen=True)
class Protocol:
    name: str
    clip_len: int  # frames fed to the detector per clip
    stride: int  # step between those frames in the video
    kind: str  # single | blocks | windows
    description: str = ""

    @property
    def span(self) -> int:
        return (self.clip_len - 1) * self.stride + 1


PROTOCOLS = {
    "fvd16": Protocol("fvd16", 16, 1, "single", "16-frame clips"),
    "fvd128": Protocol("fvd128", 128, 1, "single", "128-frame clips"),
    "fvd128_s8": Protocol("fvd128_s8", 16, 8, "single", "16 frames at stride 8 over a 128-frame span"),
    "block16": Protocol("block16", 16, 1, "blocks", "NUWA-XL: FVD per 16-frame block k (real k vs fake k), averaged"),
    "drift": Protocol("drift", 16, 1, "windows", "FVD of each 16-frame window of the fake videos vs fixed real clips"),
    "prefix": Protocol("prefix", 16, 1, "windows", "FVD of all 16-frame windows in the first L frames vs real clips"),
}

FVD_IS = {  # what the headline "fvd" number of each protocol is
    "fvd16": "FVD of the 16-frame clips", "fvd128": "FVD of the 128-frame clips",
    "fvd128_s8": "FVD of the stride-8 16-frame clips", "block16": "mean of the per-block FVDs",
    "drift": "mean of the per-window FVDs (the curve is the result)", "prefix": "FVD of the full-horizon prefix",
}


@dataclass
class Options:
    offsets: str = "random"  # random | start: where single/reference clips begin
    clips_per_video: int = 1  # clips per video for single protocols and the drift/prefix real reference
    window_stride: int = 16  # frames between drift/prefix window starts
    horizon: int | None = None  # frames of each video used by block16/drift/prefix (None: as long as all have)
    batch_size: int = 8  # clips per detector call
    n_real: int | None = None  # use only the first n real videos (sorted)
    n_fake: int | None = None  # use only the first n fake videos (sorted)
    progress: bool | None = None  # tqdm bars (None: only on a terminal)


def get_protocol(name: str, window: int | None = None) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"protocol {name!r}: expected one of {sorted(PROTOCOLS)}")
    p = PROTOCOLS[name]
    if window is not None and window != p.clip_len:
        if p.kind != "windows":
            raise ValueError(f"protocol {name}: the window length is fixed at {p.clip_len} frames")
        p = Protocol(p.name, int(window), 1, p.kind, p.description.replace("16-frame", f"{window}-frame"))
    if p.clip_len < MIN_FRAMES:
        raise ValueError(f"protocol {name}: clips of {p.clip_len} frames are too short for I3D "
                         f"(needs at least {MIN_FRAMES})")
    return p


# ----------------------------------------------------------------------------------------------- clip plans

def _need(n_frames: int, span: int, name: str, protocol: Protocol) -> None:
    if n_frames < span:
        raise ValueError(f"{name}: {n_frames} frames, but protocol {protocol.name} needs clips spanning {span} frames "
                         f"(I3D itself needs at least {MIN_FRAMES})")


def content_key(frames: np.ndarray) -> int:
    """A 64-bit digest of a video's pixels and shape: identical videos share their random clip offsets."""
    h = hashlib.blake2b(str((frames.shape, frames.dtype.str)).encode(), digest_size=8)
    h.update(np.ascontiguousarray(frames).data)
    return int.from_bytes(h.digest(), "little")


def reference_starts(n_frames: int, protocol: Protocol, opts: Options, seed: int, key: int) -> list[int]:
    """Clip starts for single protocols and the drift/prefix reference; seeded per (seed, video length, video
    content ``key``), so the same video gets the same clips on the real and the fake side."""
    span, k = protocol.span, opts.clips_per_video
    if opts.offsets == "start":
        return [i * span for i in range(k) if (i + 1) * span <= n_frames] or [0]
    if opts.offsets != "random":
        raise ValueError(f"offsets: expected 'random' or 'start', got {opts.offsets!r}")
    rng = np.random.default_rng([seed, n_frames, key])
    return sorted(int(s) for s in rng.integers(0, n_frames - span + 1, size=k))


def _limit(n_frames: int, opts: Options) -> int:
    return n_frames if opts.horizon is None else min(n_frames, opts.horizon)


def block_starts(n_frames: int, protocol: Protocol, opts: Options) -> list[int]:
    return list(range(0, _limit(n_frames, opts) - protocol.span + 1, protocol.span))


def window_starts(n_frames: int, protocol: Protocol, opts: Options) -> list[int]:
    return list(range(0, _limit(n_frames, opts) - protocol.span + 1, opts.window_stride))


def clip_plan(protocol: Protocol, opts: Options, seed: int, side: int) -> Callable[[np.ndarray, str], list]:
    """``plan(frames, name) -> [(group, start), ...]``; ``side`` 0 = real, 1 = fake."""
    def plan(frames: np.ndarray, name: str) -> list:
        n_frames = int(frames.shape[0])
        _need(n_frames, protocol.span, name, protocol)
        if protocol.kind == "blocks":
            return [(s, s) for s in block_starts(n_frames, protocol, opts)]
        if protocol.kind == "windows" and side == 1:
            return [(s, s) for s in window_starts(n_frames, protocol, opts)]
        key = content_key(frames) if opts.offsets == "random" else 0
        return [("all", s) for s in reference_starts(n_frames, protocol, opts, seed, key)]
    return plan


# ------------------------------------------------------------------------------------------ feature extraction

@dataclass
class Extraction:
    stats: dict = field(default_factory=dict)  # group -> FeatureStats
    offsets: dict = field(default_factory=dict)  # video name -> clip starts
    frames: list = field(default_factory=list)  # frames per video
    resolutions: set = field(default_factory=set)
    n_clips: int = 0
    detector_s: float = 0.0  # time inside detector calls
    total_s: float = 0.0


class _Batcher:
    """Collects clips, runs the detector on full batches (same shape), adds features to per-group stats."""

    def __init__(self, detector: Detector, out: Extraction, batch_size: int, input_range):
        self.detector, self.out = detector, out
        self.batch_size, self.input_range = batch_size, input_range
        self.groups, self.clips = [], []

    def add(self, group, clip: np.ndarray) -> None:
        if self.clips and clip.shape != self.clips[0].shape:
            self.flush()
        self.groups.append(group)
        self.clips.append(clip)
        if len(self.clips) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.clips:
            return
        x = to_detector_input(np.stack(self.clips), self.input_range)
        t0 = time.perf_counter()
        feats = self.detector(x)
        self.out.detector_s += time.perf_counter() - t0
        for group in dict.fromkeys(self.groups):
            rows = [i for i, g in enumerate(self.groups) if g == group]
            self.out.stats.setdefault(group, FeatureStats(feats.shape[1])).update(feats[rows])
        self.out.n_clips += len(self.clips)
        self.groups, self.clips = [], []


def extract(detector: Detector, videos: VideoSet, protocol: Protocol, plan: Callable, opts: Options,
            desc: str = "") -> Extraction:
    """Decode each video once, cut its clips, and stream their features into per-group ``FeatureStats``."""
    out = Extraction()
    t0 = time.perf_counter()
    batcher = _Batcher(detector, out, opts.batch_size, videos.input_range)
    quiet = None if opts.progress is None else not opts.progress  # tqdm: None = only on a terminal
    for i in tqdm(range(len(videos)), desc=desc, disable=quiet, leave=False):
        frames = videos.get(i)
        out.frames.append(int(frames.shape[0]))
        out.resolutions.add(tuple(int(s) for s in frames.shape[1:3]))
        starts = []
        for group, start in plan(frames, videos.names[i]):
            batcher.add(group, frames[start:start + protocol.span:protocol.stride])
            starts.append(start)
        out.offsets[videos.names[i]] = starts
    batcher.flush()
    out.total_s = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------------ scoring

def _complete(stats: dict, n_videos: int) -> list:
    """Groups every video contributed to (blocks/windows beyond the shortest video are dropped)."""
    return sorted(g for g, s in stats.items() if s.count == n_videos)


def _fvd(real: FeatureStats, fake: FeatureStats, caught: list) -> float:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        value = frechet_from_stats(real, fake)
    caught.extend(str(x.message) for x in w)
    return value


def score(protocol: Protocol, real: Extraction, fake: Extraction, n_real: int, n_fake: int, caught: list) -> dict:
    if protocol.kind == "single":
        return {"fvd": _fvd(real.stats["all"], fake.stats["all"], caught)}
    if protocol.kind == "blocks":
        blocks = sorted(set(_complete(real.stats, n_real)) & set(_complete(fake.stats, n_fake)))
        if not blocks:
            raise ValueError(f"protocol {protocol.name}: no {protocol.span}-frame block is shared by all videos")
        values = [_fvd(real.stats[b], fake.stats[b], caught) for b in blocks]
        return {"fvd": float(np.mean(values)), "x": blocks, "values": values}
    windows = _complete(fake.stats, n_fake)
    if not windows:
        raise ValueError(f"protocol {protocol.name}: no {protocol.span}-frame window is shared by all fake videos")
    if protocol.name == "drift":
        values = [_fvd(real.stats["all"], fake.stats[w], caught) for w in windows]
        return {"fvd": float(np.mean(values)), "x": windows, "values": values}
    return _prefix(protocol, real.stats["all"], fake.stats, windows, caught)


def prefix_lengths(last_window: int, span: int) -> list[int]:
    horizon, lengths, n = last_window + span, [], span
    while n < horizon:
        lengths.append(n)
        n *= 2
    return lengths + [horizon]


def _prefix(protocol: Protocol, real: FeatureStats, fake: dict, windows: list, caught: list) -> dict:
    lengths, values = prefix_lengths(windows[-1], protocol.span), []
    for n in lengths:
        pool = FeatureStats(real.dim)
        for w in windows:
            if w + protocol.span <= n:
                pool.merge(fake[w])
        values.append(_fvd(real, pool, caught))
    return {"fvd": values[-1], "x": lengths, "values": values}


# ---------------------------------------------------------------------------------------------- evaluation

def _as_detector(detector, size: int, detector_seed: int, device: str) -> Detector:
    if isinstance(detector, Detector):
        return detector
    return load_detector(str(detector), size=size, seed=detector_seed, device=device)


def seed_independent(protocol: Protocol, opts: Options, side: int) -> bool:
    """Clips no seed chooses (blocks, generated drift/prefix windows, clips at frame 0): extracted once, reused."""
    return protocol.kind == "blocks" or (protocol.kind == "windows" and side == 1) or opts.offsets == "start"


def run_once(detector: Detector, real: VideoSet, fake: VideoSet, protocol: Protocol, opts: Options,
             seed: int, cache: dict | None = None) -> dict:
    """One seeded evaluation: extract both sides (reusing seed-independent features from ``cache``), score, and
    record offsets and the time actually spent."""
    cache = {} if cache is None else cache
    sides, spent = [], [0.0, 0.0]
    for side, videos, desc in ((0, real, "real"), (1, fake, "fake")):
        reuse = seed_independent(protocol, opts, side)
        if not (reuse and side in cache):
            ext = extract(detector, videos, protocol, clip_plan(protocol, opts, seed, side), opts, desc=desc)
            spent = [spent[0] + ext.detector_s, spent[1] + ext.total_s]
            cache.update({side: ext} if reuse else {})
        sides.append(cache.get(side) if reuse else ext)
    r, f = sides
    caught: list = []
    run = {"seed": seed, **score(protocol, r, f, len(real), len(fake), caught)}
    run.update(real_offsets=r.offsets, fake_offsets=f.offsets, n_real_clips=r.n_clips, n_fake_clips=f.n_clips,
               detector_s=spent[0], total_s=spent[1])
    run["_side"] = {"real": r, "fake": f}
    return run | {"warnings": sorted(set(caught))}


def _spread(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _side_info(videos: VideoSet, ext: Extraction) -> dict:
    return {"source": videos.source, "n_videos": len(videos), "n_clips": ext.n_clips,
            "frames_min": min(ext.frames), "frames_max": max(ext.frames),
            "resolutions": sorted([list(r) for r in ext.resolutions]), "skipped": videos.skipped}


def skip_warnings(real: VideoSet, fake: VideoSet) -> list[str]:
    """One line per file a side's folder held but the evaluation does not use."""
    return [f"{side}: skipped {s['path']}: {s['problem']}" for side, v in (("real", real), ("fake", fake))
            for s in v.skipped]


def summarise(protocol: Protocol, opts: Options, detector: Detector, runs: list, real: VideoSet,
              fake: VideoSet) -> dict:
    fvds = [r["fvd"] for r in runs]
    side = runs[0].pop("_side")
    for r in runs[1:]:
        r.pop("_side")
    info = detector.info()
    result = {
        "protocol": protocol.name, "description": protocol.description, "fvd_is": FVD_IS[protocol.name],
        "fvd": float(np.mean(fvds)), "fvd_std": _spread(fvds), "fvd_per_seed": fvds, "seeds": [r["seed"] for r in runs],
        "comparable_to_published": info["comparable_to_published"], "detector": info,
        "clip": {"frames": protocol.clip_len, "stride": protocol.stride, "span": protocol.span},
        "options": asdict(opts), "covariance": "1/N (maximum likelihood); sums accumulated in float64",
        "real": _side_info(real, side["real"]), "fake": _side_info(fake, side["fake"]),
        "n_real": len(real), "n_fake": len(fake), "skipped": {"real": real.skipped, "fake": fake.skipped},
        "warnings": skip_warnings(real, fake) + sorted({w for r in runs for w in r["warnings"]}),
        "runs": runs,
    }
    if protocol.kind != "single":
        result["curve"] = _curve(protocol, runs)
    return result


def _curve(protocol: Protocol, runs: list) -> dict:
    xs = runs[0]["x"]
    if any(r["x"] != xs for r in runs):
        raise ValueError(f"protocol {protocol.name}: runs disagree on the {protocol.kind} (videos changed?)")
    vals = np.array([r["values"] for r in runs], dtype=np.float64)
    label = {"blocks": "block start frame", "windows": "window start frame"}[protocol.kind]
    if protocol.name == "prefix":
        label = "prefix length (frames)"
    std = vals.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(vals.shape[1])
    return {"x_label": label, "x": list(xs), "mean": vals.mean(0).tolist(), "std": std.tolist()}


def evaluate(real, fake, protocol: str = "fvd16", detector="random", seeds: Iterable[int] = (0,),
             options: Options | None = None, window: int | None = None, size: int = 224, detector_seed: int = 0,
             device: str = "cpu", input_range=None) -> dict:
    """Run ``protocol`` once per seed and return the JSON-ready result (mean and spread over seeds)."""
    opts = options or Options()
    proto = get_protocol(protocol, window)
    if opts.window_stride < 1 or opts.clips_per_video < 1 or opts.batch_size < 1:
        raise ValueError(f"stride, clips_per_video and batch_size must be >= 1, got {opts.window_stride}, "
                         f"{opts.clips_per_video} and {opts.batch_size}")
    if opts.horizon is not None and opts.horizon < 1:
        raise ValueError(f"horizon: expected a number of frames >= 1 (or none for all), got {opts.horizon}")
    det = _as_detector(detector, size, detector_seed, device)
    real_set = VideoSet.from_any(real, opts.n_real, input_range, "real")
    fake_set = VideoSet.from_any(fake, opts.n_fake, input_range, "fake")
    seeds = [int(s) for s in seeds] or [0]
    cache: dict = {}
    runs = [run_once(det, real_set, fake_set, proto, opts, s, cache) for s in seeds]
    result = summarise(proto, opts, det, runs, real_set, fake_set)
    for w in result["warnings"]:
        warnings.warn(w, stacklevel=2)
    return result


def fvd_drift(real_videos, fake_videos, window: int = 16, stride: int | None = None, detector="random",
              seeds: Iterable[int] = (0,), clips_per_video: int = 1, horizon: int | None = None,
              size: int = 224, batch_size: int = 8, input_range=None, device: str = "cpu",
              out: str | None = None) -> dict:
    """FVD of each ``window``-frame window (every ``stride`` frames, default ``window``) of the fake videos against
    a fixed set of real clips. Returns the result dict (``curve`` holds x = window starts, mean/std over seeds);
    with ``out`` it is also written as JSON with a PNG of the curve beside it."""
    opts = Options(window_stride=stride or window, clips_per_video=clips_per_video, horizon=horizon,
                   batch_size=batch_size, progress=False)
    result = evaluate(real_videos, fake_videos, "drift", detector, seeds, opts, window=window, size=size,
                      device=device, input_range=input_range)
    if out is not None:
        from worldgen.eval.plots import write_result

        write_result(result, out)
    return result

