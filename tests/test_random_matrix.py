"""Random-matrix facts behind "bulk + outliers" (Sagun et al. 2017, arXiv:1706.04454, App. B).

The linear-MSE Hessian closed form is checked against the engine (``hr.hessian``); the
Marchenko–Pastur (MP) CDF closed form against numerical quadrature of the density; the
spectra of engine Hessians against MP and the spiked-model (BBP) predictions with
tolerances from finite-size theory, stated in each docstring.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

import hessref as hr
from hessref.experiments.random_matrix import (
    bbp_threshold,
    edge_scale,
    kolmogorov_distance,
    linear_mse_hessian,
    mp_cdf,
    mp_density,
    mp_edges,
    spike_location,
    spike_std,
    spiked_inputs,
)

ALPHAS = st.floats(0.05, 4.0)
SEEDS = st.integers(0, 2**32 - 1)


def linear_hessian_eigenvalues(X: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of the engine's H for MLP([M, 1], "identity"), mean MSE."""
    N, M = X.shape
    model = hr.MLP([M, 1], activation="identity")
    H = hr.hessian(model, np.zeros(M + 1), X, np.zeros((N, 1)), loss="mse")
    return np.linalg.eigvalsh(H)


@settings(max_examples=15)
@given(K=st.integers(1, 3), M=st.integers(1, 6), N=st.integers(1, 9), seed=SEEDS)
def test_linear_mse_hessian_is_identity_kron_covariance(K, M, N, seed) -> None:
    """H (engine, at a random θ and random targets) equals the closed form
    [[I_K ⊗ XᵀX/N, I_K ⊗ x̄], [I_K ⊗ x̄ᵀ, I_K]] to 1e-12, with I_K as the *first*
    Kronecker factor (hessref's row-major W); for K, M ≥ 2 the other order differs."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, M))
    model = hr.MLP([M, K], activation="identity")
    H = hr.hessian(model, model.init(rng), X, rng.standard_normal((N, K)), loss="mse")
    ref = linear_mse_hessian(X, K)
    assert np.abs(H - ref).max() <= 1e-12 * np.abs(ref).max()
    S = X.T @ X / N
    W = slice(0, K * M)
    assert np.array_equal(ref[W, W], np.kron(np.eye(K), S))
    if K >= 2 and M >= 2:
        assert np.abs(H[W, W] - np.kron(S, np.eye(K))).max() > 1e-6 * np.abs(S).max()


@pytest.mark.parametrize("alpha", [0.01, 0.3, 1.0, 2.0, 7.0])
def test_mp_cdf_closed_form_matches_quadrature(alpha) -> None:
    """F_α (closed form) = atom + ∫_a^x ρ_α, the integral by adaptive quadrature with the
    (t − a)^(−1/2) endpoint weight (integrand bounded), to 1e-12 absolute; at interior
    points, near both edges (1e-9 inside) and F(b) = 1. Also F is nondecreasing."""
    a, b = mp_edges(alpha)

    def smooth(t):  # ρ_α(t) · √(t − a); bounded on [a, b], also when a = 0 (α = 1)
        return np.sqrt(max(b - t, 0.0)) * ((t - a) / t if t > 0 else 1.0) / (2 * np.pi * alpha)

    atom = max(0.0, 1 - 1 / alpha)
    xs = [a + 1e-9, *np.linspace(a, b, 6)[1:-1], b - 1e-9]
    for x in xs:
        val, _ = quad(smooth, a, x, weight="alg", wvar=(-0.5, 0), epsabs=1e-13, epsrel=1e-12)
        assert abs(mp_cdf(x, alpha) - (atom + val)) <= 1e-12
    assert mp_cdf(b, alpha) == pytest.approx(1.0, abs=1e-15)
    assert mp_cdf(-1e-3, alpha) == 0.0
    grid = np.linspace(-0.5, b + 1, 2001)
    assert np.all(np.diff(mp_cdf(grid, alpha)) >= -1e-15)
    mass, _ = quad(lambda t: float(mp_density(t, alpha)), a, b, limit=200)
    assert mass == pytest.approx(min(1.0, 1 / alpha), abs=1e-7)


@settings(max_examples=20)
@given(alpha=ALPHAS, M=st.integers(30, 160), seed=SEEDS)
def test_linear_mse_spectrum_follows_marchenko_pastur(alpha, M, seed) -> None:
    """The engine's H for a linear model on i.i.d. N(0, 1) inputs is one copy of
    S̃ = X̃ᵀX̃/N (X̃ = [X, 1], population I_{M+1}); its empirical CDF is within
    (2 + log n)/n of MP(α̃ = n/N) in Kolmogorov distance, n = M + 1.

    Finite-size theory: eigenvalue rigidity for Gaussian sample covariance matrices
    (Pillai & Yin 2014, arXiv:1110.2501) puts every eigenvalue within n^(−1+ε) of its
    classical location in the bulk (n^(−2/3+ε) at the edges), so the Kolmogorov distance is
    O(log^c n / n) with overwhelming probability; we use c = 1 with constant 1, plus 1/n
    for the rank-one constant feature (interlacing). Measured over 300 draws (α ∈ [0.1, 4],
    M ∈ [30, 300]): n·D ≤ 3.5, against n·tolerance = 2 + log n ≥ 5.4; over 300 further
    draws in this test's ranges, D/tolerance ≤ 0.56.
    The same spectrum against MP with α̃·1.5 must fail (the test has teeth).
    """
    N = max(2, round((M + 1) / alpha))
    n, a_eff = M + 1, (M + 1) / N
    ev = linear_hessian_eigenvalues(np.random.default_rng(seed).standard_normal((N, M)))
    tol = (2 + np.log(n)) / n
    assert kolmogorov_distance(ev, a_eff) <= tol
    if n >= 100:
        assert kolmogorov_distance(ev, 1.5 * a_eff) > tol


@pytest.mark.parametrize("alpha", [0.25, 2.0])
def test_kolmogorov_distance_shrinks_with_size(alpha) -> None:
    """D(n = 401) < D(n = 26) / 3 for the same α and seed: the O(log n / n) rate predicts a
    factor ≈ 10; measured ≈ 7-15 over seeds, so a factor 3 leaves a wide margin."""
    rng = np.random.default_rng(7)
    d = []
    for M in (25, 400):
        N = round((M + 1) / alpha)
        d.append(
            kolmogorov_distance(
                linear_hessian_eigenvalues(rng.standard_normal((N, M))), (M + 1) / N
            )
        )
    assert d[1] < d[0] / 3


@settings(max_examples=15)
@given(alpha=st.floats(0.1, 2.0), excess=st.floats(1.0, 10.0), seed=SEEDS)
def test_supercritical_spike_gives_predicted_outlier(alpha, excess, seed) -> None:
    """A population spike ℓ = ℓ_c + excess (ℓ_c = 1 + √α, excess ≥ 1) gives a top eigenvalue
    of H within 5 standard deviations of ρ(ℓ) = ℓ(1 + α/(ℓ − 1)), the second one at the
    bulk edge (±8 Tracy–Widom scales, see the subcritical test), and the top one above
    that band whenever the two bands are disjoint.

    Finite-size theory: above the threshold the outlier is Gaussian around ρ(ℓ) with std
    ℓ√(2(1 − α/(ℓ−1)²)/N) (Paul 2007) plus O(1/N) bias; the critical window has width
    O(N^(−1/3)) ≈ 0.14 here (Baik, Ben Arous, Péché 2005), so excess ≥ 1 is far outside it.
    Measured z-scores over 640 draws (M = 100, 300): |z| ≤ 3.3; over 300 draws in this
    test's ranges (M = 150): |z| ≤ 2.6 and the second eigenvalue within 4.9 TW scales. With N ≈ 200, 5σ is 10-35% of ρ(ℓ);
    "a few percent" needs N in the thousands (the experiment reports the relative error).
    """
    M = 150
    N = round((M + 1) / alpha)
    a_eff = (M + 1) / N
    spike = bbp_threshold(a_eff) + excess
    ev = linear_hessian_eigenvalues(spiked_inputs(N, M, spike, rng=seed))
    rho, sd = spike_location(spike, a_eff), spike_std(spike, a_eff, N)
    edge, tw = mp_edges(a_eff)[1], edge_scale(M + 1, N)
    assert abs(ev[-1] - rho) <= 5 * sd
    assert abs(ev[-2] - edge) <= 8 * tw  # the rest stays in the bulk: one outlier
    if rho - 5 * sd > edge + 8 * tw:  # the two bands are disjoint: outside the bulk
        assert ev[-1] > edge + 8 * tw


@settings(max_examples=15)
@given(alpha=st.floats(0.1, 2.0), frac=st.floats(0.0, 1.0), seed=SEEDS)
def test_subcritical_spike_gives_no_outlier(alpha, frac, seed) -> None:
    """A spike 1 ≤ ℓ ≤ ℓ_c − 0.5 leaves the top eigenvalue at the bulk edge (1 + √α)², within
    ±8 Tracy–Widom scales (Johnstone 2001: (√N + √M)(1/√N + 1/√M)^(1/3)/N).

    Finite-size theory: below the threshold the top eigenvalue has the TW₁ law on that scale
    (Baik, Ben Arous, Péché 2005); P(|TW₁| > 8) < 1e-6. Measured standardised values over
    160 draws lie in [−3.9, 2.1]; over 300 draws in this test's ranges, |·| ≤ 4.5. The distance 0.5 from ℓ_c keeps the spike out of the
    critical window (width O(N^(−1/3))).
    """
    M = 150
    N = round((M + 1) / alpha)
    a_eff = (M + 1) / N
    spike = 1 + frac * max(0.0, bbp_threshold(a_eff) - 1.5)
    ev = linear_hessian_eigenvalues(spiked_inputs(N, M, spike, rng=seed))
    assert abs(ev[-1] - mp_edges(a_eff)[1]) <= 8 * edge_scale(M + 1, N)


def test_bad_alpha_and_spike_raise() -> None:
    """Clear errors naming the argument."""
    with pytest.raises(ValueError, match="alpha"):
        mp_cdf(1.0, -1.0)
    with pytest.raises(ValueError, match="spike"):
        spiked_inputs(3, 2, spike=0.0, rng=0)


def test_linear_softmax_at_zero_is_half_the_covariance() -> None:
    """Linear softmax (K = 2) at θ = 0: p = ½, so H = [[¼, −¼], [−¼, ¼]] ⊗ X̃ᵀX̃/N in
    output-wise order and its nonzero eigenvalues are eig(X̃ᵀX̃/N)/2 (to 1e-12): the exact
    basis of the BBP prediction for the two-blob outlier at initialisation."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 5)) + 2.0
    y = np.arange(30) % 2
    model = hr.MLP([5, 2], activation="identity")
    ev = np.linalg.eigvalsh(hr.hessian(model, np.zeros(12), X, y, loss="cross_entropy"))
    Xt = np.c_[X, np.ones(30)]
    ref = np.linalg.eigvalsh(Xt.T @ Xt / 30) / 2
    assert np.allclose(np.sort(ev)[6:], ref, rtol=0, atol=1e-12 * ref.max())
    assert np.allclose(np.sort(ev)[:6], 0, atol=1e-12 * ref.max())


