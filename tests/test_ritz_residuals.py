"""``top_eigenpairs(..., residuals="ritz")``: the solver's residual estimates, no extra products.

Channel 1: the exact residuals ‖A v − λ v‖ (k extra products, ``residuals="exact"``) of
the same run (same rng ⇒ same iterates). Channel 2: the Ritz estimates. At a loose
tolerance the residuals are far above rounding, so agreement is informative.
"""

from __future__ import annotations

import numpy as np
import pytest

import hessref as hr
from hessref.operators import hessian_operator
from hessref.spectrum import top_eigenpairs


def _matrix(P=80, seed=0):
    """Symmetric indefinite A with a known spectrum (a cluster near the top)."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(P, P)))[0]
    lam = np.concatenate([[10.0, 9.5, 9.4, 9.39, -8.0], rng.uniform(-3, 3, size=P - 5)])
    return (Q * lam) @ Q.T, np.sort(lam)


@pytest.mark.parametrize("method", ["lanczos", "block"])
@pytest.mark.parametrize("which", ["largest", "smallest"])
def test_lanczos_ritz_residuals_agree_with_exact(method, which):
    A, _ = _matrix()
    norm = 10.0
    kw = {"which": which, "method": method, "tol": 1e-4, "rng": 3}
    exact = top_eigenpairs(A, 4, residuals="exact", **kw)
    ritz = top_eigenpairs(A, 4, residuals="ritz", **kw)
    np.testing.assert_array_equal(ritz.values, exact.values)  # same run
    assert ritz.residual_kind == "ritz" and exact.residual_kind == "exact"
    assert ritz.num_matvecs == exact.num_matvecs - 4  # no extra products
    assert exact.residuals.max() > 1e-9 * norm  # far above rounding: agreement is informative
    np.testing.assert_allclose(ritz.residuals, exact.residuals, rtol=0, atol=1e-13 * norm)


@pytest.mark.parametrize("tol", [1e-3, 1e-8, 0.0])
def test_arpack_bound_holds_for_the_exact_residuals(tol):
    A, lam = _matrix(seed=1)
    exact = top_eigenpairs(A, 3, tol=tol, rng=4)
    bound = top_eigenpairs(A, 3, tol=tol, rng=4, residuals="ritz")
    np.testing.assert_array_equal(bound.values, exact.values)
    assert bound.num_matvecs == exact.num_matvecs - 3
    assert np.all(exact.residuals <= bound.residuals + 1e-13 * 10.0)
    np.testing.assert_allclose(bound.values, lam[::-1][:3], atol=1e-6 if tol == 1e-3 else 1e-10)


def test_ritz_residuals_on_a_hessian_operator():
    model = hr.MLP([4, 8, 3], activation="tanh")
    rng = np.random.default_rng(5)
    theta, X, y = model.init(rng) * 2, rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    H = hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=7)
    norm = np.abs(np.linalg.eigvalsh(hr.hessian(model, theta, X, y, loss="cross_entropy"))).max()
    for which in ("largest", "smallest"):
        kw = {"which": which, "method": "lanczos", "tol": 1e-5, "rng": 6}
        exact, ritz = (top_eigenpairs(H, 3, residuals=r, **kw) for r in ("exact", "ritz"))
        np.testing.assert_allclose(ritz.residuals, exact.residuals, rtol=0, atol=1e-13 * norm)


def test_bad_residuals_argument():
    with pytest.raises(ValueError, match="residuals"):
        top_eigenpairs(np.diag([1.0, 2.0, 3.0]), 1, residuals="estimated")
