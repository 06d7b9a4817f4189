"""The one backward primitive (hessref.core.mlp.backpropagate) and the loss evaluated once.

Channels: autograd (vector-Jacobian products of the network outputs, tests/reference.py
style), SciPy's softmax / log-softmax, and per-seed runs of the primitive against one
run with a seed axis. The primitive is shared by the gradient, the R-op, the dense block
formulas, the Jacobian and the seed sums, so these tests pin its conventions (which
layer gets which δ, what g is, how the seed axis is carried) independently of them.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.special

import hessref as hr
from hessref.core import dense
from hessref.core.backward import backward_deltas, loss_at
from hessref.core.kinds import Curvature
from hessref.core.losses import get_loss
from hessref.core.mlp import backprop_seed_sums, backprop_seeds, backpropagate, forward
from hessref.core.problem import make_problem
from hessref.core.rop import curvature_matmat

ACT = {"tanh": anp.tanh, "softplus": lambda z: anp.logaddexp(0.0, z)}


def _data(activation="tanh", loss="cross_entropy", N=7, sizes=(3, 5, 4, 3)):
    rng = np.random.default_rng(11)
    model = hr.MLP(list(sizes), activation=activation)
    X = rng.normal(size=(N, sizes[0]))
    y = rng.integers(0, sizes[-1], N) if loss == "cross_entropy" else rng.normal(size=(N, 3))
    return model, model.init(rng=4), X, y


def _autograd_preactivations_vjp(model, theta, X, S, layer):
    """∂(Σ_i s_i · f_i)/∂z_layer by autograd, with z_layer perturbed additively."""
    act = ACT[model.activation.name]
    params = model.unflatten(theta)

    def f_of_shift(E):
        a = X
        for l, (W, b) in enumerate(params, start=1):
            z = anp.dot(a, W.T) + b
            if l == layer:
                z = z + E
            a = act(z) if l < model.num_layers else z
        return anp.sum(a * S)

    return autograd.grad(f_of_shift)(np.zeros((X.shape[0], model.sizes[layer])))


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_backpropagate_gives_dz_of_the_seeded_outputs(activation):
    """δ_l = ∂(Σ s·f)/∂z_l for every layer (autograd), and g_l = δ_l / σ′(z_l) = W_{l+1}ᵀ δ_{l+1}."""
    model, theta, X, _ = _data(activation)
    params = model.unflatten(theta)
    cache = forward(model, params, X)
    S = np.random.default_rng(0).normal(size=(X.shape[0], model.sizes[-1]))
    seen = []
    for l, delta, g in backpropagate(params, cache, S):
        seen.append(l)
        ref = _autograd_preactivations_vjp(model, theta, X, S, l)
        np.testing.assert_allclose(delta, ref, rtol=1e-12, atol=1e-14)
        if l == model.num_layers:
            assert g is None
        else:
            np.testing.assert_allclose(g * cache.dsigma[l - 1], delta, rtol=1e-15, atol=0)
    assert seen == list(range(model.num_layers, 0, -1))


def test_seed_axis_equals_one_run_per_seed():
    """(N, M, d_L) seeds: δ_l[:, m] is the 2-D recursion of seed m alone, bit for bit."""
    model, theta, X, _ = _data()
    params = model.unflatten(theta)
    cache = forward(model, params, X)
    S = np.random.default_rng(1).normal(size=(X.shape[0], 4, model.sizes[-1]))
    batched = {l: d for l, d, _ in backpropagate(params, cache, S)}
    for m in range(S.shape[1]):
        for l, delta, _ in backpropagate(params, cache, np.ascontiguousarray(S[:, m])):
            assert np.array_equal(batched[l][:, m], delta), (l, m)
    # the per-sample products (N, M, P) and their sums over samples (one GEMM per layer)
    J = backprop_seeds(model, params, cache, S)
    sums = backprop_seed_sums(model, params, cache, S)
    np.testing.assert_allclose(sums, J.sum(axis=0), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_backward_deltas_are_the_gradient_recursion(loss):
    """δ_L = s r and the gradient assembled from the primitive's δ equals hr.gradient."""
    model, theta, X, y = _data(loss=loss)
    p = make_problem(model, theta, X, y, loss, "mean")
    cache = forward(model, p.params, p.X, second_order=True)
    deltas, gs = backward_deltas(p, cache)
    assert len(deltas) == model.num_layers and len(gs) == model.num_layers - 1
    r = get_loss(loss).gradient(cache.F, p.y)
    assert np.array_equal(deltas[-1], p.scale * r)
    grad = np.concatenate(
        [np.concatenate([(d.T @ a).ravel(), d.sum(axis=0)]) for d, a in zip(deltas, cache.A)]
    )
    assert np.array_equal(grad, hr.gradient(model, theta, X, y, loss=loss))


