"""Channel 1: every derivative of the engine against autograd (reverse-over-reverse).

The reference (tests/reference.py) re-implements the MLP and losses in
autograd.numpy from the documented conventions only. Property tests run over
depth 1–4, widths 1–8, every activation, both losses, both reductions and
N = 1–30; exact quantities must agree to ≤ 1e-10 relative Frobenius error.
"""

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from strategies import cases

import hessref as hr
from hessref.core.losses import get_loss
from hessref.core.problem import make_problem

TOL = 1e-10


@settings(max_examples=60)
@given(cases(max_samples=30))
def test_loss_and_gradient_match_autograd(case):
    model, theta, X, y = case.model, case.theta, case.X, case.y
    loss, reduction = case.loss, case.reduction
    sizes, act = list(model.sizes), model.activation.name
    L_ref = ref.loss_fn(sizes, act, X, y, loss, reduction)(theta)
    assert (
        abs(hr.loss(model, theta, X, y, loss=loss, reduction=reduction) - L_ref)
        <= TOL * abs(L_ref) + 1e-300
    )
    g = hr.gradient(model, theta, X, y, loss=loss, reduction=reduction)
    g_ref = ref.gradient(sizes, act, theta, X, y, loss, reduction)
    assert ref.rel_err(g, g_ref) <= TOL


@settings(max_examples=60)
@given(cases(max_samples=30))
def test_hessian_and_hvp_match_autograd(case):
    model, theta, X, y = case.model, case.theta, case.X, case.y
    loss, reduction = case.loss, case.reduction
    sizes, act = list(model.sizes), model.activation.name
    H = hr.hessian(model, theta, X, y, loss=loss, reduction=reduction)
    H_ref = ref.hessian(sizes, act, theta, X, y, loss, reduction)
    scale = np.linalg.norm(H_ref)
    assert ref.rel_err(H, H_ref) <= TOL
    assert np.array_equal(H, H.T)  # symmetrized exactly
    rng = np.random.default_rng(0)
    v = rng.normal(size=model.num_params)
    V = rng.normal(size=(model.num_params, 5))
    kw = dict(loss=loss, reduction=reduction)
    assert ref.rel_err(hr.hvp(model, theta, X, y, v, **kw), H_ref @ v, scale * 1e-3) <= TOL
    HV = hr.hvp(model, theta, X, y, V, **kw)
    assert HV.shape == V.shape
    assert ref.rel_err(HV, H_ref @ V, scale) <= TOL
    # a block equals its columns computed one at a time
    cols = np.stack([hr.hvp(model, theta, X, y, V[:, j], **kw) for j in range(5)], axis=1)
    assert ref.rel_err(HV, cols, scale) <= 1e-13


@settings(max_examples=40)
@given(cases(max_samples=8, max_depth=3, max_width=6))
def test_gauss_newton_split_matches_autograd(case):
    """G, R of the engine against independent channels: G = s Σ J_iᵀA_iJ_i with autograd's J
    and A (5.2); R = s Σ r_{i,c} ∇²f_{i,c} with autograd's output Hessians (5.3); and
    autograd's H = G + R (5.1), never the engine's H against its own parts."""
    model, theta, X, y = case.model, case.theta, case.X, case.y
    loss, reduction = case.loss, case.reduction
    sizes, act = list(model.sizes), model.activation.name
    G, R = hr.gauss_newton(model, theta, X, y, loss=loss, reduction=reduction)
    H_ref = ref.hessian(sizes, act, theta, X, y, loss, reduction)
    G_ref = ref.gauss_newton(sizes, act, theta, X, y, loss, reduction)
    scale = np.linalg.norm(H_ref) + np.linalg.norm(G_ref)
    assert ref.rel_err(G, G_ref, 1e-3 * scale) <= TOL
    # R against the residual-weighted sum of autograd's output Hessians (5.3), and the
    # split (5.1) between autograd's H and the two engine parts
    R_ref = ref.residual(sizes, act, theta, X, y, loss, reduction)
    assert ref.rel_err(R, R_ref, 1e-3 * scale) <= TOL
    assert ref.rel_err(G + R, H_ref, scale) <= TOL
    assert np.array_equal(G, G.T) and np.array_equal(R, R.T)
    lam = np.linalg.eigvalsh(G)
    assert lam[0] >= -1e-12 * max(lam[-1], 1e-300)  # G ⪰ 0


