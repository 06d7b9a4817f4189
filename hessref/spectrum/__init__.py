"""Spectra of symmetric matrices and operators: exact, extreme, traces and densities.

Generic linear algebra; nothing here knows about MLPs. Every function accepts a
dense symmetric float64 array, and the matrix-free ones also accept any
``scipy.sparse.linalg.LinearOperator`` of dtype float64 (e.g.
``hessref.operators.hessian_operator``) or a scipy sparse matrix.

==============================  ====================================================
``eigenvalues``                 all eigenvalues (descending) of a dense matrix, ``eigh``
``top_eigenpairs``              k largest/smallest *algebraic* eigenpairs: ARPACK
                                (``which='LA'``/``'SA'``, never ``'LM'``) or Lanczos
                                with full reorthogonalization; residuals ‖Av − λv‖
``lanczos``                     m Lanczos steps: tridiagonal T_m, Gauss quadrature
                                nodes μ_k and weights τ_k = (first entry of T's
                                eigenvector k)²
``hutchinson_trace``            tr A ≈ mean zᵀAz over Rademacher z (docs/theory.md §12)
``hutchpp_trace``               Hutch++ (Meyer, Musco, Musco, Woodruff 2021)
``slq_density``                 stochastic Lanczos quadrature density (docs/theory.md §13)
``exact_density``               the same smoothed density from exact eigenvalues
``count_outliers``              outliers by largest gap, largest ratio or threshold
==============================  ====================================================

Conventions: eigenvalues are returned in descending order except where stated
(Lanczos nodes are ascending, as quadrature nodes usually are). Every random
function takes ``rng`` (None, int or Generator; ``np.random.default_rng(rng)``);
the same seed gives bit-identical results. ``num_matvecs`` counts every column
the operator was applied to, residual checks included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from hessref.core.validation import as_float_array, check_choice, check_positive_int

Array = NDArray[np.float64]

__all__ = [
    "Eigenpairs",
    "LanczosResult",
    "OutlierCount",
    "SpectralDensity",
    "TraceEstimate",
    "count_outliers",
    "eigenvalues",
    "exact_density",
    "gaussian_kernel",
    "hutchinson_trace",
    "hutchpp_trace",
    "lanczos",
    "slq_density",
    "top_eigenpairs",
]

_SYMMETRY_RTOL = 1e-10  # max|A - Aᵀ| allowed, relative to max|A|
_BREAKDOWN_RTOL = 1e-10  # β_j below this times ‖T_j‖ means an invariant subspace was reached
_BLOCK_ELEMENTS = 2**22  # float64 entries per probe block (32 MiB) in matmat-based estimators
_SLQ_BASIS_BYTES = 256 * 2**20  # Lanczos bases held at once by slq_density (fixed: reproducible)


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Eigenpairs:
    """Extreme eigenpairs from :func:`top_eigenpairs`.

    Attributes
    ----------
    values : ndarray (k,)
        Descending for ``which="largest"``, ascending for ``which="smallest"``.
    vectors : ndarray (P, k)
        Unit eigenvectors as columns, ``vectors[:, i]`` belongs to ``values[i]``.
    residuals : ndarray (k,)
        ‖A v_i − λ_i v_i‖₂, computed with k extra products (not estimated).
    num_matvecs : int
        Operator applications (columns), the residual check included.
    method : str
        ``"arpack"`` or ``"lanczos"``.
    """

    values: Array
    vectors: Array
    residuals: Array
    num_matvecs: int
    method: str


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


@dataclass(frozen=True)
class TraceEstimate:
    """A stochastic trace estimate.

    Attributes
    ----------
    estimate : float
    stderr : float
        Standard error of the random part (sample std / √n); NaN with a single probe.
    num_matvecs : int
    """

    estimate: float
    stderr: float
    num_matvecs: int


@dataclass(frozen=True)
class SpectralDensity:
    """A Gaussian-smoothed spectral density φ_σ(t) = Σ_k w_k g_σ(t − μ_k) on a grid.

    Attributes
    ----------
    grid : ndarray (num_points,)
    density : ndarray (num_points,)
        φ_σ on the grid; integrates to ≈ 1 when the grid covers the spectrum ± a few σ.
    nodes : ndarray (n_probes, m)
        Quadrature nodes per probe, ascending (for :func:`exact_density`: one row
        holding the P eigenvalues). A probe whose Lanczos run stopped early at an
        invariant subspace after s < m steps is padded with nodes 0 and weights 0,
        which leaves every moment Σ w μ^j and the density unchanged.
    weights : ndarray (n_probes, m)
        Quadrature weights per probe; each row sums to 1.
    sigma : float
        Standard deviation of the Gaussian kernel.
    """

    grid: Array
    density: Array
    nodes: Array
    weights: Array
    sigma: float


@dataclass(frozen=True)
class OutlierCount:
    """Result of :func:`count_outliers`.

    Attributes
    ----------
    count : int
        Number of outliers (the largest eigenvalues ``λ_1 … λ_count``).
    rule : str
        ``"gap"``, ``"ratio"`` or ``"threshold"`` (``"log_gap"`` is reported as ``"ratio"``).
    threshold : float
        A cut separating outliers from the rest: the given or bulk-edge threshold, the
        midpoint λ_c/2 + λ_{c+1}/2 for ``"gap"``, the geometric mean √(λ_c λ_{c+1}) for
        ``"ratio"``.
    details : dict
        Rule-specific numbers (winning and runner-up gap or ratio, candidate count, ...).
    """

    count: int
    rule: str
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Input handling
# ----------------------------------------------------------------------------------------------
def _default_rng(rng: Any) -> np.random.Generator:
    return np.random.default_rng(rng)


def _check_symmetric(name: str, A: Any) -> None:
    """Raise unless max|A − Aᵀ| ≤ 1e-10 · max|A| (block by block: no P×P temporary)."""
    n = A.shape[0]
    scale = worst = 0.0
    for i in range(0, n, 512):
        rows = A[i : i + 512]
        scale = max(scale, float(np.abs(rows).max()))
        worst = max(worst, float(np.abs(rows - A[:, i : i + 512].T).max()))
    if worst > _SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name}: expected a symmetric matrix, but max|A - A.T| = {worst:.3g} exceeds "
            f"{_SYMMETRY_RTOL:g} * max|A| = {_SYMMETRY_RTOL * scale:.3g}; symmetrize with "
            "(A + A.T) / 2 if the asymmetry is rounding"
        )


def _as_dense_symmetric(name: str, A: Any) -> Array:
    if isinstance(A, spla.LinearOperator) or scipy.sparse.issparse(A):
        raise TypeError(
            f"{name}: expected a dense symmetric ndarray, got {type(A).__name__}; for a "
            "matrix-free operator use top_eigenpairs (extreme eigenvalues) or slq_density "
            "(the whole spectrum's density), or build the dense matrix first"
        )
    arr = as_float_array(name, A, ndim=2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square matrix, got shape {arr.shape}")
    _check_symmetric(name, arr)
    return arr


class _Operator:
    """A validated square operator that counts the columns it is applied to."""

    def __init__(self, name: str, A: Any) -> None:
        self.name = name
        self.num_matvecs = 0
        if isinstance(A, spla.LinearOperator):
            shape = A.shape
            dtype = np.dtype(A.dtype) if A.dtype is not None else None
            if dtype != np.float64:
                raise TypeError(
                    f"{name}: expected a LinearOperator of dtype float64, got dtype {dtype}; "
                    "construct it with dtype=np.float64 (SciPy otherwise infers the dtype "
                    "from a trial product)"
                )
            self._A: Any = A
        elif scipy.sparse.issparse(A):
            shape = A.shape
            if A.dtype.kind not in "biuf":
                raise TypeError(f"{name}: expected a real sparse matrix, got dtype {A.dtype}")
            A = scipy.sparse.csr_array(A, dtype=np.float64)
            if not np.all(np.isfinite(A.data)):
                raise ValueError(f"{name}: expected finite values, got NaN/inf entries")
            if shape[0] == shape[1]:
                asym = abs(A - A.T).max() if A.nnz else 0.0
                scale = abs(A).max() if A.nnz else 0.0
                if asym > _SYMMETRY_RTOL * scale:
                    raise ValueError(
                        f"{name}: expected a symmetric matrix, but max|A - A.T| = {asym:.3g}"
                    )
            self._A = A
        else:
            arr = as_float_array(name, A, ndim=2)
            shape = arr.shape
            if shape[0] == shape[1]:
                _check_symmetric(name, arr)
            self._A = arr
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty square (P, P) operator, got {shape}")
        self.P = int(shape[0])

    def matmat(self, X: Array) -> Array:
        """A @ X for X of shape (P, b), returned as a float64 (P, b) array."""
        self.num_matvecs += X.shape[1]
        Y = np.asarray(self._A @ X, dtype=np.float64).reshape(self.P, X.shape[1])
        if not np.all(np.isfinite(Y)):
            raise ValueError(f"{self.name}: the operator returned NaN/inf values")
        return Y

    def matvec(self, x: Array) -> Array:
        return self.matmat(x.reshape(-1, 1))[:, 0]


def _check_vector(name: str, v: ArrayLike, P: int) -> Array:
    arr = as_float_array(name, v, ndim=1)
    if arr.shape != (P,):
        raise ValueError(f"{name}: expected shape ({P},) to match A, got {arr.shape}")
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        raise ValueError(f"{name}: expected a nonzero start vector, got all zeros")
    return arr / norm


def _check_nonnegative_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
    return value


def _rademacher(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Independent ±1 entries with probability ½ each, as float64."""
    return rng.integers(0, 2, size=shape, dtype=np.int8).astype(np.float64) * 2.0 - 1.0


