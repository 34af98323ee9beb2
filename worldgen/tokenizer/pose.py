"""Ego-pose tokenizer of DrivingWorld (Hu et al., 2024, Sec. 3.1 "ego-state tokens").

Each frame's motion relative to the previous frame, ``(dx forward m, dy lateral m, dyaw rad)``, becomes three
discrete tokens in the order the world model consumes them: yaw, x, y. Each component is binned uniformly over a
fixed range; the paper's ranges and bin counts are the defaults (yaw [-8, 8] deg in 512 bins, x [0, 8) m in 128 bins,
y [-0.5, 0.5] m in 128 bins). Decoding returns bin centres, so an in-range value round-trips with an error of at
most half a bin. Out-of-range values are clipped into the first/last bin and counted (``clip_counts``), so a
mis-scaled dataset shows up in the logs instead of silently saturating.

Posedrop: frames without a pose (``pose_mask`` False) get the extra "null" index ``bins`` of each component; the
world model embeds it, zeroes the ego losses of those frames and cuts those tokens from attention.
Deliberate deviation: yaw is stored in radians in the data contract, the ranges here are given in degrees like the paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

ORDER = ("yaw", "x", "y")  # token order inside a frame
_COMPONENT = {"x": 0, "y": 1, "yaw": 2}  # column of each component in a (dx, dy, dyaw) pose row


@dataclass
class PoseTokenizerConfig:
    yaw_range_deg: list = field(default_factory=lambda: [-8.0, 8.0])  # relative yaw per frame, degrees
    yaw_bins: int = 512  # uniform bins over yaw_range_deg
    x_range_m: list = field(default_factory=lambda: [0.0, 8.0])  # forward motion per frame, metres
    x_bins: int = 128  # uniform bins over x_range_m
    y_range_m: list = field(default_factory=lambda: [-0.5, 0.5])  # lateral motion per frame, metres
    y_bins: int = 128  # uniform bins over y_range_m


class PoseTokenizer:
    """Bins relative poses into (yaw, x, y) tokens and back; counts clipped values per component."""

    def __init__(self, cfg: PoseTokenizerConfig | None = None):
        self.cfg = cfg or PoseTokenizerConfig()
        c = self.cfg
        yaw_lo, yaw_hi = (math.radians(v) for v in c.yaw_range_deg)
        self.ranges = {"yaw": (yaw_lo, yaw_hi), "x": tuple(c.x_range_m), "y": tuple(c.y_range_m)}
        self.bins = {"yaw": c.yaw_bins, "x": c.x_bins, "y": c.y_bins}
        for name, (lo, hi) in self.ranges.items():
            if not hi > lo or self.bins[name] < 2:
                raise ValueError(f"pose tokenizer: {name} range {self.ranges[name]} / {self.bins[name]} bins is invalid")
        self.clip_counts = {name: 0 for name in ORDER}  # values clipped into the edge bins since creation
        self.n_values = 0  # poses encoded since creation (for clip fractions)

    def bin_width(self, name: str) -> float:
        lo, hi = self.ranges[name]
        return (hi - lo) / self.bins[name]

    @property
    def vocab_sizes(self) -> tuple[int, int, int]:
        """Real bins of (yaw, x, y); each embedding table needs one more row for the posedrop null token."""
        return tuple(self.bins[n] for n in ORDER)  # type: ignore[return-value]

    def _encode_one(self, v: torch.Tensor, name: str) -> torch.Tensor:
        lo, hi = self.ranges[name]
        clipped = (v < lo) | (v > hi)
        self.clip_counts[name] += int(clipped.sum())
        idx = torch.floor((v - lo) / self.bin_width(name)).long()
        return idx.clamp(0, self.bins[name] - 1)

    def encode(self, poses: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``poses (..., 3)`` as (dx, dy, dyaw) -> long tokens ``(..., 3)`` as (yaw, x, y); missing -> null index."""
        if poses.shape[-1] != 3:
            raise ValueError(f"poses must end in 3 values (dx, dy, dyaw), got shape {tuple(poses.shape)}")
        poses = poses.double()
        if mask is None:
            mask = torch.ones(poses.shape[:-1], dtype=torch.bool)
        mask = mask.bool() & torch.isfinite(poses).all(-1)
        safe = torch.where(mask[..., None], poses, torch.zeros_like(poses))
        out = []
        for name in ORDER:
            tok = self._encode_one(torch.where(mask, safe[..., _COMPONENT[name]], 0.5 * sum(self.ranges[name])), name)
            out.append(torch.where(mask, tok, torch.full_like(tok, self.bins[name])))
        self.n_values += int(mask.sum())
        return torch.stack(out, -1)

    def decode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(..., 3)`` -> (poses ``(..., 3)`` float32 (dx, dy, dyaw) at bin centres, mask); null -> zeros."""
        poses = torch.zeros(*tokens.shape[:-1], 3, dtype=torch.float64)
        mask = torch.ones(tokens.shape[:-1], dtype=torch.bool)
        for j, name in enumerate(ORDER):
            tok = tokens[..., j].long()
            mask &= tok < self.bins[name]
            lo, _ = self.ranges[name]
            centre = lo + (tok.clamp(0, self.bins[name] - 1).double() + 0.5) * self.bin_width(name)
            poses[..., _COMPONENT[name]] = centre
        poses = torch.where(mask[..., None], poses, torch.zeros_like(poses))
        return poses.float(), mask

    def clip_fraction(self) -> dict:
        return {name: self.clip_counts[name] / max(1, self.n_values) for name in ORDER}
