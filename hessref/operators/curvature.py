"""The curvature operators H, G, R: :class:`CurvatureOperator` and its three factories.

See :mod:`hessref.operators` for the design (chunked, deterministic, float64,
symmetric, executors and dask clusters).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import LinearOperator

from hessref.core.mlp import MLP, ForwardCache, forward
from hessref.core.problem import Problem, make_problem
from hessref.core.rop import backward_deltas
from hessref.core.validation import as_float_array, check_dense_fits, check_positive_int
from hessref.operators.chunks import NAMES, bytes_per_row, chunk_product, indexed_chunk_product
from hessref.operators.distributed import SCHEDULER_TIMEOUT, DistributedChunks, dask_client

Array = NDArray[np.float64]

__all__ = [
    "WORKSPACE_BYTES",
    "CurvatureOperator",
    "ggn_operator",
    "hessian_operator",
    "residual_operator",
]

#: Target size of the per-chunk workspace when ``batch_size=None`` (bytes).
WORKSPACE_BYTES = 256 * 2**20


class CurvatureOperator(LinearOperator):
    """A symmetric P × P curvature matrix M ∈ {H, G, R} of an MLP loss, applied matrix-free.

    Build it with :func:`hessian_operator`, :func:`ggn_operator` or
    :func:`residual_operator` (which validate their inputs) rather than directly.

    Parameters
    ----------
    problem : Problem
        Validated model, θ, data, loss and reduction (:func:`hessref.core.problem.make_problem`).
    mode : {"hessian", "ggn", "residual"}
    reduction : {"mean", "sum"}
        Recorded for display; the weighting itself is ``problem.scale``.
    batch_size : int or None
        Rows per data chunk; None picks it per product from ``WORKSPACE_BYTES``.
    executor : concurrent.futures.Executor, dask Client, or None
        Runs the map over chunks (see :mod:`hessref.operators`). A
        ``dask.distributed.Client`` or its ``get_executor()`` gets the cluster
        protocol of :mod:`hessref.operators.distributed` (data scattered once).
    cache_bytes : int
        Memory allowed for forward caches kept across products (0: none).

    Attributes
    ----------
    mode : str
    model : MLP
    theta : ndarray (P,)
    loss, reduction : str
    num_samples : int
        N, the total number of data rows.
    batch_size : int or None
        As given (None: automatic, see :meth:`rows_per_chunk`).
    executor : Executor or None
    num_matvecs : int
        Number of single-vector products computed so far (a (P, K) block counts K).
    cached_bytes : int
        Memory currently held by kept forward caches (≤ ``cache_bytes``).
    scheduler_timeout : float
        dask only: seconds a product waits after the client lost its scheduler before
        raising ``ConnectionError`` (default ``SCHEDULER_TIMEOUT`` = 30).

    Notes
    -----
    Thread safe: one operator may serve products from several threads at once; the
    product counter and the forward caches are updated under a lock, and everything
    else a product uses is local to the call. :meth:`close` (or ``with op:``) releases
    data held on a dask cluster; garbage collection of the operator does the same.
    """

    def __init__(
        self,
        problem: Problem,
        mode: str,
        reduction: str = "mean",
        batch_size: int | None = None,
        executor: Any = None,
        cache_bytes: int = 0,
    ) -> None:
        P = problem.model.num_params
        super().__init__(dtype=np.float64, shape=(P, P))
        self.problem = problem
        self.mode = mode
        self.reduction = reduction
        self.batch_size = batch_size
        self.executor = executor
        self.num_matvecs = 0
        self.cache_bytes = cache_bytes
        self._caches: dict[int, ForwardCache] = {}
        self._cache_rows = 0
        self.cached_bytes = 0
        self._lock = threading.Lock()
        client = dask_client(executor)
        self._cluster = None if client is None else DistributedChunks(client, problem)
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
    def model(self) -> MLP:
        """The MLP whose curvature this is."""
        return self.problem.model

    @property
    def theta(self) -> Array:
        """The parameter vector θ (P,) at which the curvature is taken."""
        return self.problem.theta

    @property
    def loss(self) -> str:
        """Loss name, ``"mse"`` or ``"cross_entropy"``."""
        return self.problem.loss.name

    @property
    def num_samples(self) -> int:
        """N, the number of data rows summed over."""
        return self.problem.num_samples

    def rows_per_chunk(self, num_directions: int = 1) -> int:
        """Rows per data chunk used for a product with ``num_directions`` vectors."""
        if self.batch_size is not None:
            return min(self.batch_size, self.num_samples)
        rows = WORKSPACE_BYTES // bytes_per_row(self.model, num_directions)
        return int(min(self.num_samples, max(1, rows)))

    def __repr__(self) -> str:
        P = self.shape[0]
        return (
            f"<{P}x{P} {self.mode} operator ({NAMES[self.mode]}) of {self.model!r}, "
            f"loss={self.loss!r}, reduction={self.reduction!r}, N={self.num_samples}, "
            f"batch_size={self.batch_size}>"
        )

    # --- public products: validate, then let SciPy dispatch -----------------------------

    def matvec(self, x: ArrayLike) -> Array:
        """M x for x of shape (P,) or (P, 1); the result has the same shape."""
        return super().matvec(self._check_vectors("v", x, matrix=False))

    def rmatvec(self, x: ArrayLike) -> Array:
        """Mᵀ x = M x (M is symmetric)."""
        return self.matvec(x)

    def matmat(self, X: ArrayLike) -> Array:
        """M X for a block X of shape (P, K), computed in one batched pass per chunk."""
        return super().matmat(self._check_vectors("V", X, matrix=True))

    def rmatmat(self, X: ArrayLike) -> Array:
        """Mᵀ X = M X (M is symmetric)."""
        return self.matmat(X)

    def dot(self, x: Any) -> Any:
        """M x for x (P,) or (P, K); a LinearOperator or scalar gives a composed operator."""
        self._check_ndim(x, "op @ x")
        return super().dot(x)

    def _rdot(self, x: Any) -> Any:
        self._check_ndim(x, "x @ op")
        return super()._rdot(x)

    def _check_ndim(self, x: Any, how: str) -> None:
        """Reject arrays of 3 or more dimensions by shape (SciPy would print the array)."""
        if isinstance(x, LinearOperator) or np.isscalar(x) or np.ndim(x) <= 2:
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

    # --- SciPy hooks --------------------------------------------------------------------

    def _matvec(self, x: Array) -> Array:
        return self._matmat(x.reshape(-1, 1)).reshape(x.shape)

    def _rmatvec(self, x: Array) -> Array:
        return self._matvec(x)

    def _rmatmat(self, X: Array) -> Array:
        return self._matmat(X)

    def _adjoint(self) -> CurvatureOperator:
        return self

    def _transpose(self) -> CurvatureOperator:
        return self

    def _matmat(self, X: Array) -> Array:
        """Σ over chunks, in chunk order, of one batched R-op product per chunk."""
        # Fortran order: the R-op slices V per layer as V[rows].T, which is then a view
        # instead of a strided copy in every chunk (≈ 8 % of a 16-column block); the
        # values, hence the bits of the result, are the same in either order
        V = np.asfortranarray(X, dtype=np.float64)
        K = V.shape[1]
        rows = self.rows_per_chunk(K)
        if self._cluster is not None:
            total = self._cluster.product(V, self.mode, rows, self.scheduler_timeout)
        else:
            chunks = list(self.problem.chunks(rows))
            starts = [i * rows for i in range(len(chunks))]
            if self.executor is None:
                parts = (self._serial_product(rows, i, c, V) for i, c in enumerate(chunks))
            else:
                fn = functools.partial(indexed_chunk_product, V=V, mode=self.mode)
                parts = self.executor.map(fn, chunks, range(len(chunks)), starts)
            total = None
            for part in parts:  # fixed order ⇒ the same bits with any executor
                total = part if total is None else np.add(total, part, out=total)
        with self._lock:
            self.num_matvecs += K
        return total

    def _serial_product(self, rows: int, index: int, chunk: Problem, V: Array) -> Array:
        """One chunk's product, reusing (or keeping, within ``cache_bytes``) its forward cache.

        The cache dictionary is read and updated under the lock; the forward pass and
        the product run outside it, so threads sharing the operator run in parallel.
        """
        start = index * rows
        if self.cache_bytes <= 0:
            return chunk_product(chunk, V, self.mode, index, start)
        with self._lock:
            if rows != self._cache_rows:  # another chunking (K changed with batch_size=None)
                self._caches, self._cache_rows, self.cached_bytes = {}, rows, 0
            cache = self._caches.get(index)
        if cache is None:
            cache = forward(chunk.model, chunk.params, chunk.X, second_order=True)
            if self.mode != "ggn":  # the δ_l, g_l of the residual terms, kept with it
                cache.backward = backward_deltas(chunk, cache)
            arrays = [*cache.A[1:], *cache.Z, *cache.dsigma, *(cache.d2sigma or [])]
            arrays += [a for part in cache.backward or () for a in part]
            size = sum(a.nbytes for a in arrays)
            with self._lock:
                fits = self.cached_bytes + size <= self.cache_bytes
                if rows == self._cache_rows and index not in self._caches and fits:
                    self._caches[index] = cache
                    self.cached_bytes += size
        return chunk_product(chunk, V, self.mode, index, start, cache=cache)

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
            M[:, j:j1] = self._matmat(E)
        return M


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(
            f"batch_size: expected None or a positive integer (rows per data chunk), "
            f"got {batch_size!r} of type {type(batch_size).__name__}"
        )
    return check_positive_int("batch_size", batch_size)


def _check_executor(executor: Any) -> Any:
    if executor is not None and not callable(getattr(executor, "map", None)):
        raise TypeError(
            "executor: expected None, a concurrent.futures.Executor-like object with a "
            "map(fn, *iterables) method (e.g. ThreadPoolExecutor, ProcessPoolExecutor) or a "
            f"dask.distributed Client (or its get_executor()), got {type(executor).__name__}"
        )
    return executor


def _make_operator(
    mode: str,
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    loss: str,
    reduction: str,
    batch_size: int | None,
    executor: Any,
    cache_bytes: int,
) -> CurvatureOperator:
    problem = make_problem(model, theta, X, y, loss, reduction)
    return CurvatureOperator(
        problem,
        mode,
        reduction,
        _check_batch_size(batch_size),
        _check_executor(executor),
        check_positive_int("cache_bytes", cache_bytes, minimum=0),
    )


def hessian_operator(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    batch_size: int | None = None,
    executor: Any = None,
    cache_bytes: int = 0,
) -> CurvatureOperator:
    """The Hessian H = ∇²L(θ) as a matrix-free symmetric ``LinearOperator`` (P, P).

    H v is Pearlmutter's R-op (Pearlmutter 1994; docs/theory.md, section "Pearlmutter's
    R-operator"), exact in float64; a block V (P, K) costs one batched pass per data
    chunk. Never forms a P × P array.

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
    X : array_like, shape (N, d_0)
    y : array_like
        MSE: float targets (N, d_L). Cross-entropy: int labels (N,) in [0, d_L).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}
        L = s Σ_i ℓ_i with s = 1/N or 1; every chunk uses the global s.
    batch_size : int, optional
        Rows of X per chunk. None (default) chooses it per product so the chunk
        workspace stays near ``WORKSPACE_BYTES``; memory never grows with N.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Maps over the chunks (threads, processes), or runs them on a dask cluster
        (a ``Client`` or its ``get_executor()``: data scattered once, only V sent
        per product; docs/distributed.md). Results are summed in chunk order,
        bit-identical to the serial result.
    cache_bytes : int, optional
        Bytes of forward caches (activations, σ′, σ″ of the first chunks, and for H
        and R the loss's backward δ_l, W_{l+1}ᵀδ_{l+1}) the operator may keep across
        products to skip that direction-independent work; 0 (default)
        keeps none. Serial products only; results are bit-identical either way.

    Returns
    -------
    CurvatureOperator
        ``dtype=float64``, ``shape=(P, P)``, symmetric (``op.T`` and ``op.H`` are ``op``).
        Works with ``@`` on (P,), (P, 1) and (P, K) arrays, with ``eigsh``, ``cg``,
        ``minres`` and with operator arithmetic.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> from hessref.operators import hessian_operator
    >>> model = hr.MLP([3, 4, 2], activation="tanh")
    >>> theta = model.init(rng=0)
    >>> rng = np.random.default_rng(1)
    >>> X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    >>> H = hessian_operator(model, theta, X, Y, batch_size=3)   # chunks of 3 + 3 + 1 rows
    >>> H.shape, H.dtype
    ((26, 26), dtype('float64'))
    >>> v = rng.normal(size=26)
    >>> bool(np.allclose(H @ v, hr.hessian(model, theta, X, Y) @ v, rtol=1e-12, atol=0))
    True
    """
    return _make_operator(
        "hessian", model, theta, X, y, loss, reduction, batch_size, executor, cache_bytes
    )


def ggn_operator(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    batch_size: int | None = None,
    executor: Any = None,
    cache_bytes: int = 0,
) -> CurvatureOperator:
    """The Gauss-Newton matrix G = s Σ_i J_iᵀ A_i J_i as a matrix-free ``LinearOperator``.

    G v is exact (forward R pass for J_i v, then first-order backprop of A_i J_i v;
    Schraudolph 2002), positive semi-definite. Arguments and return value as in
    :func:`hessian_operator`.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> from hessref.operators import ggn_operator
    >>> model = hr.MLP([3, 4, 2], activation="tanh")
    >>> theta = model.init(rng=0); X = np.random.default_rng(1).normal(size=(5, 3))
    >>> G = ggn_operator(model, theta, X, np.array([0, 1, 1, 0, 1]), loss="cross_entropy")
    >>> G_dense, _ = hr.gauss_newton(model, theta, X, np.array([0, 1, 1, 0, 1]),
    ...                              loss="cross_entropy")
    >>> bool(np.allclose(G.to_dense(), G_dense, rtol=0, atol=1e-14))
    True
    """
    return _make_operator(
        "ggn", model, theta, X, y, loss, reduction, batch_size, executor, cache_bytes
    )


def residual_operator(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    batch_size: int | None = None,
    executor: Any = None,
    cache_bytes: int = 0,
) -> CurvatureOperator:
    """The residual R = H − G = s Σ_i Σ_c (∂ℓ_i/∂f_c) ∇²f_{i,c} as a ``LinearOperator``.

    R v keeps only the δ-carrying terms of the R-op (docs/theory.md, section "Pearlmutter's
    R-operator"); it is exactly zero at interpolating MSE targets and for a linear
    model. Arguments and return value as in :func:`hessian_operator`.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> from hessref.operators import residual_operator
    >>> model = hr.MLP([2, 3], activation="identity")      # linear model: R = 0
    >>> X, Y = np.ones((4, 2)), np.zeros((4, 3))
    >>> R = residual_operator(model, model.init(rng=0), X, Y)
    >>> float(np.abs(R @ np.ones(9)).max())
    0.0
    """
    return _make_operator(
        "residual", model, theta, X, y, loss, reduction, batch_size, executor, cache_bytes
    )
