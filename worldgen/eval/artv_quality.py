"""ART·V (Weng et al. 2023) on held-out driving episodes, against persistence baselines; and its stage-1 prior.

``evaluate_video`` (``worldgen eval artv-quality``), for every model, from the first frame of each held-out episode
with the episode's own per-frame captions (``worldgen.data.frames.frame_captions``) as the prompt schedule:

- **rollout error per window** (MSE in [-1, 1] pixels, windows of ``window`` frames) of the generated video against
  the real continuation, beside **copy-first** (frame 0 held: the same information the model has) and **mean colour**
  (frame 0's mean colour everywhere). The future is stochastic, so a blurry mean would win MSE; hence also:
- **one-step error**: the frame generated from the *real* previous frame (and the real anchor), against
  **copy-last** (the real previous frame held), on every ``onestep_stride``-th frame;
- **vehicles and texture per window**: vehicle pixels (``worldgen.data.foreground.vehicle_mask``) and high-frequency
  energy (mean squared Laplacian of the luminance) of the generated frames relative to the real ones; a ratio near 1
  means neither lost vehicles / flat grey (ratio << 1) nor noise (HF ratio >> 1);
- optional **FVD per window** with a detector (``--detector sim:checkpoints/fvd-sim-tiny``), beside the FVD of
  the copy-first video on the same windows (few clips, so biased: compare within one run only);
- **text control** (highway scenarios, road along an image axis): prompts "keeps its lane" / "changes lane to the
  left" / "changes lane to the right" for ``control_change`` frames then "keeps its lane", from the same first
  frames; the ego's lateral motion is recovered from the generated frames (``worldgen.eval.drivingworld.
  lateral_motion_m``, validated on real frames in issue 14) and compared with a lane width (``LANE_M`` = 4 m); plus
  a switch test (keep, then left from ``control_change`` on).

``evaluate_prior`` (``worldgen eval artv-prior``): samples of the stage-1 image prior for held-out frames' captions
against those real frames - a Fréchet distance between detector features of static clips (each frame repeated;
``sim:`` detector), beside the real-vs-real floor (training frames) and a mean-colour baseline; vehicle, foreground,
HF-energy and lane-line ratios; the detector's scenario accuracy on the samples against the prompted scenario; a
contact sheet.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

LANE_M = 4.0  # highway-env lane width (m)


@dataclass
class Loaded:
    """An ART·V folder ready to sample (what ``worldgen.pipelines.artv.ArtvPipeline`` holds, loaded here from the
    family package so that evaluation stays below the pipelines layer)."""
    model: torch.nn.Module
    codec: torch.nn.Module
    encoder: object
    device: str = "cpu"


def load_model(folder: str, device: str = "cpu") -> Loaded:
    from worldgen.artv.generate import load_for_sampling

    model, codec, encoder, _ = load_for_sampling(folder, device)
    return Loaded(model, codec, encoder, device)


@dataclass
class ArtvQualityConfig:
    ckpt: list = field(default_factory=list)  # NAME=DIR or DIR, one per model
    data: str = "data/driving-v2-heldout"  # held-out episodes (not seen in training)
    out: str = "runs/artv-quality.json"  # JSON (and a PNG plot beside it)
    episodes: int = 20  # held-out episodes, spread evenly over the folder
    frames: int = 64  # rollout length (including the given first frame)
    window: int = 16  # frames per window
    onestep_stride: int = 4  # one-step predictions on every n-th frame
    steps: int = 8  # sampler steps per frame
    sampler: str = "heun"
    cfg_text: float = 1.5  # text guidance scale
    seed: int = 0
    detector: str = ""  # "" = no FVD; sim:PATH / i3d path for FVD per window
    control: bool = True  # text-control test on highway episodes
    control_episodes: int = 8
    control_change: int = 12  # frames the lane-change prompt is given
    control_frames: int = 28  # frames generated per control video
    anchor_every: int = 64


def hf_energy(frames: np.ndarray) -> np.ndarray:
    """Mean squared 4-neighbour Laplacian of the luminance (in [0, 1]) per uint8 ``t h w c`` frame."""
    y = torch.from_numpy(frames).float().mean(-1)[:, None] / 255.0
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    return F.conv2d(y, k).pow(2).mean((1, 2, 3)).numpy().astype(np.float64)


def vehicle_fraction(frames: np.ndarray) -> np.ndarray:
    from worldgen.data.foreground import vehicle_mask
    from worldgen.data.video import to_float

    return vehicle_mask(to_float(frames, "t h w c -> c t h w")).float().mean((1, 2)).numpy().astype(np.float64)


def pick_episodes(root: str, n: int) -> list[str]:
    from worldgen.data.episodes import scan_episode_dirs

    dirs, _ = scan_episode_dirs(root)
    idx = np.unique(np.linspace(0, len(dirs) - 1, min(n, len(dirs))).round().astype(int))
    return [dirs[i].name for i in idx]


def _windows(n: int, w: int) -> list[tuple[int, int]]:
    return [(s, min(s + w, n)) for s in range(0, n, w) if min(s + w, n) - s >= 2 or s == 0]


def _text_at(encoder, schedules: list[list[str]], device):
    def text_at(i: int):
        return encoder([s[i] for s in schedules], device=device)
    return text_at


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame MSE of (b c t h w) videos, averaged over batch: (t,)."""
    return (a - b).pow(2).mean(dim=(0, 1, 3, 4))


