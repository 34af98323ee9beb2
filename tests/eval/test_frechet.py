import warnings

import numpy as np
import pytest

from worldgen.eval.frechet import frechet_distance, frechet_from_stats, trace_sqrt_product
from worldgen.eval.stats import FeatureStats


def test_identical_statistics_give_zero_full_and_rank_deficient():
    rng = np.random.default_rng(0)
    for n in (10, 50, 2000):  # N < d (rank-deficient) and N > d
        x = rng.normal(size=(n, 400)) * 3 + 1
        s = FeatureStats(400).update(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert abs(frechet_from_stats(s, s.copy())) < 1e-6


def test_diagonal_gaussians_match_analytic_value():
    rng = np.random.default_rng(1)
    d = 64
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    v1, v2 = rng.uniform(0.01, 5, d), rng.uniform(0.01, 5, d)
    analytic = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(analytic, rel=1e-10)


def test_general_covariances_agree_with_definition():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    s1, s2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
    ev = np.linalg.eigvals(s1 @ s2)  # eigenvalues of S1 S2 are real and >= 0 for PSD S1, S2
    assert trace_sqrt_product(s1, s2) == pytest.approx(np.sqrt(ev.real).sum(), rel=1e-9)


def test_never_negative_or_complex_on_near_identical_singular_sets():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 400))  # rank 19 covariance in 400 dims
    mu, s = x.mean(0), np.cov(x, rowvar=False, bias=True)
    for eps in (0.0, 1e-12, 1e-9):
        value = frechet_distance(mu, s, mu + eps, s * (1 + eps))
        assert isinstance(value, float) and 0.0 <= value < 1e-6


def test_warns_when_n_below_feature_dim():
    rng = np.random.default_rng(4)
    small = FeatureStats(16).update(rng.normal(size=(8, 16)))
    big = FeatureStats(16).update(rng.normal(size=(100, 16)))
    with pytest.warns(UserWarning, match="N=8 samples for 16-dim"):
        frechet_from_stats(small, big)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_from_stats(big, big)


def test_bad_statistics_raise():
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="dimensions differ"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
