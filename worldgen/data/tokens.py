"""Token-shard datasets for the DrivingWorld GPT (clips of VQ codes + ego-pose tokens), and a synthetic shard maker.

Shard format (written by ``worldgen tokenize``): ``DIR/meta.json`` (at least ``codebook_size`` and ``grid``; an
``episodes`` list of ids or ``{"id": ...}`` entries when present) and ``DIR/episodes/<id>.safetensors`` holding
``codes`` int32 ``(t, h, w)``, ``poses`` float32 ``(t, 3)`` relative ``(dx, dy, dyaw rad)`` and ``pose_mask`` uint8
``(t,)``. The GPT never decodes video to train: poses are binned once, when the dataset is built, by the
``encode_pose`` function it is handed (the model's ``PoseTokenizer.encode``; ``data`` sits below ``tokenizer`` and
does not import it). Episodes are split into train/validation *by episode* (the last ``val_episodes`` in sorted
order, see ``worldgen.lit.datamodules.TokenDataModule``), so validation clips are never seen in training.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from worldgen.io import read_json, write_json

# (poses (t, 3) float32 relative dx, dy, dyaw; pose_mask (t,) bool) -> ego tokens (t, 3) long
PoseEncoder = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ShardDataConfig:
    root: str = "data/tokens"  # token shard folder (meta.json + episodes/*.safetensors)
    clip_frames: int = 0  # frames per training clip; 0 = model.context_frames + 1
    stride: int = 1  # frames between consecutive clip starts
    val_episodes: int = 1  # episodes held out for validation (the last ones in sorted order)
    batch_size: int = 8  # per device
    num_workers: int = 0  # DataLoader workers
    posedrop_prob: float = 0.0  # extra probability of dropping a frame's pose in training (posedrop augmentation)
    lane_change_repeats: int = 1  # list training clips with lateral ego motion this many times (1 = off)
    lane_change_dy: float = 0.05  # |dy| per frame (m) above which a target frame counts as lateral motion


def read_meta(root: str | Path) -> dict:
    root = Path(root)
    meta = read_json(root / "meta.json")
    for key in ("codebook_size", "grid"):
        if key not in meta:
            raise ValueError(f"{root / 'meta.json'}: missing '{key}'")
    return meta


def episode_ids(root: str | Path) -> list[str]:
    """Episode ids of a shard folder: from meta.json's ``episodes`` when present, else the files on disk."""
    root = Path(root)
    meta = read_meta(root)
    eps = meta.get("episodes")
    if eps:
        ids = [e["id"] if isinstance(e, dict) else str(e) for e in eps]
    else:
        ids = [p.stem for p in (root / "episodes").glob("*.safetensors")]
    if not ids:
        raise FileNotFoundError(f"{root}: no token episodes found under episodes/")
    return sorted(ids)


def load_episode(path: str | Path) -> dict:
    """One shard file -> ``{codes (t h w) int64, poses (t 3) float32, pose_mask (t,) bool}`` with checked shapes."""
    from worldgen.io import load_weights

    d = load_weights(path)
    for key in ("codes", "poses", "pose_mask"):
        if key not in d:
            raise ValueError(f"{path}: missing tensor '{key}' (need codes, poses, pose_mask)")
    codes, poses, mask = d["codes"].long(), d["poses"].float(), d["pose_mask"].bool()
    t = codes.shape[0]
    if codes.dim() != 3 or poses.shape != (t, 3) or mask.shape != (t,):
        raise ValueError(f"{path}: expected codes (t,h,w), poses (t,3), pose_mask (t,); got {tuple(codes.shape)}, "
                         f"{tuple(poses.shape)}, {tuple(mask.shape)}")
    return {"codes": codes, "poses": poses, "pose_mask": mask}


class TokenClipDataset(Dataset):
    """Clips of ``clip_frames`` consecutive frames: ``{img (t, h*w), ego (t, 3), keep (t,)}`` (long, long, bool).

    ``encode_pose(poses, pose_mask)`` turns an episode's relative poses into its ego tokens, e.g.
    ``PoseTokenizer().encode``. ``lateral_repeats`` lists the clips in which a target frame moves sideways by more
    than ``lateral_dy`` metres (lane changes) that many times; ``lateral_clips`` counts them (once each).
    """

    def __init__(self, root: str | Path, ids: list[str], clip_frames: int, encode_pose: PoseEncoder,
                 stride: int = 1, grid: Optional[tuple] = None, lateral_repeats: int = 1, lateral_dy: float = 0.05):
        if lateral_repeats < 1:
            raise ValueError(f"lane_change_repeats must be >= 1, got {lateral_repeats}")
        self.root, self.clip_frames = Path(root), clip_frames
        self.lateral_clips = 0
        self.episodes, self.index = [], []
        for i, eid in enumerate(ids):
            ep = load_episode(self.root / "episodes" / f"{eid}.safetensors")
            if grid is not None and tuple(ep["codes"].shape[1:]) != tuple(grid):
                raise ValueError(f"{self.root}/episodes/{eid}.safetensors: code grid {tuple(ep['codes'].shape[1:])} "
                                 f"does not match the model grid {tuple(grid)}")
            ego = encode_pose(ep["poses"], ep["pose_mask"])
            self.episodes.append({"img": ep["codes"].flatten(1), "ego": ego, "keep": ep["pose_mask"]})
            lateral = (ep["poses"][:, 1].abs() > lateral_dy) & ep["pose_mask"].bool()
            for s in range(0, ep["codes"].shape[0] - clip_frames + 1, stride):
                moving = bool(lateral[s + 1:s + clip_frames].any())  # a target frame moves sideways
                self.lateral_clips += moving
                self.index += [(i, s)] * (lateral_repeats if moving else 1)
        if not self.index:
            raise ValueError(f"{self.root}: no episode among {ids} has {clip_frames} frames for one clip")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e, s = self.index[i]
        ep = self.episodes[e]
        sl = slice(s, s + self.clip_frames)
        return {"img": ep["img"][sl], "ego": ep["ego"][sl], "keep": ep["keep"][sl]}


