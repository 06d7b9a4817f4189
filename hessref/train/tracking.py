"""Sharpness tracking during training: λ_max(H) (optionally the top k, λ_min, tr H) every n steps.

At each recorded step t the Hessian of the full-batch loss is taken matrix-free
(:func:`hessref.operators.hessian_operator`) and its extreme eigenpairs are found by
Lanczos with full reorthogonalization (:func:`hessref.spectrum.lanczos`),
**warm-started** from the eigenvectors found at the previous record: the start vector
is q₁ ∝ Σ_i u_i^(prev) (+ u_min^(prev)) plus a small seeded random part, so a new
eigenvalue orthogonal to the old eigenvectors is still in the Krylov space. While a
wanted Ritz pair (μ_i, y_i), with residual r_i = ‖H y_i − μ_i y_i‖ = |β_m s_{m,i}|, has
an estimated eigenvalue error r_i²/δ_i above ``tol · max|μ|`` (Kato–Temple: the error
of a Ritz value is at most r²/δ, δ its distance to the rest of the spectrum, estimated
here by the distance to the nearest other Ritz value), Lanczos is restarted from the
sum of the current Ritz vectors with twice as many steps. The default ``tol = 1e-11``
asks for eigenvalues to about 1e-11 relative; the Ritz vectors are then accurate to
about √(tol·‖H‖·δ).

``dense=True`` also forms H exactly (:func:`hessref.hessian`, small models only) and
records ``eigenvalues(H)``: the test of the matrix-free numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import NDArray

from hessref import spectrum
from hessref.core.dense import hessian
from hessref.core.validation import check_positive_int
from hessref.operators import hessian_operator

Array = NDArray[np.float64]

#: Forward-cache budget of the tracking operators (bytes): one forward pass saved per HVP.
CACHE_BYTES = 64 * 2**20

#: Lanczos steps per (re)start.
M_MIN = 8


@dataclass(frozen=True)
class Tracking:
    """What :func:`hessref.train.train` records about the Hessian, and how often.

    Parameters
    ----------
    every : int
        Record at steps t = 0, every, 2·every, … and at the last step (≥ 1).
    top_k : int
        Number of largest (algebraic) eigenvalues, 1 ≤ top_k < P.
    smallest : bool
        Also record λ_min(H) (same Lanczos runs).
    trace_probes : int
        If > 0, also a Hutchinson estimate of tr H with this many Rademacher probes
        (with its standard error).
    dense : bool
        Also form the exact H and record its extreme eigenvalues and exact trace (the
        check; small P only).
    tol : float
        Relative eigenvalue tolerance: Lanczos stops when every wanted Ritz value's
        estimated error res²/δ is ≤ tol·max|μ| (see module docstring).
    max_matvecs : int
        Budget of Hessian-vector products per record; exceeding it raises.
    rng : None, int or Generator
        Random parts of the start vectors and the trace probes. Independent of
        ``train``'s ``rng``, so tracking never changes the trajectory.
    """

    every: int = 10
    top_k: int = 1
    smallest: bool = False
    trace_probes: int = 0
    dense: bool = False
    tol: float = 1e-11
    max_matvecs: int = 2000
    rng: Any = 0

    def __post_init__(self) -> None:
        check_positive_int("every", self.every)
        check_positive_int("top_k", self.top_k)
        check_positive_int("trace_probes", self.trace_probes, minimum=0)
        check_positive_int("max_matvecs", self.max_matvecs)
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)):
            raise TypeError(f"tol: expected a real number, got {type(tol).__name__}")
        if not np.isfinite(tol) or not 0.0 < tol < 1.0:
            raise ValueError(f"tol: expected a finite number in (0, 1), got {tol!r}")


@dataclass
class SharpnessTrajectory:
    """Curvature recorded along a training run (M records).

    Attributes
    ----------
    steps : ndarray of int (M,)
        Steps t of the records.
    top : ndarray (M, k)
        Largest eigenvalues of H(θ_t), descending; ``top[:, 0]`` is the sharpness λ_max.
    smallest : ndarray (M,) or None
        λ_min(H(θ_t)) if requested.
    trace : ndarray (M,) or None
        Hutchinson estimate of tr H(θ_t) if requested, with ``trace_stderr`` (M,).
    residuals : ndarray (M, k)
        Ritz residual norms ‖H y_i − μ_i y_i‖ of the top pairs.
    matvecs : ndarray of int (M,)
        Hessian-vector products spent per record (trace probes included).
    dense_top, dense_smallest, dense_trace : ndarray or None
        The same quantities from the exact dense H (``dense=True``).
    vectors : ndarray (P, k)
        Top eigenvectors at the last record.
    """

    steps: NDArray[np.int64]
    top: Array
    smallest: Array | None
    trace: Array | None
    trace_stderr: Array | None
    residuals: Array
    matvecs: NDArray[np.int64]
    dense_top: Array | None = None
    dense_smallest: Array | None = None
    dense_trace: Array | None = None
    vectors: Array | None = field(default=None, repr=False)

    @property
    def sharpness(self) -> Array:
        """λ_max(H(θ_t)) at each record, shape (M,)."""
        return self.top[:, 0]


def _ritz_pairs(run: spectrum.LanczosResult) -> tuple[Array, Array, Array]:
    """Ritz values (ascending), Ritz vectors (P, m) and residual norms |β_m s_{m,i}|."""
    mu, S = scipy.linalg.eigh_tridiagonal(run.alpha, run.beta)
    return mu, run.Q @ S, np.abs(run.residual_norm * S[-1])


def _error_bound(mu: Array, res: Array) -> Array:
    """Estimated eigenvalue errors res_i²/δ_i (Kato–Temple), δ_i = distance to the nearest
    other Ritz value, never below res_i (then the bound is res_i itself, Weyl-like).
    """
    if mu.size == 1:
        return res.copy()
    d = np.abs(mu[:, None] - mu[None, :]) + np.diag(np.full(mu.size, np.inf))
    gap = np.maximum(d.min(axis=1), res)
    return np.where(gap > 0, res**2 / np.where(gap > 0, gap, 1.0), 0.0)


def extreme_eigenpairs(
    op: Any, k: int, smallest: bool, start: Array, tol: float, max_matvecs: int
) -> tuple[Array, Array, Array | None, Array | None, Array, int]:
    """Top-k (and smallest) eigenpairs of a symmetric operator by restarted Lanczos.

    Parameters
    ----------
    op : LinearOperator (P, P)
    k : int
    smallest : bool
    start : ndarray (P,)
        Start vector (need not be normalized).
    tol : float
        Converged when every wanted Ritz value's estimated error res²/δ (see
        :func:`_error_bound`) is ≤ tol·max|μ|, or the Krylov space is invariant.
    max_matvecs : int

    Returns
    -------
    top (k,) descending, top vectors (P, k), λ_min or None, its vector or None,
    residuals (k,), number of products used.
    """
    P = op.shape[0]
    m = min(P, max(M_MIN, 2 * k + 4))
    used = 0
    while True:
        run = spectrum.lanczos(op, m, v0=start)
        used += len(run.alpha)
        mu, Y, res = _ritz_pairs(run)
        if len(mu) < k + int(smallest):
            raise RuntimeError(
                f"sharpness tracking: the Krylov space is invariant with dimension {len(mu)} "
                f"< {k + int(smallest)} wanted eigenvalues (H has too few distinct eigenvalues "
                "seen from this start); use a smaller top_k, or dense=True on a small model"
            )
        wanted = list(range(len(mu) - k, len(mu))) + ([0] if smallest else [])
        scale = max(float(np.max(np.abs(mu))), np.finfo(float).tiny)
        invariant = len(run.alpha) < m or run.residual_norm == 0.0 or len(run.alpha) == P
        if invariant or np.all(_error_bound(mu, res)[wanted] <= tol * scale):
            break
        if used + m > max_matvecs:
            raise RuntimeError(
                f"sharpness tracking: Lanczos did not reach tol={tol:g} within "
                f"max_matvecs={max_matvecs} Hessian-vector products (worst relative residual "
                f"{np.max(res[wanted]) / scale:.2e}); raise Tracking(max_matvecs=...) or tol"
            )
        start = Y[:, wanted].sum(axis=1)
        m = min(P, 2 * m)  # a longer run next time: restarts lose the rest of the space
    top_idx = wanted[:k][::-1]
    low = (mu[0], Y[:, 0]) if smallest else (None, None)
    return mu[top_idx], Y[:, top_idx], low[0], low[1], res[top_idx], used


class Tracker:
    """Records a :class:`Tracking` specification along one run (used by ``train``)."""

    def __init__(self, spec: Tracking, problem_args: dict, num_params: int) -> None:
        if spec.top_k >= num_params:
            raise ValueError(f"top_k: expected 1 <= top_k < P = {num_params}, got {spec.top_k}")
        self.spec = spec
        self.args = problem_args
        self.gen = np.random.default_rng(spec.rng)
        self.prev: Array | None = None
        self.rows: list[dict] = []

    def due(self, t: int) -> bool:
        """Whether step t is a regular record step."""
        return t % self.spec.every == 0

    def record(self, t: int, theta: Array) -> None:
        """Compute and store the curvature of H(θ_t)."""
        spec, a = self.spec, self.args
        op = hessian_operator(
            a["model"],
            theta,
            a["X"],
            a["y"],
            loss=a["loss"],
            reduction=a["reduction"],
            cache_bytes=CACHE_BYTES,
        )
        noise = self.gen.standard_normal(theta.shape[0])
        if self.prev is None:
            start = noise
        else:
            start = self.prev.sum(axis=1)
            start = start / np.linalg.norm(start) + 1e-2 * noise / np.linalg.norm(noise)
        top, V, low, v_low, res, used = extreme_eigenpairs(
            op, spec.top_k, spec.smallest, start, spec.tol, spec.max_matvecs
        )
        self.prev = V if v_low is None else np.column_stack([V, v_low])
        row: dict[str, Any] = {"step": t, "top": top, "smallest": low, "res": res}
        if spec.trace_probes:
            est = spectrum.hutchinson_trace(op, spec.trace_probes, rng=self.gen)
            row["trace"], row["trace_stderr"] = est.estimate, est.stderr
            used += est.num_matvecs
        row["matvecs"] = used
        if spec.dense:
            H = hessian(a["model"], theta, a["X"], a["y"], loss=a["loss"], reduction=a["reduction"])
            ev = spectrum.eigenvalues(H)
            row["dense_top"], row["dense_smallest"] = ev[: spec.top_k], ev[-1]
            row["dense_trace"] = float(np.trace(H))
        self.rows.append(row)

    def result(self) -> SharpnessTrajectory:
        """The recorded trajectory."""
        rows, spec = self.rows, self.spec

        def col(key: str) -> Array | None:
            return np.array([r[key] for r in rows]) if key in rows[0] else None

        return SharpnessTrajectory(
            steps=np.array([r["step"] for r in rows], dtype=np.int64),
            top=np.array([r["top"] for r in rows]),
            smallest=col("smallest") if spec.smallest else None,
            trace=col("trace"),
            trace_stderr=col("trace_stderr"),
            residuals=np.array([r["res"] for r in rows]),
            matvecs=np.array([r["matvecs"] for r in rows], dtype=np.int64),
            dense_top=col("dense_top"),
            dense_smallest=col("dense_smallest") if spec.dense and spec.smallest else None,
            dense_trace=col("dense_trace"),
            vectors=self.prev[:, : spec.top_k] if self.prev is not None else None,
        )
