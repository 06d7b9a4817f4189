"""Extreme (largest or smallest algebraic) eigenpairs of a symmetric operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from hessref.core.validation import as_float_array, check_choice, check_positive_int, check_real
from hessref.spectrum._operator import Operator, unit_start_vector
from hessref.spectrum.block import block_lanczos_extreme
from hessref.spectrum.lanczos_kernel import BREAKDOWN_RTOL, LanczosKernel, ritz

Array = NDArray[np.float64]

_METHODS = ("arpack", "lanczos", "block")
_RESIDUALS = ("exact", "ritz")


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
        ``residual_kind == "exact"``: ‖A v_i − λ_i v_i‖₂, computed with k extra products.
        ``"ritz"``: the solver's own estimate, no extra product (see :func:`top_eigenpairs`).
    num_matvecs : int
        Operator applications (columns), the residual check included.
    method : str
        One of ``"arpack"``, ``"lanczos"``, ``"block"``.
    residual_kind : str
        ``"exact"`` or ``"ritz"``: how ``residuals`` were obtained.
    """

    values: Array
    vectors: Array
    residuals: Array
    num_matvecs: int
    method: str
    residual_kind: str = "exact"


def top_eigenpairs(
    A: Any,
    k: int,
    which: str = "largest",
    method: str = "arpack",
    tol: float = 1e-10,
    rng: Any = None,
    block_size: int | None = None,
    residuals: str = "exact",
    *,
    v0: ArrayLike | None = None,
    k_smallest: int = 1,
) -> Any:
    """The k largest or smallest (algebraic, i.e. signed) eigenpairs of a symmetric operator.

    "Largest" means most positive: for an indefinite Hessian whose most negative
    eigenvalue has the biggest magnitude, this still returns λ_max, not the largest
    magnitude (docs/theory.md §18). The start
    vector is ``v0`` if given, else standard normal from ``rng``.

    ``which="both"`` (methods ``"lanczos"`` and ``"block"``) returns the k largest AND
    the ``k_smallest`` smallest pairs from ONE Krylov space: the run continues until
    every wanted pair at both ends passes the residual test below, so each end is as
    accurate as from its own run, for the products of the slower end only.

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
    ``"block"``
        Block Lanczos with full reorthogonalization on (P, b) blocks, b = ``block_size``
        (default k): one ``matmat`` of b columns per step, which a data-batched Hessian
        operator applies several times faster per column than b single products; it
        stops when every wanted Ritz pair has ‖B_j s_i‖ ≤ 3·tol·max|θ| (module
        :mod:`hessref.spectrum.block`). Finds multiplicities up to b.

    Repeated eigenvalues: a single Krylov space holds one copy of each eigenvalue, so
    both methods may return too few copies of an eigenvalue of multiplicity > 1 when
    they converge before the Krylov space is exhausted (ARPACK less often, thanks to
    its restarts). Exact zero eigenvalues of low-rank matrices (GGNs) are found, since
    their Krylov space becomes invariant. Check multiplicities with
    :func:`~hessref.spectrum.eigenvalues` on a dense matrix when they matter.

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    k : int
        1 ≤ k < P. For all P eigenvalues use ``eigenvalues`` on a dense matrix.
    which : {"largest", "smallest", "both"}
    method : {"arpack", "lanczos", "block"}
    tol : float
        Relative convergence tolerance (≥ 0; ARPACK reads 0 as machine precision).
    rng : None, int or Generator
    block_size : int, optional
        Block size b ≥ 1 of ``method="block"`` (default k); ignored by the others.
    residuals : {"exact", "ritz"}
        ``"exact"`` (default): ‖A v_i − λ_i v_i‖ from k extra products (one (P, k) block).
        ``"ritz"``: no extra product; the solver's estimate instead. Lanczos and block
        Lanczos give the Ritz residuals |β_j s_{j,i}| and ‖B_j S_i‖, equal to the exact
        residuals in exact arithmetic (with full reorthogonalization they agree to
        O(ε‖A‖)). ARPACK's Ritz estimates are not exposed by SciPy, so ``"arpack"`` gives
        the bound its convergence test certified for every returned pair,
        tol′·max(ε^(2/3), |λ_i + c|) with tol′ = tol (machine ε for tol = 0) and c the
        shift: an upper bound of ARPACK's Ritz estimate, not an estimate; computed
        residuals also carry rounding of order ε‖A‖, which exceeds it at tol ≲ ε.

    Returns
    -------
    Eigenpairs
        Values descending for ``"largest"``, ascending for ``"smallest"``; residuals
        as chosen by ``residuals``. For ``which="both"`` a pair ``(largest, smallest)``
        of Eigenpairs (k descending, ``k_smallest`` ascending) whose ``num_matvecs`` both
        give the products of the one shared run.

    Examples
    --------
    >>> A = np.diag([-5.0, 1.0, 2.0, 3.0])
    >>> top_eigenpairs(A, 2, rng=0).values.round(12)
    array([3., 2.])
    >>> top_eigenpairs(A, 1, which="smallest", method="lanczos", rng=0).values.round(12)
    array([-5.])
    >>> hi, lo = top_eigenpairs(A, 2, which="both", method="lanczos", rng=0)
    >>> hi.values.round(12), lo.values.round(12)
    (array([3., 2.]), array([-5.]))
    """
    op = Operator("A", A)
    which = check_choice("which", which, ("largest", "smallest", "both"))
    method = check_choice("method", method, _METHODS)
    counts = _wanted_counts(k, which, k_smallest, method, op.P)
    tol = check_real("tol", tol, minimum=0.0)
    residuals = check_choice("residuals", residuals, _RESIDUALS)
    gen = np.random.default_rng(rng)
    if method == "block":
        b = sum(counts) if block_size is None else check_positive_int("block_size", block_size)
        Q0 = None if v0 is None else _start_block(v0, op.P, min(b, op.P), gen)
        values, V, ritz_res = block_lanczos_extreme(op, counts, tol, min(b, op.P), gen, Q0)
    else:
        start = gen.standard_normal(op.P) if v0 is None else _start_vector(v0, op.P)
        if method == "arpack":
            values, V, ritz_res = _arpack(op, k, which, tol, start)
        else:
            values, V, ritz_res = _lanczos_extreme(op, counts, tol, start, gen)
    V = V / np.linalg.norm(V, axis=0)
    if residuals == "exact":  # one (P, n) block for every wanted pair
        found = np.linalg.norm(op.matmat(V) - V * values, axis=0)
    else:
        found = ritz_res
    n_top, n_low = counts
    ends = {"largest": slice(-n_top, None), "smallest": slice(0, n_low)}
    pairs = {
        end: _ordered(values[part], V[:, part], found[part], end, op, method, residuals)
        for end, part in ends.items()
        if end == which or which == "both"
    }
    return (pairs["largest"], pairs["smallest"]) if which == "both" else pairs[which]


