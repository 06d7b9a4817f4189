"""The training loop's unchecked step and the sign-descent promise sign(0) = 0.

Channels: the step's gradient against central differences of the public, checked loss,
and its cross-entropy value against SciPy's logsumexp;
sign descent is checked on a network built so that some gradient entries are exactly 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp

import hessref as hr
from hessref.core.derivatives import problem_loss_and_gradient
from hessref.core.problem import make_problem
from hessref.train import train


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_training_step_gradient_matches_finite_differences(loss, reduction):
    """The loop's unchecked step (Problem._at_unchecked + problem_loss_and_gradient) against
    central differences of the public, checked hr.loss along 3 directions (O(h²) error)."""
    model = hr.MLP([5, 7, 4], activation="tanh")
    rng = np.random.default_rng(0)
    theta = model.init(rng) * 2.0
    X = rng.normal(size=(9, 5))
    y = rng.normal(size=(9, 4)) if loss == "mse" else rng.integers(0, 4, size=9)
    problem = make_problem(model, np.zeros(model.num_params), X, y, loss, reduction)
    value, grad = problem_loss_and_gradient(problem._at_unchecked(theta))
    assert value == pytest.approx(hr.loss(model, theta, X, y, loss=loss, reduction=reduction))
    h = 1e-5
    for v in rng.normal(size=(3, model.num_params)):
        up = hr.loss(model, theta + h * v, X, y, loss=loss, reduction=reduction)
        down = hr.loss(model, theta - h * v, X, y, loss=loss, reduction=reduction)
        assert (up - down) / (2 * h) == pytest.approx(grad @ v, rel=1e-7)


def test_training_step_cross_entropy_stays_finite_for_huge_logits():
    """ℓ = logsumexp(f) − f_y at logits of ±1e4 (closed form by SciPy): no overflow."""
    model = hr.MLP([2, 3], activation="identity")
    theta = np.zeros(model.num_params)
    theta[:6] = [5e3, 0, 0, 5e3, -5e3, 0]
    X, y = np.array([[1.0, 1.0], [1.0, -1.0]]), np.array([2, 0])
    problem = make_problem(model, theta, X, y, "cross_entropy")
    value, grad = problem_loss_and_gradient(problem)
    F = X @ theta[:6].reshape(3, 2).T
    want = np.mean(logsumexp(F, axis=1) - F[[0, 1], y])
    assert np.isfinite(value) and value == pytest.approx(want, rel=1e-15)
    assert np.all(np.isfinite(grad))


def _net_with_dead_unit():
    """Hidden unit 0 has zero incoming and outgoing weights and bias: z = 0, a = tanh 0 = 0
    and δ_1 = σ′ ⊙ W_2ᵀ δ_2 is 0 in that unit, so the gradient of its W_1 row, b_1 entry
    and W_2 column is exactly 0 at every θ reached by sign descent (they never move)."""
    model = hr.MLP([3, 4, 2], activation="tanh")
    theta = model.init(1)
    dead = np.zeros(model.num_params, dtype=bool)
    dead[model.weight_slice(1)] = (np.arange(12) // 3) == 0  # row 0 of W_1 (4 × 3)
    dead[model.bias_slice(1).start] = True
    dead[model.weight_slice(2)] = (np.arange(8) % 4) == 0  # column 0 of W_2 (2 × 4)
    theta[dead] = 0.0
    rng = np.random.default_rng(2)
    return model, theta, rng.normal(size=(6, 3)), rng.normal(size=(6, 2)), dead


@pytest.mark.parametrize("optimizer", ["sign", hr.train.Optimizer("sign", momentum=0.5)])
def test_sign_descent_leaves_zero_gradient_coordinates_unchanged(optimizer):
    model, theta0, X, Y, dead = _net_with_dead_unit()
    g = hr.gradient(model, theta0, X, Y)
    assert np.all(g[dead] == 0.0) and np.all(g[~dead] != 0.0)  # the case the promise is about
    res = train(model, theta0, X, Y, loss="mse", lr=0.01, steps=3, optimizer=optimizer)
    np.testing.assert_array_equal(res.theta[dead], theta0[dead])  # sign(0) = 0: never moved
    assert np.all(res.theta[~dead] != theta0[~dead])
