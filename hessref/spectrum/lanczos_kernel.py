"""The Lanczos kernel, its Gauss-rule/Ritz helper and the public :func:`lanczos`.

:class:`LanczosKernel` is the one implementation of the symmetric Lanczos
recurrence in hessref: the quadrature :func:`lanczos`, stochastic Lanczos
quadrature (``slq_density``), the norm estimate and the ``"lanczos"`` method of
``top_eigenpairs`` all drive it. :func:`ritz` is the one place where a tridiagonal
T is diagonalized into Ritz values, Gauss weights and Ritz error bounds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from hessref.core.validation import check_positive_int
from hessref.spectrum._operator import Operator, unit_start_vector

Array = NDArray[np.float64]

BREAKDOWN_RTOL = 1e-10  # β_j below this times ‖T_j‖ means an invariant subspace was reached


@dataclass(frozen=True)
class LanczosResult:
    """m steps of Lanczos on a unit start vector q₁: A Q = Q T + β_m q_{m+1} e_mᵀ.

    Attributes
    ----------
    alpha : ndarray (m,)
        Diagonal of the tridiagonal T.
    beta : ndarray (m - 1,)
        Off-diagonal of T (all > 0).
    Q : ndarray (P, m) or None
        Lanczos basis (orthonormal columns, q₁ first); None without reorthogonalization.
    nodes : ndarray (m,)
        Ritz values μ_k = eigenvalues of T, ascending (Gauss quadrature nodes).
    weights : ndarray (m,)
        τ_k = S[0, k]², the squared FIRST entries of T's unit eigenvectors; Σ τ_k = 1 and
        Σ_k τ_k μ_k^j = q₁ᵀ A^j q₁ for 0 ≤ j ≤ 2m − 1.
    residual_norm : float
        β_m = ‖r_m‖, the norm of the final residual; 0 after an invariant subspace.
        For j = 2m the quadrature error is exactly (β_1 ⋯ β_{m−1} β_m)².
    """

    alpha: Array
    beta: Array
    Q: Array | None
    nodes: Array
    weights: Array
    residual_norm: float = 0.0


def ritz(
    alpha: Array, beta: Array, residual: float = 0.0, index_range: tuple[int, int] | None = None
) -> tuple[Array, Array, Array]:
    """Ritz values, vectors of T and Ritz error bounds: the one Gauss-rule helper.

    With T = S diag(μ) Sᵀ the tridiagonal of diagonal ``alpha`` (j,) and off-diagonal
    ``beta`` (j − 1,) and r = ``residual`` (the final β_j):

    * Gauss rule of q₁ᵀ f(A) q₁: nodes μ_k, weights τ_k = S[0, k]² (the squared FIRST
      entries, exact for polynomials of degree ≤ 2j − 1);
    * Ritz bounds |r · S[j−1, k]| = ‖A y_k − μ_k y_k‖ for y_k = Q S[:, k], so each
      interval [μ_k − bound_k, μ_k + bound_k] holds an eigenvalue of A.

    Always ``scipy.linalg.eigh_tridiagonal`` (a general eigensolver on T would lose
    the symmetric structure and its accuracy).

    Parameters
    ----------
    alpha, beta : ndarray (j,), (j − 1,)
    residual : float
    index_range : (lo, hi), optional
        Only eigenpairs lo..hi (inclusive, ascending order).

    Returns
    -------
    mu : ndarray (n,)
        Ascending.
    S : ndarray (j, n)
        Unit eigenvectors of T as columns.
    bounds : ndarray (n,)
    """
    if index_range is None:
        mu, S = scipy.linalg.eigh_tridiagonal(alpha, beta, check_finite=False)
    else:
        mu, S = scipy.linalg.eigh_tridiagonal(
            alpha, beta, select="i", select_range=index_range, check_finite=False
        )
    return mu, S, np.abs(residual * S[-1])


class _FileBasis:
    """Lanczos bases of b runs kept in an anonymous temporary file, step-major (j, i, P).

    Reorthogonalization reads ``rows`` steps back at a time, so process memory stays
    O(rows·b·P) whatever the number of steps (file pages cached by the OS are not
    process memory). Each pass is block Gram-Schmidt over these row blocks.
    """

    def __init__(self, b: int, P: int, rows: int) -> None:
        self.fh = tempfile.TemporaryFile()
        self.b, self.P, self.rows = b, P, rows

    def store(self, idx: NDArray[np.intp], j: int, Q: Array) -> None:
        for i, q in zip(idx, Q, strict=True):
            self.fh.seek(8 * self.P * (j * self.b + int(i)))
            self.fh.write(np.ascontiguousarray(q).tobytes())
        end = 8 * self.P * self.b * (j + 1)  # rows of stopped runs read back as zeros
        if self.fh.seek(0, 2) < end:
            self.fh.truncate(end)

    def orthogonalize(self, idx: NDArray[np.intp], W: Array, upto: int) -> Array:
        self.fh.flush()
        for _ in range(2):
            for j0 in range(0, upto, self.rows):
                n = min(upto, j0 + self.rows) - j0
                self.fh.seek(8 * self.P * j0 * self.b)
                block = np.fromfile(self.fh, np.float64, n * self.b * self.P)
                basis = block.reshape(n, self.b, self.P)[:, idx].transpose(1, 0, 2)
                W -= np.matmul(basis.transpose(0, 2, 1), np.matmul(basis, W[:, :, None]))[:, :, 0]
        return W


class LanczosKernel:
    """b Lanczos processes run in lockstep from unit start rows ``V0`` (b, P).

    Run i builds A Q_i = Q_i T_i + r_i e_jᵀ with its own α, β and basis: the runs
    never mix, only the operator products are batched (one ``matmat`` over the active
    runs per step). After j steps, ``alpha[i, :j]`` is T_i's diagonal, ``beta[i, t]``
    = ‖r_{t+1}‖ its off-diagonal for t < j − 1, and ``beta[i, j − 1]`` the final
    residual norm (0 if the run stopped at an invariant subspace).

    With ``reorthogonalize`` every residual is orthogonalized against the run's whole
    basis twice (classical Gram-Schmidt, "twice is enough", Kahan/Parlett), so Ritz
    values do not reappear as spurious copies; the basis is kept in ``Q`` (b, cap, P)
    as rows, ``cap`` doubling up to ``max_capacity``. Without it only q_j and q_{j−1}
    are kept (memory O(b·P)). With ``spill_rows`` the bases go to a temporary file
    instead (:class:`_FileBasis`, ``Q`` is None), read back ``spill_rows`` steps at a
    time: memory O(spill_rows·b·P) for any number of steps.

    Use: :meth:`step` (one product, α_j and the residual), then :meth:`advance`
    (normalize, or stop runs whose ‖r‖ ≤ ``breakdown_rtol`` · max(|α|, β) seen so far,
    a lower bound on ‖T‖: an invariant subspace), optionally :meth:`restart`.
    """

    def __init__(
        self,
        op: Operator,
        V0: Array,
        capacity: int,
        reorthogonalize: bool,
        breakdown_rtol: float = BREAKDOWN_RTOL,
        max_capacity: int | None = None,
        spill_rows: int | None = None,
    ) -> None:
        b, P = V0.shape
        self.reorthogonalize = reorthogonalize
        self._file = _FileBasis(b, P, spill_rows) if reorthogonalize and spill_rows else None
        self.op, self.rtol, self.j = op, breakdown_rtol, 0
        self.max_capacity = max(capacity, max_capacity or capacity)
        self.alpha = np.zeros((b, capacity))
        self.beta = np.zeros((b, capacity))
        self.steps = np.zeros(b, dtype=np.int64)
        self.scale = np.zeros(b)  # running max of |α|, β per run: a lower bound on ‖T‖
        self.Q = np.empty((b, capacity, P)) if reorthogonalize and not self._file else None
        self.q = V0.copy()
        self.q_prev = np.zeros_like(self.q)
        self.active = np.arange(b)
        self._W = np.empty((0, P))

    def _sel(self) -> Any:
        return slice(None) if self.active.size == self.q.shape[0] else self.active

    def _grow(self) -> None:
        cap = self.alpha.shape[1]
        new = min(self.max_capacity, 2 * cap) - cap
        if new <= 0:
            raise RuntimeError(f"LanczosKernel: capacity {cap} exhausted")
        pad = np.zeros((self.alpha.shape[0], new))
        self.alpha, self.beta = np.hstack([self.alpha, pad]), np.hstack([self.beta, pad])
        if self.Q is not None:
            self.Q = np.concatenate([self.Q, np.empty((self.Q.shape[0], new, self.Q.shape[2]))], 1)

    def orthogonalize(self, sel: Any, W: Array, upto: int) -> Array:
        """W (na, P) minus its projection on each run's first ``upto`` basis rows, twice."""
        if self._file is not None:
            return self._file.orthogonalize(np.arange(self.q.shape[0])[sel], W, upto)
        basis = self.Q[sel, :upto]  # type: ignore[index]
        for _ in range(2):
            W -= np.matmul(basis.transpose(0, 2, 1), np.matmul(basis, W[:, :, None]))[:, :, 0]
        return W

    def step(self) -> None:
        """Apply A to the active runs' q_j; record α_j and β_j = ‖r_j‖ (r kept for advance)."""
        j, sel = self.j, self._sel()
        if j == self.alpha.shape[1]:
            self._grow()
        qa = self.q[sel]
        if self.Q is not None:
            self.Q[sel, j] = qa
        elif self._file is not None:
            self._file.store(np.arange(self.q.shape[0])[sel], j, qa)
        W = self.op.matmat(qa.T).T  # (na, P)
        a = np.einsum("ip,ip->i", qa, W)
        W -= a[:, None] * qa
        if j > 0:
            W -= self.beta[sel, j - 1][:, None] * self.q_prev[sel]
        if self.reorthogonalize:
            W = self.orthogonalize(sel, W, j + 1)
        bnorm = np.linalg.norm(W, axis=1)
        self.alpha[sel, j], self.beta[sel, j] = a, bnorm
        self.scale[sel] = np.maximum(self.scale[sel], np.maximum(np.abs(a), bnorm))
        self.steps[sel] = j + 1
        self.j, self._W = j + 1, W

    def invariant(self) -> NDArray[np.bool_]:
        """Per active run: did the last step reach an invariant subspace?"""
        sel = self._sel()
        return self.beta[sel, self.j - 1] <= self.rtol * self.scale[sel]

    def advance(self) -> int:
        """q_{j+1} = r_j/β_j; runs at an invariant subspace stop (β_j := 0). Returns #active."""
        j, sel, act = self.j, self._sel(), self.active
        broke = self.invariant()
        self.beta[act[broke], j - 1] = 0.0
        keep = ~broke
        self.q_prev[act[keep]] = self.q[sel][keep]
        self.q[act[keep]] = self._W[keep] / self.beta[act[keep], j - 1][:, None]
        self.active = act[keep]
        return int(self.active.size)

    def restart(self, i: int, w: Array) -> None:
        """Continue stopped run i with w orthogonalized against its basis (T gets a new block)."""
        w = self.orthogonalize([i], w[None, :].copy(), self.j)[0]
        self.q[i], self.q_prev[i] = w / np.linalg.norm(w), 0.0
        self.active = np.union1d(self.active, [i])

    def run(self, m: int) -> LanczosKernel:
        """Take up to m steps (fewer for runs that reach an invariant subspace)."""
        for j in range(m):
            self.step()
            if j == m - 1 or self.advance() == 0:
                break
        return self


