"""hessref.approx: K-FAC, EK-FAC, Fisher variants, FGN, block/diagonal, quality (docs/theory.md §19).

Every exactness claim is checked against a second channel: G and per-sample gradients
from the independent autograd reference (tests/reference.py), H from ``hr.hessian``'s
block formulas (the approximations use the R-op or backpropagated seeds), and the
Kronecker algebra against dense ``np.kron`` / ``np.linalg.solve``.
"""

from __future__ import annotations

import autograd
import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

import hessref as hr
from hessref import approx
from hessref.testing import assert_approximation_close

TOL = 1e-10
REDUCTIONS = ("mean", "sum")


def problem(sizes, activation, loss, N, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    model = hr.MLP(sizes, activation=activation)
    theta = scale * model.init(rng)
    X = rng.normal(size=(N, sizes[0]))
    y = rng.normal(size=(N, sizes[-1])) if loss == "mse" else rng.integers(0, sizes[-1], size=N)
    return model, theta, X, y


def ref_ggn(model, theta, X, y, loss, reduction):
    """G from autograd (tests/reference.py), independent of hessref's engine."""
    return ref.gauss_newton(list(model.sizes), model.activation.name, theta, X, y, loss, reduction)


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def augmented_rows(model, theta, X, layer):
    """Rows ∂f_{i,m}/∂[W_L | b_L] = e_m ⊗ ã_{L−1,i} of the LAST layer, built by hand (augmented)."""
    a = X
    for W, b in model.unflatten(theta)[: layer - 1]:
        a = model.activation.f(a @ W.T + b)
    a_aug = np.hstack([a, np.ones((len(a), 1))])
    k = model.sizes[-1]
    return np.stack([np.kron(np.eye(k)[m], a_aug[i]) for i in range(len(a)) for m in range(k)])


def test_augmented_order_matches_backprop_rows():
    """(19.3): θ-order Jacobian rows (autograd) are the augmented rows permuted by π."""
    for sizes in ([3, 4], [3, 5, 4], [2, 3, 1]):
        model, theta, X, _ = problem(sizes, "tanh", "mse", 5, seed=len(sizes))
        L = model.num_layers
        J = ref.jacobian(list(sizes), "tanh", theta, X)  # (N, d_L, P)
        sl = model.layer_slice(L)
        rows_theta = J[:, :, sl].reshape(-1, sl.stop - sl.start)
        perm = approx.augmented_order(sizes[-1], sizes[-2])
        np.testing.assert_array_equal(np.sort(perm), np.arange(perm.size))
        assert rel(augmented_rows(model, theta, X, L)[:, perm], rows_theta) < TOL


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    N=st.integers(1, 9),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**31),
)
def test_kfac_exact_for_deep_linear_mse(widths, N, reduction, seed):
    """(19.10 ii): identity activation + MSE ⇒ every K-FAC layer block equals G's (autograd),
    and B_l = sN (W_L⋯W_{l+1})ᵀ(W_L⋯W_{l+1}) in closed form."""
    model, theta, X, y = problem(widths, "identity", "mse", N, seed)
    G = ref_ggn(model, theta, X, y, "mse", reduction)
    K = approx.kfac(model, theta, X, y, reduction=reduction)
    s = 1.0 / N if reduction == "mean" else 1.0
    params = model.unflatten(theta)
    for l in range(1, model.num_layers + 1):
        sl = model.layer_slice(l)
        assert rel(K.layer_block(l), G[sl, sl]) < TOL
        P_l = np.eye(model.sizes[-1])
        for W, _ in reversed(params[l:]):
            P_l = P_l @ W
        np.testing.assert_allclose(K.factors[l - 1][1], s * N * P_l.T @ P_l, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu", "softplus"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_kfac_last_layer_exact_for_mse_any_activation(activation, reduction):
    """(19.10 i): under MSE the last layer's δ are e_m for every sample, so K-FAC is exact there."""
    model, theta, X, y = problem([3, 5, 4, 2], activation, "mse", 8, seed=3)
    G = ref_ggn(model, theta, X, y, "mse", reduction)
    sl = model.layer_slice(3)
    assert rel(approx.kfac(model, theta, X, y, reduction=reduction).layer_block(3), G[sl, sl]) < TOL


def test_kfac_not_exact_for_nonlinear_hidden_layers():
    """The exactness tests can fail: tanh hidden layers (MSE) and any layer under CE differ."""
    model, theta, X, y = problem([3, 5, 4, 2], "tanh", "mse", 8, seed=3)
    G = ref_ggn(model, theta, X, y, "mse", "mean")
    K = approx.kfac(model, theta, X, y)
    sl = model.layer_slice(1)
    assert rel(K.layer_block(1), G[sl, sl]) > 1e-3
    model, theta, X, y = problem([3, 4], "identity", "cross_entropy", 8, seed=4)
    G = ref_ggn(model, theta, X, y, "cross_entropy", "mean")
    assert rel(approx.kfac(model, theta, X, y, loss="cross_entropy").dense(), G) > 1e-3


@pytest.mark.parametrize("fisher_type", ["type-2", "empirical"])
def test_kfac_factor_normalisation_for_both_reductions(fisher_type):
    """(19.5): Ā_l = (1/N) Σ ããᵀ in both reductions; the reduction's s sits in B_l (sum = N × mean)."""
    model, theta, X, y = problem([3, 4, 3], "tanh", "cross_entropy", 6, seed=5)
    mean = approx.kfac(model, theta, X, y, loss="cross_entropy", fisher_type=fisher_type)
    total = approx.kfac(
        model, theta, X, y, loss="cross_entropy", reduction="sum", fisher_type=fisher_type
    )
    a = np.hstack([X, np.ones((6, 1))])
    np.testing.assert_allclose(mean.factors[0][0], a.T @ a / 6, rtol=1e-13)
    for (A_m, B_m), (A_s, B_s) in zip(mean.factors, total.factors, strict=True):
        np.testing.assert_array_equal(A_m, A_s)
        np.testing.assert_allclose(B_s, 6 * B_m, rtol=1e-13)
    np.testing.assert_allclose(total.dense(), 6 * mean.dense(), rtol=1e-12, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(
    activation=st.sampled_from(["tanh", "relu", "sigmoid", "gelu"]),
    loss=st.sampled_from(["mse", "cross_entropy"]),
    N=st.integers(1, 8),
    seed=st.integers(0, 2**31),
)
def test_ekfac_error_at_most_kfac_error(activation, loss, N, seed):
    """(19.6)-(19.7): Λ_l = diag(Q_lᵀ G_l Q_l) with G from autograd, hence EK-FAC's Frobenius
    error per layer is at most K-FAC's."""
    model, theta, X, y = problem([3, 4, 3], activation, loss, N, seed)
    G = ref_ggn(model, theta, X, y, loss, "mean")
    K = approx.kfac(model, theta, X, y, loss=loss)
    E = approx.ekfac(model, theta, X, y, loss=loss)
    for l in range(1, model.num_layers + 1):
        sl = model.layer_slice(l)
        U_B, U_A, Lam = E.eigen[l - 1]
        perm = approx.augmented_order(U_B.shape[0], U_A.shape[0] - 1)
        Q = np.kron(U_B, U_A)[perm]  # rows in θ order
        refit = np.diag(Q.T @ G[sl, sl] @ Q)
        assert np.abs(Lam.ravel() - refit).max() <= 1e-12 * np.abs(G).max()
        err_E = np.linalg.norm(E.layer_block(l) - G[sl, sl])
        err_K = np.linalg.norm(K.layer_block(l) - G[sl, sl])
        assert err_E <= err_K * (1 + 1e-10) + 1e-14 * np.linalg.norm(G)


@pytest.mark.parametrize("damping", [1e-3, 0.5])
def test_kronecker_inverse_matches_solve(damping):
    """(19.7): inverses with damping of every approximation equal np.linalg.solve on .dense();
    products equal .dense() @ V; operators are float64."""
    model, theta, X, y = problem([3, 4, 3], "tanh", "cross_entropy", 7, seed=6)
    args = (model, theta, X, y)
    approximations = [
        approx.kfac(*args, loss="cross_entropy"),
        approx.ekfac(*args, loss="cross_entropy"),
        approx.block_diagonal(*args, loss="cross_entropy"),
        approx.diagonal(*args, loss="cross_entropy"),
        approx.empirical_fisher(*args, loss="cross_entropy"),
    ]
    V = np.random.default_rng(0).normal(size=(model.num_params, 3))
    I = np.eye(model.num_params)
    for M in approximations:
        D = M.dense()
        np.testing.assert_allclose(D, D.T, atol=1e-15 * np.abs(D).max())
        assert rel(M.matmat(V), D @ V) < 1e-13
        assert rel(M.matvec(V[:, 0]), D @ V[:, 0]) < 1e-13
        op = M.as_operator()
        assert op.dtype == np.float64 and rel(op @ V, D @ V) < 1e-13
        inv = M.inverse(damping)
        assert inv.dtype == np.float64
        assert rel(inv.matmat(V), np.linalg.solve(D + damping * I, V)) < 1e-9, M.name
    K = approximations[0]
    for l, (A, B) in enumerate(K.factors, start=1):  # the block is B ⊗ Ā (19.5) in θ order
        perm = approx.augmented_order(B.shape[0], A.shape[0] - 1)
        np.testing.assert_allclose(K.layer_block(l), np.kron(B, A)[np.ix_(perm, perm)], atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    activation=st.sampled_from(["tanh", "relu", "softplus"]),
    N=st.integers(1, 8),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**31),
    scale=st.floats(0.3, 4.0),
)
def test_fgn_equals_ggn_for_two_classes(widths, activation, N, reduction, seed, scale):
    """(19.9) Theorem 2: with d_L = 2 the FGN equals G (autograd)."""
    model, theta, X, y = problem([*widths, 2], activation, "cross_entropy", N, seed, scale)
    G = ref_ggn(model, theta, X, y, "cross_entropy", reduction)
    F = approx.fgn(model, theta, X, y, reduction=reduction).dense()
    assert np.abs(F - G).max() <= TOL * max(np.abs(G).max(), 1e-300)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    C=st.integers(3, 6),
    N=st.integers(1, 8),
    seed=st.integers(0, 2**31),
    scale=st.floats(0.3, 4.0),
)
def test_ggn_minus_fgn_is_psd(widths, C, N, seed, scale):
    """(19.9) Theorem 1: G − FGN ⪰ 0; A^FGN equals uuᵀ/(uᵀA⁺u) (pinv) and the Bernoulli Fisher."""
    model, theta, X, y = problem([*widths, C], "tanh", "cross_entropy", N, seed, scale)
    G = ref_ggn(model, theta, X, y, "cross_entropy", "mean")
    F = approx.fgn(model, theta, X, y).dense()
    assert np.linalg.eigvalsh(G - F).min() >= -1e-12 * np.abs(G).max()
    p = softmax(hr.outputs(model, theta, X), axis=1)
    for i in range(N):
        A = np.diag(p[i]) - np.outer(p[i], p[i])
        u = np.eye(C)[y[i]] - p[i]
        q = p[i, y[i]]
        bern = q * np.outer(u, u) + (1 - q) * np.outer(u, u) * (q / (1 - q)) ** 2
        pinv = np.outer(u, u) / (u @ np.linalg.pinv(A, rcond=1e-13) @ u)
        np.testing.assert_allclose(bern, pinv, rtol=1e-7, atol=1e-12)
        assert np.linalg.eigvalsh(A - bern).min() >= -1e-14


