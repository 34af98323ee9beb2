"""``worldgen tokenize``: encode every episode of a driving dataset into VQ token shards the GPT trains from.

Output layout (the contract with the DrivingWorld world model, ``worldgen.worldmodel``):

    OUT/meta.json                         codebook_size, grid [h, w], downsample, fps, stride, context_frames,
                                          tokenizer path + weights sha256, source dataset, episodes [{id, frames, ...}]
    OUT/episodes/<episode_id>.safetensors codes int32 (t, h, w); poses float32 (t, 3) = (dx forward m, dy left m,
                                          dyaw rad) relative to the previous *kept* frame, row 0 zeros (exactly what
                                          ``VideoClipDataset`` gives); pose_mask uint8 (t,) (0 = episode has no poses)

Every file is written atomically; an interrupted run resumes by skipping the episodes whose shard exists (a shard
made by a different tokenizer is an error, never silently mixed). ``stride`` keeps every stride-th frame (fps is
divided accordingly). Long episodes are encoded in chunks with ``context_frames`` of causal context, which gives the
same codes as encoding the whole episode at once (see ``VQVideoTokenizer.encode_chunked``).

``mirror`` also writes every episode mirrored across the image's horizontal axis as ``<id>-mirror``: frames flipped
top to bottom and the world poses reflected (y and yaw negated), so ``dy`` and ``dyaw`` change sign and ``dx`` stays.
The generator's camera is world-aligned with the road along the image width on highway and merge, so the mirror of a
left lane change is a right one: the augmentation balances the two sides of the lateral command (the simulator's
episodes hold more left changes than right). The mirror's caption swaps "left" and "right". A mirrored world drives
on the other side of the road; validation splits stay clean when ``val_episodes`` is even (an episode and its mirror
sort next to each other).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from worldgen.data.clips import Episode, load_episode
from worldgen.data.episodes import MANIFEST_NAME, relative_poses, scan_episode_dirs
from worldgen.data.video import read_video, to_float
from worldgen.io import load_weights, read_json, save_weights, sha256_file, write_json
from worldgen.tokenizer.vq import VQVideoTokenizer, _config_and_weights, load_tokenizer

log = logging.getLogger(__name__)
SHARD_DIR = "episodes"
MIRROR_SUFFIX = "-mirror"
MIRROR = np.array([1.0, -1.0, -1.0])  # world pose (x, y, yaw) reflected across the x axis
_SIDES = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def mirror_caption(caption: str | None) -> str | None:
    """The caption of an episode's mirror image: every word "left" and "right" swapped (case kept)."""
    if not caption:
        return caption

    def swap(m: re.Match) -> str:
        word = "right" if m.group(0).lower() == "left" else "left"
        return word.capitalize() if m.group(0)[0].isupper() else word

    return _SIDES.sub(swap, caption)


def shard_path(out_dir: str | Path, episode_id: str) -> Path:
    return Path(out_dir) / SHARD_DIR / f"{episode_id}.safetensors"