# ----------------------------------------------------------------------------------------------
# Exact and extreme eigenvalues
# ----------------------------------------------------------------------------------------------
def eigenvalues(
    A: ArrayLike, vectors: bool = False, blas_threads: int | None = 1
) -> Array | tuple[Array, Array]:
    """All eigenvalues of a dense symmetric matrix, in descending order.

    Uses ``scipy.linalg.eigh`` (LAPACK, symmetric). For a LinearOperator use
    :func:`top_eigenpairs` or :func:`slq_density` instead.

    Parameters
    ----------
    A : array_like (P, P)
        Symmetric up to rounding (max|A − Aᵀ| ≤ 1e-10·max|A|).
    vectors : bool
        Also return the unit eigenvectors.
    blas_threads : int or None
        BLAS threads for the LAPACK call; 1 by default because at these sizes a
        threaded ``eigh`` on a small shared CPU is several times slower (docs/theory.md §18).
        None keeps the library's setting.

    Returns
    -------
    values : ndarray (P,)
        λ_1 ≥ … ≥ λ_P.
    V : ndarray (P, P), only if ``vectors``
        ``V[:, i]`` is the eigenvector of ``values[i]``.

    Examples
    --------
    >>> eigenvalues([[2.0, 1.0], [1.0, 2.0]])
    array([3., 1.])
    """
    arr = _as_dense_symmetric("A", A)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        if vectors:
            values, V = scipy.linalg.eigh(arr, check_finite=False)
            return values[::-1].copy(), V[:, ::-1].copy()
        values = scipy.linalg.eigh(arr, eigvals_only=True, check_finite=False)
    return values[::-1].copy()


