"""FID intervals (half-sampling at two fractions, and the delta method) against Monte-Carlo truth on Gaussians.

real ~ N(0, I_4), fake ~ N(0.3, 1.5 I_4): FID_inf = 4 * 0.09 + 4 * (1 + 1.5 - 2 sqrt(1.5)). The interval is for
the expected FID at the given sample size, E[FID_n] (README, "Confidence intervals"), estimated from 2000
independent data sets. Coverage over R data sets is Binomial(R, p): the test accepts the nominal rate within
3 binomial standard deviations on both sides, so intervals that are too wide fail as well as too narrow ones.
"""

import numpy as np
import pytest

import ganmetrics as gm

D, N, R = 4, 1000, 100
MU, VAR = 0.3, 1.5
FID_INF = D * MU**2 + D * (1 + VAR - 2 * np.sqrt(VAR))


def draw(rng, n=N):
    real = rng.standard_normal((n, D))
    fake = rng.standard_normal((n, D)) * np.sqrt(VAR) + MU
    return real, fake


@pytest.fixture(scope="module")
def monte_carlo():
    rng = np.random.default_rng(2024)
    fids = np.array([gm.fid(*draw(rng)) for _ in range(2000)])
    return fids.mean(), fids.std(ddof=1)


METHODS = [("half-sampling", 0.5), ("half-sampling", 0.3), ("delta", 0.5)]


@pytest.fixture(scope="module")
def intervals():
    out = {}
    for method, fraction in METHODS:
        rng = np.random.default_rng(7 + int(fraction * 10))
        out[method, fraction] = [gm.bootstrap(*draw(rng), ["fid"], n_boot=50, fraction=fraction, confidence=0.9,
                                              seed=i, progress=False, fid_method=method)["fid"] for i in range(R)]
        assert {iv.method for iv in out[method, fraction]} == {method}
    return out


def binomial_band(p, reps, z=3.0):
    half = z * np.sqrt(p * (1 - p) / reps)
    return p - half, p + half


@pytest.mark.parametrize("method", METHODS)
def test_coverage_within_the_binomial_band(intervals, monte_carlo, method):
    expected, _ = monte_carlo
    hits = sum(iv.low <= expected <= iv.high for iv in intervals[method])
    lo, hi = binomial_band(0.9, R)  # 90 % intervals: [0.81, 0.99] of 100
    assert lo <= hits / R <= hi, hits


@pytest.mark.parametrize("method", METHODS)
def test_std_matches_the_spread_of_fid(intervals, monte_carlo, method):
    _, sd = monte_carlo
    mean_std = np.mean([iv.std for iv in intervals[method]])
    assert 0.8 <= mean_std / sd <= 1.25, (mean_std, sd)


@pytest.mark.parametrize("method", METHODS)
def test_bias_and_debiased_against_monte_carlo(intervals, monte_carlo, method):
    expected, sd = monte_carlo
    true_bias = expected - FID_INF  # the 1/n bias at n = 1000
    assert true_bias > 2 * sd / np.sqrt(R)  # large enough for the test to see it
    biases = np.array([iv.bias for iv in intervals[method]])
    debiased = np.array([iv.debiased for iv in intervals[method]])
    values = np.array([iv.value for iv in intervals[method]])
    # averaged over R data sets the bias estimate recovers the Monte-Carlo bias (a zero or halved bias fails) ...
    assert abs(biases.mean() - true_bias) <= 0.25 * true_bias + 3 * biases.std(ddof=1) / np.sqrt(R)
    # ... and the debiased values are unbiased for FID_inf, within 3 standard errors of their mean
    assert abs(debiased.mean() - FID_INF) <= 3 * debiased.std(ddof=1) / np.sqrt(R)
    np.testing.assert_allclose(debiased, values - biases, rtol=0, atol=1e-12)