def test_fgn_differs_from_ggn_for_three_classes():
    """FGN is a strict under-approximation for d_L > 2 (rank A^FGN = 1 < d_L − 1)."""
    model, theta, X, y = problem([3, 4, 3], "tanh", "cross_entropy", 6, seed=7)
    G = ref_ggn(model, theta, X, y, "cross_entropy", "mean")
    assert rel(approx.fgn(model, theta, X, y).dense(), G) > 1e-2


def mc_z_scores(model, theta, X, y, loss, estimate, V):
    """z = (vᵀ F̂ v − vᵀ G v) / sd for each column v of V, sd from the exact variance (19.8)."""
    N, T = X.shape[0], MC_SAMPLES
    G = ref_ggn(model, theta, X, y, loss, "mean")
    U = np.einsum("nkp,pj->njk", hr.jacobian(model, theta, X), V)  # u_i = J_i v, (N, K, d_L)
    if loss == "mse":
        m2 = np.sum(U**2, axis=2)
        var = 2.0 * m2**2
    else:
        p = softmax(hr.outputs(model, theta, X), axis=1)
        Z = np.sum(U * p[:, None, :], axis=2, keepdims=True) - U  # z_c = uᵀ(p − e_c)
        m2 = np.einsum("nc,njc->nj", p, Z**2)
        var = np.einsum("nc,njc->nj", p, Z**4) - m2**2
    sd = np.sqrt(var.sum(axis=0) / T) / N
    exact = np.einsum("pj,pq,qj->j", V, G, V)
    return (np.einsum("pj,pq,qj->j", V, estimate, V) - exact) / sd