def rollout_video(pipe, first: torch.Tensor, schedules: list[list[str]], n: int, opts, progress=False) -> torch.Tensor:
    from worldgen.artv.generate import rollout

    return rollout(pipe.model, _text_at(pipe.encoder, schedules, pipe.device), n, opts, first, progress=progress,
                   codec=pipe.codec)


def one_step(pipe, real: torch.Tensor, schedules: list[list[str]], stride: int, opts) -> dict:
    """Frames t (every ``stride``-th, t >= 1) generated from the real frame t-1 and the real anchor (frame 0, or
    the re-anchor frame), against copy-last (real t-1). Returns per-frame MSE arrays and their frame indices."""
    from worldgen.artv.generate import FrameSampler, _anchor_index
    from worldgen.artv.model import resize_frames
    from worldgen.diffusion.samplers import make_generator

    model, codec = pipe.model, pipe.codec
    sample = FrameSampler(model, opts, make_generator(opts.seed + 7))
    b, t = real.shape[0], real.shape[2]
    idx = list(range(1, t, stride))
    gen, last = [], []
    with torch.no_grad():
        for i in idx:
            size = model.cfg.frame_size
            prev = codec.encode(resize_frames(real[:, :, i - 1], size))
            anchor = codec.encode(resize_frames(real[:, :, _anchor_index(i, (), opts.anchor_every)], size))
            tokens, mask = pipe.encoder([s[i] for s in schedules], device=pipe.device)
            x = codec.decode(sample(prev, anchor, tokens, mask, b, model.cfg.state_shape(), pipe.device))
            x = resize_frames(x, real.shape[-2:])
            gen.append((x.clamp(-1, 1) - real[:, :, i]).pow(2).mean().item())
            last.append((real[:, :, i - 1] - real[:, :, i]).pow(2).mean().item())
    return {"frames": idx, "model": gen, "copy_last": last}


def window_table(fake: torch.Tensor, real: torch.Tensor, window: int) -> list[dict]:
    """Per window: rollout MSE, copy-first and mean-colour MSE, vehicle and HF-energy ratios (generated / real)."""
    from worldgen.artv.generate import to_uint8

    first = real[:, :, :1].expand_as(real)
    mean_col = real[:, :, :1].mean(dim=(3, 4), keepdim=True).expand_as(real)
    e_model, e_first, e_mean = _mse(fake, real), _mse(first, real), _mse(mean_col, real)
    fu, ru = to_uint8(fake), to_uint8(real)
    flat = lambda v: v.reshape(-1, *v.shape[2:])  # noqa: E731
    t = fu.shape[1]
    veh_f, veh_r, hf_f, hf_r = (f(flat(v)).reshape(-1, t) for f in (vehicle_fraction, hf_energy) for v in (fu, ru))
    rows = []
    for s, e in _windows(t, window):
        rows.append({"start": s, "end": e, "mse": float(e_model[s:e].mean()), "mse_copy_first": float(e_first[s:e].mean()),
                     "mse_mean_colour": float(e_mean[s:e].mean()),
                     "vehicle_ratio": float(veh_f[:, s:e].mean() / max(veh_r[:, s:e].mean(), 1e-9)),
                     "hf_ratio": float(hf_f[:, s:e].mean() / max(hf_r[:, s:e].mean(), 1e-12))})
    return rows


