"""The public constructors of the curvature operators: validate once, then build the base.

:func:`curvature_operator` takes the kind as an argument; :func:`hessian_operator`,
:func:`ggn_operator` and :func:`residual_operator` fix it. All four check their inputs
here (model, θ, data, loss, reduction, batch size, executor, cache budget) and nowhere
else: the operator trusts the :class:`~hessref.core.problem.Problem` it receives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP
from hessref.core.problem import make_problem
from hessref.core.validation import check_positive_int
from hessref.operators.curvature import CurvatureOperator

__all__ = ["curvature_operator", "ggn_operator", "hessian_operator", "residual_operator"]


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


def _check_cache_bytes(cache_bytes: Any) -> int | None:
    if cache_bytes is None:
        return None
    return check_positive_int("cache_bytes", cache_bytes, minimum=0)


def curvature_operator(
    kind: Curvature | str,
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    batch_size: int | None = None,
    executor: Any = None,
    cache_bytes: int | None = None,
) -> CurvatureOperator:
    """The curvature matrix ``kind`` (H, G or R) as a matrix-free symmetric ``LinearOperator``.

    Parameters
    ----------
    kind : Curvature or str
        ``Curvature.H``/``G``/``R``, ``"H"``/``"G"``/``"R"`` or the 0.2 names
        ``"hessian"``/``"ggn"``/``"residual"``.
    model, theta, X, y, loss, reduction, batch_size, executor, cache_bytes
        As in :func:`hessian_operator`.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([3, 4, 2], activation="tanh")
    >>> theta = model.init(rng=0); X = np.random.default_rng(1).normal(size=(5, 3))
    >>> y = np.array([0, 1, 1, 0, 1])
    >>> G = curvature_operator("G", model, theta, X, y, loss="cross_entropy")
    >>> G.kind, G.mode
    (<Curvature.G: 'ggn'>, 'ggn')
    """
    kind = Curvature.parse(kind, argument="kind")
    problem = make_problem(model, theta, X, y, loss, reduction)
    return CurvatureOperator(
        problem,
        kind,
        reduction,
        _check_batch_size(batch_size),
        _check_executor(executor),
        _check_cache_bytes(cache_bytes),
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
    cache_bytes: int | None = None,
) -> CurvatureOperator:
    """The Hessian H = ∇²L(θ) as a matrix-free symmetric ``LinearOperator`` (P, P).

    H v is Pearlmutter's R-op (Pearlmutter 1994; docs/theory.md, section "Pearlmutter's
    R-operator"), exact in float64; a block V (P, K) costs one batched pass per data
    chunk. Never forms a P × P array.

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
        Copied: changing the caller's array later does not change the operator.
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
        Bytes of chunk state (activations, σ′, σ″ and, for H and R, the loss's
        backward δ_l, W_{l+1}ᵀδ_{l+1}) the operator keeps across products to skip
        that direction-independent work. None (default): the smaller of 1/4 of the
        memory available at construction and 2 GiB
        (:func:`hessref.operators.cache.default_cache_bytes`); 0 keeps none. Serial
        products only; results are bit-identical either way. X and y are not copied:
        do not modify them in place while the operator is in use.

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
    return curvature_operator(
        Curvature.H,
        model,
        theta,
        X,
        y,
        loss=loss,
        reduction=reduction,
        batch_size=batch_size,
        executor=executor,
        cache_bytes=cache_bytes,
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
    cache_bytes: int | None = None,
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
    return curvature_operator(
        Curvature.G,
        model,
        theta,
        X,
        y,
        loss=loss,
        reduction=reduction,
        batch_size=batch_size,
        executor=executor,
        cache_bytes=cache_bytes,
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
    cache_bytes: int | None = None,
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
    return curvature_operator(
        Curvature.R,
        model,
        theta,
        X,
        y,
        loss=loss,
        reduction=reduction,
        batch_size=batch_size,
        executor=executor,
        cache_bytes=cache_bytes,
    )