MC_SAMPLES = 400


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_mc_fisher_is_unbiased(loss):
    """E[F_MC] = G (19.8). For 6 fixed directions, |z| ≤ 4.5 with sd from the exact variance
    (two-sided 7e-6 per direction under the CLT; fixed seeds, so the test is deterministic).
    The same test rejects the empirical Fisher (|z| > 10 somewhere): it can fail."""
    model, theta, X, y = problem([3, 4, 3], "tanh", loss, 8, seed=8)
    V = np.random.default_rng(9).normal(size=(model.num_params, 6))
    mc = approx.mc_fisher(model, theta, X, y, loss=loss, num_samples=MC_SAMPLES, rng=10)
    z = mc_z_scores(model, theta, X, y, loss, mc.dense(), V)
    assert np.abs(z).max() <= 4.5, z
    again = approx.mc_fisher(model, theta, X, y, loss=loss, num_samples=MC_SAMPLES, rng=10)
    np.testing.assert_array_equal(again.dense(), mc.dense())  # same seed, same bits
    ef = approx.empirical_fisher(model, theta, X, y, loss=loss).dense()
    assert np.abs(mc_z_scores(model, theta, X, y, loss, ef, V)).max() > 10


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empirical_fisher_matches_autograd_per_sample_gradients(loss, reduction):
    """(19.8): F_emp = s Σ g_i g_iᵀ with g_i = ∇ℓ_i from autograd (not hessref's engine)."""
    model, theta, X, y = problem([3, 5, 3], "sigmoid", loss, 7, seed=11)
    sizes, act = list(model.sizes), model.activation.name
    g = autograd.jacobian(lambda t: ref.per_sample_loss(ref.outputs(sizes, act, t, X), y, loss))(
        theta
    )
    s = 1.0 / 7 if reduction == "mean" else 1.0
    EF = approx.empirical_fisher(model, theta, X, y, loss=loss, reduction=reduction).dense()
    assert rel(EF, s * g.T @ g) < TOL
    K = approx.kfac(model, theta, X, y, loss=loss, reduction=reduction, fisher_type="empirical")
    for l in range(1, 3):  # empirical K-FAC's B_l is s Σ δδᵀ of the bias gradients
        d = g[:, model.bias_slice(l)]
        assert rel(K.factors[l - 1][1], s * d.T @ d) < TOL


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_block_diagonal_and_diagonal_are_exact_restrictions(activation, loss):
    """(19.11): blocks/diagonal of G and H equal those of hr.gauss_newton / hr.hessian and of
    autograd's G (the approximations use seeds and the R-op, the references block formulas)."""
    model, theta, X, y = problem([3, 5, 4, 3], activation, loss, 9, seed=12)
    args, kw = (model, theta, X, y), {"loss": loss, "reduction": "sum"}
    G, _ = hr.gauss_newton(*args, **kw)
    H = hr.hessian(*args, **kw)
    G_ag = ref_ggn(*args, loss, "sum")
    for M, kind in ((G, "G"), (H, "H")):
        BD = approx.block_diagonal(*args, curvature=kind, **kw).dense()
        mask = np.zeros_like(M, dtype=bool)
        for l in range(1, 4):
            sl = model.layer_slice(l)
            mask[sl, sl] = True
        assert rel(BD, np.where(mask, M, 0.0)) < TOL
        assert np.all(BD[~mask] == 0.0)
        assert rel(approx.diagonal(*args, curvature=kind, **kw).diagonal, np.diag(M)) < TOL
    assert rel(approx.diagonal(*args, **kw).diagonal, np.diag(G_ag)) < TOL


