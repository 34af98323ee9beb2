"""``worldgen eval fvd|tokenizer|drift|artv|offline-rl``: evaluations that write or print one JSON record.

* ``fvd``: Fréchet Video Distance and the long-horizon protocols (``worldgen.eval.protocols``)::

      worldgen eval fvd --real DIR --fake DIR --protocol fvd16|fvd128|fvd128_s8|block16|drift|prefix \\
          --detector random|i3d:PATH|sim:PATH --out result.json [--seeds 0 1 2] [--size 224] [--stride 16] ...

  writes the JSON record (protocol, detector and weights hash, N real/fake, clip offsets, stride, resolution, seeds,
  per-window/block values, mean and spread over seeds) and, for curve protocols, a PNG beside it.
* ``tokenizer``: held-out reconstruction PSNR, codebook usage and foreground/vehicle match scores of a VQ tokenizer
  (``worldgen.tokenizer.evaluate``).
* ``drift``: per-window drift of DrivingWorld rollouts against held-out token episodes
  (``worldgen.worldmodel.drift_eval``).
* ``artv``: the ART·V drift ablation: per-window MSE (``worldgen.artv.evaluate``) and FVD of the windows against
  real clips (``worldgen.eval.protocols.fvd_drift`` with a seeded random-weight I3D).
* ``drivingworld``: a DrivingWorld GPT on held-out episodes: teacher-forced accuracy / PSNR beside copy-last, rollout
  statistics per window, controllability in metres, FVD drift with the sim detector (``worldgen.eval.drivingworld``).
* ``train-detector``: train that sim detector (``worldgen.eval.sim_detector``).
* ``offline-rl``: PGD's synthetic-data diagnostics: simulator-checked dynamics error and target-policy likelihood,
  against an autoregressive ensemble baseline (``worldgen.rl.diagnostics``).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from typing import Optional

from worldgen.commands import Handler, from_args, named_paths, print_json


# -------------------------------------------------------------------------------------------------------- fvd
@dataclass
class FVDConfig:
    real: str  # real videos: a folder of videos (recursive; mp4 mov mkv webm avi ...), an episode folder, one file
    fake: str  # generated videos, same forms as real
    out: str  # output JSON path; curve protocols also write <out>.png
    protocol: str = "fvd16"  # one of worldgen.eval.protocols.PROTOCOLS
    detector: str = "random"  # 'random' (tests only), 'i3d:PATH' (local weights) or 'sim:PATH' (sim-trained)
    seeds: list = field(default_factory=lambda: [0])  # one run per seed (clip offsets); mean and spread reported
    size: int = 224  # I3D input resolution (224 for real FVD; smaller only for quick tests)
    detector_seed: int = 0  # seed of the random detector's weights
    offsets: str = "random"  # random (from the seed and each video's content) | start: where clips begin
    clips_per_video: int = 1  # clips per video (single protocols, drift/prefix reference)
    window: Optional[int] = None  # drift/prefix window length in frames (None = 16)
    stride: int = 16  # drift/prefix: frames between window starts
    horizon: Optional[int] = None  # block16/drift/prefix: use at most this many frames per video
    batch_size: int = 8  # clips per detector call
    n_real: Optional[int] = None  # use only the first N real videos
    n_fake: Optional[int] = None  # use only the first N fake videos
    device: str = "cpu"  # torch device for the detector
    command: str = ""  # recorded in the JSON (the CLI puts its own command line here)


def fvd_main(cfg: FVDConfig) -> dict:
    """Evaluate and write ``cfg.out`` (and the plot); returns the record (its ``out`` path under ``"out"``)."""
    from worldgen.config import check_device
    from worldgen.eval.plots import write_result
    from worldgen.eval.protocols import Options, evaluate
    from worldgen.io import check_output

    check_output(cfg.out, what="--out")
    check_device(cfg.device, "--device")
    opts = Options(offsets=cfg.offsets, clips_per_video=cfg.clips_per_video, window_stride=cfg.stride,
                   horizon=cfg.horizon, batch_size=cfg.batch_size, n_real=cfg.n_real, n_fake=cfg.n_fake)
    with warnings.catch_warnings():
        for printed in ("Fréchet distance", "real: skipped", "fake: skipped"):  # the CLI prints them; JSON keeps them
            warnings.filterwarnings("ignore", message=printed)
        result = evaluate(cfg.real, cfg.fake, cfg.protocol, cfg.detector, cfg.seeds, opts, window=cfg.window,
                          size=cfg.size, detector_seed=cfg.detector_seed, device=cfg.device)
    result["command"] = cfg.command
    result["out"] = str(write_result(result, cfg.out))
    return result


def configure_fvd(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.eval.protocols import PROTOCOLS

    a = parser.add_argument
    a("--real", required=True, help="real videos: a folder of videos (recursive; mp4, mov, mkv, webm, avi, ...), "
                                    "an episode folder, or one video file; other files are skipped and named")
    a("--fake", required=True, help="generated videos, same forms as --real")
    a("--protocol", default="fvd16", choices=sorted(PROTOCOLS), help="evaluation protocol (default fvd16)")
    a("--detector", default="random", help="'random' (tests only, not comparable), 'i3d:PATH' (local weights) or "
                                           "'sim:PATH' (the simulator-trained detector, e.g. "
                                           "sim:checkpoints/fvd-sim-tiny; not comparable to published FVD)")
    a("--out", required=True, help="output JSON path; curve protocols also write <out>.png")
    a("--seeds", type=int, nargs="+", default=[0], help="one run per seed (clip offsets); mean and spread reported")
    a("--size", type=int, default=224, help="I3D input resolution (224 for real FVD; smaller only for quick tests)")
    a("--detector-seed", type=int, default=0, help="seed of the random detector's weights")
    a("--offsets", default="random", choices=["random", "start"],
      help="where clips begin in each video: random (seeded by --seeds and the video's content, so identical videos "
           "get identical clips) or start (frame 0)")
    a("--clips-per-video", type=int, default=1, help="clips per video (single protocols, drift/prefix reference)")
    a("--window", type=int, default=None, help="drift/prefix window length in frames (default 16)")
    a("--stride", type=int, default=16, help="drift/prefix: frames between window starts")
    a("--horizon", type=int, default=None, help="block16/drift/prefix: use at most this many frames per video")
    a("--batch-size", type=int, default=8, help="clips per detector call")
    a("--n-real", type=int, default=None, help="use only the first N real videos")
    a("--n-fake", type=int, default=None, help="use only the first N fake videos")
    a("--device", default="cpu", help="torch device for the detector")

    def handler(args: argparse.Namespace) -> int:
        command = "worldgen eval fvd " + " ".join(shlex.quote(x) for x in _argv_after("fvd"))
        result = fvd_main(from_args(FVDConfig, args, command=command))
        for message in result["warnings"]:
            print(f"warning: {message}", file=sys.stderr)
        print(summary_line(result, result["out"]))
        return 0
    return handler


def _argv_after(word: str) -> list[str]:
    argv = sys.argv[1:]
    return argv[argv.index(word) + 1:] if word in argv else argv


def summary_line(result: dict, out) -> str:
    kind = "sim" if result["detector"]["name"].startswith("sim:") else "random"
    note = {True: "", False: f"  [{kind} detector: NOT comparable to published FVD]",
            None: "  [state_dict detector: comparable only if these are the Kinetics-400 I3D weights]"}[
        result["comparable_to_published"]]
    plot = f", {result['plot']}" if "plot" in result else ""
    return (f"{result['protocol']}: FVD {result['fvd']:.3f} ± {result['fvd_std']:.3f} over {len(result['seeds'])} "
            f"seed(s), N real {result['n_real']} / fake {result['n_fake']} -> {out}{plot}{note}")


# -------------------------------------------------------------------------------------------------- tokenizer
@dataclass
class TokenizerEvalConfig:
    tokenizer: str  # trained tokenizer folder (config.yaml + model.safetensors)
    data: str  # driving dataset folder
    split: str = "val"  # val (the training run's held-out episodes) | all
    max_episodes: Optional[int] = None  # evaluate only the first N episodes of the split
    chunk: int = 16  # frames per forward pass
    image: Optional[str] = None  # write a PNG contact sheet (originals over reconstructions)
    progress: bool = True  # a progress bar over episodes


def tokenizer_main(cfg: TokenizerEvalConfig) -> dict:
    """PSNR (and its mean-colour baseline), codebook usage, foreground and vehicle match scores."""
    from worldgen.io import check_output
    from worldgen.tokenizer.evaluate import evaluate

    if cfg.chunk < 1 or (cfg.max_episodes is not None and cfg.max_episodes < 1):
        raise ValueError(f"--chunk and --max-episodes must be >= 1, got {cfg.chunk} and {cfg.max_episodes}")
    if cfg.image:
        check_output(cfg.image, what="--image")

    return evaluate(cfg.tokenizer, cfg.data, cfg.split, cfg.max_episodes, cfg.chunk, cfg.image, cfg.progress)


def configure_tokenizer(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--tokenizer", required=True, help="trained tokenizer folder (config.yaml + model.safetensors)")
    parser.add_argument("--data", required=True, help="driving dataset folder")
    parser.add_argument("--split", choices=("val", "all"), default="val", help="held-out episodes of training, or all")
    parser.add_argument("--max-episodes", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=16, help="frames per forward pass")
    parser.add_argument("--image", default=None, help="write a PNG contact sheet (originals over reconstructions)")

    def handler(args: argparse.Namespace) -> int:
        print_json(tokenizer_main(from_args(TokenizerEvalConfig, args)), indent=None)
        return 0
    return handler


# ------------------------------------------------------------------------------------------------------ drift
@dataclass
class DriftEvalConfig:
    ckpt: str  # DrivingWorld GPT training output folder
    tokens: str  # token shard folder (meta.json + episodes/)
    tokenizer: Optional[str] = None  # VQ tokenizer folder: adds pixel PSNR per window
    n_val: int = 2  # the last N token episodes are the held-out ones
    horizon: int = 0  # generated frames per episode (0 = as many as the real continuation)
    window: int = 10  # frames per scored window
    seed: int = 0
    out: Optional[str] = None  # also write the JSON here
    threads: int = 1  # torch CPU threads


def drift_main(cfg: DriftEvalConfig) -> dict:
    """Per-window token accuracy, code-histogram JS divergence and (with a tokenizer) PSNR, averaged over episodes."""
    import torch

    from worldgen.worldmodel.drift_eval import evaluate

    torch.set_num_threads(cfg.threads)
    res = evaluate(cfg.ckpt, cfg.tokens, n_val=cfg.n_val, horizon=cfg.horizon, window=cfg.window,
                   tokenizer=cfg.tokenizer, seed=cfg.seed)
    if cfg.out:
        from worldgen.io import write_json

        write_json(cfg.out, res)
    return res


def configure_drift(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--ckpt", required=True, help="DrivingWorld GPT training output folder")
    parser.add_argument("--tokens", required=True, help="token shard folder (its last --n-val episodes are held out)")
    parser.add_argument("--tokenizer", help="VQ tokenizer folder: also score decoded pixels (PSNR)")
    parser.add_argument("--n-val", type=int, default=2, help="held-out episodes: the last N of --tokens")
    parser.add_argument("--horizon", type=int, default=0, help="frames to generate (0 = the real continuation's)")
    parser.add_argument("--window", type=int, default=10, help="frames per scored window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")

    def handler(args: argparse.Namespace) -> int:
        print_json(drift_main(from_args(DriftEvalConfig, args)), indent=None)
        return 0
    return handler


# ------------------------------------------------------------------------------------------------------- artv
@dataclass
class ARTVEvalConfig:
    ckpts: dict  # {name: ART-V training output folder}
    out: str  # JSON result
    data: str = "data/driving-train"  # driving dataset the models trained on (its held-out episodes are used)
    horizon: int = 64  # generated frames per rollout
    steps: int = 6  # sampler steps per frame
    sampler: str = "euler"  # euler | heun
    seed: int = 0
    fvd: bool = True  # also score each window by FVD against real clips
    fvd_size: int = 112  # random I3D input resolution
    hop: int = 16  # frames between rollout start points in a held-out episode
    ref_clips: int = 96  # real 16-frame reference clips for FVD
    threads: int = 1  # torch CPU threads


def artv_main(cfg: ARTVEvalConfig) -> dict:
    """Roll every model out from the held-out starts; per-window MSE and FVD; writes and returns the record."""
    import torch

    from worldgen.artv.evaluate import evaluate_model, real_reference
    from worldgen.artv.generate import GenerateOptions, load_checkpoint
    from worldgen.io import write_json

    torch.set_num_threads(cfg.threads)
    opts = GenerateOptions(sampler=cfg.sampler, steps=cfg.steps, cfg_text=1.0, seed=cfg.seed)
    size = load_checkpoint(next(iter(cfg.ckpts.values())))[0].cfg.frame_size
    score = _fvd_per_window(real_reference(cfg.data, size, max_clips=cfg.ref_clips), cfg.fvd_size) if cfg.fvd else None
    results = {"options": vars(opts), "data": cfg.data, "start_hop": cfg.hop, "real_reference_clips": cfg.ref_clips,
               "fvd_detector": f"random I3D, seed 0, {cfg.fvd_size}px",
               "models": [evaluate_model(n, c, cfg.data, cfg.horizon, opts, hop=cfg.hop, score=score)
                          for n, c in cfg.ckpts.items()]}
    write_json(cfg.out, results)
    return results


def _fvd_per_window(real_ref, size: int, window: int = 16):
    """``score(fake)`` for ``evaluate_model``: the drift protocol's FVD per ``window`` frames vs ``real_ref``."""
    def score(fake) -> dict:
        from worldgen.eval.protocols import fvd_drift

        res = fvd_drift(real_ref, fake, window=window, stride=window, detector="random", seeds=(0,), size=size)
        return {"fvd_per_window": res["curve"]["mean"]}
    return score