def control_test(pipe, bank, cfg: ArtvQualityConfig, opts) -> dict:
    """Lateral motion (m, + = left) recovered from videos generated with keep / left / right / switch prompts."""
    from worldgen.artv.generate import to_uint8
    from worldgen.data.frames import HIGHWAY_ENVS, place_phrase
    from worldgen.eval.drivingworld import lateral_motion_m, road_axis

    picks = [e for e, ep in enumerate(bank.episodes) if ep.env_id.startswith(HIGHWAY_ENVS) and ep.poses is not None
             and road_axis(float(ep.poses[0, 2])) is not None][:cfg.control_episodes]
    if not picks:
        return {"episodes": 0, "note": "no held-out highway episode with the road along an image axis"}
    n, k = cfg.control_frames, cfg.control_change
    first = torch.stack([bank.float_frame(e, 0) for e in picks]).to(pipe.device)
    places = [place_phrase(bank.episodes[e].caption) for e in picks]
    say = lambda act: [f"ego {act} {p}".strip() for p in places]  # noqa: E731
    keep, left, right = say("keeps its lane at a steady speed"), say("changes lane to the left"), \
        say("changes lane to the right")
    plans = {"keep": [keep] * n, "left": [left] * k + [keep] * (n - k), "right": [right] * k + [keep] * (n - k),
             "switch_left": [keep] * k + [left] * k + [keep] * max(0, n - 2 * k)}
    out: dict = {"episodes": len(picks), "ids": [bank.episodes[e].id for e in picks], "change_frames": k,
                 "frames": n, "lane_m": LANE_M}
    for name, per_frame in plans.items():
        per_frame = (per_frame + [keep] * n)[:n]
        schedules = [[per_frame[i][j] for i in range(n)] for j in range(len(picks))]
        video = to_uint8(rollout_video(pipe, first, schedules, n, opts))
        lat = np.stack([lateral_motion_m(video[j], float(bank.episodes[e].poses[0, 2]),
                                         float(bank.meta[e].get("view_m") or 48.0)) for j, e in enumerate(picks)])
        out[name] = {"end_m": float(lat[:, -1].mean()), "end_m_each": [round(float(v), 2) for v in lat[:, -1]],
                     "at_switch_m": float(lat[:, min(k, n) - 1].mean()), "curve_m": lat.mean(0).round(3).tolist()}
    shift_l = out["left"]["end_m"] - out["keep"]["end_m"]
    shift_r = out["right"]["end_m"] - out["keep"]["end_m"]
    out["left_minus_keep_m"], out["right_minus_keep_m"] = shift_l, shift_r
    out["target"] = f"|shift| within {LANE_M} m +- 30% ({0.7 * LANE_M:.1f}-{1.3 * LANE_M:.1f} m), signs +left -right"
    out["met"] = bool(0.7 * LANE_M <= shift_l <= 1.3 * LANE_M and -1.3 * LANE_M <= shift_r <= -0.7 * LANE_M)
    return out


def _parse_ckpts(specs: list) -> list[tuple[str, str]]:
    out = []
    for s in specs:
        name, _, path = str(s).rpartition("=")
        out.append((name or Path(path).name, path))
    if not out:
        raise ValueError("give at least one --ckpt NAME=DIR")
    return out


def _options(cfg: ArtvQualityConfig):
    from worldgen.artv.generate import GenerateOptions, check_options

    return check_options(GenerateOptions(frames=cfg.frames, seed=cfg.seed, sampler=cfg.sampler, steps=cfg.steps,
                                         cfg_text=cfg.cfg_text, anchor_every=cfg.anchor_every))


