"""Streaming feature statistics for Fréchet distances (FVD, Unterthiner et al. 2018; FID, Heusel et al. 2017).

``FeatureStats`` keeps only the count N, the sum of features and the sum of their outer products, all in float64, so
memory is O(d^2) whatever the number of videos, two halves merge exactly into the whole, and DDP ranks combine with
one all-reduce. ``mean_cov()`` returns ``mu = S1 / N`` and ``Sigma = S2 / N - mu mu^T``: the maximum-likelihood
covariance with the **1/N convention** of the reference FVD/FID code (not numpy's default 1/(N-1)). The difference is
a factor N/(N-1) on Sigma, negligible at the standard N = 2048 but not at small N.
"""
from __future__ import annotations

import os

import numpy as np
import torch


class FeatureStats:
    """Count, sum and sum of outer products of ``d``-dim features, accumulated in float64."""

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.count = 0
        self.sum = torch.zeros(self.dim, dtype=torch.float64)
        self.sum_outer = torch.zeros(self.dim, self.dim, dtype=torch.float64)

    def update(self, feats) -> "FeatureStats":
        x = torch.as_tensor(np.asarray(feats) if not torch.is_tensor(feats) else feats).detach().cpu().double()
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"FeatureStats.update: expected features of shape (n, {self.dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("FeatureStats.update: features contain NaN or inf (a broken detector or input?)")
        self.count += x.shape[0]
        self.sum += x.sum(0)
        self.sum_outer += x.T @ x
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        if other.dim != self.dim:
            raise ValueError(f"FeatureStats.merge: dims differ ({self.dim} vs {other.dim})")
        self.count += other.count
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        return self

    def copy(self) -> "FeatureStats":
        return FeatureStats(self.dim).merge(self)

    def all_reduce(self) -> "FeatureStats":
        """Sum the statistics of every DDP rank (no-op without an initialised process group)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        flat = torch.cat([torch.tensor([float(self.count)], dtype=torch.float64), self.sum, self.sum_outer.flatten()])
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        flat = flat.to(device)
        dist.all_reduce(flat)
        flat = flat.cpu()
        self.count = int(round(flat[0].item()))
        self.sum = flat[1:1 + self.dim].clone()
        self.sum_outer = flat[1 + self.dim:].reshape(self.dim, self.dim).clone()
        return self

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, Sigma)`` in float64 with the 1/N covariance convention."""
        if self.count < 1:
            raise ValueError("FeatureStats.mean_cov: no features accumulated")
        mu = self.sum / self.count
        cov = self.sum_outer / self.count - torch.outer(mu, mu)
        cov = (cov + cov.T) / 2  # exact symmetry; rounding can break it by ~1e-16
        return mu.numpy(), cov.numpy()

    def save(self, path: str | os.PathLike) -> None:
        from worldgen.io import save_weights

        save_weights(path, {"sum": self.sum, "sum_outer": self.sum_outer},
                     metadata={"count": self.count, "dim": self.dim, "format": "worldgen.FeatureStats/1"})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStats":
        from safetensors import safe_open

        from worldgen.io import load_weights

        tensors = load_weights(path)
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != "worldgen.FeatureStats/1" or set(tensors) != {"sum", "sum_outer"}:
            raise ValueError(f"{path}: not a worldgen FeatureStats file")
        stats = cls(int(meta["dim"]))
        stats.count = int(meta["count"])
        stats.sum, stats.sum_outer = tensors["sum"].double(), tensors["sum_outer"].double()
        return stats
