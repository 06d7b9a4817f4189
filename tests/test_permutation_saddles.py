"""Permutation saddles: docs/theory.md (21.1)-(21.4) against hessref's exact gradient and H."""

import numpy as np
import pytest

import hessref as hr
from hessref.experiments import derive_seeds, run_experiment
from hessref.experiments.permutation_saddles import (
    _FAST,
    critical_point,
    embed,
    regression_data,
    split_matrices,
    valley_direction,
)


@pytest.fixture(scope="module")
def point():
    """A Newton-polished critical point of a tanh 2-3-2 MLP (MSE, noisy teacher).

    The seeds are the experiment's seed 0 (its polish reaches ‖∇L‖ ~ 1e-16; some seeds sit
    on a degenerate valley where it does not, which the experiment reports as a rate).
    """
    sd = derive_seeds(0, "data", "init")
    X, Y = regression_data(_FAST, sd["data"])
    model = hr.MLP([2, 3, 2], "tanh")
    theta = critical_point(model, model.init(rng=sd["init"]), X, Y, _FAST)
    return model, theta, X, Y


def _g(model, theta, X, Y):
    return hr.gradient(model, theta, X, Y, loss="mse")


@pytest.mark.parametrize("alpha", [-0.7, 0.3, 1.6])
def test_embedded_gradient_is_split_original(alpha):
    """(21.2) at a NON-critical point: the embedded gradient is the original's, split α/(1−α)."""
    X, Y = regression_data(_FAST, 3)
    model = hr.MLP([2, 3, 2], "tanh")
    theta = model.init(rng=4)
    wide, tw = embed(model, theta, 1, 1, alpha)
    (gW1, gb1), (gW2, gb2) = model.unflatten(_g(model, theta, X, Y))
    (eW1, eb1), (eW2, eb2) = wide.unflatten(_g(wide, tw, X, Y))
    np.testing.assert_allclose(eW1[[0, 2]], gW1[[0, 2]], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(eW1[1], alpha * gW1[1], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(eW1[3], (1 - alpha) * gW1[1], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(eb1[[1, 3]], [alpha * gb1[1], (1 - alpha) * gb1[1]], rtol=1e-11)
    np.testing.assert_allclose(eW2[:, [1, 3]], gW2[:, [1, 1]], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(eb2, gb2, rtol=1e-11, atol=1e-15)


def test_critical_point_embeds_to_critical_point(point):
    model, theta, X, Y = point
    scale = np.abs(np.linalg.eigvalsh(hr.hessian(model, theta, X, Y, loss="mse"))).max()
    assert np.linalg.norm(_g(model, theta, X, Y)) <= 1e-12 * scale
    for alpha in (-1.0, 0.0, 0.4, 2.5):
        wide, tw = embed(model, theta, 1, 0, alpha)
        assert np.linalg.norm(_g(wide, tw, X, Y)) <= 1e-12 * scale


def test_loss_constant_along_valley(point):
    """(21.1): L(θ(α)) = L(θ) to 1e-12 relative, and the direction is dθ(α)/dα."""
    model, theta, X, Y = point
    L0 = hr.loss(model, theta, X, Y, loss="mse")
    for alpha in np.linspace(-3, 4, 8):
        wide, tw = embed(model, theta, 1, 2, alpha)
        assert abs(hr.loss(wide, tw, X, Y, loss="mse") - L0) <= 1e-12 * L0
    w, t0 = embed(model, theta, 1, 2, 0.0)
    _, t1 = embed(model, theta, 1, 2, 1.0)
    np.testing.assert_allclose(valley_direction(w, t0, 1, 2), t1 - t0, atol=1e-15)


def test_hessian_times_valley_direction_is_M_u(point):
    """(21.3): H e(u) = (Mu on unit j, −Mu on the copy), u arbitrary; e(v_j) is null."""
    model, theta, X, Y = point
    M, _ = split_matrices(model, theta, X, Y, 1, 0)
    wide, tw = embed(model, theta, 1, 0, 0.3)
    H = hr.hessian(wide, tw, X, Y, loss="mse")
    u = np.array([0.7, -1.2])
    expected = [(W * 0, b * 0) for W, b in wide.unflatten(np.zeros_like(tw))]
    Mu = M @ u
    expected[0][0][0], expected[0][1][0] = Mu[:-1], Mu[-1]
    expected[0][0][3], expected[0][1][3] = -Mu[:-1], -Mu[-1]
    np.testing.assert_allclose(H @ valley_direction(wide, tw, 1, 0, u), wide.flatten(expected),
                               atol=1e-12 * np.abs(H).max())  # fmt: skip
    assert np.linalg.norm(H @ valley_direction(wide, tw, 1, 0)) <= 1e-11 * np.abs(H).max()


def test_zero_eigenvalues_at_least_dim_ker_M(point):
    model, theta, X, Y = point
    M, _ = split_matrices(model, theta, X, Y, 1, 0)
    sv = np.linalg.svd(M, compute_uv=False)
    bound = M.shape[1] - int(np.sum(sv > 1e-6 * sv[0]))
    assert bound >= 1  # v_j ∈ ker M at a critical point
    for alpha in (-0.5, 0.5, 1.5):
        wide, tw = embed(model, theta, 1, 0, alpha)
        ev = np.linalg.eigvalsh(hr.hessian(wide, tw, X, Y, loss="mse"))
        assert np.sum(np.abs(ev) <= 1e-9 * ev[-1]) >= bound


@pytest.mark.parametrize("alpha", [-0.6, 0.35, 2.0])
def test_split_curvature_is_alpha_one_minus_alpha_B(point, alpha):
    """(21.4): e_ξᵀ H e_ξ = α(1−α) ξᵀBξ, against the dense exact H."""
    model, theta, X, Y = point
    _, B = split_matrices(model, theta, X, Y, 1, 0)
    wide, tw = embed(model, theta, 1, 0, alpha)
    H = hr.hessian(wide, tw, X, Y, loss="mse")
    xi = np.array([0.3, -0.8, 0.5])
    E = [(W * 0, b * 0) for W, b in wide.unflatten(np.zeros_like(tw))]
    E[0][0][0], E[0][1][0] = (1 - alpha) * xi[:-1], (1 - alpha) * xi[-1]
    E[0][0][3], E[0][1][3] = -alpha * xi[:-1], -alpha * xi[-1]
    e = wide.flatten(E)
    np.testing.assert_allclose(e @ H @ e, alpha * (1 - alpha) * xi @ B @ xi, rtol=1e-9)


def test_fast_run_rules_and_identities():
    res = run_experiment("permutation-saddles", fast=True, seeds=range(2))
    for v in res.verdicts:
        assert v["claim"] and v["source"] and v["role"]
        if v["role"] == "identity":
            assert v["rate"] == 1.0, v["name"]