def test_loss_at_computes_softmax_once_and_matches_scipy(monkeypatch):
    """One LossAt per forward pass: ℓ, r, A, A u, B from ONE exp pass, equal to SciPy's
    softmax / log-softmax bit for bit, and reused by every engine path at that F."""
    rng = np.random.default_rng(2)
    F = rng.normal(size=(9, 4)) * 30
    y = rng.integers(0, 4, 9)
    ce = get_loss("cross_entropy")
    out = ce.at(F, y)
    p = scipy.special.softmax(F, axis=1)
    assert np.array_equal(out.probs, p)
    assert np.array_equal(out.values, -scipy.special.log_softmax(F, axis=1)[np.arange(9), y])
    assert np.array_equal(out.r, ce.gradient(F, y))
    assert np.array_equal(out.hessian(), ce.hessian(F, y))
    assert np.array_equal(out.hessian_factor(), ce.hessian_factor(F, y))
    U = rng.normal(size=(9, 3, 4))
    assert np.array_equal(out.hessian_matvec(U), ce.hessian_matvec(F, y, U))

    import hessref.core.losses as losses

    calls = []
    real = losses._shifted_exp
    monkeypatch.setattr(losses, "_shifted_exp", lambda F: calls.append(1) or real(F))
    model, theta, X, labels = _data()
    prob = make_problem(model, theta, X, labels, "cross_entropy", "mean")
    cache = forward(model, prob.params, prob.X, second_order=True)
    V = rng.normal(size=(model.num_params, 2))
    for kind in Curvature:
        curvature_matmat(prob, V, kind, cache=cache)
    assert loss_at(prob, cache) is cache.output and len(calls) == 1
    calls.clear()
    dense.dense_curvatures(prob, tuple(Curvature))
    assert len(calls) == 1  # one chunk: softmax once for H, G and R together


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_curvature_matrices_is_one_pass_with_the_bits_of_the_single_calls(loss, monkeypatch):
    model, theta, X, y = _data(loss=loss)
    passes = []
    real = dense._accumulate_chunk
    monkeypatch.setattr(
        dense, "_accumulate_chunk", lambda *a, **k: passes.append(a[3]) or real(*a, **k)
    )
    H, G, R = dense.curvature_matrices(model, theta, X, y, loss=loss)
    assert passes == [(Curvature.H, Curvature.G, Curvature.R)]
    assert np.array_equal(H, hr.hessian(model, theta, X, y, loss=loss))
    G2, R2 = hr.gauss_newton(model, theta, X, y, loss=loss)
    assert np.array_equal(G, G2) and np.array_equal(R, R2)
    assert np.abs(H - (G + R)).max() <= 1e-13 * np.abs(H).max()  # H accumulated on its own
    (G3,) = dense.curvature_matrices(model, theta, X, y, ("G",), loss=loss)
    assert np.array_equal(G3, G)
    with pytest.raises(ValueError, match=r"kinds: expected one of 'H', 'G', 'R'"):
        dense.curvature_matrices(model, theta, X, y, ("fisher",), loss=loss)


def test_engine_splits_theta_without_revalidating(monkeypatch):
    """Validation once at the boundary: one as_float_array pass over θ per public call,
    the public unflatten/flatten still validate, and the unchecked paths give the same arrays."""
    import hessref.core.mlp as mlp
    import hessref.core.problem as problem

    model, theta, X, y = _data()
    seen = []
    real = problem.as_float_array
    monkeypatch.setattr(
        problem, "as_float_array", lambda n, v, **k: seen.append(n) or real(n, v, **k)
    )
    monkeypatch.setattr(mlp, "as_float_array", lambda n, v, **k: seen.append(n) or real(n, v, **k))
    hr.gradient(model, theta, X, y, loss="cross_entropy")
    hr.hvp(model, theta, X, y, np.ones(model.num_params), loss="cross_entropy")
    assert seen.count("theta") == 2, seen
    seen.clear()
    params = model.unflatten(theta)
    assert seen == ["theta"]
    assert all(
        np.array_equal(a, b) and np.shares_memory(a, theta)
        for pair, upair in zip(params, model._unflatten_unchecked(theta))
        for a, b in zip(pair, upair)
    )
    assert np.array_equal(model._flatten_unchecked(params), model.flatten(params))
    p = make_problem(model, theta, X, y, "cross_entropy", "mean")
    q = p.at(theta.astype(np.float32))
    assert q.theta.dtype == np.float64 and q.X is p.X and q.scale == p.scale
    with pytest.raises(ValueError, match=r"theta: expected shape"):
        p.at(theta[:-1])
    with pytest.raises(ValueError, match=r"theta: expected finite"):
        p.at(np.full_like(theta, np.nan))