def top_eigenpairs(
    A: Any,
    k: int,
    which: str = "largest",
    method: str = "arpack",
    tol: float = 1e-10,
    rng: Any = None,
) -> Eigenpairs:
    """The k largest or smallest (algebraic, i.e. signed) eigenpairs of a symmetric operator.

    "Largest" means most positive: for an indefinite Hessian whose most negative
    eigenvalue has the biggest magnitude, this still returns λ_max (docs/theory.md §11;
    docs/theory.md §18). The start vector is standard normal from ``rng``.

    Methods
    -------
    ``"arpack"``
        ``scipy.sparse.linalg.eigsh`` with ``which='LA'`` or ``'SA'`` (never the
        default ``'LM'``, which ranks by magnitude). ARPACK's test ‖r_i‖ ≤ tol·|θ_i| is
        relative, so zero eigenvalues would never converge: it runs on A + cI with
        c = 2·‖A‖₂ estimated by 12 Lanczos steps (counted in ``num_matvecs``), which
        makes the test ‖r_i‖ ≲ tol·‖A‖ without changing the Krylov spaces.
    ``"lanczos"``
        Lanczos with full reorthogonalization (classical Gram-Schmidt applied twice),
        T_j diagonalized by ``scipy.linalg.eigh_tridiagonal``. It stops when every
        wanted Ritz pair has residual |β_j s_{j,i}| ≤ 3·tol·max(|α|, β) (≈ tol·‖A‖), or
        after P steps. After an invariant subspace (or a residual below tolerance) it
        restarts with a random vector orthogonal to the basis, until a new block no
        longer improves the k-th value.

    Repeated eigenvalues: a single Krylov space holds one copy of each eigenvalue, so
    both methods may return too few copies of an eigenvalue of multiplicity > 1 when
    they converge before the Krylov space is exhausted (ARPACK less often, thanks to
    its restarts). Exact zero eigenvalues of low-rank matrices (GGNs) are found, since
    their Krylov space becomes invariant. Check multiplicities with
    :func:`eigenvalues` on a dense matrix when they matter.

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    k : int
        1 ≤ k < P. For all P eigenvalues use :func:`eigenvalues` on a dense matrix.
    which : {"largest", "smallest"}
    method : {"arpack", "lanczos"}
    tol : float
        Relative convergence tolerance (≥ 0; ARPACK reads 0 as machine precision).
    rng : None, int or Generator

    Returns
    -------
    Eigenpairs
        Values descending for ``"largest"``, ascending for ``"smallest"``; residuals
        ‖Av − λv‖ computed with k extra products.

    Examples
    --------
    >>> A = np.diag([-5.0, 1.0, 2.0, 3.0])
    >>> top_eigenpairs(A, 2, rng=0).values.round(12)
    array([3., 2.])
    >>> top_eigenpairs(A, 1, which="smallest", method="lanczos", rng=0).values.round(12)
    array([-5.])
    """
    op = _Operator("A", A)
    P = op.P
    k = check_positive_int("k", k)
    if k >= P:
        raise ValueError(
            f"k: expected 1 <= k < P = {P} (ARPACK and Lanczos need k < P), got {k}; for all "
            "eigenvalues use hessref.spectrum.eigenvalues on the dense matrix"
        )
    which = check_choice("which", which, ("largest", "smallest"))
    method = check_choice("method", method, ("arpack", "lanczos"))
    tol = _check_nonnegative_float("tol", tol)
    gen = _default_rng(rng)
    v0 = gen.standard_normal(P)
    if method == "arpack":
        values, V = _arpack(op, k, which, tol, v0)
    else:
        values, V = _lanczos_extreme(op, k, which, tol, v0, gen)
    order = np.argsort(-values if which == "largest" else values, kind="stable")
    values, V = values[order], V[:, order]
    V = V / np.linalg.norm(V, axis=0)
    residuals = np.linalg.norm(op.matmat(V) - V * values, axis=0)
    return Eigenpairs(values, V, residuals, op.num_matvecs, method)


def _arpack(op: _Operator, k: int, which: str, tol: float, v0: Array) -> tuple[Array, Array]:
    """Run eigsh on A + cI, c = 2·(estimate of ‖A‖₂), then subtract c.

    ARPACK accepts a Ritz pair when ‖r‖ ≤ tol·max(eps^(2/3), |θ|), a RELATIVE test that
    zero eigenvalues (ubiquitous in GGNs and Hessians) can never pass. The shift leaves
    the Krylov spaces, hence the iterates, unchanged but makes every |θ + c| ≈ ‖A‖, so
    the test becomes the absolute ‖r‖ ≲ tol·‖A‖ of the Lanczos method.
    """
    shift = 2.0 * _norm_estimate(op, v0)
    if shift == 0.0:
        shift = 1.0  # A v0 = 0 on the whole Krylov space: any positive shift will do

    def shifted(X: Array) -> Array:
        return op.matmat(X.reshape(op.P, -1)) + shift * X.reshape(op.P, -1)

    wrapped = spla.LinearOperator(
        (op.P, op.P), matvec=lambda x: shifted(x)[:, 0], matmat=shifted, dtype=np.float64
    )
    try:
        values, V = spla.eigsh(
            wrapped, k=k, which="LA" if which == "largest" else "SA", v0=v0, tol=tol
        )
    except spla.ArpackNoConvergence as err:
        raise RuntimeError(
            f"ARPACK did not converge to tol={tol:g} ({len(err.eigenvalues)} of {k} "
            f"eigenpairs after {op.num_matvecs} products); try a larger tol or "
            "method='lanczos'"
        ) from err
    return values - shift, V