def _shard_sha(path: Path) -> Optional[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("tokenizer_sha256")


def _done(path: Path, sha: str) -> bool:
    """True when ``path`` is a complete shard from this tokenizer; a shard from another tokenizer is an error."""
    if not path.is_file():
        return False
    try:
        other = _shard_sha(path)
    except Exception:  # an unreadable shard cannot be a finished one (writes are atomic, so this is damage)
        log.warning("%s is unreadable; re-encoding it", path)
        return False
    if other != sha:
        raise ValueError(f"{path} was written by another tokenizer (sha256 {other}, now {sha}); use a fresh --out")
    return True


def encode_episode(tok: VQVideoTokenizer, ep: Episode, stride: int, chunk: int, device: str,
                   mirror: bool = False) -> dict:
    """Codes, relative poses and pose mask of one episode, every ``stride``-th frame (``mirror``: of its mirror
    image, see the module doc)."""
    frames = read_video(ep.video)[::stride]
    if mirror:
        frames = np.ascontiguousarray(frames[:, ::-1])  # t h w c: top row <-> bottom row
    if tuple(frames.shape[1:3]) != tuple(tok.cfg.frame_size):
        raise ValueError(f"{ep.video}: frames are {frames.shape[1]}x{frames.shape[2]} but the tokenizer codes "
                         f"{tok.cfg.frame_size[0]}x{tok.cfg.frame_size[1]} frames")
    video = to_float(frames[None], device=device)  # b c t h w in [-1, 1]
    codes = tok.encode_chunked(video, chunk=chunk)[0].to(torch.int32).cpu()
    t = len(frames)
    if ep.poses is None:
        poses, mask = np.zeros((t, 3), np.float32), np.zeros(t, np.uint8)
    else:
        world = ep.poses[::stride] * MIRROR if mirror else ep.poses[::stride]
        poses, mask = relative_poses(world), np.ones(t, np.uint8)
    return {"codes": codes, "poses": torch.from_numpy(poses), "pose_mask": torch.from_numpy(mask)}


def _fps(data_dir: Path, ep_dir: Path) -> float:
    manifest = data_dir / MANIFEST_NAME
    if manifest.is_file() and read_json(manifest).get("fps"):
        return float(read_json(manifest)["fps"])
    return float(read_json(ep_dir / "meta.json").get("fps", 10.0))


def tokenize_dataset(tokenizer: str | Path, data: str | Path, out: str | Path, stride: int = 1, chunk: int = 16,
                     device: str = "cpu", progress: bool = True, mirror: bool = False) -> dict:
    """Encode every episode of ``data`` with the tokenizer in ``tokenizer`` into ``out``; returns meta.json's dict.
    ``mirror`` adds each episode's mirror image as ``<id>-mirror`` (module doc)."""
    if stride < 1 or chunk < 1:
        raise ValueError(f"stride and chunk must be >= 1, got {stride}, {chunk}")
    data, out = Path(data), Path(out)
    _, weights = _config_and_weights(tokenizer)
    tok = load_tokenizer(tokenizer, device=device)
    sha = sha256_file(weights)
    dirs, _ = scan_episode_dirs(data)
    if not dirs:
        raise ValueError(f"{data}: no episodes to tokenize")
    episodes = []
    for d in tqdm(dirs, desc="tokenize", unit="episode", disable=not progress):
        ep = load_episode(d)
        for flip in (False, True) if mirror else (False,):
            eid = ep.id + MIRROR_SUFFIX if flip else ep.id
            path = shard_path(out, eid)
            if not _done(path, sha):
                shard = encode_episode(tok, ep, stride, chunk, device, mirror=flip)
                save_weights(path, shard, {"tokenizer_sha256": sha, "episode": ep.id, "stride": stride,
                                           "mirror": str(flip).lower()})
            n = int(load_weights(path)["codes"].shape[0])
            entry = {"id": eid, "frames": n, "has_poses": ep.poses is not None,
                     "caption": mirror_caption(ep.caption) if flip else ep.caption}
            episodes.append({**entry, "mirror_of": ep.id} if flip else entry)
    meta = {
        "version": 1, "codebook_size": tok.codebook_size, "grid": list(tok.grid), "downsample": tok.downsample,
        "frame_size": list(tok.cfg.frame_size), "fps": _fps(data, dirs[0]) / stride, "stride": stride,
        "context_frames": tok.context_frames, "tokenizer": str(tokenizer), "tokenizer_sha256": sha,
        "data": str(data), "mirror": mirror, "n_episodes": len(episodes), "n_frames": sum(e["frames"] for e in episodes),
        "episodes": episodes,
    }
    write_json(out / "meta.json", meta)
    return meta


def read_token_episode(path: str | Path) -> dict:
    """One shard as tensors ``codes`` int32 (t, h, w), ``poses`` float32 (t, 3), ``pose_mask`` uint8 (t,)."""
    shard = load_weights(path)
    missing = {"codes", "poses", "pose_mask"} - set(shard)
    if missing:
        raise ValueError(f"{path}: not a token shard (missing {sorted(missing)})")
    t = shard["codes"].shape[0]
    if shard["codes"].ndim != 3 or shard["poses"].shape != (t, 3) or shard["pose_mask"].shape != (t,):
        raise ValueError(f"{path}: inconsistent shapes codes {tuple(shard['codes'].shape)}, poses "
                         f"{tuple(shard['poses'].shape)}, pose_mask {tuple(shard['pose_mask'].shape)}")
    return shard
