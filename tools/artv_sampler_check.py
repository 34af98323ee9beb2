"""How many sampler steps an ART·V model needs: one held-out highway episode, 24 frames per setting, and the last 8
frames' HF energy, vehicle pixels (both relative to the real 24 frames) and MSE against the real frames.

    python tools/artv_sampler_check.py runs/artv-scratch "steps=6; steps=8; steps=6,sigma_max=10"

Settings (``;``-separated, each ``key=value,...``) are ``worldgen.artv.generate.GenerateOptions`` fields
(``cfg_text`` defaults to 1.5 here). Too few steps
leave a faint coloured speckle that the next frame copies: HF and "vehicle" ratios far above 1 after 24 frames.
"""
from __future__ import annotations

import ast
import sys


def parse_settings(text: str) -> list[dict]:
    """``"steps=6; steps=8,sigma_max=10"`` -> ``[{"steps": 6}, {"steps": 8, "sigma_max": 10}]`` (literals only)."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        kw = {}
        for item in part.split(","):
            key, _, value = item.partition("=")
            kw[key.strip()] = ast.literal_eval(value.strip()) if value.strip()[:1].isdigit() or \
                value.strip()[:1] in "-.[" else value.strip()
        out.append(kw)
    return out

EPISODE = "data/driving-v2-heldout/episodes/highway-fast-s1-00000/video.mp4"
PROMPT = "ego keeps its lane at a steady speed on a three-lane highway in light traffic"


def main(argv=None) -> int:
    import torch

    from worldgen.artv.generate import GenerateOptions
    from worldgen.data.video import read_video
    from worldgen.eval.artv_quality import hf_energy, vehicle_fraction
    from worldgen.pipelines.artv import ArtvPipeline

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    pipe = ArtvPipeline.load(argv[0])
    real = read_video(EPISODE)[:24]
    for kw in parse_settings(argv[1]):
        video = pipe.run([PROMPT], opts=GenerateOptions(frames=24, **{"cfg_text": 1.5, **kw}), first=real[0])
        mse = float((((video[-8:].astype(float) - real[-8:]) / 127.5) ** 2).mean())
        print(kw, {"hf_ratio": round(float(hf_energy(video[-8:]).mean() / hf_energy(real).mean()), 2),
                   "vehicle_ratio": round(float(vehicle_fraction(video[-8:]).mean() / vehicle_fraction(real).mean()), 2),
                   "mse": round(mse, 4)}, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