def lanczos(
    A: Any,
    m: int,
    v0: ArrayLike | None = None,
    rng: Any = None,
    reorthogonalize: bool = True,
) -> LanczosResult:
    """Run m steps of the symmetric Lanczos process from a unit start vector.

    Builds A Q_m = Q_m T_m + β_m q_{m+1} e_mᵀ with T_m tridiagonal (diagonal α,
    off-diagonal β) and diagonalizes T_m = S diag(μ) Sᵀ with
    ``scipy.linalg.eigh_tridiagonal`` (never a general eigensolver). The Gauss
    quadrature rule of q₁ᵀ f(A) q₁ has nodes μ_k and weights τ_k = S[0, k]² — the
    squared FIRST entries of the eigenvectors — and is exact for polynomials of degree
    ≤ 2m − 1 (docs/theory.md (11.1)).

    With ``reorthogonalize`` every new vector is orthogonalized against the whole
    basis twice (classical Gram-Schmidt, "twice is enough"), so converged Ritz values
    do not reappear as spurious copies ("ghosts"). Without it only two vectors are
    kept (memory O(P)), ``Q`` is None and ghosts appear once a Ritz value converges:
    the weights stay usable for densities, multiplicities cannot be read from nodes.

    If β_j ≤ 1e-10·‖T_j‖ the Krylov space is invariant; the process stops there and
    the result has j < m steps: the nodes are then exact eigenvalues and each weight
    is the squared norm of q₁'s projection onto that eigenspace.

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    m : int
        Number of steps, ≥ 1; values above P are capped at P.
    v0 : array_like (P,), optional
        Start vector (normalized here). Default: standard normal from ``rng``, i.e.
        uniform on the sphere.
    rng : None, int or Generator
        Used only when ``v0`` is None.
    reorthogonalize : bool

    Returns
    -------
    LanczosResult
        ``alpha`` (m,), ``beta`` (m−1,), ``Q`` (P, m) or None, ``nodes`` (m,) ascending,
        ``weights`` (m,), ``residual_norm`` β_m.

    Examples
    --------
    >>> A = np.diag([1.0, 2.0, 3.0, 4.0])
    >>> res = lanczos(A, 2, v0=np.ones(4))
    >>> round(float(res.weights.sum()), 12), round(float(res.weights @ res.nodes**3), 12)
    (1.0, 25.0)
    """
    op = Operator("A", A)
    m = min(check_positive_int("m", m), op.P)
    if v0 is None:
        q0 = np.random.default_rng(rng).standard_normal(op.P)
        q0 /= np.linalg.norm(q0)
    else:
        q0 = unit_start_vector("v0", v0, op.P)
    run = LanczosKernel(op, q0[None, :], m, bool(reorthogonalize)).run(m)
    s = int(run.steps[0])
    alpha, beta = run.alpha[0, :s].copy(), run.beta[0, : s - 1].copy()
    nodes, S, _ = ritz(alpha, beta)
    Q = run.Q[0, :s].T.copy() if run.Q is not None else None
    return LanczosResult(alpha, beta, Q, nodes, S[0] ** 2, float(run.beta[0, s - 1]))
