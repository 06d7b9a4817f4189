"""Sharpness tracking during training: λ_max(H) (optionally the top k, λ_min, tr H) every n steps.

At each recorded step t the Hessian of the full-batch loss is taken matrix-free
(:func:`hessref.operators.hessian_operator`, with the operators' default kept-state
budget) and its extreme eigenpairs are found by the package's one extreme-eigenpair
entry point, :func:`hessref.spectrum.top_eigenpairs` (``method="lanczos"``: full
reorthogonalization, restarts after an invariant subspace so repeated eigenvalues keep
their multiplicity; with ``smallest=True`` the top k and λ_min come from ONE Krylov
space, ``which="both"``). It stops when every wanted Ritz pair (μ_i, y_i) has residual
r_i = ‖H y_i − μ_i y_i‖ ≤ 3·tol·‖T‖ ≈ tol·‖H‖; since a symmetric H has an eigenvalue
within r_i of μ_i, this bounds each eigenvalue error by about tol·‖H‖ (and in practice
the error is near r_i²/δ_i, δ_i the gap to the rest of the spectrum). The default
``tol = 1e-11`` asks for eigenvalues to about 1e-11·‖H‖. The recorded residuals are the
Ritz residuals |β_j s_{j,i}| (``residuals="ritz"``: no extra product), equal to
‖H y_i − μ_i y_i‖ up to O(ε‖H‖) with full reorthogonalization, far below tol·‖H‖.

The first record starts from a seeded random vector (``Tracking.rng``); each later one
warm-starts from the previous record's eigenvectors (their normalized sum) plus a
random part of relative size ``WARM_NOISE``, which keeps every direction in the
Krylov space, so an eigenvalue that overtakes the previous top one is still found.

``dense=True`` also forms H exactly (:func:`hessref.hessian`, small models only) and
records ``eigenvalues(H)``: the test of the matrix-free numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse.linalg import LinearOperator

from hessref import spectrum
from hessref.core.dense import hessian
from hessref.core.validation import check_positive_int
from hessref.operators import hessian_operator

Array = NDArray[np.float64]

#: Former fixed kept-state budget of the tracking operators (bytes). Tracking now uses
#: the operators' default (:func:`hessref.operators.cache.default_cache_bytes`, min(¼ of
#: available memory, 2 GiB)); kept for code that imports it.
CACHE_BYTES = 64 * 2**20

#: Relative size of the random part of a warm start (the rest: the previous eigenvectors).
WARM_NOISE = 1e-2


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
        Also record λ_min(H) (from the same Lanczos run as the top k).
    trace_probes : int
        If > 0, also a Hutchinson estimate of tr H with this many Rademacher probes
        (with its standard error).
    dense : bool
        Also form the exact H and record its extreme eigenvalues and exact trace (the
        check; small P only).
    tol : float
        Residual tolerance relative to ‖H‖, in (0, 1): Lanczos stops when every wanted
        Ritz residual is ≤ 3·tol·‖T‖, which bounds each eigenvalue error by it (see the
        module docstring).
    max_matvecs : int
        Budget of Hessian-vector products per record (residual checks included); the
        product that would exceed it raises RuntimeError.
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
        Ritz residual norms |β_j s_{j,i}| of the top pairs (= ‖H y_i − μ_i y_i‖ up to
        O(ε‖H‖)).
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


class _Budget(LinearOperator):
    """The Hessian operator with a budget: the product that would exceed it raises.

    Counts columns (one Hessian-vector product each), so ``Tracking.max_matvecs`` bounds
    the work of every record however the eigensolver batches its products.
    """

    def __init__(self, op: LinearOperator, budget: int) -> None:
        super().__init__(dtype=np.float64, shape=op.shape)
        self.op, self.budget, self.used = op, budget, 0
        # the wrapped curvature operator scans its products for NaN/inf: say so to spectrum
        self.checks_output = getattr(op, "checks_output", False) is True

    def _matmat(self, V: Array) -> Array:
        self.used += V.shape[1]
        if self.used > self.budget:
            raise RuntimeError(
                f"sharpness tracking: the eigensolver needed more than max_matvecs="
                f"{self.budget} Hessian-vector products for one record; raise "
                "Tracking(max_matvecs=...) or Tracking(tol=...)"
            )
        return self.op.matmat(V)

    def _matvec(self, v: Array) -> Array:
        return self._matmat(v.reshape(-1, 1))[:, 0]


def extreme_eigenpairs(
    op: Any,
    k: int,
    smallest: bool,
    tol: float,
    rng: np.random.Generator,
    v0: Array | None = None,
) -> tuple[spectrum.Eigenpairs, spectrum.Eigenpairs | None]:
    """Top-k (and the smallest) eigenpairs of H through :func:`hessref.spectrum.top_eigenpairs`.

    Lanczos with full reorthogonalization (``method="lanczos"``) from ``v0`` (default:
    standard normal from ``rng``): it stops when every wanted Ritz residual is
    ≤ 3·tol·‖T‖ (≈ tol·‖H‖), which bounds each eigenvalue error by the same amount, and
    it restarts after an invariant subspace, so repeated eigenvalues (H = I) come out
    with their multiplicity. With ``smallest`` both ends come from one run
    (``which="both"``). Residuals are the Ritz residuals (no extra product).

    Returns
    -------
    top : Eigenpairs
        k largest, descending.
    low : Eigenpairs or None
        The smallest (``smallest=True``).
    """
    kw = {"method": "lanczos", "tol": tol, "rng": rng, "residuals": "ritz", "v0": v0}
    if not smallest:
        return spectrum.top_eigenpairs(op, k, which="largest", **kw), None
    return spectrum.top_eigenpairs(op, k, which="both", k_smallest=1, **kw)


def warm_start(vectors: Array, gen: np.random.Generator) -> Array:
    """Σ_i v_i/‖v_i‖ over the previous record's eigenvectors (P, n), normalized, plus a
    random unit vector times ``WARM_NOISE``.
    """
    start = (vectors / np.linalg.norm(vectors, axis=0)).sum(axis=1)
    noise = gen.standard_normal(vectors.shape[0])
    return start / np.linalg.norm(start) + WARM_NOISE * noise / np.linalg.norm(noise)


class Tracker:
    """Records a :class:`Tracking` specification along one run (used by ``train``)."""

    def __init__(self, spec: Tracking, problem_args: dict, num_params: int) -> None:
        if spec.top_k >= num_params:
            raise ValueError(f"top_k: expected 1 <= top_k < P = {num_params}, got {spec.top_k}")
        self.spec = spec
        self.args = problem_args
        self.gen = np.random.default_rng(spec.rng)
        self.vectors: Array | None = None
        self.previous: Array | None = None  # eigenvectors of the last record (warm start)
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
        )
        budget = _Budget(op, spec.max_matvecs)
        v0 = None if self.previous is None else warm_start(self.previous, self.gen)
        top, low = extreme_eigenpairs(budget, spec.top_k, spec.smallest, spec.tol, self.gen, v0)
        self.vectors = top.vectors
        self.previous = top.vectors if low is None else np.column_stack([top.vectors, low.vectors])
        row: dict[str, Any] = {"step": t, "top": top.values, "res": top.residuals}
        if low is not None:
            row["smallest"] = low.values[0]
        used = budget.used
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
            vectors=self.vectors,
        )
