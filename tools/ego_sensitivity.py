"""How much the shipped GPT's image prediction depends on the commanded lateral motion (issue 14 diagnostic).

    python tools/ego_sensitivity.py [CKPT] [TOKENS]   # defaults: checkpoints/gpt-tiny data/tokens-v2-heldout

Teacher-forced on held-out W+1-frame clips (every 8th start): the target frame's lateral ego token is forced to its
lowest bin (the model's y_range_m low end, right) and to its highest (left); prints the fraction of argmax image tokens
that differ and the mean KL between the two predictions. A model that follows commands must change them.
"""
import torch, numpy as np
from pathlib import Path
from worldgen.worldmodel.generate import load_model
from worldgen.data.tokens import episode_ids, load_episode
torch.set_num_threads(1)  # one thread: small batch-1 forwards, and no spin-waiting on a shared machine
import sys
m, _ = load_model(sys.argv[1] if len(sys.argv) > 1 else "checkpoints/gpt-tiny"); m.eval()
root = sys.argv[2] if len(sys.argv) > 2 else "data/tokens-v2-heldout"; W = m.cfg.context_frames
changed, total, kl_sum, n = 0, 0, 0.0, 0
for eid in episode_ids(root):
    ep = load_episode(Path(root) / "episodes" / f"{eid}.safetensors")
    ego = m.pose_tokenizer.encode(ep["poses"], ep["pose_mask"]); img = ep["codes"].flatten(1)
    for s in range(0, img.shape[0] - W - 1, 8):
        e = ego[None, s:s + W + 1].clone(); i = img[None, s:s + W + 1]
        with torch.no_grad():
            _, a = m(e, i)
            lo, hi = e.clone(), e.clone()
            lo[:, -1, 2] = 0; hi[:, -1, 2] = m.ego_vocab[2] - 1   # target frame's lateral token: full right vs full left
            _, b = m(lo, i); _, c = m(hi, i)
        pb, pc = b[:, -1].argmax(-1), c[:, -1].argmax(-1)
        changed += int((pb != pc).sum()); total += pb.numel()
        kl_sum += float(torch.nn.functional.kl_div(b[:, -1].log_softmax(-1), c[:, -1].log_softmax(-1), log_target=True, reduction="sum")); n += pb.numel()
lo_m, hi_m = m.cfg.pose.y_range_m
print(f"frames {total // m.n_img}: argmax image tokens that differ between dy={lo_m:+.2f} and dy={hi_m:+.2f} m (per step) forced: {changed / total:.4f}; mean KL per token {kl_sum / n:.4f} nats")
