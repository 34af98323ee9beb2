"""LightningDataModules over worldgen's datasets: driving video clips and VQ token shards.

The datasets, their configs and on-disk formats live in ``worldgen.data`` (``clips``, ``tokens``) and run without
Lightning; these modules only split episodes into train/validation and build the loaders. Training loaders come from
``worldgen.data.loaders.make_loader`` so a run resumes mid-epoch (``trainer.resume=last``).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import lightning as L
import numpy as np
from torch.utils.data import DataLoader, Subset

from worldgen.data.clips import DrivingDataConfig, VideoClipDataset, split_episodes
from worldgen.data.episodes import scan_episode_dirs
from worldgen.data.frames import FrameBank, FrameDataConfig, FrameDataset, PairDataset, split_bank_ids
from worldgen.data.loaders import make_loader
from worldgen.data.tokens import ShardDataConfig, TokenClipDataset, episode_ids, read_meta
from worldgen.tokenizer.pose import PoseTokenizer

log = logging.getLogger(__name__)


class DrivingDataModule(L.LightningDataModule):
    """Clips of driving episodes, split by episode (``DrivingDataConfig.val_fraction``, seeded)."""

    def __init__(self, cfg: DrivingDataConfig):
        super().__init__()
        self.cfg = cfg
        self.train_set: VideoClipDataset | None = None
        self.val_set: VideoClipDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        c = self.cfg
        dirs, _ = scan_episode_dirs(c.root)
        ids = [d.name for d in dirs if d.name not in set(c.exclude)]
        train_ids, val_ids = split_episodes(ids, c.val_fraction, c.seed)
        common = dict(clip_len=c.clip_len, stride=c.stride, output=c.output, skip_bad=c.skip_bad)
        self.train_set = VideoClipDataset(c.root, hop=c.hop, episodes=train_ids, **common)
        self.val_set = VideoClipDataset(c.root, episodes=val_ids, **common)
        if len(self.train_set) == 0:
            raise ValueError(f"{c.root}: no training clips of {c.clip_len} frames at stride {c.stride} "
                             f"({self.train_set.summary()['episodes']} usable episodes)")

    def _loader(self, ds: VideoClipDataset, train: bool) -> DataLoader:
        c = self.cfg
        return make_loader(ds, c.batch_size, shuffle=train, drop_last=train and len(ds) >= c.batch_size,
                           num_workers=c.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self):
        return self._loader(self.val_set, train=False) if len(self.val_set) else []

    def summary(self) -> dict:
        return {"train": self.train_set.summary(), "val": self.val_set.summary()}


class FrameDataModule(L.LightningDataModule):
    """In-memory frames (stage-1 image prior) or (anchor, previous, target) pairs (ART·V stage 2) of driving
    episodes (``worldgen.data.frames``), split by episode (``FrameDataConfig.val_fraction``, seeded)."""

    def __init__(self, cfg: FrameDataConfig, pairs: bool):
        super().__init__()
        self.cfg, self.pairs = cfg, pairs
        self.train_set = self.val_set = None

    def _dataset(self, ids: list[str], seed: int):
        bank = FrameBank(self.cfg.root, ids, self.cfg.local_captions)
        c = self.cfg
        return PairDataset(bank, seed, lane_change_repeats=c.lane_change_repeats, onset_repeats=c.onset_repeats) \
            if self.pairs else FrameDataset(bank)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train_ids, val_ids = split_bank_ids(self.cfg)
        self.train_set = self._dataset(train_ids, self.cfg.seed)
        self.val_set = self._dataset(val_ids, self.cfg.seed + 1) if val_ids else None

    def train_dataloader(self) -> DataLoader:
        c = self.cfg
        return make_loader(self.train_set, c.batch_size, shuffle=True, drop_last=len(self.train_set) >= c.batch_size,
                           num_workers=c.num_workers)

    def val_dataloader(self):
        if self.val_set is None:
            return []
        # a fixed, evenly spread subset: the same frames every validation
        idx = np.linspace(0, len(self.val_set) - 1, min(len(self.val_set), 8 * self.cfg.batch_size)).astype(int)
        return DataLoader(Subset(self.val_set, idx.tolist()), batch_size=self.cfg.batch_size)


class TokenDataModule(L.LightningDataModule):
    """Token-shard clips for the DrivingWorld GPT; the last ``val_episodes`` (sorted) are held out."""

    def __init__(self, cfg: ShardDataConfig, clip_frames: int, pose_tokenizer: PoseTokenizer,
                 codebook_size: int, grid: tuple):
        super().__init__()
        self.cfg, self.clip_frames, self.pose_tokenizer = cfg, clip_frames, pose_tokenizer
        self.codebook_size, self.grid = codebook_size, tuple(grid)

    def setup(self, stage: Optional[str] = None) -> None:
        root = Path(self.cfg.root)
        meta = read_meta(root)
        if int(meta["codebook_size"]) > self.codebook_size:
            raise ValueError(f"{root}/meta.json: codebook_size {meta['codebook_size']} exceeds model.codebook_size "
                             f"{self.codebook_size}")
        ids = episode_ids(root)
        n_val = min(self.cfg.val_episodes, len(ids) - 1)
        train_ids, val_ids = ids[:len(ids) - n_val], ids[len(ids) - n_val:]
        mk = lambda ids, stride, rep: TokenClipDataset(root, ids, self.clip_frames, self.pose_tokenizer.encode, stride,
                                                       self.grid, rep, self.cfg.lane_change_dy)
        self.train_set = mk(train_ids, self.cfg.stride, self.cfg.lane_change_repeats)
        self.val_set = mk(val_ids, self.clip_frames, 1) if val_ids else None  # validation: every clip once
        clip = self.pose_tokenizer.clip_fraction()
        if any(v > 0.01 for v in clip.values()):
            log.warning("pose tokenizer clipped more than 1%% of values: %s (widen model.pose ranges)", clip)
        log.info("token clips: %d train (%d with lateral motion, listed x%d), %d val; pose clip fractions %s",
                 len(self.train_set), self.train_set.lateral_clips, self.cfg.lane_change_repeats,
                 len(self.val_set) if self.val_set else 0, clip)

    def train_dataloader(self) -> DataLoader:
        return make_loader(self.train_set, self.cfg.batch_size, shuffle=True, drop_last=True,
                           num_workers=self.cfg.num_workers)

    def val_dataloader(self):
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.cfg.batch_size, num_workers=self.cfg.num_workers)
