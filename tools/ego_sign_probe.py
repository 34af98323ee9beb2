"""Does the GPT read the side of a lane change from the ego tokens? (issue 14 diagnostic)

    python tools/ego_sign_probe.py [CKPT] [TOKENS] [MIN_START]
    # defaults: checkpoints/gpt-tiny data/tokens-v2-heldout, the model's context_frames

Finds the lane changes in held-out token shards (the simulator's lane change turns the heading by > 0.1 rad in its
first frame) and, teacher-forced, scores the image prediction of the frames 0..5 after that start three ways: with
the true ego tokens, with the ego tokens of the mirrored motion (dy and dyaw negated: the other side's lane change),
and with no lateral motion (dy = dyaw = 0 from the start on). Prints per side and frame offset the image-token
cross-entropy (nats) and accuracy. A model that reads the side must score the true tokens clearly better than the
mirrored ones. Lane changes starting before frame MIN_START (at least the model's window) are skipped: give models
of different windows the same MIN_START to score them on the same lane changes.
"""
import sys
from pathlib import Path

import numpy as np
import torch

from worldgen.data.tokens import episode_ids, load_episode
from worldgen.worldmodel.generate import load_model

torch.set_num_threads(1)
m, _ = load_model(sys.argv[1] if len(sys.argv) > 1 else "checkpoints/gpt-tiny")
m.eval()
root = sys.argv[2] if len(sys.argv) > 2 else "data/tokens-v2-heldout"
W, OFFSETS = m.cfg.context_frames, range(6)
MIN_START = max(W, int(sys.argv[3]) if len(sys.argv) > 3 else W)
rows = {}  # (side, offset, variant) -> [ce, acc] per clip
for eid in episode_ids(root):
    ep = load_episode(Path(root) / "episodes" / f"{eid}.safetensors")
    if not bool(ep["pose_mask"].all()):
        continue
    poses, img = ep["poses"].float(), ep["codes"].flatten(1)
    starts = [int(t) for t in torch.nonzero(poses[:, 2].abs() > 0.1).flatten()
              if t >= MIN_START and (t == 0 or abs(float(poses[t - 1, 2])) < 0.05)]
    for t in starts:
        side = "left" if poses[t, 2] > 0 else "right"
        mirrored = poses.clone()
        mirrored[:, 1:] *= -1
        still = poses.clone()
        still[t:, 1:] = 0
        variants = {"true": poses, "mirrored": mirrored, "no lateral": still}
        for j in OFFSETS:
            s = t + j - W
            if t + j >= img.shape[0]:
                break
            i = img[None, s:s + W + 1]
            for name, p in variants.items():
                e = m.pose_tokenizer.encode(p[s:s + W + 1], ep["pose_mask"][s:s + W + 1])[None]
                with torch.no_grad():
                    _, logits = m(e, i)
                lg, tgt = logits[0, -1].float(), i[0, -1]
                ce = float(torch.nn.functional.cross_entropy(lg, tgt))
                acc = float((lg.argmax(-1) == tgt).float().mean())
                rows.setdefault((side, j, name), []).append((ce, acc))
for side in ("left", "right"):
    n = len(rows.get((side, 0, "true"), []))
    print(f"{side}: {n} lane changes")
    for j in OFFSETS:
        cells = []
        for name in ("true", "mirrored", "no lateral"):
            v = np.asarray(rows.get((side, j, name), [(np.nan, np.nan)]))
            cells.append(f"{name} CE {v[:, 0].mean():.3f} acc {v[:, 1].mean():.3f}")
        print(f"  frame +{j}: " + " | ".join(cells))
    means = [np.mean([c for j in OFFSETS for c, _ in rows.get((side, j, name), [])]) for name in
             ("true", "mirrored", "no lateral")]
    print(f"  mean CE over the frames: true {means[0]:.3f} / mirrored {means[1]:.3f} / no lateral {means[2]:.3f}")
