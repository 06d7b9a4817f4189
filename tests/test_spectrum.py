"""Tests of hessref.spectrum against independent channels.

Exact quantities are compared with dense LAPACK (``numpy.linalg.eigvalsh``/``eigh``),
explicit matrix powers and closed forms (Gauss quadrature identities, Hutchinson's
variance formula). Stochastic estimators are checked statistically with stated
tolerances over fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from hessref import spectrum as sp


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # Small shared CPUs: threaded BLAS is often slower and makes timings noisy.
    with threadpool_limits(limits=1):
        yield


def random_symmetric(P, eigenvalues, seed):
    """U diag(eigenvalues) Uᵀ with a Haar-random orthogonal U; returns (A, U)."""
    rng = np.random.default_rng(seed)
    U, R = np.linalg.qr(rng.standard_normal((P, P)))
    U = U * np.sign(np.diag(R))
    A = (U * np.asarray(eigenvalues, dtype=float)) @ U.T
    return 0.5 * (A + A.T), U


def indefinite(P, seed):
    """Indefinite spectrum whose most negative eigenvalue has the largest magnitude."""
    rng = np.random.default_rng(seed)
    lam = np.concatenate([[-12.0, -9.0], [6.0, 5.0], rng.uniform(-3.0, 3.0, P - 4)])
    return random_symmetric(P, lam, seed + 1)[0]


class Counting(spla.LinearOperator):
    """An independent count of the columns a LinearOperator is applied to."""

    def __init__(self, A):
        super().__init__(dtype=np.float64, shape=A.shape)
        self.A = A
        self.count = 0

    def _matvec(self, x):
        self.count += 1
        return self.A @ x

    def _matmat(self, X):
        self.count += X.shape[1]
        return self.A @ X


# ---------------------------------------------------------------------------------------------
# Exact eigenvalues
# ---------------------------------------------------------------------------------------------
def test_eigenvalues_descending_with_vectors():
    A = indefinite(40, 0)
    values, V = sp.eigenvalues(A, vectors=True)
    np.testing.assert_allclose(values, np.sort(np.linalg.eigvalsh(A))[::-1], atol=1e-12)
    assert np.all(np.diff(values) <= 0)
    np.testing.assert_allclose(A @ V, V * values, atol=1e-11)
    np.testing.assert_allclose(V.T @ V, np.eye(40), atol=1e-12)
    np.testing.assert_allclose(sp.eigenvalues(A), values, atol=1e-12)


def test_eigenvalues_refuses_operators_and_bad_matrices():
    A = indefinite(10, 0)
    with pytest.raises(TypeError, match="top_eigenpairs.*slq_density"):
        sp.eigenvalues(spla.aslinearoperator(A))
    with pytest.raises(ValueError, match="square"):
        sp.eigenvalues(np.ones((3, 4)))
    B = A.copy()
    B[0, 1] += 1e-6
    with pytest.raises(ValueError, match="symmetric"):
        sp.eigenvalues(B)
    with pytest.raises(TypeError, match="complex"):
        sp.eigenvalues(A + 0j)
    C = A.copy()
    C[2, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        sp.eigenvalues(C)
    # rounding-level asymmetry is accepted
    D = A.copy()
    D[0, 1] += 1e-14
    sp.eigenvalues(D)


# ---------------------------------------------------------------------------------------------
# Extreme eigenpairs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["arpack", "lanczos", "block"])
@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_top_eigenpairs_match_dense_on_indefinite(method, which):
    A = indefinite(120, 3)
    exact = np.sort(np.linalg.eigvalsh(A))
    want = exact[::-1][:4] if which == "largest" else exact[:4]
    res = sp.top_eigenpairs(A, 4, which=which, method=method, rng=0)
    assert res.method == method
    np.testing.assert_allclose(res.values, want, rtol=0, atol=1e-8)
    # independently recomputed residuals agree with the reported ones and are small
    R = A @ res.vectors - res.vectors * res.values
    np.testing.assert_allclose(np.linalg.norm(R, axis=0), res.residuals, atol=1e-12)
    assert res.residuals.max() < 1e-7
    np.testing.assert_allclose(res.vectors.T @ res.vectors, np.eye(4), atol=1e-8)


def test_largest_is_algebraic_not_magnitude():
    # λ_min = -12 dominates in magnitude; 'LM' (eigsh's default) would return it.
    A = indefinite(80, 5)
    lm = spla.eigsh(A, k=1, v0=np.ones(80))[0]
    assert np.isclose(lm[0], -12.0)
    for method in ("arpack", "lanczos", "block"):
        res = sp.top_eigenpairs(A, 1, method=method, rng=0)
        assert abs(res.values[0] - 6.0) < 1e-8


@pytest.mark.parametrize("method", ["arpack", "lanczos", "block"])
def test_top_eigenpairs_counts_operator_applications(method):
    A = indefinite(60, 1)
    op = Counting(A)
    res = sp.top_eigenpairs(op, 3, method=method, rng=0)
    assert res.num_matvecs == op.count
    np.testing.assert_allclose(res.values, np.sort(np.linalg.eigvalsh(A))[::-1][:3], atol=1e-8)


def test_lanczos_eigenpairs_survive_invariant_subspace():
    # Two distinct eigenvalues: the Krylov space from any start vector has dimension 2,
    # so Lanczos must restart to find a third eigenpair.
    lam = np.array([3.0] * 5 + [-1.0] * 15)
    A, _ = random_symmetric(20, lam, 2)
    res = sp.top_eigenpairs(A, 3, method="lanczos", rng=0)
    np.testing.assert_allclose(res.values, [3.0, 3.0, 3.0], atol=1e-10)
    assert res.residuals.max() < 1e-9


@pytest.mark.parametrize("method", ["arpack", "lanczos", "block"])
def test_zero_eigenvalues_of_low_rank_psd(method):
    # A GGN-like rank-10 PSD matrix: 90 exact zeros. ARPACK's relative stopping test
    # alone would never accept them, and a single Krylov space holds only one of them.
    B = np.random.default_rng(0).standard_normal((100, 10))
    G = B @ B.T
    exact = np.sort(np.linalg.eigvalsh(G))
    scale = exact[-1]
    for k in (3, 40):
        low = sp.top_eigenpairs(G, k, which="smallest", method=method, rng=1)
        np.testing.assert_allclose(low.values, exact[:k], atol=1e-10 * scale)
        assert low.residuals.max() < 1e-9 * scale
    high = sp.top_eigenpairs(G, 12, method=method, rng=1)  # 10 positive + 2 zeros
    np.testing.assert_allclose(high.values, exact[::-1][:12], atol=1e-10 * scale)


@settings(max_examples=12)
@given(
    P=st.integers(8, 40),
    k=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    which=st.sampled_from(["largest", "smallest"]),
    method=st.sampled_from(["arpack", "lanczos", "block"]),
)
def test_top_eigenpairs_property(P, k, seed, which, method):
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((P, P))
    A = M + M.T
    exact = np.sort(np.linalg.eigvalsh(A))
    want = exact[::-1][:k] if which == "largest" else exact[:k]
    res = sp.top_eigenpairs(A, k, which=which, method=method, rng=seed)
    np.testing.assert_allclose(res.values, want, atol=1e-8 * max(1.0, abs(exact).max()))


def test_top_eigenpairs_bad_inputs():
    A = indefinite(10, 0)
    with pytest.raises(ValueError, match="k: .*eigenvalues"):
        sp.top_eigenpairs(A, 10)
    with pytest.raises(ValueError, match="k:"):
        sp.top_eigenpairs(A, 0)
    with pytest.raises(ValueError, match="which"):
        sp.top_eigenpairs(A, 2, which="LM")
    with pytest.raises(ValueError, match="method"):
        sp.top_eigenpairs(A, 2, method="power")
    with pytest.raises(ValueError, match="tol"):
        sp.top_eigenpairs(A, 2, tol=-1.0)
    with pytest.raises(ValueError, match="square"):
        sp.top_eigenpairs(np.ones((4, 5)), 1)
    B = A.copy()
    B[0, 3] = 5.0
    with pytest.raises(ValueError, match="symmetric"):
        sp.top_eigenpairs(B, 1)
    op32 = spla.LinearOperator((10, 10), matvec=lambda x: A @ x, dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        sp.top_eigenpairs(op32, 1)
    nan_op = spla.LinearOperator((10, 10), matvec=lambda x: np.full(10, np.nan), dtype=float)
    with pytest.raises(ValueError, match="NaN"):
        sp.top_eigenpairs(nan_op, 1)


def test_sparse_matrix_input():
    A = indefinite(30, 4)
    A[np.abs(A) < 0.2] = 0.0
    S = scipy.sparse.csr_array(A)
    res = sp.top_eigenpairs(S, 2, rng=0)
    np.testing.assert_allclose(res.values, np.sort(np.linalg.eigvalsh(A))[::-1][:2], atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Lanczos quadrature
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def unit_spectrum():
    """A = U diag(λ) Uᵀ with λ evenly spread over [−1, 1] (well scaled), and |A|."""
    P = 200
    lam = np.linspace(-1.0, 1.0, P)
    A, U = random_symmetric(P, lam, 7)
    return A, (U * np.abs(lam)) @ U.T


@pytest.mark.parametrize("m", [6, 20])
def test_lanczos_moment_identity(unit_spectrum, m):
    A, absA = unit_spectrum
    v = np.random.default_rng(m).standard_normal(A.shape[0])
    v /= np.linalg.norm(v)
    res = sp.lanczos(A, m, v0=v)
    assert res.alpha.shape == (m,) and res.beta.shape == (m - 1,) and res.Q.shape == (200, m)
    assert np.all(np.diff(res.nodes) > 0)
    assert abs(res.weights.sum() - 1.0) < 1e-13
    w, wa = v.copy(), v.copy()  # A^j v and |A|^j v by explicit products
    for j in range(2 * m + 1):
        exact, scale = v @ w, v @ wa
        quad = np.sum(res.weights * res.nodes**j)
        if j < 2 * m:
            assert abs(quad - exact) <= 1e-10 * scale, j
        else:
            # Gauss quadrature is exact to degree 2m-1 only; the error at 2m is
            # ‖A^m v‖² − ‖T^m e1‖² = (β_1 ⋯ β_m)², with β_m the final residual norm.
            gap = np.prod(np.r_[res.beta, res.residual_norm] ** 2)
            assert abs((exact - quad) - gap) <= 1e-10 * scale + 1e-8 * gap
            if m == 6:
                assert exact - quad > 1e-4 * scale  # a visible failure, not rounding
        w, wa = A @ w, absA @ wa


def test_lanczos_basis_and_tridiagonal(unit_spectrum):
    A, _ = unit_spectrum
    res = sp.lanczos(A, 30, rng=1)
    Q = res.Q
    T = np.diag(res.alpha) + np.diag(res.beta, 1) + np.diag(res.beta, -1)
    np.testing.assert_allclose(Q.T @ Q, np.eye(30), atol=1e-13)
    np.testing.assert_allclose(Q.T @ A @ Q, T, atol=1e-12)
    assert np.all(res.beta > 0)
    # eigh_tridiagonal nodes agree with a dense eigensolver on T
    np.testing.assert_allclose(res.nodes, np.linalg.eigvalsh(T), atol=1e-13)
    # default start vector is the normalized first basis vector from rng
    v = np.random.default_rng(1).standard_normal(200)
    np.testing.assert_allclose(Q[:, 0], v / np.linalg.norm(v), atol=1e-15)


def test_lanczos_invariant_subspace_gives_exact_nodes_and_projection_weights():
    lam = np.repeat([-2.0, 0.5, 3.0], [10, 25, 5])
    A, U = random_symmetric(40, lam, 11)
    v = np.random.default_rng(0).standard_normal(40)
    v /= np.linalg.norm(v)
    res = sp.lanczos(A, 10, v0=v)
    assert res.nodes.shape == (3,) and res.residual_norm == 0.0
    np.testing.assert_allclose(res.nodes, [-2.0, 0.5, 3.0], atol=1e-12)
    c = U.T @ v  # coordinates in the eigenbasis
    projections = [np.sum(c[lam == x] ** 2) for x in (-2.0, 0.5, 3.0)]
    np.testing.assert_allclose(res.weights, projections, atol=1e-12)
    # also without reorthogonalization
    res2 = sp.lanczos(A, 10, v0=v, reorthogonalize=False)
    assert res2.Q is None
    np.testing.assert_allclose(res2.nodes, [-2.0, 0.5, 3.0], atol=1e-10)
    np.testing.assert_allclose(res2.weights, projections, atol=1e-10)


def test_ghost_eigenvalues_without_reorthogonalization():
    # Isolated outliers 10, 8, 6 (multiplicity 1) above a bulk in [0, 1]; after many steps
    # plain Lanczos repeats converged outliers, full reorthogonalization does not.
    A = np.diag(np.concatenate([[10.0, 8.0, 6.0], np.linspace(0.0, 1.0, 397)]))
    plain = sp.lanczos(A, 150, rng=0, reorthogonalize=False)
    full = sp.lanczos(A, 150, rng=0, reorthogonalize=True)
    copies_plain = [int(np.sum(np.abs(plain.nodes - x) < 1e-6)) for x in (10.0, 8.0, 6.0)]
    copies_full = [int(np.sum(np.abs(full.nodes - x) < 1e-6)) for x in (10.0, 8.0, 6.0)]
    assert min(copies_plain) >= 2, copies_plain
    assert copies_full == [1, 1, 1]
    # the ghosts share the weight: totals per outlier still agree
    for x in (10.0, 8.0, 6.0):
        near_p = plain.weights[np.abs(plain.nodes - x) < 1e-6].sum()
        near_f = full.weights[np.abs(full.nodes - x) < 1e-6].sum()
        assert abs(near_p - near_f) < 1e-8


def test_lanczos_operator_matches_dense_and_caps_m(unit_spectrum):
    A, _ = unit_spectrum
    a = sp.lanczos(A, 12, rng=3)
    b = sp.lanczos(spla.aslinearoperator(A), 12, rng=3)
    np.testing.assert_allclose(a.alpha, b.alpha, atol=1e-14)
    np.testing.assert_allclose(a.beta, b.beta, atol=1e-14)
    small = np.diag([1.0, 2.0, 3.0])
    c = sp.lanczos(small, 50, v0=np.ones(3))
    np.testing.assert_allclose(c.nodes, [1.0, 2.0, 3.0], atol=1e-13)
    np.testing.assert_allclose(c.weights, [1 / 3] * 3, atol=1e-13)


def test_lanczos_bad_inputs():
    A = np.eye(5)
    with pytest.raises(ValueError, match="m:"):
        sp.lanczos(A, 0)
    with pytest.raises(ValueError, match=r"v0: expected shape \(5,\)"):
        sp.lanczos(A, 2, v0=np.ones(4))
    with pytest.raises(ValueError, match="v0: .*nonzero"):
        sp.lanczos(A, 2, v0=np.zeros(5))
    with pytest.raises(ValueError, match="v0: expected finite"):
        sp.lanczos(A, 2, v0=[1.0, np.inf, 0, 0, 0])


# ---------------------------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trace_matrix():
    rng = np.random.default_rng(21)
    M = rng.standard_normal((30, 30))
    return M + M.T + np.diag(rng.uniform(0, 5, 30))


def test_hutchinson_single_probe_variance(trace_matrix):
    A = trace_matrix
    n = 20000
    est = sp.hutchinson_trace(A, n, rng=0)
    assert est.num_matvecs == n
    empirical = n * est.stderr**2  # sample variance of zᵀAz (ddof=1)
    formula = 2.0 * (np.sum(A**2) - np.sum(np.diag(A) ** 2))
    # Relative standard error of a sample variance ≈ sqrt((κ − 1)/n) with kurtosis κ of
    # zᵀAz near 3–4 here: ≈ 1.5% at n = 20000. Tolerance 6% ≈ 4 standard errors.
    assert abs(empirical / formula - 1.0) < 0.06, empirical / formula
    # a diagonal matrix has zero variance: every probe returns the exact trace
    D = np.diag(np.diag(A))
    exact = sp.hutchinson_trace(D, 7, rng=1)
    assert abs(exact.estimate - np.trace(A)) < 1e-12 and exact.stderr < 1e-12


def test_hutchinson_unbiased(trace_matrix):
    A = trace_matrix
    estimates = np.array([sp.hutchinson_trace(A, 10, rng=s).estimate for s in range(300)])
    formula = 2.0 * (np.sum(A**2) - np.sum(np.diag(A) ** 2))
    se = np.sqrt(formula / (10 * estimates.size))
    assert abs(estimates.mean() - np.trace(A)) < 3 * se


def test_hutchinson_blocks_and_operators(trace_matrix):
    A = trace_matrix
    op = Counting(A)
    a = sp.hutchinson_trace(op, 9, rng=4)
    assert op.count == 9 and a.num_matvecs == 9
    b = sp.hutchinson_trace(A, 9, rng=4)
    assert abs(a.estimate - b.estimate) < 1e-12
    single = sp.hutchinson_trace(A, 1, rng=4)
    assert np.isnan(single.stderr)


def test_hutchpp_exact_for_low_rank():
    rng = np.random.default_rng(3)
    B = rng.standard_normal((100, 5))
    A = B @ B.T  # rank 5 ≤ s = 10: Q spans range(A), the deflated part is 0
    est = sp.hutchpp_trace(A, 30, rng=0)
    assert est.num_matvecs == 30
    assert abs(est.estimate - np.trace(A)) < 1e-10 * np.trace(A)


def test_hutchpp_beats_hutchinson_on_low_rank_plus_bulk():
    rng = np.random.default_rng(8)
    P = 300
    lam = np.concatenate([rng.uniform(50, 100, 10), rng.normal(0, 0.1, P - 10)])
    A, _ = random_symmetric(P, lam, 9)
    exact = np.trace(A)
    err_h = [abs(sp.hutchinson_trace(A, 60, rng=s).estimate - exact) for s in range(40)]
    err_pp = [abs(sp.hutchpp_trace(A, 60, rng=s).estimate - exact) for s in range(40)]
    ratio = np.mean(err_pp) / np.mean(err_h)
    assert ratio < 0.1, ratio


def test_hutchpp_unbiased(trace_matrix):
    A = trace_matrix
    est = np.array([sp.hutchpp_trace(A, 9, rng=s).estimate for s in range(400)])
    se = est.std(ddof=1) / np.sqrt(est.size)
    assert abs(est.mean() - np.trace(A)) < 3.5 * se


def test_trace_bad_inputs(trace_matrix):
    with pytest.raises(ValueError, match="num_probes"):
        sp.hutchinson_trace(trace_matrix, 0)
    with pytest.raises(ValueError, match="num_matvecs"):
        sp.hutchpp_trace(trace_matrix, 2)
    with pytest.raises(ValueError, match="square"):
        sp.hutchinson_trace(np.ones((2, 3)), 1)


# ---------------------------------------------------------------------------------------------
# Spectral densities
# ---------------------------------------------------------------------------------------------
SPIKES = (6.0, 9.0, 12.0)


@pytest.fixture(scope="module")
def spiked():
    """Wishart bulk S = XXᵀ/N (P = 1000, N = 2000, α = 1/2, MP edge (1+√α)² ≈ 2.91)
    plus three rank-one spikes 6, 9, 12 (docs/theory.md §17)."""
    rng = np.random.default_rng(2026)
    P, N = 1000, 2000
    with threadpool_limits(limits=1):
        X = rng.standard_normal((P, N))
        W = X @ X.T / N
        u, _ = np.linalg.qr(rng.standard_normal((P, 3)))
        A = W + (u * np.array(SPIKES)) @ u.T
        A = 0.5 * (A + A.T)
        lam = np.linalg.eigvalsh(A)
        density = sp.slq_density(A, rng=0)
    return A, lam, density


@pytest.mark.regression  # the L1 bound comes from measured runs, not a derivation
def test_slq_density_matches_exact_on_spiked_model(spiked):
    _, lam, d = spiked
    assert d.nodes.shape == (10, 80) and d.weights.shape == (10, 80)
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, atol=1e-12)
    # default rule: σ = 1% of the estimated range, grid padded by 5σ on each side
    assert abs(d.sigma - 0.01 * (lam[-1] - lam[0])) < 0.01 * 0.02 * (lam[-1] - lam[0])
    assert d.grid[0] < lam[0] - 4 * d.sigma and d.grid[-1] > lam[-1] + 4 * d.sigma
    exact = sp.exact_density(lam, d.grid, d.sigma)
    assert abs(np.trapezoid(d.density, d.grid) - 1.0) < 1e-5
    assert abs(np.trapezoid(exact.density, d.grid) - 1.0) < 1e-5
    # Measured L1 = 0.017 for rng=0 and 0.015–0.025 over rng=0..4 (10 probes, m = 80);
    # the bound is 2x the worst of those.
    l1 = np.trapezoid(np.abs(d.density - exact.density), d.grid)
    assert l1 < 0.05, l1
    # the extreme Ritz values are exact eigenvalues (outliers converge fast)
    assert abs(d.nodes.max() - lam[-1]) < 1e-8
    # the soft lower edge converges more slowly; interlacing keeps Ritz values inside
    assert lam[0] - 1e-12 <= d.nodes.min() < lam[0] + 1e-4


def test_slq_density_shows_three_separated_spikes(spiked):
    _, lam, d = spiked
    top = lam[-3:]  # the sample spikes sit above 6, 9, 12 (BBP: ℓ(1 + α/(ℓ − 1)))
    assert np.all(top > np.array(SPIKES)) and lam[-4] < 3.5
    dens = d.density
    peak = [dens[np.argmin(np.abs(d.grid - x))] for x in top]
    valley = [
        dens[np.argmin(np.abs(d.grid - x))]
        for x in (0.5 * (top[0] + top[1]), 0.5 * (top[1] + top[2]), 0.5 * (lam[-4] + top[0]))
    ]
    # each spike carries mass ≈ 1/P = 1e-3: peak height ≈ 1e-3 / (σ√(2π)) ≈ 3e-3
    assert min(peak) > 0.3e-3 / (d.sigma * np.sqrt(2 * np.pi))
    assert max(valley) < 0.05 * min(peak)
    # nodes converge to the spikes in every probe
    for x in top:
        assert np.all(np.min(np.abs(d.nodes - x), axis=1) < 1e-8)


def test_slq_without_reorthogonalization_density_still_close(spiked):
    A, lam, d = spiked
    plain = sp.slq_density(
        A, m=80, num_probes=10, grid=d.grid, sigma=d.sigma, rng=0, reorthogonalize=False
    )
    np.testing.assert_allclose(plain.weights.sum(axis=1), 1.0, atol=1e-10)
    exact = sp.exact_density(lam, d.grid, d.sigma)
    l1 = np.trapezoid(np.abs(plain.density - exact.density), d.grid)
    assert l1 < 0.05, l1


def test_slq_probe_moments_are_unbiased(unit_spectrum):
    # E[vᵀA^j v] = tr(A^j)/P for v = z/‖z‖, z Rademacher (docs/theory.md §13); quadrature with
    # m = 10 is exact for j ≤ 19, so per-probe moments are exact quadratic forms.
    A, _ = unit_spectrum
    P = A.shape[0]
    d = sp.slq_density(A, m=10, num_probes=200, rng=4, num_points=50)
    Aj = np.eye(P)
    for j in range(1, 6):
        Aj = Aj @ A
        per_probe = np.sum(d.weights * d.nodes**j, axis=1)
        se = per_probe.std(ddof=1) / np.sqrt(per_probe.size)
        assert abs(per_probe.mean() - np.trace(Aj) / P) < 4 * se + 1e-12, j


def test_slq_breakdown_pads_and_stays_exact():
    # 3 distinct eigenvalues: every probe stops after 3 steps; padding must be neutral.
    lam = np.repeat([-1.0, 0.0, 2.0], [5, 30, 5])
    A, _ = random_symmetric(40, lam, 5)
    d = sp.slq_density(A, m=20, num_probes=6, sigma=0.05, rng=0)
    assert d.nodes.shape == (6, 20)
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(d.weights[:, 3:] == 0.0)
    np.testing.assert_allclose(d.nodes[:, :3], np.tile([-1.0, 0.0, 2.0], (6, 1)), atol=1e-12)
    assert abs(np.trapezoid(d.density, d.grid) - 1.0) < 1e-6


def test_slq_on_operator_matches_dense():
    A = indefinite(60, 2)
    a = sp.slq_density(A, m=15, num_probes=3, rng=5, num_points=200)
    b = sp.slq_density(Counting(A), m=15, num_probes=3, rng=5, num_points=200)
    np.testing.assert_allclose(a.density, b.density, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(a.grid, b.grid, atol=1e-12)
    # m is capped at P: 3 steps exhaust a 3×3 matrix, nodes are its eigenvalues
    small = sp.slq_density(np.diag([1.0, 2.0, 3.0]), m=80, num_probes=2, rng=0)
    assert small.nodes.shape == (2, 3)
    np.testing.assert_allclose(small.nodes, [[1.0, 2.0, 3.0]] * 2, atol=1e-13)
    np.testing.assert_allclose(small.weights, 1 / 3, atol=1e-13)  # Rademacher/√3 probes


def test_exact_density_kernel_is_standard_deviation():
    grid = np.linspace(-3, 3, 7)
    d = sp.exact_density([0.5], grid, 2.0)
    expected = np.exp(-((grid - 0.5) ** 2) / (2 * 2.0**2)) / (2.0 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(d.density, expected, rtol=1e-14)
    A = indefinite(20, 1)
    from_matrix = sp.exact_density(A, grid, 0.3)
    from_values = sp.exact_density(np.linalg.eigvalsh(A), grid, 0.3)
    np.testing.assert_allclose(from_matrix.density, from_values.density, atol=1e-13)
    np.testing.assert_allclose(from_matrix.weights, 1 / 20)


def test_density_bad_inputs():
    A = np.eye(4)
    with pytest.raises(ValueError, match="sigma"):
        sp.slq_density(A, sigma=0.0)
    with pytest.raises(ValueError, match="sigma"):
        sp.exact_density([1.0], [0.0, 1.0], -1.0)
    with pytest.raises(ValueError, match="grid"):
        sp.exact_density([1.0], [1.0, 0.0], 1.0)
    with pytest.raises(ValueError, match="m:"):
        sp.slq_density(A, m=0)
    with pytest.raises(ValueError, match="num_probes"):
        sp.slq_density(A, num_probes=0)
    with pytest.raises(ValueError, match="num_points"):
        sp.slq_density(A, num_points=1)
    with pytest.raises(TypeError, match="slq_density"):
        sp.exact_density(spla.aslinearoperator(A), [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="finite"):
        sp.exact_density([1.0, np.nan], [0.0, 1.0], 1.0)


# ---------------------------------------------------------------------------------------------
# Outlier counting
# ---------------------------------------------------------------------------------------------
def test_count_outliers_rules_differ_where_they_should():
    lam = np.array([0.8, 100.0, 10.0, 1.0, 50.0, 0.9])  # any order
    gap = sp.count_outliers(lam, rule="gap")
    ratio = sp.count_outliers(lam, rule="ratio")
    assert gap.count == 1 and gap.rule == "gap" and gap.details["score"] == 50.0
    assert gap.threshold == 75.0 and gap.details["runner_up_count"] == 2
    assert ratio.count == 3 and ratio.rule == "ratio" and ratio.details["score"] == 10.0
    assert abs(ratio.threshold - np.sqrt(10.0)) < 1e-14
    assert ratio.details["runner_up_score"] == 5.0
    alias = sp.count_outliers(lam, rule="log_gap")
    assert alias.count == 3 and alias.rule == "ratio"
    thr = sp.count_outliers(lam, rule="threshold", threshold=0.95)
    assert thr.count == 4 and thr.threshold == 0.95


def test_count_outliers_default_bulk_edge_and_top():
    rng = np.random.default_rng(0)
    bulk = 10 ** rng.uniform(-3, -2, 60)
    negative = -np.abs(rng.normal(0, 1e-3, 40))
    lam = np.concatenate([[3.0, 2.0, 1.0], bulk, negative])
    res = sp.count_outliers(lam, rule="threshold", top=63)
    assert res.count == 3 and 1e-2 < res.threshold < 1.0
    assert sp.count_outliers(lam, rule="ratio").count == 3  # negatives are ignored
    # restricting the candidates changes the gap rule's view
    assert sp.count_outliers(lam, rule="gap").count == 1
    assert sp.count_outliers(lam, rule="gap", top=2).count == 1


def test_count_outliers_bad_inputs():
    with pytest.raises(ValueError, match="rule"):
        sp.count_outliers([2.0, 1.0], rule="elbow")
    with pytest.raises(ValueError, match="eigenvalues: expected at least 2"):
        sp.count_outliers([1.0])
    with pytest.raises(ValueError, match="positive"):
        sp.count_outliers([1.0, -1.0, -2.0], rule="ratio")
    with pytest.raises(ValueError, match="top"):
        sp.count_outliers([3.0, 2.0, 1.0], top=1)
    with pytest.raises(ValueError, match="threshold"):
        sp.count_outliers([3.0, 2.0, 1.0], rule="gap", threshold=1.0)
    with pytest.raises(ValueError, match="threshold"):
        sp.count_outliers([3.0, 2.0, 1.0], rule="threshold")  # < 4 positive for the default
    with pytest.raises(ValueError, match="finite"):
        sp.count_outliers([3.0, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        sp.count_outliers(np.ones((2, 2)))


# ---------------------------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------------------------
def test_same_seed_gives_identical_results():
    A = indefinite(50, 6)
    for method in ("arpack", "lanczos", "block"):
        a = sp.top_eigenpairs(A, 3, method=method, rng=7)
        b = sp.top_eigenpairs(A, 3, method=method, rng=np.random.default_rng(7))
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.vectors, b.vectors)
    la, lb = sp.lanczos(A, 10, rng=3), sp.lanczos(A, 10, rng=3)
    np.testing.assert_array_equal(la.Q, lb.Q)
    np.testing.assert_array_equal(la.weights, lb.weights)
    assert sp.hutchinson_trace(A, 5, rng=1) == sp.hutchinson_trace(A, 5, rng=1)
    assert sp.hutchpp_trace(A, 9, rng=1) == sp.hutchpp_trace(A, 9, rng=1)
    da, db = (
        sp.slq_density(A, m=10, num_probes=3, rng=2),
        sp.slq_density(A, m=10, num_probes=3, rng=2),
    )
    np.testing.assert_array_equal(da.density, db.density)
    np.testing.assert_array_equal(da.nodes, db.nodes)
    # and different seeds differ
    assert sp.hutchinson_trace(A, 5, rng=1).estimate != sp.hutchinson_trace(A, 5, rng=2).estimate
    assert not np.array_equal(da.weights, sp.slq_density(A, m=10, num_probes=3, rng=3).weights)


# --- promises of the kernels and of the one zero tolerance ------------------------------


def test_lanczos_restart_from_a_vector_almost_in_the_basis_stays_orthonormal():
    # LanczosKernel.restart orthogonalizes w against the basis "twice" (CGS2): when w lies
    # almost in the span (here 1e-9 outside it), one pass leaves ~ε‖w‖/‖w_⟂‖ ≈ 1e-7 of
    # the basis in q; two passes leave ~ε. A warm restart from Ritz vectors is this case.
    from hessref.spectrum._operator import Operator
    from hessref.spectrum.lanczos_kernel import LanczosKernel

    A, _ = random_symmetric(60, np.linspace(-1.0, 3.0, 60), seed=3)
    rng = np.random.default_rng(0)
    v0 = rng.standard_normal(60)
    run = LanczosKernel(Operator("A", A), (v0 / np.linalg.norm(v0))[None, :], 20, True)
    run.run(10)
    Q = run.Q[0, :10]  # (10, P) rows
    outside = rng.standard_normal(60)
    outside -= Q.T @ (Q @ outside)
    w = Q.T @ rng.standard_normal(10) + 1e-9 * outside / np.linalg.norm(outside)
    run.active = np.array([], dtype=np.intp)  # as after an invariant subspace
    run.restart(0, w)
    q = run.q[0].copy()
    assert abs(np.linalg.norm(q) - 1.0) <= 1e-14
    assert np.abs(Q @ q).max() <= 1e-13
    run.step()  # and the next Lanczos vector is orthogonal to all eleven
    run.advance()
    basis = np.vstack([Q, q, run.q[0]])
    np.testing.assert_allclose(basis @ basis.T, np.eye(12), rtol=0, atol=1e-13)


def test_block_lanczos_basis_stays_orthogonal_when_blocks_converge():
    # Block Lanczos reorthogonalizes A Q_j itself (no three-term step first), so its
    # in-span part is ~‖A‖ while the new block B_j shrinks as Ritz pairs converge: only
    # two Gram-Schmidt passes keep the basis orthogonal. Five outliers 1e4..5e4 over a
    # bulk in [0, 1], top-8 with blocks of 4: the Ritz vectors must stay orthonormal and
    # the values equal LAPACK's (a lost basis gives ghosts and errors of ~1e-5).
    rng = np.random.default_rng(0)
    lam = np.r_[1e4 * np.array([5.0, 4, 3, 2, 1]), rng.uniform(0.0, 1.0, 195)]
    A, _ = random_symmetric(200, lam, seed=0)
    res = sp.top_eigenpairs(A, 8, method="block", block_size=4, tol=1e-14, rng=1)
    exact = np.sort(lam)[::-1][:8]
    np.testing.assert_allclose(res.values, exact, rtol=0, atol=1e-12 * lam.max())
    np.testing.assert_allclose(res.vectors.T @ res.vectors, np.eye(8), rtol=0, atol=1e-12)


def test_zero_tolerance_is_1e_10_of_the_largest_eigenvalue():
    # PSD A = U diag(1, 1e-9, 3e-11, 0, …, 0) Uᵀ (P = 200): the documented tolerance
    # ZERO_RTOL = 1e-10 counts 1e-9 as real curvature (positive) and 3e-11 and the
    # rounding noise of eigh (~1e-15) as zero; a tolerance 100× larger would lose 1e-9.
    from hessref.spectrum.statistics import spectrum_statistics, zero_tolerance

    lam = np.zeros(200)
    lam[:3] = [1.0, 1e-9, 3e-11]
    A, _ = random_symmetric(200, lam, seed=4)
    ev = sp.eigenvalues(A)
    assert np.abs(ev[3:]).max() <= 1e-13  # the zeros are rounding noise only
    s = spectrum_statistics(ev)
    assert (s["num_positive"], s["num_zero"], s["num_negative"]) == (2, 198, 0)
    assert s["zero_tolerance"] == pytest.approx(1e-10 * ev[0], rel=1e-15)
    assert zero_tolerance(ev) == s["zero_tolerance"] and zero_tolerance([]) == 0.0
    # |λ| ≤ τ is zero (inclusive); a strict rtol argument moves the line
    boundary = spectrum_statistics([1.0, 1e-10, -1e-10])
    assert (boundary["num_positive"], boundary["num_zero"]) == (1, 2)
    assert spectrum_statistics(ev, rtol=1e-8)["num_zero"] == 199