def test_quality_reports():
    """(19.12) on known answers: exact ⇒ zeros; 2G ⇒ errors 1, angles 0; K-FAC by hand."""
    model, theta, X, y = problem([3, 4, 3], "tanh", "cross_entropy", 7, seed=13)
    G = ref_ggn(model, theta, X, y, "cross_entropy", "mean")
    q = approx.quality(G, G, k=3, model=model)
    assert q.relative_frobenius == 0 and max(q.layer_errors) == 0
    assert np.abs(q.subspace_angles).max() < 1e-6 and np.abs(q.quadratic_errors).max() < 1e-12
    q2 = approx.quality(2 * G, G, k=3)
    assert abs(q2.relative_frobenius - 1) < 1e-14 and q2.layer_errors == ()
    np.testing.assert_allclose(q2.quadratic_errors, 1.0, rtol=1e-10)
    K = approx.kfac(model, theta, X, y, loss="cross_entropy")
    qk = approx.quality(K, G, k=4)
    D = K.dense()
    assert abs(qk.relative_frobenius - np.linalg.norm(D - G) / np.linalg.norm(G)) < 1e-14
    sl = model.layer_slice(1)
    assert (
        abs(qk.layer_errors[0] - np.linalg.norm(D[sl, sl] - G[sl, sl]) / np.linalg.norm(G[sl, sl]))
        < 1e-14
    )
    lam, W = np.linalg.eigh(G)
    v = W[:, -1]
    assert abs(qk.quadratic_errors[0] - (v @ D @ v - lam[-1]) / lam[-1]) < 1e-10
    assert qk.subspace_angles.shape == (4,) and np.all(qk.subspace_angles > -1e-12)


