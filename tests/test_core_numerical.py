"""Channel 2: finite differences and Taylor-order checks (smooth activations only).

Central differences have O(ε²) truncation error, so they cannot certify 1e-10;
they are an independent channel with an honest tolerance (Richardson-extrapolated
to O(ε⁴) here), and the Taylor-order test checks the *order* of the remainders:
|L(θ+hv) − L − h∇L·v| ~ h² and |… − ½h² vᵀHv| ~ h³ over h = 2^-k.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import cases

import hessref as hr

SMOOTH = ["identity", "tanh", "sigmoid", "softplus", "gelu"]


def richardson(f, eps):
    """O(ε⁴) central difference of f at 0: (8(f(ε) − f(−ε)) − (f(2ε) − f(−2ε))) / (12ε)."""
    return (8 * (f(eps) - f(-eps)) - (f(2 * eps) - f(-2 * eps))) / (12 * eps)


@settings(max_examples=30)
@given(cases(activations=tuple(SMOOTH), max_depth=3, max_samples=30))
def test_gradient_and_hvp_match_finite_differences(case):
    model, theta, X, y = case.model, case.theta, case.X, case.y
    loss, reduction = case.loss, case.reduction
    kw = dict(loss=loss, reduction=reduction)
    v = np.random.default_rng(3).normal(size=model.num_params)
    v /= np.linalg.norm(v)
    g = hr.gradient(model, theta, X, y, **kw)
    fd_g = richardson(lambda t: hr.loss(model, theta + t * v, X, y, **kw), 1e-3)
    assert abs(g @ v - fd_g) <= 1e-7 * (np.linalg.norm(g) + abs(fd_g)) + 1e-12
    Hv = hr.hvp(model, theta, X, y, v, **kw)
    fd_Hv = richardson(lambda t: hr.gradient(model, theta + t * v, X, y, **kw), 1e-3)
    H_scale = np.linalg.norm(hr.hessian(model, theta, X, y, **kw))
    assert np.linalg.norm(Hv - fd_Hv) <= 1e-7 * H_scale + 1e-12


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_taylor_remainders_have_orders_two_and_three(activation, loss):
    rng = np.random.default_rng(11)
    model = hr.MLP([4, 6, 5, 3], activation=activation)
    theta = model.init(rng)
    X = rng.normal(size=(9, 4))
    y = rng.integers(0, 3, 9) if loss == "cross_entropy" else rng.normal(size=(9, 3))
    kw = dict(loss=loss)
    v = rng.normal(size=model.num_params)
    L0 = hr.loss(model, theta, X, y, **kw)
    gv = hr.gradient(model, theta, X, y, **kw) @ v
    vHv = v @ hr.hvp(model, theta, X, y, v, **kw)
    hs = 2.0 ** -np.arange(6, 13)  # small enough for the leading term, large vs rounding
    r1, r2 = [], []
    for h in hs:
        Lh = hr.loss(model, theta + h * v, X, y, **kw)
        r1.append(abs(Lh - L0 - h * gv))
        r2.append(abs(Lh - L0 - h * gv - 0.5 * h**2 * vHv))
    slope1 = np.polyfit(np.log(hs), np.log(r1), 1)[0]
    slope2 = np.polyfit(np.log(hs), np.log(r2), 1)[0]
    assert slope1 == pytest.approx(2.0, abs=0.1)
    assert slope2 == pytest.approx(3.0, abs=0.15)
    # a wrong Hessian (e.g. G instead of H) breaks the third order
    G, _ = hr.gauss_newton(model, theta, X, y, **kw)
    bad = [
        abs(hr.loss(model, theta + h * v, X, y, **kw) - L0 - h * gv - 0.5 * h**2 * (v @ G @ v))
        for h in hs
    ]
    if activation != "identity":  # identity: R ≠ 0 only through products of layers
        assert np.polyfit(np.log(hs), np.log(bad), 1)[0] < 2.5


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(5)
    model = hr.MLP([3, 5, 2], activation="gelu")
    theta, X = model.init(rng), rng.normal(size=(4, 3))
    J = hr.jacobian(model, theta, X)
    v = rng.normal(size=model.num_params)
    fd = richardson(lambda t: hr.outputs(model, theta + t * v, X), 1e-3)
    assert np.allclose(J @ v, fd, rtol=0, atol=1e-9 * np.abs(fd).max())
