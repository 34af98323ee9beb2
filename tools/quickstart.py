"""End-to-end quickstart: simulator data -> VQ tokenizer -> token shards -> DrivingWorld GPT -> a generated video.

    python tools/quickstart.py [--out runs/quickstart] [--episodes 6] [--frames 40] [--tok-steps 150] [--gpt-steps 150]

Every step is an ordinary ``worldgen`` command (printed before it runs), so the script doubles as a recipe.
It is resumable: finished steps (their output exists) are skipped on a rerun. The models it trains in a few minutes
on a CPU are far from converged; the shipped checkpoints in ``checkpoints/`` are the trained ones.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]


def step(title: str, args: list[str], done: Path) -> None:
    if done.exists():
        print(f"[quickstart] {title}: already done ({done})", flush=True)
        return
    cmd = [sys.executable, "-m", "worldgen.cli", *args]
    print(f"[quickstart] {title}\n  $ worldgen {' '.join(shlex.quote(a) for a in args)}", flush=True)
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"[quickstart] {title}: {time.time() - t0:.0f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--tok-steps", type=int, default=150)
    p.add_argument("--gpt-steps", type=int, default=150)
    p.add_argument("--rollout-frames", type=int, default=60)
    a = p.parse_args(argv)
    out = (ROOT / a.out).resolve() if not Path(a.out).is_absolute() else Path(a.out)
    data, tok, tokens, gpt = out / "data", out / "tokenizer", out / "tokens", out / "gpt"
    video = out / "rollout.mp4"
    step("1/5 driving episodes from highway-env",
         ["data", "driving", "--out", str(data), "--episodes", str(a.episodes), "--frames", str(a.frames)],
         data / "manifest.json")
    common = ["trainer.progress_bar=true", "trainer.val_check_interval=null", "trainer.limit_val_batches=2"]
    step("2/5 VQ video tokenizer",
         ["train", "configs/drivingworld/tokenizer_tiny.yaml", f"data.root={data}", f"out_dir={tok}",
          f"trainer.max_steps={a.tok_steps}", *common], tok / "model.safetensors")
    step("3/5 token shards", ["tokenize", "--tokenizer", str(tok), "--data", str(data), "--out", str(tokens)],
         tokens / "meta.json")
    step("4/5 DrivingWorld GPT",
         ["train", "configs/drivingworld/gpt_tiny.yaml", f"data.root={tokens}", f"out_dir={gpt}",
          f"tokenizer={tok}", f"trainer.max_steps={a.gpt_steps}", "data.val_episodes=1", *common],
         gpt / "model.safetensors")
    step("5/5 rollout video",
         ["generate", "drivingworld", "--ckpt", str(gpt), "--tokenizer", str(tok), "--tokens", str(tokens),
          "--frames", str(a.rollout_frames), "--manoeuvre", "lane_change_left", "--out", str(video)], video)
    print(f"[quickstart] wrote {video}")
    return video


if __name__ == "__main__":
    main()
