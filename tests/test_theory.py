"""The exact theory of docs/theory.md §5, §9, §10 (and §15) as property tests.

Every identity here is a theorem ([T]) about the true Hessian, so each test checks the
engine (``hr.hessian``, ``hr.gauss_newton``, ``hr.gradient``, ``hr.jacobian``,
``hr.hvp``, ``scaled_jacobian``) against an independent construction or a closed form
over random architectures, activations, losses, reductions, sample counts and seeds.

Tolerances are relative to the spectral scale of the matrices involved. Statements that
hold only for *generic* θ (almost surely under continuous random draws) say so and why;
piecewise-linear identities are tested away from kinks (see ``strategies.cases``).
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax
from strategies import (
    PIECEWISE_LINEAR,
    POSITIVELY_HOMOGENEOUS,
    SEEDS,
    SMOOTH_NONLINEAR,
    Case,
    cases,
    hidden_preactivations,
)

import hessref as hr
from hessref.core.ggn import scaled_jacobian
from hessref.core.problem import make_problem
from hessref.core.textbook import textbook_curvature

EXACT = 1e-10  # relative tolerance for float64 identities ("≤ 1e-10 relative", docs/theory.md)
TINY = 1e-13  # relative tolerance for quantities that are zero up to a few roundings
RANK_RTOL = 1e-10  # numerical rank: λ > 1e-10·λ_max (docs/theory.md §5)


# --- helpers -----------------------------------------------------------------------------


def split(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, G, R) from the engine: ``hr.hessian`` and ``hr.gauss_newton``.

    These share the block-formula code (one mode flag each), so H = G + R between them is
    NOT evidence; the split itself is tested with independent channels in
    ``test_gauss_newton_split_is_exact_symmetric_and_psd``. The other tests here check
    properties of each matrix.
    """
    H = hr.hessian(case.model, case.theta, case.X, case.y, **case.kwargs)
    G, R = hr.gauss_newton(case.model, case.theta, case.X, case.y, **case.kwargs)
    return H, G, R


