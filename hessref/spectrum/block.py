"""Block Lanczos with full reorthogonalization: extreme eigenpairs from (P, b) blocks.

Unlike :class:`~hessref.spectrum.lanczos_kernel.LanczosKernel`, whose lockstep runs never
mix, here the b columns of each block span ONE Krylov space

    K_j(A, Q₁) = span{Q₁, A Q₁, …, A^{j−1} Q₁},   A Q = Q T + Q_{j+1} B_j E_jᵀ,

with T block tridiagonal (diagonal blocks A_i = Q_iᵀ A Q_i, sub-diagonal blocks B_i).
Each step costs ONE operator ``matmat`` on b columns, which for a data-batched
Hessian operator is several times cheaper per column than b single products, and a
block space finds eigenvalues of multiplicity ≤ b. Reference: Golub & Underwood
(1977); Golub & Van Loan, Matrix Computations, section 10.3.6.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from hessref.spectrum._operator import Operator

Array = NDArray[np.float64]

_BREAKDOWN_RTOL = 1e-10  # singular values of a new block below this × ‖T‖: invariant directions


def _orthogonalize(basis: Array, W: Array) -> Array:
    """W minus its projection on the orthonormal columns of ``basis``, twice (CGS2)."""
    for _ in range(2):
        W -= basis @ (basis.T @ W)
    return W


def _next_block(
    basis: Array, W: Array, size: int, scale: float, gen: np.random.Generator
) -> tuple[Array, Array]:
    """Q_{j+1} (P, size), B_j (size, b_j) with W ≈ Q_{j+1} B_j (SVD), Q_{j+1} ⟂ basis.

    ``size`` < b_j only for the last block, when P − (basis columns) < b_j (then W has
    rank ≤ size). Directions with singular value ≤ 1e-10·‖T‖ are invariant to working
    accuracy: they are replaced by random directions orthogonal to everything so far,
    with a zero row in B_j (T then splits into blocks, each exact).
    """
    U, sv, Vt = scipy.linalg.svd(W, full_matrices=False, check_finite=False)
    U, sv, Vt = U[:, :size], sv[:size], Vt[:size]
    B = sv[:, None] * Vt
    weak = sv <= _BREAKDOWN_RTOL * max(scale, sv[0])
    if weak.any():
        B[weak] = 0.0
        fresh = _orthogonalize(basis, gen.standard_normal((W.shape[0], int(weak.sum()))))
        fresh = _orthogonalize(U[:, ~weak], fresh)
        U[:, weak] = np.linalg.qr(fresh)[0]
    return U, B


def block_lanczos_extreme(
    op: Operator,
    counts: tuple[int, int],
    tol: float,
    b: int,
    gen: np.random.Generator,
    Q0: Array | None = None,
) -> tuple[Array, Array, Array]:
    """The wanted Ritz pairs of block Lanczos (block size b) once converged.

    ``counts`` = (n_top, n_low): the n_top largest and the n_low smallest pairs (either
    may be 0; k = n_top + n_low below). ``Q0`` (P, b) with orthonormal columns is the
    start block (default: the Q factor of a standard normal block from ``gen``).

    Stops when every wanted Ritz pair (θ_i, y_i = Q s_i) has residual
    ‖A y_i − θ_i y_i‖ = ‖B_j S[last block, i]‖ ≤ 3·tol·‖T‖ (‖T‖ ≈ ‖A‖: the largest |θ|),
    or when the basis spans the whole space (then the Ritz pairs are exact).
    Memory: the basis, P × (steps·b) floats, and T, (steps·b)².

    Returns
    -------
    values : ndarray (k,)
        Ascending.
    vectors : ndarray (P, k)
    bounds : ndarray (k,)
        The Ritz residuals ‖B_j S[last block, i]‖ (= ‖A y_i − θ_i y_i‖ in exact
        arithmetic; 0 when the basis spans the whole space).
    """
    P, (n_top, n_low) = op.P, counts
    k = n_top + n_low
    Q, T = _grow(np.empty((P, 0)), np.empty((0, 0)), min(P, max(4 * b, 64)))
    Q[:, :b] = np.linalg.qr(gen.standard_normal((P, b)))[0] if Q0 is None else Q0
    n, bcur = 0, b  # columns of Q already multiplied by A; size of the current block
    while True:
        cur = slice(n, n + bcur)
        W = op.matmat(Q[:, cur])
        A = Q[:, cur].T @ W
        T[cur, cur] = 0.5 * (A + A.T)
        W = _orthogonalize(Q[:, : n + bcur], W)  # full reorthogonalization (removes Q_j A_j, …)
        n += bcur
        theta, S = scipy.linalg.eigh(T[:n, :n], check_finite=False)
        wanted = _wanted(n, n_top, n_low)
        if n == P:  # Q spans everything: the Ritz pairs are exact
            return theta[wanted], Q[:, :n] @ S[:, wanted], np.zeros(k)
        scale, bnext = float(np.max(np.abs(theta))), min(b, P - n)
        Qn, B = _next_block(Q[:, :n], W, bnext, scale, gen)
        bounds = np.linalg.norm(B @ S[n - bcur : n, wanted], axis=0)
        if n >= k and np.all(bounds <= 3 * tol * scale):
            return theta[wanted], Q[:, :n] @ S[:, wanted], bounds
        if n + bnext > Q.shape[1]:
            Q, T = _grow(Q, T, min(P, 2 * Q.shape[1]))
        Q[:, n : n + bnext] = Qn
        T[n : n + bnext, n - bcur : n] = B
        T[n - bcur : n, n : n + bnext] = B.T
        bcur = bnext


def _wanted(n: int, n_top: int, n_low: int) -> slice | NDArray[np.intp]:
    """Indices of the wanted pairs among n ascending Ritz values (a slice for one end)."""
    if n_low == 0:
        return slice(max(n - n_top, 0), n)
    if n_top == 0:
        return slice(0, n_low)
    return np.r_[0 : min(n_low, n), max(n - n_top, n_low) : n]  # k of them once n ≥ k


def _grow(Q: Array, T: Array, cap: int) -> tuple[Array, Array]:
    """Q (P, c) and T (c, c) copied into larger (P, cap) and zero-padded (cap, cap) arrays."""
    Q2 = np.empty((Q.shape[0], cap))
    Q2[:, : Q.shape[1]] = Q
    T2 = np.zeros((cap, cap))
    T2[: T.shape[0], : T.shape[1]] = T
    return Q2, T2