def _norm_estimate(op: _Operator, v0: Array, steps: int = 12) -> float:
    """Estimate ‖A‖₂ from a short Lanczos run: max over the two extreme Ritz values of
    |μ| + |β_m s_m| (each Ritz interval [μ − |β_m s_m|, μ + |β_m s_m|] holds an eigenvalue).
    """
    run = _lanczos_block(op, (v0 / np.linalg.norm(v0))[None, :], min(steps, op.P), True)
    s = int(run.steps[0])
    mu, S = _gauss_rule_vectors(run.alpha[0, :s], run.beta[0, : s - 1])
    r = run.beta[0, s - 1] if s == min(steps, op.P) else 0.0
    return float(max(abs(mu[0]) + abs(r * S[-1, 0]), abs(mu[-1]) + abs(r * S[-1, -1])))


def _lanczos_extreme(
    op: _Operator, k: int, which: str, tol: float, v0: Array, gen: np.random.Generator
) -> tuple[Array, Array]:
    """Full-reorthogonalization Lanczos until the k wanted Ritz pairs converge.

    An invariant subspace (β ≤ max(1e-10, 3·tol)·‖T‖) means the start vector saw one
    copy of each eigenvalue it touches, so the spectrum may hold further copies: the
    basis continues with a new random vector orthogonal to it (a new diagonal block of
    T). After such a restart, a converged answer is accepted at the end of a block only
    if that block did not improve the k-th wanted value found by the earlier blocks.
    """
    P = op.P
    sign = 1.0 if which == "largest" else -1.0  # compare "better" as sign * value larger
    Q = np.empty((min(P, max(2 * k + 20, 64)), P))  # basis as ROWS; grows by doubling
    alpha: list[float] = []
    beta: list[float] = []  # off-diagonal of T (0 where an invariant subspace was hit)
    earlier: list[float] = []  # Ritz values of completed (invariant) blocks
    block_start = 0
    norm_T = 0.0  # running max of |α|, β: a lower bound on ‖T‖ ≤ ‖A‖
    q = v0 / np.linalg.norm(v0)
    for j in range(P):
        if j == Q.shape[0]:
            Q = np.concatenate([Q, np.empty((min(P, 2 * j) - j, P))])
        Q[j] = q
        w = op.matvec(q)
        alpha.append(float(q @ w))
        w -= alpha[-1] * q
        if j > block_start:
            w -= beta[-1] * Q[j - 1]
        basis = Q[: j + 1]
        for _ in range(2):  # "twice is enough" (Kahan/Parlett) for orthogonality to rounding
            w -= basis.T @ (basis @ w)
        b = float(np.linalg.norm(w))
        size = j + 1
        norm_T = max(norm_T, abs(alpha[-1]), b)
        # β below the convergence tolerance: every Ritz pair has converged, the space is
        # invariant to working accuracy (e.g. a low-rank A), so treat it as a breakdown
        broke = b <= max(_BREAKDOWN_RTOL, 3 * tol) * norm_T
        converged = False
        if size >= k:
            mu, S = _ritz(alpha, beta, k, which)
            converged = size == P or bool(np.all(np.abs(b * S[-1]) <= tol * 3 * norm_T))
            if converged and (size == P or not broke):
                return mu, basis.T @ S
        if broke:
            block = scipy.linalg.eigvalsh_tridiagonal(
                np.asarray(alpha[block_start:]), np.asarray(beta[block_start : size - 1])
            )
            ranked = np.sort(sign * np.asarray(earlier))[::-1]
            kth = ranked[k - 1] if ranked.size >= k else -np.inf
            improved = float(np.max(sign * block)) > kth + max(tol, 1e-10) * norm_T
            if converged and block_start > 0 and not improved:
                return mu, basis.T @ S
            earlier.extend(block.tolist())
            block_start = size
            w = gen.standard_normal(P)  # continue the basis with a fresh random direction
            for _ in range(2):
                w -= basis.T @ (basis @ w)
            beta.append(0.0)
            q = w / np.linalg.norm(w)
        else:
            beta.append(b)
            q = w / b
    raise AssertionError("unreachable: the loop returns at size == P")  # pragma: no cover


def _ritz(alpha: list[float], beta: list[float], k: int, which: str) -> tuple[Array, Array]:
    """The k largest or smallest eigenpairs of the tridiagonal T (values ascending)."""
    n = len(alpha)
    lo, hi = (n - k, n - 1) if which == "largest" else (0, k - 1)
    return scipy.linalg.eigh_tridiagonal(
        np.asarray(alpha), np.asarray(beta[: n - 1]), select="i", select_range=(lo, hi)
    )


