"""The curvature operator base: :class:`CurvatureOperator`, one class for H, G and R.

The base owns everything a product does except the arithmetic of one chunk: checking
V once, choosing the chunking, running the chunks (serially, on an executor or on a
dask cluster), the kept chunk states (:mod:`hessref.operators.cache`), the summation
order, the one finite scan of the result and the error that names a failing chunk.
The curvature kind supplies the per-chunk product, :func:`~hessref.operators.chunks.chunk_matmat`
(the ``chunk_matmat`` attribute: the hook a subclass would replace). See
:mod:`hessref.operators` for the design and :mod:`hessref.operators.factories` for the
public constructors.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import LinearOperator

from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP
from hessref.core.problem import Problem
from hessref.core.validation import as_float_array, check_dense_fits, check_positive_int
from hessref.operators.cache import ChunkStates, default_cache_bytes
from hessref.operators.chunks import (
    ChunkError,
    bytes_per_row,
    chunk_label,
    chunk_matmat,
    indexed_chunk_matmat,
    locate_non_finite,
)
from hessref.operators.distributed import SCHEDULER_TIMEOUT, DistributedChunks, dask_client

Array = NDArray[np.float64]

__all__ = ["WORKSPACE_BYTES", "CurvatureOperator", "all_finite", "sum_in_order"]

#: Target size of the per-chunk workspace when ``batch_size=None`` (bytes).
WORKSPACE_BYTES = 256 * 2**20


def all_finite(total: Array) -> bool:
    """The one non-finite scan of a product's result (NaN/inf in any chunk reaches the sum)."""
    return bool(np.isfinite(total).all())


def sum_in_order(parts: Iterable[Array]) -> Array:
    """Σ_c p_c added in chunk order, t_0 = p_0, t_c = t_{c-1} + p_c (fixed order ⇒ fixed bits)."""
    total = None
    for part in parts:
        total = part if total is None else np.add(total, part, out=total)
    return total