def configure_artv(parser: argparse.ArgumentParser) -> Handler:
    d = ARTVEvalConfig(ckpts={}, out="")
    parser.add_argument("--ckpt", action="append", required=True, help="NAME=DIR of a trained ART-V run; repeat")
    parser.add_argument("--data", default=d.data)
    parser.add_argument("--out", required=True, help="JSON result")
    parser.add_argument("--horizon", type=int, default=d.horizon)
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--sampler", default=d.sampler)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--no-fvd", action="store_true")
    parser.add_argument("--fvd-size", type=int, default=d.fvd_size)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--hop", type=int, default=d.hop, help="frames between rollout start points in a held-out episode")
    parser.add_argument("--ref-clips", type=int, default=d.ref_clips, help="real 16-frame reference clips for FVD")

    def handler(args: argparse.Namespace) -> int:
        cfg = from_args(ARTVEvalConfig, args, ckpts=named_paths(args.ckpt, "--ckpt"), fvd=not args.no_fvd)
        res = artv_main(cfg)
        keys = ("name", "mse_per_window") + (("fvd_per_window",) if cfg.fvd else ())
        print_json([{k: m[k] for k in keys} for m in res["models"]], indent=1)
        return 0
    return handler


# ------------------------------------------------------------------------------------------------- offline-rl
@dataclass
class OfflineRLEvalConfig:
    env: str  # Gymnasium id the datasets come from
    real: str  # real dataset (.hdf5; trains the autoregressive ensemble baseline)
    policy: str  # target policy folder
    synthetic: dict = field(default_factory=dict)  # {name: synthetic .hdf5} to score
    ensemble_traj: int = 0  # autoregressive ensemble rollouts (0 = skip the baseline)
    horizon: int = 32  # rollout length of the baseline (rows per trajectory)
    ensemble_epochs: int = 0  # cap on ensemble epochs (0 = early stopping)
    max_transitions: int = 2000  # transitions checked in the simulator per dataset
    seed: int = 0