def _wrong_kfacs(args, loss):
    """Three deliberately wrong K-FACs, as factor pairs (A_l, B_l)."""
    good = approx.kfac(*args, loss=loss)
    emp = approx.kfac(*args, loss=loss, fisher_type="empirical")
    N = args[2].shape[0]
    return {
        "swapped": [(B, A) for A, B in good.factors],
        "missing_n": [(N * A, B) for A, B in good.factors],
        "empirical": [(A, B) for (A, _), (_, B) in zip(good.factors, emp.factors, strict=True)],
    }


MESSAGES = {
    "swapped": r"factors swapped \(A ⊗ B instead of B ⊗ A\)",
    "missing_n": r"missing 1/N in A",
    "empirical": r"looks like the empirical Fisher's K-FAC, not type-2",
}


@pytest.mark.parametrize("mistake", list(MESSAGES))
@pytest.mark.parametrize("form", ["factors", "blocks"])
def test_wrong_kfac_is_named(mistake, form):
    """A wrong K-FAC fails assert_approximation_close and the message names the mistake,
    given as factors or as layer blocks (the blocks built the way the mistaken code would)."""
    args = problem([3, 4, 3], "tanh", "cross_entropy", 6, seed=14)
    good = approx.kfac(*args, loss="cross_entropy")
    assert assert_approximation_close(good.factors, *args, loss="cross_entropy") < TOL
    assert assert_approximation_close(good.blocks, *args, loss="cross_entropy") < TOL
    wrong = _wrong_kfacs(args, "cross_entropy")[mistake]
    if form == "blocks":
        # a swapped implementation takes kron(A, B) of the right factors; the others are
        # B ⊗ A of their wrong factors, mapped to θ order as (19.3) says
        swapped = [np.kron(A, B) for A, B in good.factors]
        wrong = swapped if mistake == "swapped" else [_block(A, B) for A, B in wrong]
    with pytest.raises(AssertionError, match=MESSAGES[mistake]):
        assert_approximation_close(wrong, *args, loss="cross_entropy")


