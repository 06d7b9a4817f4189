"""The Gauss-Newton split H = G + R (THEORY.md §2.1), exact and dense.

G = s Σ_i J_iᵀ A_i J_i with A_i = ∇²_f ℓ_i = B_iᵀ B_i, so G = s J̃ᵀ J̃ where the
scaled Jacobian J̃ stacks B_i J_i over samples ((N·d_L) × P). J̃ comes from
backprop of the rows of B_i (the loss Hessian factor of :mod:`hessref.losses`),
and G is one symmetric rank-k update (BLAS ``dsyrk``), accumulated over sample
chunks so J̃ never exceeds a bounded size.

R = s Σ_i Σ_c r_{i,c} ∇²_θ f_{i,c} is computed directly — not as H − G — by the
residual-only R-op (:mod:`hessref.rop`, ``mode="residual"``), so R is accurate
even when it is tiny next to G (e.g. near interpolation, where R → 0).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg.blas import dsyrk

from hessref.dense import dense_curvature
from hessref.mlp import MLP, backprop_seeds, forward
from hessref.problem import Problem, make_problem
from hessref.validation import check_dense_fits

Array = NDArray[np.float64]

_JACOBIAN_CHUNK_BYTES = 128 * 2**20


def scaled_jacobian(problem: Problem) -> Array:
    """Per-sample B_i J_i, shape (N, d_L, P), with B_iᵀ B_i = ∇²_f ℓ_i.

    For MSE B_i = I (so this is the Jacobian); for cross-entropy row c of B_i J_i is
    √p_c J_iᵀ(e_c − p), Papyan's δ_{i,c} (THEORY.md §2.7). G = s Σ_i (B_i J_i)ᵀ(B_i J_i).
    """
    cache = forward(problem.model, problem.params, problem.X)
    B = problem.loss.hessian_factor(cache.F, problem.y)
    return backprop_seeds(problem.model, problem.params, cache, B)


def mirror_upper_(M: Array, block: int = 512) -> Array:
    """Copy the upper triangle of square M onto its lower triangle, in place, by blocks."""
    n = M.shape[0]
    for i in range(0, n, block):
        i1 = min(i + block, n)
        diag = M[i:i1, i:i1]
        diag[...] = np.triu(diag) + np.triu(diag, 1).T
        for j in range(i1, n, block):
            j1 = min(j + block, n)
            M[j:j1, i:i1] = M[i:i1, j:j1].T
    return M


def dense_ggn(problem: Problem) -> Array:
    """Dense G = s Σ_i (B_i J_i)ᵀ (B_i J_i), shape (P, P), by chunked ``dsyrk``."""
    P, k = problem.model.num_params, problem.model.sizes[-1]
    rows = max(1, _JACOBIAN_CHUNK_BYTES // (8 * k * P))
    G = np.zeros((P, P), order="F")
    for chunk in problem.chunks(rows):
        Jt = scaled_jacobian(chunk).reshape(-1, P)  # (n·k, P), C order
        # Jt.T is (P, n·k) in Fortran order, so dsyrk forms Jtᵀ Jt without a copy
        G = dsyrk(problem.scale, Jt.T, beta=1.0, c=G, trans=0, lower=1, overwrite_c=1)
    # dsyrk filled the lower triangle of the F-ordered G: its transpose is C-ordered
    # with that triangle on top, which we mirror down
    return mirror_upper_(G.T)


def gauss_newton(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> tuple[Array, Array]:
    """Exact Gauss-Newton split ``(G, R)`` with H = G + R, each (P, P) and symmetric.

    G = s Σ_i J_iᵀ A_i J_i is positive semi-definite (the GGN; for these losses it
    equals the Fisher of the model's predictive distribution); R = s Σ_i Σ_c r_{i,c}
    ∇²f_{i,c} carries all negative curvature.

    Parameters
    ----------
    Same as :func:`hessref.hessian`.

    Returns
    -------
    G, R : ndarray, shape (P, P)

    Raises
    ------
    MemoryError
        Up front, if two P×P float64 matrices would not fit (use the operators).

    Examples
    --------
    At interpolation targets (MSE), R = 0 and H = G (THEORY.md §2.4):

    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([3, 4, 2], activation="tanh")
    >>> theta = model.init(rng=0); X = np.random.default_rng(1).normal(size=(5, 3))
    >>> Y = hr.outputs(model, theta, X)
    >>> G, R = hr.gauss_newton(model, theta, X, Y)
    >>> float(np.abs(R).max())
    0.0
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    check_dense_fits("gauss_newton", p.model.num_params, 2)
    return dense_ggn(p), dense_curvature(p, "residual")
