"""How do the VQ codes move during a lane change? (issue 14 diagnostic; numpy only, seconds)

    python tools/code_churn.py [TOKENS]   # default data/tokens-v2-heldout

Prints the fraction of an 8x16 code grid that changes from one frame to the next during the first 6 frames of each
lane change (start: |dyaw| > 0.1 rad after a frame below 0.05) and on straight frames (|dy| < 0.02 m, |dyaw| < 0.01
rad), and, 5 / 10 / 20 frames after each start, how many codes match the frame before the start unshifted or shifted
by one code row up or down (a lane is 1.3 code rows at the default 2.67 px/m view).
"""
import sys
from pathlib import Path

import numpy as np

from worldgen.data.tokens import episode_ids, load_episode

root = sys.argv[1] if len(sys.argv) > 1 else "data/tokens-v2-heldout"
res = {"left": {}, "right": {}}
churn_lc, churn_st = [], []
for eid in episode_ids(root):
    ep = load_episode(Path(root) / "episodes" / f"{eid}.safetensors")
    c, p = ep["codes"].numpy(), ep["poses"].numpy()
    T = len(c)
    for t in range(1, T):
        if abs(p[t, 1]) < 0.02 and abs(p[t, 2]) < 0.01:
            churn_st.append((c[t] != c[t - 1]).mean())
    starts = [t for t in range(10, T) if abs(p[t, 2]) > 0.1 and abs(p[t - 1, 2]) < 0.05]
    for t in starts:
        side = "left" if p[t, 2] > 0 else "right"
        churn_lc += [(c[t + k] != c[t + k - 1]).mean() for k in range(0, 6) if t + k < T]
        for k in (5, 10, 20):
            if t + k >= T:
                continue
            a, b = c[t - 1], c[t + k]
            up = (b[:-1] == a[1:]).mean()   # image content moved up one row
            down = (b[1:] == a[:-1]).mean()  # moved down one row
            same = (b == a).mean()
            res[side].setdefault(k, []).append((same, up, down))
print("code churn per frame: lane-change frames %.3f, straight frames %.3f" % (np.mean(churn_lc), np.mean(churn_st)))
for side in res:
    for k, v in sorted(res[side].items()):
        v = np.array(v)
        print(f"{side} +{k:2d} frames (n={len(v)}): match unshifted {v[:,0].mean():.3f}, shifted up 1 row {v[:,1].mean():.3f}, down 1 row {v[:,2].mean():.3f}")
