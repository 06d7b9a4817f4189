"""Guards against plausible bugs that once survived the suite (see tests/mutations.py).

Each test pins a documented rule of docs/theory.md by a derivation, not by a value from an
earlier run: the SLQ spectral range (11.3), the standard error (12.2), the outlier fence
(14.3), sampling without replacement (§16) and an experiment's H being the true H (5.1).
"""

from __future__ import annotations

import numpy as np
import pytest

import hessref as hr
from hessref import spectrum as sp
from hessref.train import train


@pytest.mark.parametrize(("P", "m"), [(200, 10), (300, 8), (120, 20)])
def test_slq_range_covers_the_spectrum(P: int, m: int) -> None:
    """(11.3): the default range adds the Ritz residuals |β_m S_{m,k}| to the extreme Ritz
    values, so it contains [λ_min, λ_max]; the extreme Ritz values alone do not (m ≪ P)."""
    lam = np.linspace(-1.0, 2.0, P)
    sigma = 1e-6
    d = sp.slq_density(np.diag(lam), m=m, num_probes=3, sigma=sigma, rng=0)
    lo, hi = d.grid[0] + 5 * sigma, d.grid[-1] - 5 * sigma
    assert d.nodes.min() > lam[0] and d.nodes.max() < lam[-1]  # Ritz values are inside
    assert lo <= lam[0] and hi >= lam[-1]
    assert hi - lo <= 1.2 * (lam[-1] - lam[0])  # and the estimate is not absurdly wide


@pytest.mark.parametrize("n", [2, 3, 5, 17])
def test_standard_error_uses_n_minus_one(n: int) -> None:
    """(12.2): SE = s/√n with s² = Σ(x − x̄)²/(n − 1). For A = [[0, 1], [1, 0]] and
    Rademacher z, every sample zᵀAz = 2 z₁z₂ is ±2, so Σ(x − x̄)² = n(4 − x̄²) is known from
    the estimate alone, and the exact SE follows without seeing the probes."""
    A = np.array([[0.0, 1.0], [1.0, 0.0]])
    for seed in range(6):
        est = sp.hutchinson_trace(A, n, rng=seed)
        xbar = est.estimate
        expected = np.sqrt(n * (4.0 - xbar**2) / (n - 1)) / np.sqrt(n)
        assert est.stderr == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_outlier_fence_constant_is_three() -> None:
    """(14.3): default threshold exp(q₃ + 3(q₃ − q₁)) on log λ, Tukey's far-out fence."""
    bulk = np.exp(np.linspace(0.0, 1.0, 101))
    # quartiles depend only on ranks: two extra points above q₃ fix them whatever their values
    q1, q3 = np.percentile(np.log(np.concatenate([bulk, [1e9, 1e9]])), [25.0, 75.0])
    fence = np.exp(q3 + 3 * (q3 - q1))
    # one point just inside and one just outside the fence with constant 3; constants 2.5 or
    # 3.5 would move the fence by a factor e^{±0.5 (q₃ − q₁)} ≈ 1.29, beyond both points
    lam = np.concatenate([bulk, [0.98 * fence, 1.02 * fence]])
    res = sp.count_outliers(lam, rule="threshold")
    assert res.threshold == pytest.approx(fence, rel=1e-12)
    assert res.count == 1


def test_sgd_batches_are_without_replacement() -> None:
    """§16: each epoch of SGD visits every sample exactly once.

    Linear model on one-hot inputs x_i = e_i: sample i's gradient touches only w_i, so the
    coordinates of w that move in one step are exactly the samples of that batch.
    """
    N, B = 12, 3
    model = hr.MLP([N, 1], activation="identity")
    X, Y = np.eye(N), np.ones((N, 1))
    res = train(
        model, np.zeros(model.num_params), X, Y, loss="mse", lr=0.1, steps=4 * N // B,
        batch_size=B, rng=7, record_every=1,
    )  # fmt: skip
    W = res.recorded_thetas[:, :N]
    batches = [np.flatnonzero(W[t + 1] != W[t]) for t in range(W.shape[0] - 1)]
    assert all(b.size == B for b in batches)  # no sample twice in a batch
    for epoch in range(4):
        seen = np.concatenate(batches[epoch * (N // B) : (epoch + 1) * (N // B)])
        assert sorted(seen.tolist()) == list(range(N))  # a permutation per epoch


def test_hessian_split_experiment_reports_the_true_hessian(monkeypatch) -> None:
    """The hessian-split experiment's statements about H hold for ``hr.hessian``'s H.

    The (model, θ, data) at which the experiment takes its split are captured, H is
    recomputed there by ``hr.hessian`` (never from G and R), and the reported numbers
    about H (negative count, λ_min(H) − λ_min(R), min_i λ_i(H) − λ_i(R)) are compared
    with the true ones. An experiment that alters R before forming H (or builds H from
    altered parts) reports different numbers.
    """
    from hessref.experiments import hessian_split
    from hessref.spectrum import eigenvalues
    from hessref.spectrum.statistics import spectrum_statistics, zero_tolerance

    seen = {}
    original = hr.gauss_newton

    def spy(model, theta, X, y, **kw):
        G, R = original(model, theta, X, y, **kw)
        H = hr.hessian(model, theta, X, y, **kw)
        seen[model.activation.name] = (H, R)
        return G, R

    monkeypatch.setattr(hr, "gauss_newton", spy)
    row = hessian_split(fast=True, rng=0).per_seed[0]
    assert seen
    for act, (H, R) in seen.items():
        ev_h, ev_r = eigenvalues(H), eigenvalues(R)
        tol = zero_tolerance(np.concatenate([ev_h, ev_r]))
        assert row[act]["neg_H"] == spectrum_statistics(ev_h)["num_negative"]
        scale = np.abs(ev_h).max() + np.abs(ev_r).max()
        assert abs(row[act]["lambda_min_gap"] - (ev_h[-1] - ev_r[-1] + tol)) <= 1e-10 * scale
        assert abs(row[act]["elementwise_gap"] - ((ev_h - ev_r).min() + tol)) <= 1e-10 * scale


def test_operator_adjoint_is_the_operator() -> None:
    """H, G and R are symmetric, so the adjoint products SciPy calls (rmatvec, rmatmat,
    ``op.T``, ``op.H``) must equal the forward products, bit for bit."""
    model = hr.MLP([3, 4, 2], activation="tanh")
    rng = np.random.default_rng(3)
    theta, X, y = model.init(rng), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    v, V = rng.normal(size=model.num_params), rng.normal(size=(model.num_params, 3))
    for factory in (hr.hessian_operator, hr.ggn_operator, hr.residual_operator):
        op = factory(model, theta, X, y)
        forward = op.matvec(v)
        assert np.linalg.norm(forward) > 0
        for adjoint in (op.rmatvec(v), op.T @ v, op.H @ v, op.adjoint().matvec(v)):
            assert np.array_equal(adjoint, forward)
        assert np.array_equal(op.rmatmat(V), op.matmat(V))