def _wanted_counts(k: Any, which: str, k_smallest: Any, method: str, P: int) -> tuple[int, int]:
    """(number of largest, number of smallest) wanted pairs, checked against P and method."""
    k = check_positive_int("k", k)
    if which == "both":
        m = check_positive_int("k_smallest", k_smallest)
        if method == "arpack":
            raise ValueError(
                "which: 'both' needs method='lanczos' or 'block' (ARPACK's 'BE' splits k "
                "between the ends); use one of those, or two calls with method='arpack'"
            )
        if k + m >= P:
            raise ValueError(
                f"k, k_smallest: expected k + k_smallest < P = {P}, got {k} + {m}; for all "
                "eigenvalues use hessref.spectrum.eigenvalues on the dense matrix"
            )
        return k, m
    if k >= P:
        raise ValueError(
            f"k: expected 1 <= k < P = {P} (ARPACK and Lanczos need k < P), got {k}; for all "
            "eigenvalues use hessref.spectrum.eigenvalues on the dense matrix"
        )
    return (k, 0) if which == "largest" else (0, k)


def _ordered(
    values: Array, V: Array, found: Array, end: str, op: Operator, method: str, kind: str
) -> Eigenpairs:
    """Eigenpairs of one end: descending for "largest", ascending for "smallest"."""
    order = np.argsort(-values if end == "largest" else values, kind="stable")
    return Eigenpairs(values[order], V[:, order], found[order], op.num_matvecs, method, kind)


def _start_vector(v0: ArrayLike, P: int) -> Array:
    """v0 checked (shape (P,), finite, nonzero) and returned as given: the solvers
    normalize it, so a v0 equal to the rng's draw gives the same bits.
    """
    unit_start_vector("v0", v0, P)
    return as_float_array("v0", v0, ndim=1)


def _start_block(v0: ArrayLike, P: int, b: int, gen: np.random.Generator) -> Array:
    """Orthonormal (P, b) start block: the columns of v0 (P,) or (P, c ≤ b), then random."""
    arr = as_float_array("v0", v0, ndim=(1, 2))
    arr = arr[:, None] if arr.ndim == 1 else arr
    if arr.shape[0] != P or arr.shape[1] > b:
        raise ValueError(
            f"v0: expected shape ({P},) or ({P}, c) with 1 <= c <= block size {b} to match "
            f"A, got {np.shape(v0)}"
        )
    Q0, Rv = np.linalg.qr(np.hstack([arr, gen.standard_normal((P, b - arr.shape[1]))]))
    d = np.abs(np.diag(Rv))
    if d.min() <= 1e-10 * d.max():
        raise ValueError(
            "v0: expected linearly independent nonzero columns, got a rank-deficient block"
        )
    return Q0