def evaluate_video(cfg: ArtvQualityConfig, progress: bool = True) -> dict:
    """Every model of ``cfg.ckpt`` on the same held-out episodes; see the module docstring."""
    from worldgen.artv.model import resize_frames
    from worldgen.data.frames import FrameBank

    if cfg.frames < 2 or cfg.window < 2 or cfg.episodes < 1:
        raise ValueError(f"need frames >= 2, window >= 2, episodes >= 1; got {cfg.frames}, {cfg.window}, "
                         f"{cfg.episodes}")
    models = _parse_ckpts(cfg.ckpt)
    bank = FrameBank(cfg.data, pick_episodes(cfg.data, cfg.episodes), progress=progress)
    short = [ep.id for ep in bank.episodes if ep.n_frames < cfg.frames]
    if short:
        raise ValueError(f"{cfg.data}: episodes {short[:3]} have fewer than --frames {cfg.frames} frames")
    real = torch.stack([torch.stack([bank.float_frame(e, j) for j in range(cfg.frames)], 1)
                        for e in range(len(bank))])
    schedules = [bank.captions[e][:cfg.frames] for e in range(len(bank))]
    opts = _options(cfg)
    det = None
    if cfg.detector:
        from worldgen.eval.detectors import load_detector

        det = load_detector(cfg.detector)
    res = {"config": asdict(cfg), "episodes": [ep.id for ep in bank.episodes], "models": {}}
    if det is not None:  # the persistence baseline on the same drift curve
        res["fvd_copy_first"] = fvd_windows(det, real[:, :, :1].expand_as(real), real, cfg.window)
    for name, path in models:
        pipe = load_model(path)
        t0 = time.time()
        fake = resize_frames(rollout_video(pipe, real[:, :, 0], schedules, cfg.frames, opts, progress),
                             real.shape[-2:]).clamp(-1, 1)  # a model at a lower resolution is scored upsampled
        row = {"ckpt": path, "rollout_seconds": round(time.time() - t0, 1),
               "windows": window_table(fake, real, cfg.window),
               "one_step": one_step(pipe, real, schedules, cfg.onestep_stride, opts)}
        os_ = row["one_step"]
        row["one_step_mse"], row["one_step_mse_copy_last"] = float(np.mean(os_["model"])), float(np.mean(os_["copy_last"]))
        if det is not None:
            row["fvd_windows"] = fvd_windows(det, fake, real, cfg.window)
        if cfg.control:
            row["control"] = control_test(pipe, bank, cfg, opts)
        row["targets"] = video_targets(row)
        res["models"][name] = row
    return res


def fvd_windows(det, fake: torch.Tensor, real: torch.Tensor, window: int) -> list[dict]:
    """FVD of each generated window against the real windows at the same time (few clips: comparisons only)."""
    from worldgen.artv.generate import to_uint8

    fu, ru = to_uint8(fake), to_uint8(real)
    return [{"start": s, "end": e, "fvd": frechet_of(det, fu[:, s:e], ru[:, s:e])}
            for s, e in _windows(fu.shape[1], window) if e - s == window]


def frechet_of(det, fake: np.ndarray, real: np.ndarray) -> float:
    """Fréchet distance of detector features of two sets of uint8 ``b t h w c`` clips (few clips: biased, for
    comparisons inside one run only)."""
    import warnings

    from worldgen.eval.detectors import to_detector_input
    from worldgen.eval.frechet import frechet_from_stats
    from worldgen.eval.stats import FeatureStats

    stats = []
    for v in (real, fake):
        f = torch.cat([det(to_detector_input(v[i:i + 32])) for i in range(0, len(v), 32)])
        stats.append(FeatureStats(f.shape[1]).update(f))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N < feature dim is expected here; the docstring says so
        return float(frechet_from_stats(stats[0], stats[1]))