# ----------------------------------------------------------------------------------------------
# Lanczos quadrature
# ----------------------------------------------------------------------------------------------
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
    ``scipy.linalg.eigh_tridiagonal`` (never a general eigensolver, docs/theory.md §18).
    The Gauss quadrature rule of q₁ᵀ f(A) q₁ has nodes μ_k and weights
    τ_k = S[0, k]² — the squared FIRST entries of the eigenvectors — and is
    exact for polynomials of degree ≤ 2m − 1 (docs/theory.md (11.1)).

    With ``reorthogonalize`` every new vector is orthogonalized against the whole
    basis twice (classical Gram-Schmidt, "twice is enough"), so converged Ritz values
    do not reappear as spurious copies ("ghosts"). Without it only three vectors are
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
    op = _Operator("A", A)
    m = min(check_positive_int("m", m), op.P)
    if v0 is None:
        q0 = _default_rng(rng).standard_normal(op.P)
        q0 /= np.linalg.norm(q0)
    else:
        q0 = _check_vector("v0", v0, op.P)
    run = _lanczos_block(op, q0[None, :], m, bool(reorthogonalize))
    s = int(run.steps[0])
    alpha = run.alpha[0, :s].copy()
    beta = run.beta[0, : s - 1].copy()
    nodes, weights = _gauss_rule(alpha, beta)
    Q = run.Q[0, :s].T.copy() if run.Q is not None else None
    return LanczosResult(alpha, beta, Q, nodes, weights, float(run.beta[0, s - 1]))


@dataclass
class _BlockRun:
    alpha: Array  # (b, m)
    beta: Array  # (b, m); beta[i, j] = ‖r_{j+1}‖, the last one is the final residual norm
    steps: NDArray[np.int64]  # (b,) steps actually taken (< m after an invariant subspace)
    Q: Array | None  # (b, m, P) bases as rows, or None


def _lanczos_block(op: _Operator, V0: Array, m: int, reorthogonalize: bool) -> _BlockRun:
    """Run b independent Lanczos processes in lockstep from unit start rows V0 (b, P).

    The runs never mix: each has its own α, β and basis; only the operator products are
    batched (one matmat per step). A run that reaches an invariant subspace drops out of
    later products.
    """
    b, P = V0.shape
    alpha = np.zeros((b, m))
    beta = np.zeros((b, m))
    steps = np.full(b, m, dtype=np.int64)
    scale = np.zeros(b)  # running max of |α|, β: a lower bound on ‖T_j‖
    Q = np.empty((b, m, P)) if reorthogonalize else None
    q = V0.copy()
    q_prev = np.zeros_like(q)
    active = np.arange(b)
    for j in range(m):
        sel: Any = slice(None) if active.size == b else active
        qa = q[sel]
        if Q is not None:
            Q[sel, j] = qa
        W = op.matmat(qa.T).T  # (na, P)
        a = np.einsum("ip,ip->i", qa, W)
        W -= a[:, None] * qa
        if j > 0:
            W -= beta[sel, j - 1][:, None] * q_prev[sel]
        if Q is not None:
            basis = Q[sel, : j + 1]  # (na, j+1, P)
            for _ in range(2):
                coef = np.matmul(basis, W[:, :, None])
                W -= np.matmul(basis.transpose(0, 2, 1), coef)[:, :, 0]
        bnorm = np.linalg.norm(W, axis=1)
        alpha[sel, j] = a
        beta[sel, j] = bnorm
        scale[sel] = np.maximum(scale[sel], np.maximum(np.abs(a), bnorm))
        if j == m - 1:
            break
        broke = bnorm <= _BREAKDOWN_RTOL * scale[sel]
        steps[active[broke]] = j + 1
        beta[active[broke], j] = 0.0
        keep = ~broke
        q_prev[active[keep]] = qa[keep]
        q[active[keep]] = W[keep] / bnorm[keep, None]
        active = active[keep]
        if active.size == 0:
            break
    return _BlockRun(alpha, beta, steps, Q)


def _gauss_rule_vectors(alpha: Array, beta: Array) -> tuple[Array, Array]:
    """Eigenvalues (ascending) and unit eigenvectors S of the tridiagonal (α, β)."""
    return scipy.linalg.eigh_tridiagonal(alpha, beta, check_finite=False)


def _gauss_rule(alpha: Array, beta: Array) -> tuple[Array, Array]:
    """Nodes (ascending) and weights τ_k = S[0, k]² of the tridiagonal (α, β)."""
    nodes, S = _gauss_rule_vectors(alpha, beta)
    return nodes, S[0] ** 2