def test_random_matrix_experiment_runs_fast_and_verdicts_follow_data() -> None:
    """Fast mode over 2 seeds (reproducible), and altered numbers flip the verdicts."""
    from hessref.experiments.framework import get_experiment, run_experiment, summarise

    r = run_experiment("random-matrix", fast=True, seeds=[0, 1])
    assert run_experiment("random-matrix", fast=True, seeds=[1]).per_seed[0] == r.per_seed[1]
    for m in r.per_seed:
        assert m["mp_max_nD"] > 0 and len(m["details"]["bbp"]) == len(r.settings["spike_ratios"])
    exp = get_experiment("random-matrix")
    bad = dict(r.per_seed[0], mp_worst_D_over_tol=1.5, bbp_mismatches=1)
    good = dict(r.per_seed[0], mp_worst_D_over_tol=0.5, bbp_mismatches=0)
    rb = summarise(exp, r.settings, [0], [bad])
    rg = summarise(exp, r.settings, [0], [good])
    for name in ("marchenko-pastur", "bbp-transition"):
        assert rb.verdict(name)["holds"] == 0 and rg.verdict(name)["holds"] == 1


@pytest.mark.parametrize("ratio", [2.0, 3.0])
def test_detection_power_matches_the_empirical_detection_rate(ratio) -> None:
    """At α = 0.5 (where 1 + √α ≠ 1 + α) the predicted power of the 8·s_TW detector
    matches the fraction of 300 seeded draws it flags (binomial se ≤ 0.03)."""
    from hessref.experiments.random_matrix import DETECT_TW, detection_power

    M, N = 100, 202
    a = (M + 1) / N
    spike = 1 + ratio * (bbp_threshold(a) - 1)
    cut = mp_edges(a)[1] + DETECT_TW * edge_scale(M + 1, N)
    gen = np.random.default_rng(0)
    hits = [
        linear_hessian_eigenvalues(spiked_inputs(N, M, spike, rng=gen))[-1] > cut
        for _ in range(300)
    ]
    power = detection_power(spike, a, M + 1, N)
    assert 0.05 < power < 0.99
    assert abs(np.mean(hits) - power) <= 0.06
    assert detection_power(1 + 0.9 * (bbp_threshold(a) - 1), a, M + 1, N) == 0.0