def video_targets(row: dict) -> dict:
    """Issue-15 targets on one model's row: vehicles >= 0.5x and HF energy 0.5-2x of real in the last window; beats
    copy-first in every window after the first; one-step beats copy-last; lane-change shift within +-30%."""
    w = row["windows"]
    last = w[-1]
    out = {"last_window_vehicle_ratio_ge_0.5": last["vehicle_ratio"] >= 0.5,
           "last_window_hf_ratio_0.5_2": 0.5 <= last["hf_ratio"] <= 2.0,
           "beats_copy_first_every_window_after_first": all(r["mse"] < r["mse_copy_first"] for r in w[1:]),
           "one_step_beats_copy_last": row["one_step_mse"] < row["one_step_mse_copy_last"]}
    if "control" in row and "met" in row["control"]:
        out["lane_change_shift_within_30pct"] = row["control"]["met"]
    return out


@dataclass
class ArtvPriorEvalConfig:
    ckpt: str = ""  # stage-1 prior folder
    data: str = "data/driving-v2-heldout"  # held-out episodes: their frames and captions
    train_data: str = "data/driving-v2"  # real-vs-real floor: training frames against the held-out ones
    out: str = "runs/artv-prior.json"  # JSON; contact sheet beside it (.png)
    images: int = 96  # samples (one per held-out frame drawn evenly)
    steps: int = 16
    sampler: str = "heun"
    cfg_text: float = 2.0
    seed: int = 0
    detector: str = "sim:checkpoints/fvd-sim-tiny"  # static clips of each frame; "" = no Fréchet distance
    clip_frames: int = 8  # frames per static clip (the sim detector needs >= 8)


def frame_stats(frames: np.ndarray) -> dict:
    """Mean vehicle, foreground, HF-energy and lane-line values of uint8 ``b h w c`` frames."""
    from worldgen.eval.drivingworld import _masks, lane_lines

    fg, veh = _masks(frames)
    return {"vehicle": float(veh.float().mean()), "foreground": float(fg.float().mean()),
            "hf_energy": float(hf_energy(frames).mean()), "lane_lines": float(lane_lines(frames).mean())}


def _sample_real(root: str, n: int, seed: int) -> tuple[np.ndarray, list[str], list[int]]:
    """``n`` frames spread over the episodes of ``root`` (uint8 b h w c), their local captions and scenario ids."""
    from worldgen.data.frames import FrameBank
    from worldgen.eval.sim_detector import scenario_of

    bank = FrameBank(root, progress=False)
    rng = np.random.default_rng(seed)
    eps = np.resize(rng.permutation(len(bank)), n)
    frames, caps, scen = [], [], []
    for e in eps:
        j = int(rng.integers(0, len(bank.frames[e])))
        frames.append(bank.frames[e][j].numpy())
        caps.append(bank.captions[e][j])
        scen.append(scenario_of({"env_id": bank.meta[e].get("env_id", ""), "id": bank.episodes[e].id}))
    return np.stack(frames), caps, scen


def evaluate_prior(cfg: ArtvPriorEvalConfig, progress: bool = True) -> dict:
    """Stage-1 sample quality against held-out frames (see the module docstring)."""
    from worldgen.artv.generate import GenerateOptions, check_options
    from worldgen.artv.generate import prior_images
    from worldgen.eval.plots import write_sheet

    real, caps, scen = _sample_real(cfg.data, cfg.images, cfg.seed)
    train, _, _ = _sample_real(cfg.train_data, cfg.images, cfg.seed + 1)
    opts = check_options(GenerateOptions(frames=1, seed=cfg.seed, sampler=cfg.sampler, steps=cfg.steps,
                                         cfg_text=cfg.cfg_text))
    t0 = time.time()
    prior = load_model(cfg.ckpt)
    fake = prior_images(prior.model, prior.encoder, prior.codec, caps, opts)
    seconds = time.time() - t0
    mean_col = np.broadcast_to(real.reshape(len(real), -1, 3).mean(1).round().astype(np.uint8)[:, None, None],
                               real.shape).copy()
    rs = frame_stats(real)
    res = {"config": asdict(cfg), "sample_seconds": round(seconds, 1), "real": rs,
           "generated": frame_stats(fake), "train_frames": frame_stats(train)}
    res["ratios_generated_over_real"] = {k: res["generated"][k] / max(rs[k], 1e-12) for k in rs}
    if cfg.detector:
        from worldgen.eval.detectors import load_detector

        det = load_detector(cfg.detector)
        static = lambda x: np.repeat(x[:, None], cfg.clip_frames, axis=1)  # noqa: E731
        res["frechet"] = {"generated": frechet_of(det, static(fake), static(real)),
                          "real_floor_train_frames": frechet_of(det, static(train), static(real)),
                          "mean_colour": frechet_of(det, static(mean_col), static(real))}
        res["scenario_accuracy"] = {"generated": scenario_accuracy(det, static(fake), scen),
                                    "real": scenario_accuracy(det, static(real), scen)}
    sheet = str(Path(cfg.out).with_suffix(".png"))
    k = min(8, len(fake))
    write_sheet(sheet, np.concatenate([real[:k], fake[:k]]), k)
    res["contact_sheet"] = sheet + " (top row: real held-out frames; bottom: samples for their captions)"
    return res