class CurvatureOperator(LinearOperator):
    """A symmetric P × P curvature matrix M ∈ {H, G, R} of an MLP loss, applied matrix-free.

    Build it with :func:`~hessref.operators.curvature_operator` or
    :func:`hessian_operator`, :func:`ggn_operator`, :func:`residual_operator` (which
    validate their inputs) rather than directly.

    Parameters
    ----------
    problem : Problem
        Validated model, θ, data, loss and reduction (:func:`hessref.core.problem.make_problem`).
        The operator keeps its own copy of θ.
    mode : Curvature or str
        The curvature kind: ``Curvature.H``/``G``/``R``, ``"H"``/``"G"``/``"R"`` or the
        0.2 names ``"hessian"``/``"ggn"``/``"residual"``.
    reduction : {"mean", "sum"}
        Recorded for display; the weighting itself is ``problem.scale``.
    batch_size : int or None
        Rows per data chunk; None picks it per product from ``WORKSPACE_BYTES``.
    executor : concurrent.futures.Executor, dask Client, or None
        Runs the map over chunks (see :mod:`hessref.operators`).
    cache_bytes : int or None
        Memory for chunk states kept across products: None (default) means
        :func:`~hessref.operators.cache.default_cache_bytes` (min(¼ of available memory,
        2 GiB)), 0 keeps none. Serial products only; results are bit-identical either way.

    Attributes
    ----------
    kind : Curvature
    mode : str
        ``kind.value`` (``"hessian"``, ``"ggn"`` or ``"residual"``; 0.2 spelling).
    model, theta, loss, reduction, num_samples, batch_size, executor
        As given (θ is the operator's copy; N is the total number of data rows).
    num_matvecs : int
        Number of single-vector products computed so far (a (P, K) block counts K).
    cache_bytes : int
        The budget in force (the default resolved to bytes).
    cached_bytes : int
        Memory currently held by kept chunk states (≤ ``cache_bytes``).
    scheduler_timeout : float
        dask only: seconds a product waits after the client lost its scheduler before
        raising ``ConnectionError`` (default ``SCHEDULER_TIMEOUT`` = 30).

    Notes
    -----
    One validation pass per product: ``op @ v``, ``op(v)``, ``v @ op``, ``op.dot``,
    ``op.matvec`` and ``op.matmat`` check V once (shape, dtype, finite) and then call the
    unchecked product; the result is scanned for NaN/inf once, after the sum over chunks.
    Thread safe: the product counter and the kept states are updated under locks.
    :meth:`close` (or ``with op:``) releases data held on a dask cluster.
    """

    #: Each product's result is scanned for NaN/inf here (a ValueError if any): the
    #: spectrum layer reads this and skips its own scan, so one scan per product.
    checks_output = True

    #: The per-chunk hook Σ_{i ∈ chunk} s M_i V (module level, so executors can pickle it).
    chunk_matmat = staticmethod(chunk_matmat)

    def __init__(
        self,
        problem: Problem,
        mode: Curvature | str,
        reduction: str = "mean",
        batch_size: int | None = None,
        executor: Any = None,
        cache_bytes: int | None = None,
    ) -> None:
        P = problem.model.num_params
        super().__init__(dtype=np.float64, shape=(P, P))
        theta = problem.theta.copy()  # the kept chunk states must never go stale
        self.problem = problem._at_unchecked(theta)
        self.kind = Curvature.parse(mode, argument="mode")
        self.reduction = reduction
        self.batch_size = batch_size
        self.executor = executor
        self.num_matvecs = 0
        self.cache_bytes = default_cache_bytes() if cache_bytes is None else cache_bytes
        self._states = ChunkStates(self.cache_bytes)
        self._lock = threading.Lock()
        client = dask_client(executor)
        self._cluster = None if client is None else DistributedChunks(client, self.problem)
        self.scheduler_timeout = SCHEDULER_TIMEOUT

    def close(self) -> None:
        """Release the data scattered to a dask cluster (no-op otherwise); products still work."""
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> CurvatureOperator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- descriptive attributes ---------------------------------------------------------

    @property
    def mode(self) -> str:
        """The 0.2 name of the kind: ``"hessian"``, ``"ggn"`` or ``"residual"``."""
        return self.kind.value

    @property
    def model(self) -> MLP:
        """The MLP whose curvature this is."""
        return self.problem.model

    @property
    def theta(self) -> Array:
        """The parameter vector θ (P,) at which the curvature is taken (the operator's copy)."""
        return self.problem.theta

    @property
    def loss(self) -> str:
        """Loss name, ``"mse"`` or ``"cross_entropy"``."""
        return self.problem.loss.name

    @property
    def num_samples(self) -> int:
        """N, the number of data rows summed over."""
        return self.problem.num_samples

    @property
    def cached_bytes(self) -> int:
        """Bytes held by the kept chunk states."""
        return self._states.nbytes

    def rows_per_chunk(self, num_directions: int = 1) -> int:
        """Rows per data chunk used for a product with ``num_directions`` vectors."""
        if self.batch_size is not None:
            return min(self.batch_size, self.num_samples)
        rows = WORKSPACE_BYTES // bytes_per_row(self.model, num_directions)
        return int(min(self.num_samples, max(1, rows)))

    def __repr__(self) -> str:
        P = self.shape[0]
        return (
            f"<{P}x{P} {self.mode} operator ({self.kind.symbol}) of {self.model!r}, "
            f"loss={self.loss!r}, reduction={self.reduction!r}, N={self.num_samples}, "
            f"batch_size={self.batch_size}>"
        )

    # --- public products: check V once, then the unchecked product ----------------------

    def matvec(self, x: ArrayLike) -> Array:
        """M x for x of shape (P,) or (P, 1); the result has the same shape."""
        v = self._check_vectors("v", x, matrix=False)
        return self._apply(v.reshape(-1, 1)).reshape(v.shape)

    def rmatvec(self, x: ArrayLike) -> Array:
        """Mᵀ x = M x (M is symmetric)."""
        return self.matvec(x)

    def matmat(self, X: ArrayLike) -> Array:
        """M X for a block X of shape (P, K), computed in one batched pass per chunk."""
        return self._apply(self._check_vectors("V", X, matrix=True))

    def rmatmat(self, X: ArrayLike) -> Array:
        """Mᵀ X = M X (M is symmetric)."""
        return self.matmat(X)

    def dot(self, x: Any) -> Any:
        """M x for x (P,) or (P, K); a LinearOperator or scalar gives a composed operator."""
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return super().dot(x)
        self._check_ndim(x, "op @ x")
        x = np.asarray(x)
        one = x.ndim == 1 or (x.ndim == 2 and x.shape[1] == 1)
        return self.matvec(x) if one else self.matmat(x)

    def _rdot(self, x: Any) -> Any:
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return super()._rdot(x)
        self._check_ndim(x, "x @ op")
        x = np.asarray(x)  # x M = (M xᵀ)ᵀ, M symmetric
        one = x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)
        return (self.matvec(x.T) if one else self.matmat(x.T)).T

    def _check_ndim(self, x: Any, how: str) -> None:
        """Reject arrays of 3 or more dimensions by shape (SciPy would print the array)."""
        if np.ndim(x) <= 2:
            return
        P = self.shape[0]
        raise ValueError(
            f"x (in {how}): expected a vector of shape (P,) or a block of shape (P, K) with "
            f"P = {P}, got a {np.ndim(x)}-D array of shape {np.shape(x)}; reshape it to "
            f"({P}, -1) (one column per direction) and reshape the result back"
        )

    def _check_vectors(self, name: str, x: ArrayLike, matrix: bool) -> Array:
        """Return x as a finite real float64 array of the right shape, or raise a clear error."""
        P = self.shape[0]
        x = as_float_array(name, x, ndim=2 if matrix else (1, 2))
        if x.shape[0] != P or (not matrix and x.ndim == 2 and x.shape[1] != 1):
            want = "(P, K)" if matrix else "(P,) or (P, 1)"
            hint = "" if matrix else "; for several vectors use op @ V or op.matmat(V)"
            raise ValueError(
                f"{name}: expected shape {want} with P = {P} (the number of parameters of "
                f"{self.model!r}), got shape {x.shape}{hint}"
            )
        if matrix and x.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one column (K >= 1), got shape {x.shape}")
        return x

    # --- SciPy hooks (reached only through SciPy's own composition machinery) -----------

    def _matvec(self, x: Array) -> Array:
        return self._apply(np.asarray(x, dtype=np.float64).reshape(-1, 1)).reshape(x.shape)

    def _rmatvec(self, x: Array) -> Array:
        return self._matvec(x)

    def _matmat(self, X: Array) -> Array:
        return self._apply(np.asarray(X, dtype=np.float64))

    def _rmatmat(self, X: Array) -> Array:
        return self._matmat(X)

    def _adjoint(self) -> CurvatureOperator:
        return self

    def _transpose(self) -> CurvatureOperator:
        return self

    # --- the product: chunks, order, one scan -------------------------------------------

    def _apply(self, V: Array) -> Array:
        """M V for a checked (P, K) block: Σ over chunks in chunk order, then one finite scan."""
        # Fortran order: the R-op slices V per layer as V[rows].T, which is then a view
        # instead of a strided copy in every chunk (≈ 8 % of a 16-column block); the
        # values, hence the bits of the result, are the same in either order
        V = np.asfortranarray(V)
        K = V.shape[1]
        rows = self.rows_per_chunk(K)
        if self._cluster is not None:
            total = self._cluster.product(V, self.kind, rows, self.scheduler_timeout)
        else:
            total = sum_in_order(self._parts(V, rows))
        if not all_finite(total):
            locate_non_finite(self.problem.chunks(rows), rows, V, self.kind)
        with self._lock:
            self.num_matvecs += K
        return total

    def _parts(self, V: Array, rows: int) -> Iterable[Array]:
        """The chunks' shares p_c, in chunk order (lazily when serial)."""
        chunks = self.problem.chunks(rows)
        if self.executor is None:
            return (self._serial_part(rows, i, c, V) for i, c in enumerate(chunks))
        chunks = list(chunks)
        fn = functools.partial(indexed_chunk_matmat, V=V, kind=self.kind)
        starts = [i * rows for i in range(len(chunks))]
        return self.executor.map(fn, chunks, range(len(chunks)), starts)

    def _serial_part(self, rows: int, index: int, chunk: Problem, V: Array) -> Array:
        """One chunk's share, with its kept state (computed and kept now if it fits)."""
        start = index * rows
        try:
            state = self._states.get(rows, index, chunk, self.kind)
        except Exception as exc:  # the forward pass of the state failed: name the chunk
            label = chunk_label(self.kind, index, start, start + chunk.num_samples)
            raise ChunkError(f"{label} failed: {type(exc).__name__}: {exc}") from exc
        return self.chunk_matmat(chunk, V, self.kind, index, start, state)

    # --- dense export (small models only) -----------------------------------------------

    def to_dense(self, block: int | None = None) -> Array:
        """The full P × P matrix M, built from products with unit-vector blocks.

        For tests and small models only: refuses (``MemoryError``) when a P × P float64
        array does not fit. The result is not symmetrized (it shows the round-off of
        the products); compare with :func:`hessref.hessian` / :func:`hessref.gauss_newton`.

        Parameters
        ----------
        block : int, optional
            Columns per batched product (default: about 16 MiB of directions).
        """
        P = self.shape[0]
        check_dense_fits(f"{self.mode}_operator(...).to_dense()", P)
        if block is None:
            block = max(1, min(P, 2**21 // P))
        block = check_positive_int("block", block)
        M = np.empty((P, P))
        for j in range(0, P, block):
            j1 = min(P, j + block)
            E = np.zeros((P, j1 - j))
            E[np.arange(j, j1), np.arange(j1 - j)] = 1.0
            M[:, j:j1] = self._apply(E)
        return M


def __getattr__(name: str) -> Any:
    # 0.2 import path: the factories lived here; they are in operators.factories now
    if name in ("hessian_operator", "ggn_operator", "residual_operator"):
        from hessref.operators import factories

        return getattr(factories, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