def test_bbp_threshold_at_alpha_other_than_one() -> None:
    # at α = 1, 1 + α = 1 + √α: a wrong threshold formula would pass there, not here
    assert bbp_threshold(0.5) == pytest.approx(1 + np.sqrt(0.5), rel=1e-15)
    assert abs(bbp_threshold(0.5) - 1.5) > 0.2
    assert spike_location(4.0, 0.5) == pytest.approx(4.0 * (1 + 0.5 / 3.0), rel=1e-15)
    assert spike_location(1.6, 0.5) == pytest.approx(mp_edges(0.5)[1], rel=1e-15)  # sub


def test_random_matrix_places_spikes_clearly_on_either_side() -> None:
    from hessref.experiments import run_experiment

    r = run_experiment("random-matrix", fast=True, seeds=[0])
    assert r.settings["bbp_alpha"] != 1.0
    for b in r.per_seed[0]["details"]["bbp"]:
        assert b["spike"] == pytest.approx(1 + b["ratio"] * (b["threshold"] - 1))
        assert b["clear"] == (b["ratio"] <= 0.6 or b["power"] >= 0.99)
    clear = [b for b in r.per_seed[0]["details"]["bbp"] if b["clear"]]
    assert {b["supercritical"] for b in clear} == {True, False}


# --- formulas at α ≠ 1, where the plausible wrong ones give other numbers (issue 21) ------
# At α = 1, √α = α and 1 + α = 1 + √α, so a formula with α for √α (or the reverse) passes
# every check there. These tests use α ∈ {0.25, 2, 4}; each docstring names the wrong form
# the numbers exclude.