def offline_rl_main(cfg: OfflineRLEvalConfig) -> dict:
    """Dynamics error and target-policy likelihood of every synthetic dataset (and of the ensemble baseline)."""
    import torch

    from worldgen.data.offline_rl import load_dataset
    from worldgen.rl.diagnostics import compare, ensemble_rollouts, train_ensemble
    from worldgen.rl.policy import load_policy

    torch.set_num_threads(1)
    policy = load_policy(cfg.policy)
    sets = {k: load_dataset(v) for k, v in cfg.synthetic.items()}
    real = load_dataset(cfg.real)
    extra = {}
    if cfg.ensemble_traj:
        dyn, logs = train_ensemble(real, cfg.env, cfg.seed, cfg.ensemble_epochs)
        sets["ar_ensemble"] = ensemble_rollouts(dyn, policy, real, cfg.ensemble_traj, cfg.horizon, cfg.seed)
        extra["ensemble"] = {"epochs": logs["epochs"], "holdout_mse": logs["holdout_mse"]}
    return {"env": cfg.env, "seed": cfg.seed,
            "results": compare(sets, policy, cfg.env, cfg.max_transitions, cfg.seed), **extra}


def configure_offline_rl(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--env", required=True)
    parser.add_argument("--real", required=True, help="real dataset (trains the autoregressive ensemble baseline)")
    parser.add_argument("--policy", required=True, help="target policy folder")
    parser.add_argument("--synthetic", nargs="*", default=[], help="NAME=FILE.hdf5 synthetic datasets to score")
    parser.add_argument("--ensemble-traj", type=int, default=0, help="autoregressive ensemble rollouts (0 = skip)")
    parser.add_argument("--horizon", type=int, default=32)
    parser.add_argument("--ensemble-epochs", type=int, default=0, help="cap on ensemble epochs (0 = early stopping)")
    parser.add_argument("--max-transitions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)

    def handler(args: argparse.Namespace) -> int:
        cfg = from_args(OfflineRLEvalConfig, args, synthetic=named_paths(args.synthetic, "--synthetic"))
        print_json(offline_rl_main(cfg))
        return 0
    return handler


# ------------------------------------------------------------------------------------------------ train-detector
@dataclass
class TrainDetectorConfig:
    data: str = "data/driving-v2"  # training episodes (worldgen data driving output)
    out: str = "runs/eval14-fvd-sim"  # output folder: model.safetensors + config.yaml + card.json
    heldout: str = "data/driving-v2-heldout"  # episodes for the card's held-out accuracies ("" = skip)
    steps: int = 1400  # optimiser steps (batch 32: ~0.25 s each on one idle CPU thread)
    batch_size: int = 32
    lr: float = 3e-3
    hop: int = 4  # frames between training clip starts
    max_episodes: Optional[int] = None  # use only the first N training episodes
    seed: int = 0
    threads: int = 1  # torch CPU threads
    progress: bool = True
    command: str = ""  # recorded in the card


def train_detector_main(cfg: TrainDetectorConfig) -> dict:
    """Train the simulator FVD detector (``worldgen.eval.sim_detector``); returns its card."""
    from worldgen.eval.sim_detector import Config, SimDataConfig, train

    data = SimDataConfig(root=cfg.data, heldout=cfg.heldout, hop=cfg.hop, max_episodes=cfg.max_episodes)
    exp = Config(out_dir=cfg.out, data=data, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                 threads=cfg.threads, progress=cfg.progress)
    return train(exp, command=cfg.command)


def configure_train_detector(parser: argparse.ArgumentParser) -> Handler:
    d = TrainDetectorConfig()
    a = parser.add_argument
    a("--data", default=d.data, help="training episodes (a worldgen driving dataset)")
    a("--out", default=d.out, help="output folder (model.safetensors + config.yaml + card.json)")
    a("--heldout", default=d.heldout, help="held-out episodes for the card's accuracies ('' = skip)")
    a("--steps", type=int, default=d.steps, help="optimiser steps of 32 clips")
    a("--batch-size", type=int, default=d.batch_size)
    a("--lr", type=float, default=d.lr)
    a("--hop", type=int, default=d.hop, help="frames between training clip starts")
    a("--max-episodes", type=int, default=None, help="use only the first N training episodes")
    a("--seed", type=int, default=d.seed)
    a("--threads", type=int, default=d.threads, help="torch CPU threads")

    def handler(args: argparse.Namespace) -> int:
        command = "worldgen eval train-detector " + " ".join(shlex.quote(x) for x in _argv_after("train-detector"))
        card = train_detector_main(from_args(TrainDetectorConfig, args, command=command))
        print_json({k: card[k] for k in ("params", "train_clips", "heldout", "wall_time_s") if k in card}, indent=1)
        return 0
    return handler


# ------------------------------------------------------------------------------------------------- drivingworld
def drivingworld_main(cfg) -> dict:
    """``worldgen eval drivingworld``: ``worldgen.eval.drivingworld.evaluate`` (cfg: its ``DrivingEvalConfig``)."""
    from worldgen.eval.drivingworld import evaluate

    return evaluate(cfg)


def configure_drivingworld(parser: argparse.ArgumentParser) -> Handler:
    from worldgen.eval.drivingworld import DrivingEvalConfig

    d = DrivingEvalConfig(ckpt="", tokenizer="", data="")
    a = parser.add_argument
    a("--ckpt", required=True, help="DrivingWorld GPT folder (config.yaml + model.safetensors)")
    a("--tokenizer", required=True, help="VQ tokenizer folder coding the GPT's grid")
    a("--data", required=True, help="held-out driving episodes (pixels + sidecars), e.g. data/driving-v2-heldout")
    a("--tokens", default=None, help="their token shards (same episode ids); default: encode the pixels here")
    a("--episodes", type=int, default=d.episodes,
      help="rollout contexts (one held-out episode each, scenarios in turn)")
    a("--frames", type=int, default=d.frames, help="generated frames per rollout")
    a("--window", type=int, default=d.window, help="frames per reported window")
    a("--ego", choices=("sampled", "straight"), default=d.ego,
      help="rollout ego motion: sampled by the model, or forced straight at the context's speed")
    a("--tf-episodes", type=int, default=d.tf_episodes, help="held-out episodes for teacher forcing (0 = all)")
    a("--tf-stride", type=int, default=d.tf_stride, help="score every k-th frame in teacher forcing")
    a("--control-contexts", type=int, default=d.control_contexts,
      help="straight-road contexts for lane_change_left/right/straight (0 = skip)")
    a("--control-frames", type=int, default=d.control_frames, help="frames per controllability run")
    a("--control-starts", type=int, default=d.control_starts,
      help="context start frames per straight-road episode for the controllability runs, spread over the episode "
           "(more contexts from the same held-out set)")
    a("--frame-stride", type=int, default=d.frame_stride,
      help="keep every k-th held-out frame, for a GPT trained on `worldgen tokenize --stride k` shards "
           "(0 = the --tokens folder's stride, else 1)")
    a("--detector", default=d.detector, help="FVD detector: sim:PATH (default the shipped one), i3d:PATH, random, "
                                             "or none")
    a("--ego-guidance", type=float, default=d.ego_guidance,
      help="classifier-free guidance of the image by the ego tokens in every rollout (1 = off; needs a GPT trained "
           "with data.posedrop_prob > 0)")
    a("--seed", type=int, default=d.seed)
    a("--batch", type=int, default=d.batch, help="frames per teacher-forced / decode batch")
    a("--out", default=None, help="also write the JSON here, and a PNG of the window curves beside it")
    a("--no-plot", action="store_true", help="no PNG beside --out")
    a("--threads", type=int, default=d.threads, help="torch CPU threads")

    def handler(args: argparse.Namespace) -> int:
        command = "worldgen eval drivingworld " + " ".join(shlex.quote(x) for x in _argv_after("drivingworld"))
        res = drivingworld_main(from_args(DrivingEvalConfig, args, command=command, plot=not args.no_plot))
        print_json(res, indent=None)
        return 0
    return handler


__all__ = ["FVDConfig", "fvd_main", "configure_fvd", "summary_line", "TokenizerEvalConfig", "tokenizer_main",
           "configure_tokenizer", "DriftEvalConfig", "drift_main", "configure_drift", "ARTVEvalConfig", "artv_main",
           "configure_artv", "OfflineRLEvalConfig", "offline_rl_main", "configure_offline_rl", "TrainDetectorConfig",
           "train_detector_main", "configure_train_detector", "drivingworld_main", "configure_drivingworld"]
