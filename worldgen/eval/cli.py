"""``worldgen eval fvd``: Fréchet Video Distance and the long-horizon protocols (see ``worldgen.eval.protocols``).

    worldgen eval fvd --real DIR --fake DIR --protocol fvd16|fvd128|fvd128_s8|block16|drift|prefix \\
        --detector random|i3d:PATH --out result.json [--seeds 0 1 2] [--size 224] [--stride 16] ...

Writes the JSON record (protocol, detector and weights hash, N real/fake, clip offsets, stride, resolution, seeds,
per-window/block values, mean and spread over seeds) and, for curve protocols, a PNG beside it.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from typing import Callable

from worldgen.eval.protocols import PROTOCOLS, Options, evaluate


def configure_cli(parser: argparse.ArgumentParser) -> Callable:
    a = parser.add_argument
    a("--real", required=True, help="real videos: a folder of mp4 (recursive), an episode folder, or one mp4")
    a("--fake", required=True, help="generated videos, same forms as --real")
    a("--protocol", default="fvd16", choices=sorted(PROTOCOLS), help="evaluation protocol (default fvd16)")
    a("--detector", default="random", help="'random' (tests only, not comparable) or 'i3d:PATH' (local weights)")
    a("--out", required=True, help="output JSON path; curve protocols also write <out>.png")
    a("--seeds", type=int, nargs="+", default=[0], help="one run per seed (clip offsets); mean and spread reported")
    a("--size", type=int, default=224, help="I3D input resolution (224 for real FVD; smaller only for quick tests)")
    a("--detector-seed", type=int, default=0, help="seed of the random detector's weights")
    a("--offsets", default="random", choices=["random", "start"], help="where clips begin in each video")
    a("--clips-per-video", type=int, default=1, help="clips per video (single protocols, drift/prefix reference)")
    a("--window", type=int, default=None, help="drift/prefix window length in frames (default 16)")
    a("--stride", type=int, default=16, help="drift/prefix: frames between window starts")
    a("--horizon", type=int, default=None, help="block16/drift/prefix: use at most this many frames per video")
    a("--batch-size", type=int, default=8, help="clips per detector call")
    a("--n-real", type=int, default=None, help="use only the first N real videos")
    a("--n-fake", type=int, default=None, help="use only the first N fake videos")
    a("--device", default="cpu", help="torch device for the detector")
    return lambda args: main(args)


def main(args: argparse.Namespace) -> int:
    from worldgen.eval.plots import write_result

    opts = Options(offsets=args.offsets, clips_per_video=args.clips_per_video, window_stride=args.stride,
                   horizon=args.horizon, batch_size=args.batch_size, n_real=args.n_real, n_fake=args.n_fake)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Fréchet distance")  # printed once below and kept in the JSON
        result = evaluate(args.real, args.fake, args.protocol, args.detector, args.seeds, opts, window=args.window,
                          size=args.size, detector_seed=args.detector_seed, device=args.device)
    for message in result["warnings"]:
        print(f"warning: {message}", file=sys.stderr)
    result["command"] = "worldgen eval fvd " + " ".join(shlex.quote(x) for x in _argv_after("fvd"))
    out = write_result(result, args.out)
    print(summary_line(result, out))
    return 0


def _argv_after(word: str) -> list[str]:
    argv = sys.argv[1:]
    return argv[argv.index(word) + 1:] if word in argv else argv


def summary_line(result: dict, out) -> str:
    note = {True: "", False: "  [random detector: NOT comparable to published FVD]",
            None: "  [state_dict detector: comparable only if these are the Kinetics-400 I3D weights]"}[
        result["comparable_to_published"]]
    plot = f", {result['plot']}" if "plot" in result else ""
    return (f"{result['protocol']}: FVD {result['fvd']:.3f} ± {result['fvd_std']:.3f} over {len(result['seeds'])} "
            f"seed(s), N real {result['n_real']} / fake {result['n_fake']} -> {out}{plot}{note}")