def eigs(M: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric matrix, descending (docs/theory.md §1 convention)."""
    return np.linalg.eigvalsh(M)[::-1]


def norm2(M: np.ndarray) -> float:
    """Spectral norm of a symmetric matrix."""
    return float(np.max(np.abs(np.linalg.eigvalsh(M)))) if M.size else 0.0


def rank(ev: np.ndarray, ref: float) -> int:
    """Numerical rank of a PSD spectrum: # eigenvalues > RANK_RTOL·ref."""
    return int(np.sum(ev > RANK_RTOL * ref))


def probabilities(case: Case) -> np.ndarray:
    """p_i = softmax(f_i), from the engine's outputs and SciPy's softmax, shape (N, k)."""
    return softmax(hr.outputs(case.model, case.theta, case.X), axis=1)


def own_forward(model: hr.MLP, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """The MLP forward pass written out from the documented layout (not the engine's)."""
    pos, A = 0, X
    for l, (d_in, d_out) in enumerate(zip(model.sizes[:-1], model.sizes[1:], strict=True), start=1):
        W = theta[pos : pos + d_out * d_in].reshape(d_out, d_in)
        b = theta[pos + d_out * d_in : pos + d_out * d_in + d_out]
        pos += d_out * (d_in + 1)
        Z = A @ W.T + b
        A = model.activation.f(Z) if l < model.num_layers else Z
    return A


def rescaling_direction(model: hr.MLP, layer: int, unit: int) -> np.ndarray:
    """Diagonal of D_j for hidden unit ``unit`` of hidden layer ``layer`` (docs/theory.md §9).

    +1 on the unit's incoming weights W_l[j, :] and bias b_l[j], −1 on its outgoing
    weights W_{l+1}[:, j], 0 elsewhere (indices from the documented row-major layout).
    """
    d = np.zeros(model.num_params)
    d_in, d_out = model.sizes[layer - 1], model.sizes[layer + 1]
    w = model.weight_slice(layer).start
    d[w + unit * d_in : w + (unit + 1) * d_in] = 1.0
    d[model.bias_slice(layer).start + unit] = 1.0
    w_next = model.weight_slice(layer + 1).start
    width = model.sizes[layer]
    d[w_next + np.arange(d_out) * width + unit] = -1.0
    return d


def logit_shift_directions(model: hr.MLP) -> np.ndarray:
    """The d_{L-1} + 1 CE logit-shift directions as columns, shape (P, d_{L-1} + 1).

    Column 0 is all-ones on b_L; column 1 + h is all-ones on column h of W_L.
    """
    L, k, h_dim = model.num_layers, model.sizes[-1], model.sizes[-2]
    U = np.zeros((model.num_params, h_dim + 1))
    U[model.bias_slice(L), 0] = 1.0
    w = model.weight_slice(L).start
    for h in range(h_dim):
        U[w + np.arange(k) * h_dim + h, 1 + h] = 1.0
    return U


# --- Gauss-Newton split, docs/theory.md §5 -------------------------------------------------------------


@settings(max_examples=30)
@given(case=cases(max_depth=3, max_width=6, max_samples=8))
def test_gauss_newton_split_is_exact_symmetric_and_psd(case: Case) -> None:
    """H = G + R (5.1) with each side from a DIFFERENT channel; symmetry; G ⪰ 0; tr G.

    H comes from the textbook chain rule (§8); G is built here as s Σ J_iᵀ A_i J_i (5.2)
    from ``hr.jacobian`` and A written out from (3.1)/(3.2); R is the residual-weighted sum
    of output Hessians (5.3), from autograd with the residuals frozen. The engine's G and R
    (``hr.gauss_newton``) and H (``hr.hessian``) are then compared with these.
    Catches: a residual that drops or double-counts a term (the engine's R differs from
    (5.3)), a wrong loss-Hessian factor (G not PSD / trace off), an asymmetric assembly.
    """
    sizes, act = list(case.model.sizes), case.model.activation.name
    H_tb, _, _ = textbook_curvature(case.model, case.theta, case.X, case.y, **case.kwargs)
    J = hr.jacobian(case.model, case.theta, case.X)
    A = output_hessians_written_out(case)
    G_J = case.scale * np.einsum("ncp,ncd,ndq->pq", J, A, J)
    R_out = ref.residual(sizes, act, case.theta, case.X, case.y, case.loss, case.reduction)
    nH = np.linalg.norm(H_tb) + np.linalg.norm(G_J)
    assert np.linalg.norm(H_tb - G_J - R_out) <= EXACT * nH
    H, G, R = split(case)
    assert np.linalg.norm(H - H_tb) <= EXACT * nH
    assert np.linalg.norm(G - G_J) <= EXACT * nH
    assert np.linalg.norm(R - R_out) <= EXACT * nH
    for M in (H, G, R):
        assert np.linalg.norm(M - M.T) <= TINY * max(np.linalg.norm(M), nH)
    ev = eigs(G)
    assert ev[-1] >= -1e-12 * ev[0]
    assert abs(np.trace(G) - np.trace(G_J)) <= EXACT * np.trace(G_J)


def output_hessians_written_out(case: Case) -> np.ndarray:
    """A_i = ∇²_f ℓ_i, (N, k, k): I for MSE (3.1), diag(p) − ppᵀ for cross-entropy (3.2)."""
    k = case.model.sizes[-1]
    if case.loss == "mse":
        return np.broadcast_to(np.eye(k), (case.N, k, k))
    p = probabilities(case)
    return np.einsum("nc,cd->ncd", p, np.eye(k)) - np.einsum("nc,nd->ncd", p, p)


@settings(max_examples=15)
@given(case=cases(max_samples=5, max_depth=3))
def test_per_sample_hessians_average_to_the_batch_hessian(case: Case) -> None:
    """H (mean) = (1/N) Σ_i H(sample i); sum reduction = N × mean, for H, G and R alike.

    Catches: a wrong reduction scale, or per-sample terms mixed across samples (e.g. a
    batched R-op that broadcasts one sample's activations onto another's residual).
    """
    model, X, y = case.model, case.X, case.y
    H, G, R = split(case)
    singles = [
        split(Case(model, case.theta, X[i : i + 1], y[i : i + 1], case.loss, "sum"))
        for i in range(case.N)
    ]
    for which, M in enumerate((H, G, R)):
        total = sum(parts[which] for parts in singles)
        assert np.linalg.norm(M - case.scale * total) <= EXACT * max(np.linalg.norm(H), 1e-300)


@pytest.mark.parametrize("activation", SMOOTH_NONLINEAR)
@settings(max_examples=6)
@given(data=st.data(), v_seed=SEEDS)
def test_hessian_is_the_second_derivative_of_the_loss(
    activation: str, data: st.DataObject, v_seed: int
) -> None:
    """Anchor for all the identities: the H being split is ∇²L, and ∇L is the gradient of L.

    Central differences along a random unit v (docs/theory.md §6; finite differences), smooth activations
    only: (L(θ+εv) − L(θ−εv))/2ε = ∇L·v and (∇L(θ+εv) − ∇L(θ−εv))/2ε = H v, both with
    O(ε²) truncation error (ε = 1e-4; observed relative errors ≲ 1e-9, tolerance 1e-7).
    Catches: a wrong σ′ or σ″ used consistently everywhere — H = G + R and every other
    identity in this file would still hold for such an engine.
    """
    case = data.draw(cases(activations=(activation,), min_depth=2, max_depth=3))
    model, theta, X, y = case.model, case.theta, case.X, case.y
    v = np.random.default_rng(v_seed).standard_normal(model.num_params)
    v /= np.linalg.norm(v)
    eps = 1e-4
    H, _, _ = split(case)
    grad = hr.gradient(model, theta, X, y, **case.kwargs)
    loss_fd = (
        hr.loss(model, theta + eps * v, X, y, **case.kwargs)
        - hr.loss(model, theta - eps * v, X, y, **case.kwargs)
    ) / (2 * eps)
    grad_fd = (
        hr.gradient(model, theta + eps * v, X, y, **case.kwargs)
        - hr.gradient(model, theta - eps * v, X, y, **case.kwargs)
    ) / (2 * eps)
    assert abs(loss_fd - grad @ v) <= 1e-7 * (np.linalg.norm(grad) + norm2(H))
    assert np.linalg.norm(grad_fd - H @ v) <= 1e-7 * (norm2(H) + np.linalg.norm(grad))


@settings(max_examples=20)
@given(case=cases(losses=("cross_entropy",)))
def test_ce_ggn_equals_model_fisher(case: Case) -> None:
    """CE: G = s Σ_i E_{c∼p_i}[∇ℓ(f_i, c) ∇ℓ(f_i, c)ᵀ] (docs/theory.md §5, Martens 2014).

    The Fisher is built here by enumerating classes c with per-sample gradients
    g_{i,c} = J_iᵀ(p_i − e_c) from ``hr.jacobian``. The per-sample gradients at the true
    labels are checked to average to ``hr.gradient`` (so g is the right object).
    Catches: a wrong CE Hessian (e.g. diag(p) without −ppᵀ) or a wrong scale.
    """
    _, G, _ = split(case)
    J = hr.jacobian(case.model, case.theta, case.X)  # (N, k, P)
    p = probabilities(case)
    N, k = p.shape
    residuals = p[:, None, :] - np.eye(k)[None, :, :]  # (N, c, k): p_i − e_c
    g = np.einsum("ncj,njp->ncp", residuals, J)  # (N, c, P): ∇_θ ℓ(f_i, c)
    fisher = case.scale * np.einsum("nc,ncp,ncq->pq", p, g, g)
    assert np.linalg.norm(fisher - G) <= EXACT * np.linalg.norm(G)
    grad = case.scale * g[np.arange(N), case.y].sum(axis=0)
    g_ref = hr.gradient(case.model, case.theta, case.X, case.y, **case.kwargs)
    assert np.linalg.norm(grad - g_ref) <= EXACT * max(np.linalg.norm(g_ref), 1e-300) + 1e-300


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_empirical_fisher_differs_from_ggn(seed: int, activation: str) -> None:
    """Control for the Fisher test: the *empirical* Fisher s Σ_i ∇ℓ_i ∇ℓ_iᵀ is not G.

    They coincide only in degenerate cases (e.g. p_i uniform), so at a generic θ the
    relative difference is O(1); a test equating them would be wrong.
    """
    rng = np.random.default_rng(seed)
    model = hr.MLP([4, 6, 3], activation=activation)
    theta, X, y = model.init(rng), rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    G, _ = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
    J = hr.jacobian(model, theta, X)
    p = softmax(hr.outputs(model, theta, X), axis=1)
    g = np.einsum("nj,njp->np", p - np.eye(3)[y], J)
    empirical = g.T @ g / len(y)
    assert np.linalg.norm(empirical - G) > 0.1 * np.linalg.norm(G)


@settings(max_examples=25)
@given(case=cases(max_depth=1, max_width=6))
def test_linear_model_blocks(case: Case) -> None:
    """No hidden layer: R = 0, H = G, and H = s Σ_i [[A_i⊗x_ix_iᵀ, A_i⊗x_i], [., A_i]].

    A_i is built here from an independent forward pass (I for MSE, diag p − ppᵀ for CE).
    The activation is drawn but must be irrelevant (the output layer is linear).
    MSE: H_WW = s I_k ⊗ XᵀX in our (out, in) layout — and for k, d_0 ≥ 2 *not*
    XᵀX ⊗ I_k (the (in, out) layout), so the test discriminates the layout.
    Catches: activation applied at the output, transposed W layout, wrong block order.
    """
    model, X = case.model, case.X
    d0, k = model.sizes
    H, G, R = split(case)
    nH = np.linalg.norm(H)
    assert np.linalg.norm(R) <= TINY * nH
    assert np.linalg.norm(H - G) <= TINY * nH
    F = own_forward(model, case.theta, X)
    if case.loss == "mse":
        A = np.broadcast_to(np.eye(k), (case.N, k, k))
    else:
        p = softmax(F, axis=1)
        A = np.einsum("nc,cd->ncd", p, np.eye(k)) - np.einsum("nc,nd->ncd", p, p)
    expected = case.scale * sum(
        np.block(
            [
                [np.kron(A[i], np.outer(x, x)), np.kron(A[i], x[:, None])],
                [np.kron(A[i], x[None, :]), A[i]],
            ]
        )
        for i, x in enumerate(X)
    )
    assert np.linalg.norm(H - expected) <= EXACT * nH
    if case.loss == "mse":
        H_WW = H[model.weight_slice(1), model.weight_slice(1)]
        XtX = X.T @ X
        assert np.allclose(H_WW, case.scale * np.kron(np.eye(k), XtX), rtol=0, atol=EXACT * nH)
        if k >= 2 and d0 >= 2:
            swapped = case.scale * np.kron(XtX, np.eye(k))
            assert np.linalg.norm(H_WW - swapped) > 1e-6 * nH


# --- rank bounds, docs/theory.md §5 ---------------------------------------------------------------------


@settings(max_examples=30)
@given(case=cases(max_samples=6))
def test_ggn_rank_bounds(case: Case) -> None:
    """rank G ≤ min(P, N·d_L) (MSE), ≤ min(P, N·(d_L − 1)) (CE, since A_i·1 = 0).

    Few samples (N ≤ 6) so the N-bound is often the active one. Catches: a CE loss
    Hessian with the wrong null space (e.g. diag(p) alone, which has full rank k).
    """
    _, G, _ = split(case)
    ev = eigs(G)
    k, P = case.model.sizes[-1], case.model.num_params
    per_sample = k if case.loss == "mse" else k - 1
    assert rank(ev, ev[0]) <= min(P, case.N * per_sample)


def worked_example(seed: int, N: int) -> tuple[hr.MLP, np.ndarray, np.ndarray, np.random.Generator]:
    """5→7→3 ReLU MLP, PyTorch-default init, N standard-normal inputs (docs/theory.md §5).

    Genericity preconditions, asserted so a seed change cannot silently test a special θ:
    no pre-activation at a kink, no hidden unit dead on all samples (its weights would
    drop out of J) and, when the sample bound is inactive (N·k > P), no unit active on
    all samples (two such units act as one linear map W₂[:, j]w_jᵀ, whose factorisation
    has more than the one-per-unit rescaling symmetry).
    """
    rng = np.random.default_rng(seed)
    model = hr.MLP([5, 7, 3], activation="relu")
    theta = model.init(rng)
    X = rng.standard_normal((N, 5))
    (Z,) = hidden_preactivations(model, theta, X)
    assert np.min(np.abs(Z)) > 1e-8
    assert np.all((Z > 0).any(axis=0))
    if N * 3 > model.num_params:
        assert np.all((Z < 0).any(axis=0))
    return model, theta, X, rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("loss", "expected_rank"), [("mse", 59), ("cross_entropy", 51)])
def test_worked_example_rank(seed: int, loss: str, expected_rank: int) -> None:
    """docs/theory.md §5: 5→7→3 ReLU (P = 66), N = 40, generic θ: rank G = 59 MSE, 51 CE.

    The N·k bound is inactive, so the deficiency is exactly the symmetry kernel: the 7
    ReLU rescaling directions D_jθ (both losses) plus the 8 logit-shift directions (CE).
    We check rank equality, that those directions are independent and lie in ker G, so
    ker G is exactly their span. Generic θ: at special θ (dead units, aligned data) the
    rank can drop further; the preconditions in ``worked_example`` exclude that.
    """
    model, theta, X, rng = worked_example(seed, 40)
    y = rng.standard_normal((40, 3)) if loss == "mse" else rng.integers(0, 3, 40)
    G, _ = hr.gauss_newton(model, theta, X, y, loss=loss)
    ev = eigs(G)
    assert model.num_params == 66
    assert rank(ev, ev[0]) == expected_rank
    assert ev[expected_rank - 1] > 1e-8 * ev[0]  # a clear gap: the rank is threshold-robust
    V = np.stack([rescaling_direction(model, 1, j) * theta for j in range(7)], axis=1)
    if loss == "cross_entropy":
        V = np.hstack([V, logit_shift_directions(model)])
    assert np.linalg.matrix_rank(V) == 66 - expected_rank
    assert np.linalg.norm(G @ V) <= EXACT * ev[0] * np.linalg.norm(V)


@pytest.mark.parametrize("seed", [0, 2, 3])  # seed 1 has a unit dead on all 5 samples
@pytest.mark.parametrize(("loss", "expected_rank"), [("mse", 15), ("cross_entropy", 10)])
def test_worked_example_rank_sample_bound_active(seed: int, loss: str, expected_rank: int) -> None:
    """Same net with N = 5: the sample bound is active, rank G = N·k = 15 / N·(k−1) = 10.

    Generic θ and X make the N·k Jacobian rows (less the CE 1-direction per sample)
    linearly independent, so the bound is attained.
    """
    model, theta, X, rng = worked_example(seed, 5)
    y = rng.standard_normal((5, 3)) if loss == "mse" else rng.integers(0, 3, 5)
    G, _ = hr.gauss_newton(model, theta, X, y, loss=loss)
    ev = eigs(G)
    assert rank(ev, ev[0]) == expected_rank
    assert ev[expected_rank - 1] > 1e-8 * ev[0]


# --- inertia and perturbation, docs/theory.md (5.6) ---------------------------------------------------------


@settings(max_examples=30)
@given(case=cases())
def test_inertia_and_weyl_bounds(case: Case) -> None:
    """G ⪰ 0 ⇒ λ_i(H) ≥ λ_i(R) ∀i (Courant–Fischer monotonicity), λ_min(H) ≥ λ_min(R),
    n₋(H) ≤ n₋(R); Weyl's inequality (5.6) λ_i(G) + λ_P(R) ≤ λ_i(H) ≤ λ_i(G) + λ_1(R)
    (hence |λ_i(H) − λ_i(G)| ≤ ‖R‖₂) and its general form λ_{i+j−1}(H) ≤ λ_i(G) + λ_j(R);
    n₊(H) ≤ rank G + n₊(R) (subadditivity of the positive index, not Weyl).

    Counts use a threshold τ = 1e-8·scale for H and τ/4 for G and R, so that rounding
    (≪ τ/4) cannot move an eigenvalue across both thresholds: the inequalities between
    the counts then follow from the exact eigenvalue inequalities.
    Catches: negative curvature in G, or an R inconsistent with H − G.
    """
    H, G, R = split(case)
    lH, lG, lR = eigs(H), eigs(G), eigs(R)
    scale = max(abs(lH).max(), abs(lG).max(), abs(lR).max())
    tol = EXACT * scale
    assert np.all(lH >= lR - tol)
    assert lH[-1] >= lR[-1] - tol
    assert np.all(np.abs(lH - lG) <= abs(lR).max() + tol)
    assert np.all(lG + lR[-1] - tol <= lH) and np.all(lH <= lG + lR[0] + tol)
    P = lH.size
    for i in range(min(P, 4)):
        for j in range(min(P - i, 4)):
            assert lH[i + j] <= lG[i] + lR[j] + tol
    tau = 1e-8 * scale
    assert np.sum(lH < -tau) <= np.sum(lR < -tau / 4)
    assert np.sum(lH > tau) <= np.sum(lG > tau / 4) + np.sum(lR > tau / 4)


# --- interpolation (docs/theory.md §5) ----------------------------------------------------------------------


@settings(max_examples=25)
@given(case=cases(losses=("mse",)))
def test_interpolation_targets_give_zero_residual(case: Case) -> None:
    """MSE with Y := f(θ₀, X): every r_i = 0, so R = 0, H = G ⪰ 0 and ∇L = 0.

    Catches: a residual that is not f − y, or an R computed with a nonzero offset.
    """
    Y = hr.outputs(case.model, case.theta, case.X)
    case = Case(case.model, case.theta, case.X, Y, case.loss, case.reduction)
    H, G, R = split(case)
    nG = norm2(G)
    assert np.max(np.abs(R)) <= 1e-14 * nG
    assert np.linalg.norm(H - G) <= TINY * np.linalg.norm(G)
    grad = hr.gradient(case.model, case.theta, case.X, Y, **case.kwargs)
    J = hr.jacobian(case.model, case.theta, case.X)
    assert np.linalg.norm(grad) <= 1e-14 * case.scale * np.linalg.norm(J) * (1 + np.abs(Y).max())
    assert eigs(H)[-1] >= -1e-12 * nG


# --- structure of R, docs/theory.md (5.5) -----------------------------------------------------------------------


@settings(max_examples=25)
@given(case=cases())
def test_residual_vanishes_on_last_layer(case: Case) -> None:
    """Any activation: f is affine in (W_L, b_L), so R's last-layer diagonal block is 0
    and every row and column of R belonging to b_L is 0.

    Catches: a σ″ or residual term wrongly applied at the (linear) output layer.
    """
    _, G, R = split(case)
    L, model = case.model.num_layers, case.model
    tol = TINY * max(np.linalg.norm(G), np.linalg.norm(R))
    assert np.linalg.norm(hr.layer_block(model, R, L, L)) <= tol
    bL = model.bias_slice(L)
    assert np.linalg.norm(R[bL, :]) <= tol and np.linalg.norm(R[:, bL]) <= tol


@settings(max_examples=25)
@given(case=cases(activations=PIECEWISE_LINEAR, min_depth=2))
def test_piecewise_linear_residual_has_zero_diagonal_blocks(case: Case) -> None:
    """ReLU / leaky ReLU / identity: f is piecewise affine in each layer's (W_l, b_l), so
    off the kinks every layer-diagonal block of R is 0: tr R = 0, tr H = tr G, diag H = diag G.

    Almost sure: holds off the kinks (hidden pre-activations bounded away from 0 here).
    Catches: a nonzero σ″ for ReLU, or the R-op's δ_l R{a_{l−1}} term placed on the
    diagonal block.
    """
    H, G, R = split(case)
    tol = TINY * max(np.linalg.norm(H), np.linalg.norm(G), np.linalg.norm(R))
    for l in range(1, case.model.num_layers + 1):
        assert np.linalg.norm(hr.layer_block(case.model, R, l, l)) <= tol
    assert abs(np.trace(R)) <= tol
    assert abs(np.trace(H) - np.trace(G)) <= tol
    assert np.max(np.abs(np.diag(H) - np.diag(G))) <= tol


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softplus", "gelu"])
def test_smooth_activation_residual_has_nonzero_trace(seed: int, activation: str) -> None:
    """Control for the test above: for σ″ ≠ 0, tr R ≠ 0 generically (docs/theory.md (5.5)),
    so the zero-trace check discriminates piecewise-linear from smooth activations.

    Generic: tr R is a nonconstant analytic function of (θ, X, Y), so it vanishes only
    on a measure-zero set; these seeds are not on it (and |tr R| is O(‖R‖_F)).
    """
    rng = np.random.default_rng(seed)
    model = hr.MLP([3, 5, 4, 2], activation=activation)
    theta = 2.0 * model.init(rng)
    X, Y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    _, R = hr.gauss_newton(model, theta, X, Y)
    assert abs(np.trace(R)) > 1e-3 * np.linalg.norm(R)
    assert np.linalg.norm(hr.layer_block(model, R, 1, 1)) > 1e-3 * np.linalg.norm(R)


# --- symmetries, docs/theory.md §9 ---------------------------------------------------------------------------


@settings(max_examples=25)
@given(case=cases(activations=POSITIVELY_HOMOGENEOUS, min_depth=2))
def test_relu_rescaling_symmetry(case: Case) -> None:
    """Positively homogeneous σ: L(exp(tD_j)θ) = L(θ) for each hidden unit j, hence
    J_i D_jθ = 0, ∇L·D_jθ = 0 and H D_jθ = −D_j ∇L — checked for every hidden unit,
    with H both dense (``hr.hessian``) and matrix-free (``hr.hvp``).

    Exact for every θ off the kinks (the identity differentiates an exact invariance).
    Catches: a transposed weight layout (D_j would hit the wrong entries), wrong σ′/σ″
    of ReLU, or a Hessian missing the gradient-coupling (non-GGN) terms.
    """
    model, theta = case.model, case.theta
    D = np.stack(
        [
            rescaling_direction(model, l, j)
            for l in range(1, model.num_layers)
            for j in range(model.sizes[l])
        ],
        axis=1,
    )  # (P, #hidden units), diagonals of the D_j
    V = D * theta[:, None]  # columns D_j θ
    H, _, _ = split(case)
    grad = hr.gradient(model, theta, case.X, case.y, **case.kwargs)
    J = hr.jacobian(model, theta, case.X).reshape(-1, model.num_params)
    nV = np.linalg.norm(V, axis=0)
    assert np.all(np.linalg.norm(J @ V, axis=0) <= TINY * np.linalg.norm(J) * nV)
    assert np.all(np.abs(grad @ V) <= TINY * (np.linalg.norm(grad) + 1e-300) * nV + 1e-300)
    target = -D * grad[:, None]  # −D_j ∇L
    bound = EXACT * (norm2(H) * nV + np.linalg.norm(grad))
    assert np.all(np.linalg.norm(H @ V - target, axis=0) <= bound)
    HV = hr.hvp(model, theta, case.X, case.y, V, **case.kwargs)
    assert np.all(np.linalg.norm(HV - target, axis=0) <= bound)


@settings(max_examples=25)
@given(case=cases(losses=("cross_entropy",)))
def test_ce_logit_shift_null_directions(case: Case) -> None:
    """CE: adding s·1 to every logit leaves ℓ unchanged, so with u = 1 on b_L or on column h
    of W_L: ∇L·u = 0, G u = 0, R u = 0 and H u = 0 for every θ (d_{L−1} + 1 directions).

    Catches: a CE Hessian without the −ppᵀ term (then A·1 ≠ 0), a wrong W_L layout.
    """
    U = logit_shift_directions(case.model)
    H, G, R = split(case)
    grad = hr.gradient(case.model, case.theta, case.X, case.y, **case.kwargs)
    nU = np.linalg.norm(U, axis=0)
    scale = max(norm2(H), norm2(G), norm2(R))
    for M in (H, G, R):
        assert np.all(np.linalg.norm(M @ U, axis=0) <= EXACT * scale * nU)
    assert np.all(np.abs(grad @ U) <= EXACT * np.linalg.norm(grad) * nU + 1e-300)
    HU = hr.hvp(case.model, case.theta, case.X, case.y, U, **case.kwargs)
    assert np.all(np.linalg.norm(HU, axis=0) <= EXACT * scale * nU)


@settings(max_examples=20)
@given(case=cases(losses=("mse",)))
def test_mse_has_no_logit_shift_null_direction(case: Case) -> None:
    """Control: under MSE the same directions are *not* in ker G. In closed form
    uᵀGu = s Σ_i ‖J_i u‖² = s·N·k for u = 1 on b_L, and s·k·Σ_i a_{i,h}² for u = 1 on
    column h of W_L (a = last hidden activations; the input when L = 1).
    """
    model = case.model
    U = logit_shift_directions(model)
    _, G, _ = split(case)
    params = model.unflatten(case.theta)
    a = case.X
    for W, b in params[:-1]:
        a = model.activation.f(a @ W.T + b)
    k = model.sizes[-1]
    expected = case.scale * k * np.concatenate([[case.N], np.sum(a * a, axis=0)])
    quad = np.einsum("pu,pq,qu->u", U, G, U)
    assert np.allclose(quad, expected, rtol=EXACT, atol=TINY * norm2(G))
    assert quad[0] > 0


# --- Papyan's decomposition, docs/theory.md §10 ----------------------------------------------------------


def papyan_deltas(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """δ_{i,c′} = √p_{i,c′} J_iᵀ(e_{c′} − p_i), shape (N, C, P), built from ``hr.jacobian``."""
    J = hr.jacobian(case.model, case.theta, case.X)
    p = probabilities(case)
    k = p.shape[1]
    E = np.sqrt(p)[:, :, None] * (np.eye(k)[None, :, :] - p[:, None, :])  # (N, c′, k)
    return np.einsum("ncj,njp->ncp", E, J), p


@settings(max_examples=25)
@given(case=cases(losses=("cross_entropy",)))
def test_papyan_class_vectors(case: Case) -> None:
    """G = s Σ_i Σ_{c′} δ_{i,c′} δ_{i,c′}ᵀ; ``scaled_jacobian`` returns exactly these δ;
    and Σ_{c′} √p_{i,c′} δ_{i,c′} = 0 for the engine's δ.

    Catches: a wrong CE Hessian factor B (BᵀB ≠ diag p − ppᵀ), or a correct-Gram but
    different factor (e.g. a rotated one) that would break Papyan's per-class analysis.
    """
    _, G, _ = split(case)
    delta, p = papyan_deltas(case)
    P = case.model.num_params
    flat = delta.reshape(-1, P)
    assert np.linalg.norm(case.scale * flat.T @ flat - G) <= EXACT * np.linalg.norm(G)
    problem = make_problem(case.model, case.theta, case.X, case.y, case.loss, case.reduction)
    engine = scaled_jacobian(problem)
    assert engine.shape == delta.shape
    assert np.linalg.norm(engine - delta) <= EXACT * np.linalg.norm(delta)
    weighted = np.einsum("nc,ncp->np", np.sqrt(p), engine)
    assert np.linalg.norm(weighted) <= TINY * np.linalg.norm(engine)


@settings(max_examples=20)
@given(case=cases(losses=("cross_entropy",), balanced_classes=True, max_depth=3))
def test_papyan_four_part_decomposition(case: Case) -> None:
    """Balanced classes (C = d_L, n_c = N/C): G = G₀ + G₁ + G₂ + G₃ exactly (engine G),
    each part PSD, rank G₀ ≤ C, rank G₁ ≤ C, rank G₂ ≤ C(C − 2), and
    λ_j(G) ≥ λ_j(G₀+G₁+G₂) ≥ λ_j(G₁) for all j. Also the Gram-matrix shortcuts for
    the nonzero eigenvalues of G₁ (C×C) and G₀+G₁+G₂ (C²×C²).

    Parts, built here from the δ of ``papyan_deltas`` (docs/theory.md §10): class means
    δ_{c,c′}, δ_c = mean_{c′≠c} δ_{c,c′}, ν_{c,c′} = δ_{c,c′} − δ_c, within-class
    covariances normalised by n_c. G (sum reduction) is N·G (mean); parts scale the same.
    """
    _, G, _ = split(case)
    delta, _ = papyan_deltas(case)
    y, N, C = case.y, case.N, case.model.sizes[-1]
    weight = case.scale * N  # 1 (mean) or N (sum)
    means = np.stack([delta[y == c].mean(axis=0) for c in range(C)])  # (c, c′, P)
    off = ~np.eye(C, dtype=bool)
    class_mean = np.stack([means[c][off[c]].mean(axis=0) for c in range(C)])  # δ_c (C, P)
    nu = means - class_mean[:, None, :]  # ν_{c,c′}; only c′ ≠ c used
    diag_means = means[np.arange(C), np.arange(C)]  # δ_{c,c}
    G0 = weight / C * diag_means.T @ diag_means
    G1 = weight * (C - 1) / C * class_mean.T @ class_mean
    nu_off = nu[off]  # (C(C−1), P)
    G2 = weight / C * nu_off.T @ nu_off
    centred = delta - means[y]  # δ_{i,c′} − δ_{y_i,c′}
    G3 = (
        weight
        / C
        * sum(
            np.einsum("ncp,ncq->pq", centred[y == c], centred[y == c]) / np.sum(y == c)
            for c in range(C)
        )
    )
    assert np.linalg.norm(G0 + G1 + G2 + G3 - G) <= EXACT * np.linalg.norm(G)
    lG = eigs(G)
    ref = lG[0]
    tol = EXACT * ref
    spectra = [eigs(M) for M in (G0, G1, G2, G3)]
    for ev in spectra:
        assert ev[-1] >= -tol
    assert rank(spectra[0], ref) <= C
    assert rank(spectra[1], ref) <= C
    assert rank(spectra[2], ref) <= C * (C - 2)
    l012 = eigs(G0 + G1 + G2)
    assert np.all(lG >= l012 - tol) and np.all(l012 >= spectra[1] - tol)
    # nonzero eigenvalues from small Gram matrices
    gram1 = weight * (C - 1) / C * class_mean @ class_mean.T
    assert np.allclose(eigs(gram1), spectra[1][:C], rtol=0, atol=tol)
    all_means = means.reshape(C * C, -1)
    gram012 = weight / C * all_means @ all_means.T
    m = min(C * C, len(l012))
    assert np.allclose(eigs(gram012)[:m], l012[:m], rtol=0, atol=tol)


# --- GD on a quadratic, docs/theory.md §15 ----------------------------------------------------------------


def random_psd(rng: np.random.Generator, spectrum: np.ndarray) -> np.ndarray:
    """Q diag(spectrum) Qᵀ with a Haar-random orthogonal Q."""
    Q, _ = np.linalg.qr(rng.standard_normal((len(spectrum), len(spectrum))))
    return (Q * spectrum) @ Q.T


def gd_errors(A: np.ndarray, eta: float, e0: np.ndarray, steps: int) -> np.ndarray:
    """Error norms ‖x_t − x*‖ of literal GD x ← x − η∇q(x) on q = ½(x − x*)ᵀA(x − x*)."""
    x_star = np.arange(len(e0), dtype=float)
    x, out = x_star + e0, [np.linalg.norm(e0)]
    for _ in range(steps):
        x = x - eta * (A @ (x - x_star))
        out.append(np.linalg.norm(x - x_star))
    return np.array(out)


@settings(max_examples=40)
@given(
    seed=SEEDS,
    n=st.integers(2, 10),
    c=st.floats(0.2, 1.9),
    zeros=st.integers(0, 2),
)
def test_gd_quadratic_converges_below_two_over_eta(seed: int, n: int, c: float, zeros: int) -> None:
    """A ⪰ 0 with λ_max = 1, η = c/λ_max, c < 2: every component along λ_i > 0 contracts
    by |1 − ηλ_i| < 1 per step; components in ker A stay. Positive eigenvalues are drawn
    in [0.2, 1] so the contraction factor is ≤ 0.96 and 1500 steps reach rounding level.
    """
    rng = np.random.default_rng(seed)
    spectrum = np.concatenate([[1.0], rng.uniform(0.2, 1.0, n - 1)])
    spectrum[1 : 1 + min(zeros, n - 1)] = 0.0
    A = random_psd(rng, spectrum)
    e0 = rng.standard_normal(n)
    steps = 1500
    errors = gd_errors(A, c, e0, steps)
    # the limit error is e0's projection onto ker A (the exact fixed point of the iteration)
    w, Q = np.linalg.eigh(A)
    kernel = Q[:, w < 0.1]
    limit = np.linalg.norm(kernel.T @ e0)
    assert abs(errors[-1] - limit) <= 1e-10 * np.linalg.norm(e0)
    assert np.all(np.diff(errors) <= 1e-12 * errors[0])  # never grows


@settings(max_examples=40)
@given(seed=SEEDS, n=st.integers(2, 10), c=st.floats(2.05, 3.5))
def test_gd_quadratic_diverges_above_two_over_eta(seed: int, n: int, c: float) -> None:
    """λ_max > 2/η: from a generic start the error grows, and the per-step growth
    ‖e_{t+1}‖/‖e_t‖ tends to |1 − ηλ_max| = c − 1 (other λ_i ≤ 0.9 λ_max contract
    relatively by at least max(1, 0.9c − 1)/(c − 1) per step).
    Generic start: e0 has a nonzero component along the top eigenvector almost surely.
    """
    rng = np.random.default_rng(seed)
    spectrum = np.concatenate([[1.0], rng.uniform(0.0, 0.9, n - 1)])
    A = random_psd(rng, spectrum)
    e0 = rng.standard_normal(n)
    steps = min(600, int(100 / np.log10(c - 1)))  # keep ‖e_t‖ ≤ ~1e100 (no overflow)
    errors = gd_errors(A, c, e0, steps)
    assert np.all(np.isfinite(errors)) and errors[-1] > errors[0]
    assert abs(errors[-1] / errors[-2] - (c - 1)) <= 1e-8 * (c - 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gd_quadratic_edge_and_negative_curvature(seed: int) -> None:
    """At λ_max = 2/η exactly (diagonal A, η = 1, λ_max = 2 — exact in float64) the top
    component flips sign forever without growing; with any λ_i < 0, GD diverges for
    every η > 0 (growth factor 1 + η|λ_min|).
    """
    rng = np.random.default_rng(seed)
    A = np.diag([2.0, 1.5, 0.5, 0.25])
    e0 = rng.standard_normal(4)
    x_star = np.zeros(4)
    x = e0.copy()
    for t in range(1, 201):
        x = x - A @ (x - x_star)
        assert x[0] == (-1) ** t * e0[0]
    assert np.allclose(x[1:], 0.0, atol=1e-12 * np.linalg.norm(e0))
    for eta in (0.05, 0.5, 1.0):
        spectrum = np.array([1.0, 0.5, -0.3])
        B = random_psd(rng, spectrum)
        errors = gd_errors(B, eta, rng.standard_normal(3), 500)
        assert errors[-1] > errors[0]
        assert abs(errors[-1] / errors[-2] - (1 + 0.3 * eta)) <= 1e-6
