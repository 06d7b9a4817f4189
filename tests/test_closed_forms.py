"""Channel 3: closed forms (docs/theory.md §5) and the flat parameter layout."""

import numpy as np
import pytest

import hessref as hr


def test_linear_mse_hessian_is_kronecker_in_our_layout():
    """No hidden layer, MSE, mean: H_WW = (1/N) I_k ⊗ XᵀX, H_Wb = (1/N) I_k ⊗ Xᵀ1, H_bb = I_k."""
    rng = np.random.default_rng(0)
    N, d, k = 7, 3, 4
    model = hr.MLP([d, k], activation="tanh")  # activation unused without hidden layers
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, k))
    H = hr.hessian(model, model.init(rng), X, Y)
    # the expected matrix in θ order [W.ravel() (o-major), b]: permute from blocks per output
    Xa = np.hstack([X, np.ones((N, 1))])  # per-output block over [W[o, :], b[o]]
    per_output = Xa.T @ Xa / N  # (d+1, d+1)
    expected = np.zeros_like(H)
    for o in range(k):
        idx = [o * d + i for i in range(d)] + [k * d + o]
        expected[np.ix_(idx, idx)] = per_output
    assert np.allclose(H, expected, rtol=1e-13, atol=1e-15)
    H_WW = H[: k * d, : k * d]
    assert np.allclose(H_WW, np.kron(np.eye(k), X.T @ X) / N, rtol=1e-13)
    assert not np.allclose(H_WW, np.kron(X.T @ X, np.eye(k)) / N)  # the (in, out) layout differs
    G, R = hr.gauss_newton(model, model.init(rng), X, Y)
    assert np.array_equal(R, np.zeros_like(R)) and np.allclose(G, H, rtol=1e-13)


def test_linear_cross_entropy_hessian_closed_form():
    """Softmax regression: H = (1/N) Σ_i (diag p_i − p_i p_iᵀ) ⊗ x̃_i x̃_iᵀ (W–W block), R = 0."""
    rng = np.random.default_rng(1)
    N, d, k = 6, 3, 3
    model = hr.MLP([d, k])
    theta = model.init(rng)
    X, y = rng.normal(size=(N, d)), rng.integers(0, k, N)
    H = hr.hessian(model, theta, X, y, loss="cross_entropy")
    W, b = model.unflatten(theta)[0]
    F = X @ W.T + b
    P = np.exp(F - F.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    H_WW = sum(np.kron(np.diag(p) - np.outer(p, p), np.outer(x, x)) for p, x in zip(P, X)) / N
    assert np.allclose(H[: k * d, : k * d], H_WW, rtol=1e-12, atol=1e-16)
    H_bb = sum(np.diag(p) - np.outer(p, p) for p in P) / N
    assert np.allclose(H[k * d :, k * d :], H_bb, rtol=1e-12, atol=1e-16)
    _, R = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
    assert not R.any()


@pytest.mark.parametrize("activation", ["tanh", "gelu", "relu", "softplus"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_interpolation_targets_give_zero_residual(activation, reduction):
    rng = np.random.default_rng(2)
    model = hr.MLP([3, 6, 4, 2], activation=activation)
    theta, X = model.init(rng), rng.normal(size=(8, 3))
    Y = hr.outputs(model, theta, X)
    G, R = hr.gauss_newton(model, theta, X, Y, reduction=reduction)
    H = hr.hessian(model, theta, X, Y, reduction=reduction)
    assert not R.any()  # r_i = 0 exactly, so every residual term vanishes
    assert np.allclose(H, G, rtol=1e-14, atol=1e-15 * np.abs(G).max())
    assert not hr.gradient(model, theta, X, Y, reduction=reduction).any()


def test_sum_is_n_times_mean():
    rng = np.random.default_rng(3)
    model = hr.MLP([2, 4, 3], activation="sigmoid")
    theta, X, y = model.init(rng), rng.normal(size=(5, 2)), rng.integers(0, 3, 5)
    kw = dict(loss="cross_entropy")
    Hm = hr.hessian(model, theta, X, y, reduction="mean", **kw)
    Hs = hr.hessian(model, theta, X, y, reduction="sum", **kw)
    assert np.allclose(Hs, 5 * Hm, rtol=1e-13)


def test_layout_is_torch_parameters_to_vector_order():
    model = hr.MLP([3, 4, 2])
    theta = np.arange(model.num_params, dtype=float)
    (W1, b1), (W2, b2) = model.unflatten(theta)
    assert W1.shape == (4, 3) and W1[1, 2] == 1 * 3 + 2  # W[o, i] at o·d_in + i
    assert b1.tolist() == [12, 13, 14, 15] and W2[0, 0] == 16 and b2.tolist() == [24, 25]
    assert np.shares_memory(W1, theta)  # views, not copies
    assert np.array_equal(model.flatten(model.unflatten(theta)), theta)
    assert model.parameter_names() == ["W1", "b1", "W2", "b2"]
    assert model.locate(13) == "b1[1]" and model.locate(23) == "W2[1, 3]"
    assert hr.layer_block(model, np.zeros((26, 26)), 1, 2).shape == (16, 10)


def test_layer_blocks_of_h_match_column_hvps():
    rng = np.random.default_rng(4)
    model = hr.MLP([2, 3, 3, 2], activation="tanh")
    theta, X, y = model.init(rng), rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    H = hr.hessian(model, theta, X, y)
    s2, s3 = model.layer_slice(2), model.layer_slice(3)
    E = np.eye(model.num_params)[:, s3]
    assert np.allclose(
        hr.layer_block(model, H, 2, 3), hr.hvp(model, theta, X, y, E)[s2], rtol=1e-13
    )


def test_init_is_seeded_and_follows_torch_bounds():
    model = hr.MLP([16, 4, 2])
    a, b = model.init(rng=5), model.init(rng=5)
    assert np.array_equal(a, b) and not np.array_equal(a, model.init(rng=6))
    (W1, b1), (W2, _) = model.unflatten(a)
    assert np.abs(W1).max() <= 0.25 and np.abs(b1).max() <= 0.25 and np.abs(W2).max() <= 0.5
    assert np.abs(W1).max() > 0.2  # actually spans the bound