def posedrop(batch: dict, prob: float, null_ids: tuple, generator: Optional[torch.Generator] = None) -> dict:
    """Drop each frame's pose with probability ``prob``: keep=False and null ego tokens (the paper's posedrop)."""
    if prob <= 0:
        return batch
    drop = torch.rand(batch["keep"].shape, generator=generator, device=batch["keep"].device) < prob
    ego = torch.where(drop[..., None], torch.tensor(null_ids, device=drop.device), batch["ego"])
    return {**batch, "ego": ego, "keep": batch["keep"] & ~drop}


# meta.json fields every merged folder must agree on (the GPT reads codes of one tokenizer at one frame rate)
_MERGE_KEYS = ("codebook_size", "grid", "downsample", "frame_size", "fps", "stride", "tokenizer_sha256")


def merge_shards(sources: list, out: str | Path) -> dict:
    """Merge token-shard folders into one new folder ``out`` (written atomically; it must not exist).

    The sources must agree on ``_MERGE_KEYS`` (one tokenizer, grid and frame rate) and share no episode id; each
    episode file is copied, and the merged ``meta.json`` lists every episode with the source it came from. Returns the
    merged meta (without the episode list). Any mismatch raises ``ValueError`` naming the folders, before writing.
    """
    import shutil

    from worldgen.io import atomic_dir

    sources = [Path(s) for s in sources]
    if len(sources) < 2:
        raise ValueError(f"merge needs at least two token folders, got {len(sources)}")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; merge writes a new folder (nothing was changed)")
    metas = [read_meta(s) for s in sources]
    for key in _MERGE_KEYS:
        values = {s: m.get(key) for s, m in zip(sources, metas)}
        if len({str(v) for v in values.values()}) > 1:
            listed = ", ".join(f"{s}: {v}" for s, v in values.items())
            raise ValueError(f"token folders disagree on '{key}' ({listed}); merge only shards of one tokenizer")
    entries, owner = [], {}
    for src, meta in zip(sources, metas):
        by_id = {(e["id"] if isinstance(e, dict) else str(e)): e for e in meta.get("episodes") or []}
        for eid in episode_ids(src):
            if eid in owner:
                raise ValueError(f"episode '{eid}' is in both {owner[eid]} and {src}; merge folders of distinct episodes")
            if not (src / "episodes" / f"{eid}.safetensors").is_file():
                raise FileNotFoundError(f"{src}/episodes/{eid}.safetensors: listed in meta.json but missing")
            owner[eid] = src
            entry = by_id.get(eid)
            entries.append({**(entry if isinstance(entry, dict) else {"id": eid}), "source": str(src)})
    merged = {k: v for k, v in metas[0].items() if k != "episodes"}
    merged.update({"data": [m.get("data") for m in metas], "sources": [str(s) for s in sources],
                   "mirror": any(bool(m.get("mirror")) for m in metas), "n_episodes": len(entries),
                   "n_frames": sum(int(m.get("n_frames", 0)) for m in metas)})
    with atomic_dir(out) as tmp:
        (tmp / "episodes").mkdir()
        for e in entries:
            name = f"{e['id']}.safetensors"
            shutil.copyfile(owner[e["id"]] / "episodes" / name, tmp / "episodes" / name)
        write_json(tmp / "meta.json", {**merged, "episodes": entries})
    return merged


def make_synthetic_shards(out_dir: str | Path, n_episodes: int = 3, n_frames: int = 24, grid=(4, 8),
                          codebook_size: int = 32, seed: int = 0, missing_pose_every: int = 0) -> Path:
    """Write learnable token shards in the tokenizer's format (no video, no tokenizer needed; for tests).

    Each episode is a random code map that scrolls one column per frame (like a road passing by) and a constant
    forward speed; ``missing_pose_every = k`` drops the pose of every k-th frame to exercise posedrop.
    """
    from worldgen.io import save_weights

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    h, w = grid
    ids = []
    for e in range(n_episodes):
        base = rng.integers(0, codebook_size, size=(h, w + n_frames))
        codes = np.stack([base[:, t:t + w] for t in range(n_frames)]).astype(np.int32)
        dx = rng.uniform(1.0, 3.0)
        poses = np.zeros((n_frames, 3), np.float32)
        poses[1:, 0] = dx
        poses[1:, 1] = rng.normal(0, 0.05, n_frames - 1)
        poses[1:, 2] = rng.normal(0, 0.01, n_frames - 1)
        mask = np.ones(n_frames, np.uint8)
        if missing_pose_every:
            mask[::missing_pose_every] = 0
        eid = f"ep{e:04d}"
        save_weights(out / "episodes" / f"{eid}.safetensors", {
            "codes": torch.from_numpy(codes), "poses": torch.from_numpy(poses), "pose_mask": torch.from_numpy(mask)})
        ids.append({"id": eid, "frames": n_frames})
    write_json(out / "meta.json", {"version": 1, "codebook_size": codebook_size, "grid": [h, w], "fps": 10,
                                   "episodes": ids, "source": "synthetic"})
    return out