def _arpack(op: Operator, k: int, which: str, tol: float, v0: Array) -> tuple[Array, Array, Array]:
    """Run eigsh on A + cI, c = 2·(estimate of ‖A‖₂), then subtract c.

    ARPACK accepts a Ritz pair when ‖r‖ ≤ tol·max(eps^(2/3), |θ|), a RELATIVE test that
    zero eigenvalues (ubiquitous in GGNs and Hessians) can never pass. The shift leaves
    the Krylov spaces, hence the iterates, unchanged but makes every |θ + c| ≈ ‖A‖, so
    the test becomes the absolute ‖r‖ ≲ tol·‖A‖ of the Lanczos method. Also returns
    that acceptance bound per pair (the third array).
    """
    shift = 2.0 * norm_estimate(op, v0)
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
    eps = np.finfo(np.float64).eps
    bound = (tol if tol > 0 else eps) * np.maximum(eps ** (2 / 3), np.abs(values))
    return values - shift, V, bound


def norm_estimate(op: Operator, v0: Array, steps: int = 12) -> float:
    """Estimate ‖A‖₂ from a short Lanczos run: max over the two extreme Ritz values of
    |μ| + |β_m s_m| (each Ritz interval [μ − |β_m s_m|, μ + |β_m s_m|] holds an eigenvalue).
    """
    run = LanczosKernel(op, (v0 / np.linalg.norm(v0))[None, :], min(steps, op.P), True)
    s = int(run.run(min(steps, op.P)).steps[0])
    mu, _, bound = ritz(run.alpha[0, :s], run.beta[0, : s - 1], run.beta[0, s - 1])
    return float(max(abs(mu[0]) + bound[0], abs(mu[-1]) + bound[-1]))


def _lanczos_extreme(
    op: Operator, counts: tuple[int, int], tol: float, v0: Array, gen: np.random.Generator
) -> tuple[Array, Array, Array]:
    """Full-reorthogonalization Lanczos until the wanted Ritz pairs converge.

    ``counts`` = (n_top, n_low): the n_top largest and n_low smallest Ritz pairs are
    wanted (either may be 0), all from the one Krylov space; the result is ascending.

    An invariant subspace (β ≤ max(1e-10, 3·tol)·‖T‖) means the start vector saw one
    copy of each eigenvalue it touches, so the spectrum may hold further copies: the
    basis continues with a new random vector orthogonal to it (a new diagonal block of
    T). After such a restart, a converged answer is accepted at the end of a block only
    if that block did not improve a wanted end (the n_top-th largest or the n_low-th
    smallest value found by the earlier blocks).
    """
    P, want = op.P, sum(counts)
    run = LanczosKernel(
        op,
        (v0 / np.linalg.norm(v0))[None, :],
        min(P, max(2 * want + 20, 64)),
        True,
        breakdown_rtol=max(BREAKDOWN_RTOL, 3 * tol),
        max_capacity=P,
    )
    earlier: list[float] = []  # Ritz values of completed (invariant) blocks
    block_start = 0
    for size in range(1, P + 1):
        run.step()
        alpha, beta, b = run.alpha[0, :size], run.beta[0, : size - 1], run.beta[0, size - 1]
        norm_T, broke = run.scale[0], bool(run.invariant()[0])
        converged = False
        if size >= want:
            mu, S, bounds = _wanted_ritz(alpha, beta, b, counts)
            converged = size == P or bool(np.all(bounds <= tol * 3 * norm_T))
            if converged and (size == P or not broke):
                return mu, run.Q[0, :size].T @ S, bounds  # type: ignore[index]
        run.advance()
        if broke:
            block = ritz(alpha[block_start:], beta[block_start : size - 1])[0]
            margin = max(tol, 1e-10) * norm_T
            if converged and block_start > 0 and not _improves(block, earlier, counts, margin):
                return mu, run.Q[0, :size].T @ S, bounds  # type: ignore[index]
            earlier.extend(block.tolist())
            block_start = size
            run.restart(0, gen.standard_normal(P))  # continue with a fresh random direction
    raise AssertionError("unreachable: the loop returns at size == P")  # pragma: no cover


def _wanted_ritz(
    alpha: Array, beta: Array, b: float, counts: tuple[int, int]
) -> tuple[Array, Array, Array]:
    """Ritz values (ascending), T's eigenvectors and bounds of the wanted pairs only."""
    (n_top, n_low), j = counts, alpha.size
    if n_low == 0:
        return ritz(alpha, beta, b, (j - n_top, j - 1))
    if n_top == 0:
        return ritz(alpha, beta, b, (0, n_low - 1))
    mu, S, bounds = ritz(alpha, beta, b)
    idx = np.r_[0:n_low, j - n_top : j]
    return mu[idx], S[:, idx], bounds[idx]


def _improves(block: Array, earlier: list[float], counts: tuple[int, int], margin: float) -> bool:
    """Does a new block's spectrum beat the earlier blocks at a wanted end (by > margin)?"""
    (n_top, n_low), ranked = counts, np.sort(np.asarray(earlier))
    if n_top and np.max(block) > (ranked[-n_top] if ranked.size >= n_top else -np.inf) + margin:
        return True
    return bool(
        n_low and np.min(block) < (ranked[n_low - 1] if ranked.size >= n_low else np.inf) - margin
    )
