"""The exact dense Hessian H = ∇²L (P × P), and layer blocks of curvature matrices.

H is assembled column-block by column-block from batched R-op products on unit
directions (:mod:`hessref.rop`): H[:, j0:j1] = H · I[:, j0:j1]. Each block lies
within one layer, so the forward R pass skips the layers below it, and each block
is a handful of GEMMs over all samples and K directions at once. The work is
O(N·P²) flops in BLAS; the workspace is bounded independently of P² (see
``_block_size``), so peak memory stays close to the P×P result.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from hessref.mlp import MLP, forward
from hessref.problem import Problem, check_model, make_problem
from hessref.rop import curvature_matmat
from hessref.validation import check_dense_fits

Array = NDArray[np.float64]

_WORKSPACE_BYTES = 16 * 2**20  # per (N, K, d) intermediate of the batched R-op


def _block_size(problem: Problem) -> int:
    """Directions per batched R-op call so that one (N, K, d_max) array stays ≈ 16 MiB."""
    per_direction = 8 * problem.num_samples * max(problem.model.sizes)
    return int(max(1, min(problem.model.num_params, _WORKSPACE_BYTES // per_direction)))


def symmetrize_(M: Array, block: int = 512) -> Array:
    """Replace square M by (M + Mᵀ)/2 in place, block by block (no P×P temporary)."""
    n = M.shape[0]
    for i in range(0, n, block):
        i1 = min(i + block, n)
        M[i:i1, i:i1] = 0.5 * (M[i:i1, i:i1] + M[i:i1, i:i1].T)
        for j in range(i1, n, block):
            j1 = min(j + block, n)
            avg = 0.5 * (M[i:i1, j:j1] + M[j:j1, i:i1].T)
            M[i:i1, j:j1] = avg
            M[j:j1, i:i1] = avg.T
    return M


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def dense_curvature(problem: Problem, mode: str, workers: int | None = None) -> Array:
    """Dense M ∈ {H, G, R} (``mode`` as in :func:`hessref.rop.curvature_matmat`), symmetrized.

    Unit directions of layer l need only the rows of layers ≥ l (the backward pass
    stops at l); the blocks above are filled from their transposes. Column blocks
    are independent, so ``workers`` threads (default: usable CPUs) each compute
    some with single-threaded BLAS: the elementwise steps of the R-op, which NumPy
    runs on one core, then run in parallel too. The result does not depend on
    ``workers`` (each column block is computed by the same operations).

    Returns
    -------
    ndarray, shape (P, P)
    """
    model = problem.model
    P = model.num_params
    M = np.empty((P, P))
    cache = forward(model, problem.params, problem.X, second_order=True)
    K = _block_size(problem)
    blocks = [
        (l, j0, min(j0 + K, model.layer_slice(l).stop))
        for l in range(1, model.num_layers + 1)
        for j0 in range(model.layer_slice(l).start, model.layer_slice(l).stop, K)
    ]

    def fill(block: tuple[int, int, int]) -> None:
        l, j0, j1 = block
        E = np.zeros((P, j1 - j0))
        E[np.arange(j0, j1), np.arange(j1 - j0)] = 1.0
        start = model.layer_slice(l).start
        M[start:, j0:j1] = curvature_matmat(problem, E, mode, cache, first_layer=l)

    workers = workers or _usable_cpus()
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        list(pool.map(fill, blocks))
    for l in range(2, model.num_layers + 1):
        s = model.layer_slice(l)
        M[: s.start, s] = M[s, : s.start].T  # rows of layers < l, by symmetry
    return symmetrize_(M)


def hessian(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> Array:
    """Exact Hessian H = ∇²L(θ), shape (P, P), symmetric.

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
    X : array_like, shape (N, d_0)
    y : array_like
        MSE: float targets (N, d_L). Cross-entropy: int labels (N,) in [0, d_L).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}

    Raises
    ------
    MemoryError
        Up front, if P×P float64 would not fit in available memory (use
        :func:`hessref.hessian_operator` instead).

    Examples
    --------
    Linear model with MSE: H_WW = (1/N) I_k ⊗ XᵀX (THEORY.md §2.1).

    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 2], activation="identity")
    >>> X = np.array([[1.0, 2.0], [3.0, -1.0]]); Y = np.zeros((2, 2))
    >>> H = hr.hessian(model, model.init(rng=0), X, Y)
    >>> np.allclose(H[:4, :4], np.kron(np.eye(2), X.T @ X) / 2)
    True
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    check_dense_fits("hessian", p.model.num_params, 1)
    return dense_curvature(p, "hessian")


def layer_block(model: MLP, M: ArrayLike, l: int, m: int) -> Array:
    """The (l, m) layer block of a P×P curvature matrix (1-based layers).

    Rows are layer l's parameters [W_l.ravel(), b_l], columns layer m's, so
    ``layer_block(model, H, l, m)`` has shape (d_l(d_{l-1}+1), d_m(d_{m-1}+1)).
    Returns a view.
    """
    model = check_model(model)
    M = np.asarray(M)
    P = model.num_params
    if M.shape != (P, P):
        raise ValueError(f"M: expected a ({P}, {P}) matrix for {model!r}, got shape {M.shape}")
    return M[model.layer_slice(l), model.layer_slice(m)]
