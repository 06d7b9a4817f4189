"""Loss values, output gradients r, output Hessians A and factors B, three ways.

autograd on the reference losses, closed forms (r = p − e_y, A = diag(p) − ppᵀ),
and high-precision mpmath for extreme logits.
"""

import autograd
import mpmath
import numpy as np
import pytest
from reference import per_sample_loss

from hessref.core.losses import get_loss, reduction_scale

RNG = np.random.default_rng(7)


def data(loss, N=5, k=4, scale=3.0):
    F = scale * RNG.normal(size=(N, k))
    y = RNG.integers(0, k, N) if loss == "cross_entropy" else RNG.normal(size=(N, k))
    return F, y


@pytest.mark.parametrize("name", ["mse", "cross_entropy"])
def test_value_gradient_hessian_match_autograd(name):
    loss = get_loss(name)
    F, y = data(name)
    for i in range(F.shape[0]):

        def ell(f, i=i):
            return per_sample_loss(f[None, :], y[i : i + 1], name)[0]

        assert loss.value(F, y)[i] == pytest.approx(ell(F[i]), rel=1e-14)
        assert np.allclose(loss.gradient(F, y)[i], autograd.grad(ell)(F[i]), rtol=1e-13, atol=1e-16)
        assert np.allclose(
            loss.hessian(F, y)[i], autograd.hessian(ell)(F[i]), rtol=1e-12, atol=1e-16
        )


@pytest.mark.parametrize("name", ["mse", "cross_entropy"])
def test_matvec_and_factor_are_consistent_with_hessian(name):
    loss = get_loss(name)
    F, y = data(name)
    A = loss.hessian(F, y)
    U = RNG.normal(size=(F.shape[0], 3, F.shape[1]))
    assert np.allclose(loss.hessian_matvec(F, y, U), np.einsum("nkl,njl->njk", A, U), rtol=1e-13)
    B = loss.hessian_factor(F, y)
    assert np.allclose(np.einsum("nck,ncl->nkl", B, B), A, rtol=1e-12, atol=1e-16)


def test_cross_entropy_closed_forms():
    loss = get_loss("cross_entropy")
    F, y = data("cross_entropy")
    p = np.exp(F) / np.exp(F).sum(1, keepdims=True)
    assert np.allclose(loss.gradient(F, y), p - np.eye(4)[y], rtol=1e-13)
    A = loss.hessian(F, y)
    for i in range(len(y)):
        assert np.allclose(A[i], np.diag(p[i]) - np.outer(p[i], p[i]), rtol=1e-13, atol=1e-17)
        # A·1 = 0 (logit shift); rounding is relative to p_c ≤ 1, not to the (cancelled) entries
        assert np.abs(A[i] @ np.ones(4)).max() <= 8 * np.finfo(float).eps
    assert np.allclose(get_loss("mse").hessian(F, F), np.eye(4))


def test_extreme_logits_are_finite_and_exact():
    """Logits of ±1e4: no overflow, no clipping; compare with 60-digit mpmath."""
    mpmath.mp.dps = 60
    loss = get_loss("cross_entropy")
    F = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 30.0, -1e4 + 1.0]])
    y = np.array([1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        values, r, A = loss.value(F, y), loss.gradient(F, y), loss.hessian(F, y)
    for i in range(2):
        f = [mpmath.mpf(v) for v in F[i]]
        lse = mpmath.log(sum(mpmath.exp(v) for v in f))
        assert values[i] == pytest.approx(float(lse - f[y[i]]), rel=1e-15)
        r_exact = [float(mpmath.exp(v - lse) - (c == y[i])) for c, v in enumerate(f)]
        assert np.allclose(r[i], r_exact, rtol=1e-14, atol=0)
    # saturated: the true class has p = 1 exactly in float64, curvature vanishes
    assert values[0] == 2e4 and A[0].max() == 0.0


def test_reduction_scale():
    assert reduction_scale("mean", 4) == 0.25 and reduction_scale("sum", 4) == 1.0
    with pytest.raises(ValueError, match="reduction: unknown reduction 'avg'"):
        reduction_scale("avg", 4)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="loss: unknown loss 'nll'.*'mse'.*'cross_entropy'"):
        get_loss("nll")


def test_cross_entropy_derivatives_keep_full_relative_precision_at_saturation():
    """Near one-hot softmax (p_m = 1 − δ, δ down to e^-36) r, A, A u and B against mpmath at
    60 digits: the float 1 − p_m would carry a relative error ε/δ ≈ 1e0 here, so every
    entry that involves 1 − p_m is summed from the other classes instead."""
    mp = mpmath
    mp.mp.dps = 60
    F = np.array([[36.0, 0.0, -3.0, 1.5], [0.3, -0.2, 0.1, 0.0], [-2.0, 30.0, 29.0, 1.0]])
    y = np.array([0, 2, 1])
    U = np.random.default_rng(0).normal(size=(3, 5, 4))
    ce = get_loss("cross_entropy")
    at = ce.at(F, y)
    for i in range(3):
        e = [mp.e ** mp.mpf(f) for f in F[i]]
        p = [v / sum(e) for v in e]
        A = mp.matrix([[(p[a] if a == b else 0) - p[a] * p[b] for b in range(4)] for a in range(4)])
        A_f = np.array(A.tolist(), dtype=float)
        r_f = np.array([float(p[c] - (c == y[i])) for c in range(4)])
        np.testing.assert_allclose(at.r[i], r_f, rtol=1e-14, atol=0)
        np.testing.assert_allclose(ce.gradient(F, y)[i], r_f, rtol=1e-14, atol=0)
        np.testing.assert_allclose(at.hessian()[i], A_f, rtol=1e-14, atol=1e-300)
        Au = np.array((A * mp.matrix(U[i].T.tolist())).T.tolist(), dtype=float)  # (5, 4)
        np.testing.assert_allclose(at.hessian_matvec(U)[i], Au, rtol=1e-13, atol=0)
        B = at.hessian_factor()[i]
        np.testing.assert_allclose(B.T @ B, A_f, rtol=1e-12, atol=1e-15 * np.abs(A_f).max())
        m = int(np.argmax(F[i]))
        assert B[m, m] == pytest.approx(float(mp.sqrt(p[m]) * (1 - p[m])), rel=1e-14)
