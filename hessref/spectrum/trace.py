"""Stochastic trace estimators: Hutchinson and Hutch++."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hessref.core.validation import check_positive_int
from hessref.spectrum._operator import BLOCK_ELEMENTS, Operator, rademacher

Array = NDArray[np.float64]


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


def _quadratic_forms(op: Operator, rng: np.random.Generator, n: int, project=None) -> Array:
    """zᵀAz for n Rademacher probes (optionally projected z ← project(z)), in column blocks."""
    width = max(1, BLOCK_ELEMENTS // op.P)
    out = np.empty(n)
    for start in range(0, n, width):
        Z = rademacher(rng, (op.P, min(width, n - start)))
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

    Unbiased; for symmetric A one probe has variance 2(‖A‖_F² − Σ_i A_ii²)
    (docs/theory.md §12). The probes are applied
    as one block ``A @ Z`` with Z (P, num_probes) (split into column blocks of at most
    2²² entries for very large P·n).

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
    op = Operator("A", A)
    n = check_positive_int("num_probes", num_probes)
    estimate, stderr = _mean_and_stderr(_quadratic_forms(op, np.random.default_rng(rng), n))
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
    op = Operator("A", A)
    budget = check_positive_int("num_matvecs", num_matvecs, minimum=3)
    gen = np.random.default_rng(rng)
    s = budget // 3
    n = budget - 2 * s
    S = rademacher(gen, (op.P, s))
    Q, _ = np.linalg.qr(op.matmat(S))  # reduced: (P, min(P, s)), orthonormal even if rank-deficient
    low_rank = float(np.einsum("ij,ij->", Q, op.matmat(Q)))

    def deflate(Z: Array) -> Array:
        return Z - Q @ (Q.T @ Z)

    residual, stderr = _mean_and_stderr(_quadratic_forms(op, gen, n, project=deflate))
    return TraceEstimate(low_rank + residual, stderr, op.num_matvecs)