@settings(max_examples=40)
@given(cases(max_samples=30))
def test_jacobian_matches_autograd_and_builds_G(case):
    model, theta, X, y = case.model, case.theta, case.X, case.y
    loss, reduction = case.loss, case.reduction
    sizes, act = list(model.sizes), model.activation.name
    J = hr.jacobian(model, theta, X)
    assert J.shape == (X.shape[0], sizes[-1], model.num_params)
    assert ref.rel_err(J, ref.jacobian(sizes, act, theta, X)) <= TOL
    # consistency with G: G = s Σ J_iᵀ A_i J_i using the loss Hessian A
    F = hr.outputs(model, theta, X)
    A = get_loss(loss).hessian(F, y)
    s = 1.0 / X.shape[0] if reduction == "mean" else 1.0
    G, _ = hr.gauss_newton(model, theta, X, y, loss=loss, reduction=reduction)
    assert (
        ref.rel_err(G, s * np.einsum("nkp,nkl,nlq->pq", J, A, J), 1e-3 * np.linalg.norm(G)) <= TOL
    )
    # and with the HVP on the interpolation targets of MSE (R = 0 there, so H v = Jᵀ J v / N)
    v = np.random.default_rng(1).normal(size=model.num_params)
    Hv = hr.hvp(model, theta, X, F, v, loss="mse", reduction=reduction)
    JtJv = s * np.einsum("nkp,nk->p", J, J @ v)
    assert ref.rel_err(Hv, JtJv, 1e-3 * np.linalg.norm(J) ** 2 * s * np.linalg.norm(v)) <= TOL


@settings(max_examples=40)
@given(cases(max_samples=30))
def test_dense_block_formulas_match_rop_columns(case):
    """The two engines agree: layer-pair block formulas (dense) vs R-op products on I."""
    from hessref.core.dense import dense_curvature
    from hessref.core.problem import make_problem
    from hessref.core.rop import curvature_matmat

    p = make_problem(case.model, case.theta, case.X, case.y, case.loss, case.reduction)
    eye = np.eye(case.model.num_params)
    H_cols = curvature_matmat(p, eye, "hessian")
    scale = np.linalg.norm(H_cols)
    for mode in ("hessian", "ggn", "residual"):
        dense = dense_curvature(p, mode)
        assert ref.rel_err(dense, curvature_matmat(p, eye, mode), 1e-3 * scale) <= TOL, mode


@pytest.mark.parametrize("workspace", [1, 3000])
def test_dense_chunking_is_exact(monkeypatch, workspace):
    """Sample chunks of the block formulas (§7) sum to the unchunked H, G, R (1 row per chunk,
    or a few): the global 1/N weight is kept, no chunk is dropped or counted twice."""
    from hessref.core import dense

    model = hr.MLP([3, 4, 3], activation="tanh")
    rng = np.random.default_rng(5)
    theta, X, y = model.init(rng), rng.normal(size=(7, 3)), rng.integers(0, 3, 7)
    kw = {"loss": "cross_entropy"}
    H0, (G0, R0) = hr.hessian(model, theta, X, y, **kw), hr.gauss_newton(model, theta, X, y, **kw)
    monkeypatch.setattr(dense, "_WORKSPACE_BYTES", workspace)
    p = make_problem(model, theta, X, y, "cross_entropy", "mean")
    assert dense._chunk_rows(p) < 7  # really chunked
    H1, (G1, R1) = hr.hessian(model, theta, X, y, **kw), hr.gauss_newton(model, theta, X, y, **kw)
    for a, b in ((H1, H0), (G1, G0), (R1, R0)):
        assert ref.rel_err(a, b) <= 1e-13
