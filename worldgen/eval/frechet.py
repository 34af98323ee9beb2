"""The Fréchet distance between two Gaussians, as used by FID (Heusel et al., 2017) and FVD (Unterthiner et al., 2018).

    d^2 = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))

``Tr((S1 S2)^(1/2))`` is computed through the symmetric form ``Tr((A S2 A)^(1/2))`` with ``A = S1^(1/2)``: both
square roots come from ``eigh`` of symmetric PSD matrices (``torch.linalg`` in float64, which honours
``torch.set_num_threads``), eigenvalues below numpy's rank tolerance (rounding noise, negative or positive, in a
rank-deficient covariance) are clamped to 0, and the result is real. Deliberate deviation from the reference
code, which calls ``scipy.linalg.sqrtm`` and discards an imaginary part: that route has returned negative and huge
values in some scipy versions. The final value is clamped at 0, so the result is never negative or complex.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch


def _clamped_eigs(w: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a PSD matrix with rounding noise removed: anything below numpy's rank tolerance
    (``max|w| * d * eps``) is 0, so a rank-deficient covariance's null space adds nothing to the trace."""
    tol = w.abs().max() * len(w) * torch.finfo(torch.float64).eps if len(w) else 0.0
    return torch.where(w > tol, w, torch.zeros_like(w))


def _sym(m: torch.Tensor) -> torch.Tensor:
    return (m + m.T) / 2


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(_sym(s))
    return (v * _clamped_eigs(w).sqrt()) @ v.T


def trace_sqrt_product(sigma1, sigma2) -> float:
    """``Tr((S1 S2)^(1/2))`` for symmetric PSD ``S1, S2`` (float64)."""
    s1, s2 = (torch.as_tensor(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    a = _psd_sqrt(s1)
    w = torch.linalg.eigvalsh(_sym(a @ s2 @ a))
    return float(_clamped_eigs(w).sqrt().sum())


def _check(mu: np.ndarray, sigma: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{which}: expected mu (d,) and sigma (d, d), got {mu.shape} and {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{which}: statistics contain NaN or inf")
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2, n1: int | None = None, n2: int | None = None) -> float:
    """Squared Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) as a non-negative Python float.

    ``n1``/``n2`` (sample counts behind each covariance), when given, trigger a warning if below the feature
    dimension: such a covariance is rank-deficient and the distance is biased (it depends strongly on N).
    """
    mu1, sigma1 = _check(mu1, sigma1, "set 1")
    mu2, sigma2 = _check(mu2, sigma2, "set 2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]}")
    d = mu1.shape[0]
    for n, which in ((n1, "set 1"), (n2, "set 2")):
        if n is not None and n < d:
            warnings.warn(f"Fréchet distance: {which} has N={n} samples for {d}-dim features; the covariance is "
                          f"rank-deficient and the value is biased and depends on N (standard FVD uses N=2048)",
                          stacklevel=2)
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return max(float(value), 0.0)


def frechet_from_stats(real, fake) -> float:
    """Fréchet distance of two ``FeatureStats`` (1/N covariances), warning when N is below the feature dimension."""
    mu1, s1 = real.mean_cov()
    mu2, s2 = fake.mean_cov()
    return frechet_distance(mu1, s1, mu2, s2, n1=real.count, n2=fake.count)