def scenario_accuracy(det, clips: np.ndarray, scenarios: list[int]) -> float:
    """The sim detector's scenario head on static clips against the scenario the caption/frame came from."""
    from worldgen.eval.detectors import to_detector_input
    from worldgen.eval.sim_detector import to_encoder_input

    net = det.net
    with torch.no_grad():
        x = to_encoder_input(to_detector_input(clips).to(det.device), net.cfg.frame_size)
        _, logits, _ = net(x)
    return float((logits.argmax(-1).cpu().numpy() == np.asarray(scenarios)).mean())


def plot_quality(res: dict, path: Path) -> Path:
    """Per window: rollout MSE with the copy-first and mean-colour baselines, vehicle and HF-energy ratios; and the
    lateral motion curves of the control test (one line per model and prompt)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from worldgen.eval.plots import save_figure

    models = res["models"]
    fig, axes = plt.subplots(1, 5, figsize=(21, 3.6), dpi=110)
    if "fvd_copy_first" in res:
        axes[4].plot([r["start"] for r in res["fvd_copy_first"]], [r["fvd"] for r in res["fvd_copy_first"]], "k--",
                     label="copy first frame")
    axes[4].set(title="FVD per window (sim detector; within-run only)", xlabel="window start (frame)")
    for i, (name, m) in enumerate(models.items()):
        w = m["windows"]
        x = [r["start"] for r in w]
        axes[0].plot(x, [r["mse"] for r in w], marker="o", label=name)
        if "fvd_windows" in m:
            axes[4].plot([r["start"] for r in m["fvd_windows"]], [r["fvd"] for r in m["fvd_windows"]], marker="o",
                         label=name)
        if i == 0:
            axes[0].plot(x, [r["mse_copy_first"] for r in w], "k--", label="copy first frame")
            axes[0].plot(x, [r["mse_mean_colour"] for r in w], "k:", label="mean colour")
        axes[1].plot(x, [r["vehicle_ratio"] for r in w], marker="o", label=name)
        axes[2].plot(x, [r["hf_ratio"] for r in w], marker="o", label=name)
        ctl = m.get("control", {})
        for key, style in (("keep", "-"), ("left", "--"), ("right", ":")):
            if key in ctl:
                axes[3].plot(ctl[key]["curve_m"], style, color=f"C{i}", label=f"{name} {key}")
    axes[0].set(title="rollout MSE per window (lower is better)", xlabel="window start (frame)", ylabel="MSE")
    for ax, t in ((axes[1], "vehicle pixels / real"), (axes[2], "HF energy / real")):
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhspan(0.5, 2.0, color="g", alpha=0.08)
        ax.set(title=t, xlabel="window start (frame)")
    axes[3].axhline(LANE_M, color="k", lw=0.6)
    axes[3].axhline(-LANE_M, color="k", lw=0.6)
    axes[3].set(title="lateral motion from frames (+ left)", xlabel="frame", ylabel="m")
    for ax in axes:
        ax.legend(fontsize=6)
    return save_figure(fig, path)