@pytest.mark.parametrize(
    ("alpha", "lower", "upper"),
    [(0.25, 0.25, 2.25), (2.0, 3 - 2 * np.sqrt(2), 3 + 2 * np.sqrt(2)), (4.0, 1.0, 9.0)],
)
def test_mp_edges_at_alpha_not_one(alpha, lower, upper) -> None:
    """(1 ∓ √α)² expanded by hand: α = 1/4 → (1/4, 9/4); α = 2 → 3 ∓ 2√2 (5.83, the
    edge quoted for α = 2); α = 4 → (1, 9). The wrong (1 ∓ α)² gives (0.5625, 1.5625),
    (1, 9) and (9, 25). The density vanishes outside and is positive just inside."""
    a, b = mp_edges(alpha)
    assert (a, b) == pytest.approx((lower, upper), rel=1e-14)
    assert (1 - alpha) ** 2 != pytest.approx(a, rel=1e-3) or (1 + alpha) ** 2 != pytest.approx(b)
    eps = 1e-6 * b
    assert mp_density(a - eps, alpha) == 0.0 and mp_density(b + eps, alpha) == 0.0
    assert mp_density(a + eps, alpha) > 0.0 and mp_density(b - eps, alpha) > 0.0


def test_mp_atom_at_zero_for_alpha_above_one() -> None:
    """For α = 4 (M = 4N) the law has an atom 1 − 1/α = 3/4 at 0 (rank ≤ N of M): F is 3/4
    on [0, (1 − √α)²) = [0, 1). The wrong 1/α would give 1/4. A sample covariance with
    M = 400, N = 100 has exactly 300 zero eigenvalues (rank), the same 3/4."""
    assert mp_cdf(0.0, 4.0) == pytest.approx(0.75, abs=1e-15)
    assert mp_cdf(0.999, 4.0) == pytest.approx(0.75, abs=1e-15)
    X = np.random.default_rng(0).standard_normal((100, 400))
    ev = np.linalg.eigvalsh(X.T @ X / 100)
    assert np.sum(ev < 1e-10 * ev.max()) == 300