def _block(A, B):
    perm = approx.augmented_order(B.shape[0], A.shape[0] - 1)
    return np.kron(B, A)[np.ix_(perm, perm)]


def test_separate_weight_and_bias_kfac_is_named():
    """K-FAC with W and b as separate blocks (cross terms zero) is a convention, named."""
    args = problem([3, 4, 3], "tanh", "cross_entropy", 6, seed=14)
    good = approx.kfac(*args, loss="cross_entropy")
    separate = []
    for l, (A, B) in enumerate(good.factors, start=1):
        d_out, d_in = B.shape[0], A.shape[0] - 1
        block = np.zeros_like(good.layer_block(l))
        block[: d_out * d_in, : d_out * d_in] = np.kron(B, A[:-1, :-1])  # W–W, θ order
        block[d_out * d_in :, d_out * d_in :] = B * A[-1, -1]  # b–b
        separate.append(block)
    with pytest.raises(AssertionError, match="W and b treated as separate K-FAC blocks"):
        assert_approximation_close(separate, *args, loss="cross_entropy")


def test_wrong_approximation_names_composite_factor():
    """A K-FAC off by N·d_L (mean vs a sum over samples and outputs) is named as such."""
    args = problem([3, 4, 3], "tanh", "mse", 7, seed=15)
    good = approx.kfac(*args)
    with pytest.raises(AssertionError, match=r"a factor N·d_L = 21 = 7 × 3"):
        assert_approximation_close([21 * b for b in good.blocks], *args, loss="mse")


def test_inputs_are_validated_at_the_boundary():
    args = problem([3, 4, 3], "tanh", "mse", 5, seed=16)
    with pytest.raises(ValueError, match="fisher_type"):
        approx.kfac(*args, fisher_type="type-3")
    with pytest.raises(ValueError, match="fgn is defined for loss='cross_entropy'"):
        approx.fgn(*args, loss="mse")
    with pytest.raises(ValueError, match="num_samples"):
        approx.mc_fisher(*args, num_samples=0)
    with pytest.raises(ValueError, match="curvature"):
        approx.block_diagonal(*args, curvature="R")
    with pytest.raises(ValueError, match="theta"):
        approx.kfac(args[0], args[1][:-1], *args[2:])
    with pytest.raises(ValueError, match="damping"):
        approx.kfac(*args).inverse(-1.0)
    linear = hr.MLP([3, 4, 3], activation="relu")  # a dead unit has zero diagonal entries
    theta = linear.init(rng=0)
    theta[linear.bias_slice(1)] = -100.0
    with pytest.raises(ValueError, match="pass damping > 0"):
        approx.diagonal(linear, theta, args[2], args[3]).inverse(0.0)
