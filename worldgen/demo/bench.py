"""Speed of the demo's driving pipeline (KV-cached rollout + chunked VQ decoding), printed as one JSON object.

    python -m worldgen.demo.bench --checkpoints checkpoints --frames 200 [--device cpu] [--threads 1]
    python -m worldgen.demo.bench --random --frames 200   # the tiny configs' architectures, seeded random weights

It times ``worldgen.pipelines.drivingworld.DrivingPipeline`` through the demo's request path (``drive_job``).
With ``--random`` the models are built from ``{--configs}/drivingworld/{tokenizer_tiny,gpt_tiny}.yaml`` with random
weights: the speed of an architecture does not depend on its weights, so this measures the shipped models' cost
before they are trained. Reports ms per generated frame (rollout + decode) and the rollout's own ms per frame.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence


def random_checkpoints(out: Path, configs: str | Path = "configs") -> Path:
    """tokenizer-tiny/ and gpt-tiny/ with the tiny YAMLs' model sections and seeded random weights."""
    import torch

    from worldgen.config import load, read_yaml
    from worldgen.io import save_weights, write_text
    from worldgen.tokenizer.vq import VQConfig, VQVideoTokenizer
    from worldgen.worldmodel.model import DrivingWorldGPT, GPTConfig
    from omegaconf import OmegaConf

    for name, yaml, cls, cfg_cls in (("tokenizer-tiny", "tokenizer_tiny.yaml", VQVideoTokenizer, VQConfig),
                                     ("gpt-tiny", "gpt_tiny.yaml", DrivingWorldGPT, GPTConfig)):
        node = read_yaml(Path(configs) / "drivingworld" / yaml)
        torch.manual_seed(0)
        model = cls(load(cfg_cls, data=OmegaConf.to_container(node["model"])))
        write_text(out / name / "config.yaml", OmegaConf.to_yaml(node))
        save_weights(out / name / "model.safetensors", {k: v.clone() for k, v in model.state_dict().items()})
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", default="checkpoints")
    parser.add_argument("--random", action="store_true", help="random weights in the tiny configs' architectures")
    parser.add_argument("--configs", default="configs", help="the repository's configs folder (for --random)")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    from worldgen.demo import pipelines as P
    from worldgen.pipelines.drivingworld import DrivingPipeline

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        ck = random_checkpoints(Path(tmp), args.configs) if args.random else Path(args.checkpoints)
        pipe = DrivingPipeline.load(ck / "gpt-tiny", ck / "tokenizer-tiny", args.device)
        ctx = P.load_example(sorted(P.EXAMPLES.glob("*.npz"))[0])
        plan = P.plan_poses("lane change left", 20, "", args.frames, 10.0, P.Limits())
        t0 = time.perf_counter()
        res = P.drive_job(pipe, P.DriveRequest(ctx, plan, args.frames), lambda item: None)
        total = time.perf_counter() - t0
    print(json.dumps({"frames": args.frames, "device": args.device, "threads": args.threads,
                      "weights": "random" if args.random else str(ck), "grid": [pipe.gpt.h, pipe.gpt.w],
                      "frame_size": list(pipe.frame_size), "ms_per_frame": 1000 * total / args.frames,
                      "rollout_ms_per_frame": 1000 * res["frame_s"], "total_s": total}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