@pytest.mark.parametrize(("alpha", "threshold"), [(0.25, 1.5), (2.0, 1 + np.sqrt(2)), (4.0, 3.0)])
def test_bbp_threshold_at_alpha_not_one(alpha, threshold) -> None:
    """ℓ_c = 1 + √α: 1.5, 2.414 and 3 (the wrong 1 + α: 1.25, 3, 5). Independent channel:
    ℓ_c is where the outlier location ρ(ℓ) = ℓ(1 + α/(ℓ − 1)) has its minimum over ℓ > 1
    (ρ′(ℓ) = 1 − α/(ℓ − 1)² = 0) and where ρ meets the bulk edge (1 + √α)²; checked on a
    grid of ℓ, without the closed form."""
    assert bbp_threshold(alpha) == pytest.approx(threshold, rel=1e-14)
    grid = np.linspace(1.001, 1 + 4 * max(alpha, 1), 400_001)
    rho = grid * (1 + alpha / (grid - 1))
    assert grid[np.argmin(rho)] == pytest.approx(threshold, abs=2 * (grid[1] - grid[0]))
    assert rho.min() == pytest.approx(mp_edges(alpha)[1], rel=1e-9)
    assert abs(bbp_threshold(alpha) - (1 + alpha)) > 0.2


@pytest.mark.parametrize(
    ("spike", "alpha", "location"),
    [(5.0, 2.0, 7.5), (4.0, 0.25, 13 / 3), (8.0, 4.0, 88 / 7), (2.0, 2.0, 3 + 2 * np.sqrt(2))],
)
def test_spike_location_at_alpha_not_one(spike, alpha, location) -> None:
    """ρ(ℓ) = ℓ(1 + α/(ℓ − 1)) by hand: (ℓ, α) = (5, 2) → 7.5 (the value quoted for α = 2);
    (4, 1/4) → 13/3; (8, 4) → 88/7; (2, 2) is below ℓ_c = 2.414, so the top eigenvalue
    stays at the edge 3 + 2√2. Wrong forms give other values at (5, 2): ℓ + α = 7,
    ℓ(1 + √α/(ℓ − 1)) = 6.77, ℓ(1 + α/ℓ) = 7. ρ is continuous at ℓ_c (no jump from the edge)."""
    assert spike_location(spike, alpha) == pytest.approx(location, rel=1e-14)
    lc = bbp_threshold(alpha)
    assert spike_location(lc + 1e-9, alpha) == pytest.approx(mp_edges(alpha)[1], rel=1e-7)
    if spike > lc:
        wrong = (spike + alpha, spike * (1 + np.sqrt(alpha) / (spike - 1)))
        assert all(abs(w - location) > 0.05 for w in wrong)


def test_spike_location_matches_a_large_sample_at_alpha_quarter() -> None:
    """One large draw (M = 1000, N = 4000, α = 1/4, ℓ = 4): the top eigenvalue of the sample
    covariance is within 2 std (Paul 2007: std 0.088) of ρ = 13/3 = 4.333, the second at
    the bulk edge 9/4 ± 8 Tracy–Widom scales. Measured over seeds 0-5: z ∈ [−1.73, 0.55].
    This excludes ℓ(1 + √α/(ℓ − 1)) = 4.667 (3.8 std away) and the unbiased ℓ = 4 (3.8 std
    below); it cannot separate ℓ + α = 4.25 (0.9 std), which the hand values above exclude."""
    M, N, spike = 1000, 4000, 4.0
    alpha = M / N
    X = spiked_inputs(N, M, spike, rng=0)
    ev = np.linalg.eigvalsh(X.T @ X / N)
    sd = spike_std(spike, alpha, N)
    assert sd == pytest.approx(4 * np.sqrt(2 * (1 - 0.25 / 9) / 4000), rel=1e-14)
    assert abs(ev[-1] - spike_location(spike, alpha)) <= 2 * sd
    assert abs(ev[-1] - spike * (1 + np.sqrt(alpha) / (spike - 1))) > 2 * sd
    assert abs(ev[-2] - mp_edges(alpha)[1]) <= 8 * edge_scale(M, N)