# ----------------------------------------------------------------------------------------------
# Traces
# ----------------------------------------------------------------------------------------------
def _quadratic_forms(op: _Operator, rng: np.random.Generator, n: int, project=None) -> Array:
    """zᵀAz for n Rademacher probes (optionally projected z ← project(z)), in column blocks."""
    width = max(1, _BLOCK_ELEMENTS // op.P)
    out = np.empty(n)
    for start in range(0, n, width):
        Z = _rademacher(rng, (op.P, min(width, n - start)))
        if project is not None:
            Z = project(Z)
        out[start : start + Z.shape[1]] = np.einsum("ij,ij->j", Z, op.matmat(Z))
    return out


def _mean_and_stderr(samples: Array) -> tuple[float, float]:
    n = samples.size
    stderr = float(samples.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return float(samples.mean()), stderr


def hutchinson_trace(A: Any, num_probes: int, rng: Any = None) -> TraceEstimate:
    """Hutchinson's estimate tr A ≈ (1/n) Σ_i z_iᵀ A z_i with Rademacher z_i.

    Unbiased; for symmetric A one probe has variance 2(‖A‖_F² − Σ_i A_ii²) (docs/theory.md §12).
    The probes are applied as one block ``A @ Z`` with Z (P, num_probes) (split
    into column blocks of at most 2²² entries for very large P·n).

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    num_probes : int
        n ≥ 1.
    rng : None, int or Generator

    Returns
    -------
    TraceEstimate
        ``estimate``, ``stderr`` = sample std (ddof=1) / √n (NaN if n = 1), ``num_matvecs`` = n.

    Examples
    --------
    >>> hutchinson_trace(np.diag([1.0, 2.0, 3.0]), 4, rng=0).estimate  # diagonal: exact
    6.0
    """
    op = _Operator("A", A)
    n = check_positive_int("num_probes", num_probes)
    estimate, stderr = _mean_and_stderr(_quadratic_forms(op, _default_rng(rng), n))
    return TraceEstimate(estimate, stderr, op.num_matvecs)


def hutchpp_trace(A: Any, num_matvecs: int, rng: Any = None) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco, Woodruff 2021, arXiv:2010.09649) with a matvec budget.

    With s = ⌊num_matvecs/3⌋ and n = num_matvecs − 2s: draw Rademacher S (P, s),
    Q = orth(A S) (Householder QR), then

        tr A ≈ tr(QᵀAQ) + (1/n) Σ_i g_iᵀ (I − QQᵀ) A (I − QQᵀ) g_i

    with n Rademacher probes g_i. The first term captures the dominant (top-s)
    eigenspace exactly; Hutchinson only sees the deflated rest, so error falls like
    1/num_matvecs instead of 1/√num_matvecs for matrices with decaying spectra.
    Unbiased for every A.

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    num_matvecs : int
        Budget ≥ 3 (s products for A S, s for A Q, n for the residual probes).
    rng : None, int or Generator

    Returns
    -------
    TraceEstimate
        ``stderr`` is the standard error of the residual Hutchinson part given the
        sketch (sample std / √n; NaN if n = 1).

    Examples
    --------
    >>> A = np.diag([10.0, 5.0, 0.0, 0.0])
    >>> round(hutchpp_trace(A, 6, rng=0).estimate, 12)  # rank 2 <= s: sketch catches it all
    15.0
    """
    op = _Operator("A", A)
    budget = check_positive_int("num_matvecs", num_matvecs, minimum=3)
    gen = _default_rng(rng)
    s = budget // 3
    n = budget - 2 * s
    S = _rademacher(gen, (op.P, s))
    Q, _ = np.linalg.qr(op.matmat(S))  # reduced: (P, min(P, s)), orthonormal even if rank-deficient
    low_rank = float(np.einsum("ij,ij->", Q, op.matmat(Q)))

    def deflate(Z: Array) -> Array:
        return Z - Q @ (Q.T @ Z)

    residual, stderr = _mean_and_stderr(_quadratic_forms(op, gen, n, project=deflate))
    return TraceEstimate(low_rank + residual, stderr, op.num_matvecs)


# ----------------------------------------------------------------------------------------------
# Spectral densities
# ----------------------------------------------------------------------------------------------
def gaussian_kernel(t: ArrayLike, sigma: float) -> Array:
    """g_σ(t) = exp(−t²/(2σ²)) / (σ√(2π)): a normal density with standard deviation σ.

    Examples
    --------
    >>> float(gaussian_kernel(0.0, 1.0))  # 1/sqrt(2 pi)
    0.3989422804014327
    """
    t = np.asarray(t, dtype=np.float64)
    return np.exp(-0.5 * (t / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def _smooth(grid: Array, nodes: Array, weights: Array, sigma: float) -> Array:
    """Σ_k w_k g_σ(t − μ_k) on the grid, in chunks of nodes (memory O(grid · chunk))."""
    nodes, weights = nodes.ravel(), weights.ravel()
    keep = weights != 0.0
    nodes, weights = nodes[keep], weights[keep]
    out = np.zeros_like(grid)
    chunk = max(1, _BLOCK_ELEMENTS // max(1, grid.size))
    for start in range(0, nodes.size, chunk):
        mu = nodes[start : start + chunk]
        out += gaussian_kernel(grid[:, None] - mu[None, :], sigma) @ weights[start : start + chunk]
    return out


def _check_grid(grid: ArrayLike) -> Array:
    arr = as_float_array("grid", grid, ndim=1)
    if arr.size < 2 or np.any(np.diff(arr) <= 0):
        raise ValueError(
            f"grid: expected a strictly increasing 1-D array of >= 2 points, got {arr.size} "
            "points" + ("" if arr.size < 2 else " that are not strictly increasing")
        )
    return arr


def _check_sigma(sigma: Any) -> float:
    value = _check_nonnegative_float("sigma", sigma)
    if value == 0.0:
        raise ValueError("sigma: expected a standard deviation > 0, got 0")
    return value


def slq_density(
    A: Any,
    m: int = 80,
    num_probes: int = 10,
    sigma: float | None = None,
    grid: ArrayLike | None = None,
    num_points: int = 1000,
    rng: Any = None,
    reorthogonalize: bool = True,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature estimate of the smoothed spectral density.

    φ_σ(t) = (1/P) Σ_i g_σ(t − λ_i) ≈ (1/n) Σ_probes Σ_k τ_k g_σ(t − μ_k) (docs/theory.md §13):
    each probe is v = z/‖z‖ with z Rademacher (E[vᵀf(A)v] = tr f(A)/P), and m
    :func:`lanczos` steps give its quadrature nodes μ_k and weights τ_k. The probes run
    in lockstep, so each step applies A to all of them at once (one matmat).

    Kernel: g_σ(t) = exp(−t²/(2σ²)) / (σ√(2π)), so ``sigma`` is the STANDARD DEVIATION.
    Ghorbani et al. (2019) quote the VARIANCE s² = 1e-5·max(1, λmax − λmin); their
    setting is ``sigma = sqrt(1e-5 * max(1, lmax - lmin))``. Papyan's σ is set in
    coordinates mapped to [−1, 1]; multiply it by (λmax − λmin)/2 to use it here.

    Defaults (documented rule): the spectral range is estimated from the Ritz values as
    [min_probes (μ_1 − |β_m S_{m,1}|), max_probes (μ_m + |β_m S_{m,m}|)] (Papyan's range
    estimate, docs/theory.md §13). Then σ = 0.01·(λmax − λmin) (or 0.01·max(1, |λ|) if the
    range is a point) and the grid is ``num_points`` equispaced points on
    [λmin − 5σ, λmax + 5σ], so the density integrates to 1 up to ~1e-6 (no
    renormalization is applied: a grid that misses part of the spectrum shows as lost mass).

    Memory: with reorthogonalization the bases take 8·P·m bytes per probe; probes are
    processed in groups of at most 256 MiB of basis. ``reorthogonalize=False`` needs
    O(P) per probe (ghost nodes then appear, the density stays usable).

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    m : int
        Lanczos steps per probe (≥ 1; capped at P). Ghorbani et al. use 80.
    num_probes : int
        ≥ 1.
    sigma : float, optional
        Kernel standard deviation > 0.
    grid : array_like, optional
        Strictly increasing evaluation points; overrides ``num_points``.
    num_points : int
        Grid size when ``grid`` is None (≥ 2).
    rng : None, int or Generator
    reorthogonalize : bool

    Returns
    -------
    SpectralDensity
        ``nodes`` and ``weights`` of shape (num_probes, min(m, P)).

    Examples
    --------
    >>> A = np.diag(np.linspace(-1.0, 1.0, 50))
    >>> d = slq_density(A, m=20, num_probes=4, rng=0)
    >>> d.weights.shape, bool(np.allclose(d.weights.sum(axis=1), 1.0))
    ((4, 20), True)
    >>> round(float(np.trapezoid(d.density, d.grid)), 6)
    1.0
    """
    op = _Operator("A", A)
    P = op.P
    m = min(check_positive_int("m", m), P)
    n = check_positive_int("num_probes", num_probes)
    if sigma is not None:
        sigma = _check_sigma(sigma)
    if grid is not None:
        grid = _check_grid(grid)
    else:
        num_points = check_positive_int("num_points", num_points, minimum=2)
    gen = _default_rng(rng)
    V0 = _rademacher(gen, (n, P)) / np.sqrt(P)

    nodes = np.zeros((n, m))
    weights = np.zeros((n, m))
    lo, hi = np.inf, -np.inf
    group = max(1, _SLQ_BASIS_BYTES // (8 * m * P)) if reorthogonalize else n
    for g0 in range(0, n, group):
        run = _lanczos_block(op, V0[g0 : g0 + group], m, bool(reorthogonalize))
        for i, s in enumerate(run.steps):
            mu, S = _gauss_rule_vectors(run.alpha[i, :s], run.beta[i, : s - 1])
            nodes[g0 + i, :s] = mu
            weights[g0 + i, :s] = S[0] ** 2
            r = run.beta[i, s - 1] if s == m else 0.0  # final residual norm
            lo = min(lo, mu[0] - abs(r * S[-1, 0]))
            hi = max(hi, mu[-1] + abs(r * S[-1, -1]))
    if sigma is None:
        width = hi - lo
        sigma = 0.01 * (width if width > 0 else max(1.0, abs(hi)))
    if grid is None:
        grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points)
    density = _smooth(grid, nodes, weights, sigma) / n
    return SpectralDensity(grid, density, nodes, weights, float(sigma))


def exact_density(
    eigenvalues_or_matrix: ArrayLike, grid: ArrayLike, sigma: float
) -> SpectralDensity:
    """The smoothed density φ_σ(t) = (1/P) Σ_i g_σ(t − λ_i) from exact eigenvalues.

    Same kernel as :func:`slq_density` (``sigma`` is the standard deviation), so the
    two are directly comparable on the same grid.

    Parameters
    ----------
    eigenvalues_or_matrix : array_like (P,) or (P, P)
        Eigenvalues, or a dense symmetric matrix (diagonalized with :func:`eigenvalues`).
    grid : array_like (num_points,)
        Strictly increasing.
    sigma : float
        Kernel standard deviation > 0.

    Returns
    -------
    SpectralDensity
        ``nodes`` (1, P) the eigenvalues ascending, ``weights`` (1, P) all 1/P.

    Examples
    --------
    >>> d = exact_density([0.0, 1.0], grid=[0.0, 0.5, 1.0], sigma=1.0)
    >>> d.density.round(4)
    array([0.3205, 0.3521, 0.3205])
    """
    if isinstance(eigenvalues_or_matrix, spla.LinearOperator):
        raise TypeError(
            "eigenvalues_or_matrix: expected eigenvalues or a dense matrix, got a "
            "LinearOperator; use slq_density for matrix-free operators"
        )
    arr = np.asarray(eigenvalues_or_matrix)
    if arr.ndim == 2:
        lam = eigenvalues(arr)[::-1]  # type: ignore[index]
    else:
        lam = np.sort(as_float_array("eigenvalues_or_matrix", arr, ndim=1))
        if lam.size == 0:
            raise ValueError("eigenvalues_or_matrix: expected at least one eigenvalue")
    grid = _check_grid(grid)
    sigma = _check_sigma(sigma)
    w = np.full(lam.size, 1.0 / lam.size)
    return SpectralDensity(
        grid, _smooth(grid, lam, w, sigma), lam[None, :].copy(), w[None, :], sigma
    )


# ----------------------------------------------------------------------------------------------
# Outliers
# ----------------------------------------------------------------------------------------------
_RULES = ("gap", "ratio", "threshold", "log_gap")


def count_outliers(
    eigenvalues: ArrayLike,
    rule: str = "ratio",
    top: int | None = None,
    threshold: float | None = None,
) -> OutlierCount:
    """Count outlier eigenvalues above the bulk.

    Rules of docs/theory.md §14 (Sagun et al. 2017, arXiv:1706.04454).

    The eigenvalues are sorted descending, λ_1 ≥ λ_2 ≥ …; the candidates are the
    first ``top`` of them (all if None).

    Rules
    -----
    ``"gap"``
        count = argmax_i (λ_i − λ_{i+1}) over consecutive candidates (largest absolute
        gap; candidates of any sign).
    ``"ratio"`` (alias ``"log_gap"``)
        count = argmax_i λ_i / λ_{i+1} over the POSITIVE candidates. This is the same
        as the largest gap of log λ (log is monotone), so the two names are one rule.
        It is scale-free, unlike ``"gap"``, which tends to split off just λ_1.
    ``"threshold"``
        count = #{λ_i > threshold} among the candidates (Sagun et al.'s elbow, e.g.
        0.002–0.015 there). If ``threshold`` is None, a bulk edge is estimated on a log
        scale: with q1, q3 the quartiles of log λ over the positive candidates, the
        threshold is exp(q3 + 3·(q3 − q1)) (Tukey's "far out" fence), which needs ≥ 4
        positive candidates. Pass ``top`` so the bulk dominates the candidates.

    ``"gap"`` and ``"ratio"`` always return a count ≥ 1: compare ``details["score"]``
    with ``details["runner_up_score"]`` to judge whether the split is real (a flat
    spectrum gives ratio 1). Outlier counts are empirical and rule-dependent
    (docs/theory.md §14): report the rule.

    Parameters
    ----------
    eigenvalues : array_like (P,)
        Any order; at least 2.
    rule : {"ratio", "log_gap", "gap", "threshold"}
    top : int, optional
        Number of largest eigenvalues to consider (≥ 2).
    threshold : float, optional
        Absolute threshold for ``rule="threshold"``.

    Returns
    -------
    OutlierCount
        ``count``, ``rule``, the separating ``threshold`` and ``details``.

    Examples
    --------
    >>> lam = [100.0, 50.0, 10.0, 1.0, 0.9, 0.8]
    >>> count_outliers(lam, rule="gap").count, count_outliers(lam, rule="ratio").count
    (1, 3)
    >>> count_outliers(lam, rule="threshold", threshold=5.0).count
    3
    """
    lam = -np.sort(-as_float_array("eigenvalues", eigenvalues, ndim=1))
    if lam.size < 2:
        raise ValueError(f"eigenvalues: expected at least 2 values, got {lam.size}")
    rule = check_choice("rule", rule, _RULES)
    if rule == "log_gap":
        rule = "ratio"
    if top is not None:
        top = check_positive_int("top", top, minimum=2)
        lam = lam[:top]
    if threshold is not None and rule != "threshold":
        raise ValueError(f"threshold: only used with rule='threshold', got rule={rule!r}")
    if rule == "threshold":
        return _count_threshold(lam, threshold)
    if rule == "ratio":
        lam = lam[lam > 0]
        if lam.size < 2:
            raise ValueError(
                "eigenvalues: rule='ratio' needs at least 2 positive eigenvalues among the "
                f"candidates, got {lam.size}; use rule='gap' or 'threshold'"
            )
        scores = lam[:-1] / lam[1:]
    else:
        scores = lam[:-1] - lam[1:]
    order = np.argsort(-scores, kind="stable")
    i = int(order[0])
    details: dict[str, Any] = {
        "score": float(scores[i]),
        "runner_up_score": float(scores[order[1]]) if scores.size > 1 else None,
        "runner_up_count": int(order[1]) + 1 if scores.size > 1 else None,
        "num_candidates": int(lam.size),
    }
    cut = np.sqrt(lam[i] * lam[i + 1]) if rule == "ratio" else 0.5 * (lam[i] + lam[i + 1])
    return OutlierCount(i + 1, rule, float(cut), details)


def _count_threshold(lam: Array, threshold: float | None) -> OutlierCount:
    details: dict[str, Any] = {"num_candidates": int(lam.size)}
    if threshold is None:
        positive = lam[lam > 0]
        if positive.size < 4:
            raise ValueError(
                "threshold: the default bulk-edge rule needs at least 4 positive eigenvalues "
                f"among the candidates, got {positive.size}; pass threshold explicitly"
            )
        q1, q3 = np.percentile(np.log(positive), [25.0, 75.0])
        threshold = float(np.exp(q3 + 3.0 * (q3 - q1)))
        details.update(
            source="log-scale Tukey fence exp(q3 + 3 IQR)", log_q1=float(q1), log_q3=float(q3)
        )
    else:
        if isinstance(threshold, bool) or not np.isfinite(threshold):
            raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
        threshold = float(threshold)
        details.update(source="given")
    return OutlierCount(int(np.sum(lam > threshold)), "threshold", threshold, details)
