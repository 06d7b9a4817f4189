"""Hessian surgery: the exact sensitivity S = ∇μ·V (docs/theory.md (21.6)) against finite differences."""

import numpy as np

import hessref as hr
from hessref.experiments import run_experiment
from hessref.experiments.hessian_surgery import (
    class_accuracies,
    class_margin_gradients,
    constrained_step,
    margins,
)


def _problem():
    gen = np.random.default_rng(5)
    X = gen.normal(size=(40, 3))
    y = gen.integers(0, 3, size=40)
    model = hr.MLP([3, 5, 3], "tanh")
    return model, model.init(rng=6), X, y


def _mu(model, theta, X, y):
    m, _ = margins(hr.outputs(model, theta, X), y)
    return (np.eye(3)[y].T @ m) / np.bincount(y, minlength=3)


def test_margin_derivative_matches_finite_differences():
    gen = np.random.default_rng(0)
    F, y, E = gen.normal(size=(7, 4)), gen.integers(0, 4, size=7), gen.normal(size=(7, 4))
    _, D = margins(F, y)
    h = 1e-6
    fd = (margins(F + h * E, y)[0] - margins(F - h * E, y)[0]) / (2 * h)
    np.testing.assert_allclose(np.sum(D * E, axis=1), fd, rtol=1e-8, atol=1e-10)


def test_class_margin_gradient_directional_derivative_matches_fd():
    """∇μ_c·v from the Jacobians vs central differences of μ_c along v (Taylor order 2)."""
    model, theta, X, y = _problem()
    v = np.random.default_rng(1).normal(size=theta.shape)
    exact = class_margin_gradients(model, theta, X, y, 3) @ v
    fd = {}
    for h in (1e-3, 5e-4):
        fd[h] = (_mu(model, theta + h * v, X, y) - _mu(model, theta - h * v, X, y)) / (2 * h)
    errs = [np.abs(fd[h] - exact).max() for h in fd]
    assert errs[0] > 0 and 3.0 < errs[0] / errs[1] < 5.0  # error ∝ h²: the derivative is exact
    richardson = (4 * fd[5e-4] - fd[1e-3]) / 3  # O(h⁴)
    np.testing.assert_allclose(exact, richardson, rtol=1e-9)


def test_constrained_step_solves_least_squares_and_has_the_norm():
    gen = np.random.default_rng(2)
    S, V = gen.normal(size=(3, 2)), np.linalg.qr(gen.normal(size=(10, 2)))[0]
    tau = gen.normal(size=3)
    d = constrained_step(S, V, tau, 0.7)
    assert np.isclose(np.linalg.norm(d), 0.7, rtol=1e-14)
    s = V.T @ d  # coordinates in the orthonormal V
    s_ls = np.linalg.pinv(S) @ tau
    np.testing.assert_allclose(s, 0.7 * s_ls / np.linalg.norm(s_ls), rtol=1e-12)
    np.testing.assert_allclose(V @ s, d, atol=1e-15)


def test_class_accuracies():
    model, theta, X, y = _problem()
    pred = hr.outputs(model, theta, X).argmax(axis=1)
    acc = class_accuracies(model, theta, X, y, 3)
    np.testing.assert_allclose(acc, [np.mean(pred[y == c] == c) for c in range(3)])


def test_fast_run_rules_and_identities():
    res = run_experiment("hessian-surgery", fast=True, seeds=range(2))
    for v in res.verdicts:
        assert v["claim"] and v["source"] and v["role"]
        if v["role"] == "identity":
            assert v["rate"] == 1.0, v["name"]
    assert all(0 < p["fd_relative_error"] < 1e-8 for p in res.per_seed)
