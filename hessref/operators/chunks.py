"""One data chunk's share of a curvature product, and its errors.

A product M V is summed over row chunks of the data, in chunk order::

    M V = Σ_{c = 0, 1, ...} Σ_{i ∈ chunk c} s M_i V,     s = 1/N_total (mean) or 1 (sum).

:func:`chunk_product` computes one term of the outer sum. It is module level (so
process pools and dask workers import it by reference) and it checks its own
result: a non-finite partial product (data with NaN that bypassed validation, or
an overflow) raises :class:`ChunkError` naming the chunk and its rows instead of
silently spreading NaN through every later iteration of a solver.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hessref.core.mlp import MLP, ForwardCache
from hessref.core.problem import Problem
from hessref.core.rop import curvature_matmat

Array = NDArray[np.float64]

#: Letter of each curvature matrix, for messages and task names.
NAMES = {"hessian": "H", "ggn": "G", "residual": "R"}


class ChunkError(RuntimeError):
    """A data chunk's share of a curvature product failed (message names the chunk and rows)."""


def chunk_label(mode: str, index: int, start: int, stop: int) -> str:
    """``"chunk 3 (rows 30:40 of X) of the H product"`` — used in every chunk error."""
    return f"chunk {index} (rows {start}:{stop} of X) of the {NAMES[mode]} product"


def chunk_product(
    problem: Problem,
    V: Array,
    mode: str,
    index: int = 0,
    start: int = 0,
    cache: ForwardCache | None = None,
) -> Array:
    """Σ_{i ∈ chunk} s M_i V for one chunk, checked finite.

    Parameters
    ----------
    problem : Problem
        The chunk: its rows of X and y, θ, and the *global* weight s.
    V : ndarray, shape (P, K)
    mode : {"hessian", "ggn", "residual"}
    index, start : int
        Position of the chunk (chunk number, first row in X), for error messages.
    cache : ForwardCache, optional
        Forward pass of this chunk to reuse.

    Returns
    -------
    ndarray, shape (P, K)

    Raises
    ------
    ChunkError
        If the computation raises, or the partial product is not finite; the message
        names the chunk, its rows and, for NaN/inf data, the first bad row.
    """
    label = chunk_label(mode, index, start, start + problem.num_samples)
    try:
        part = curvature_matmat(problem, V, mode=mode, cache=cache)
    except Exception as exc:  # re-raised with the chunk named; the cause is kept
        raise ChunkError(f"{label} failed: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(part).all():
        raise ChunkError(f"{label} is not finite (NaN or inf): {_blame(problem, V, start)}")
    return part


def indexed_chunk_product(problem: Problem, index: int, start: int, V: Array, mode: str) -> Array:
    """:func:`chunk_product` with the position first, for ``executor.map(fn, chunks, ...)``."""
    return chunk_product(problem, V, mode, index, start)


def _blame(problem: Problem, V: Array, start: int) -> str:
    """Say which input of a chunk is not finite (only called on failure)."""
    for name, a in (("X", problem.X), ("y", problem.y)):
        bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            return f"{name} has NaN/inf in {int(bad.sum())} row(s), first at row {row}"
    if not np.isfinite(problem.theta).all():
        return "theta has NaN/inf entries"
    if not np.isfinite(V).all():
        return "V has NaN/inf entries"
    return "the inputs are finite, so the product overflowed; rescale the data or theta"


def bytes_per_row(model: MLP, K: int) -> int:
    """Approximate workspace of the batched R-op per data row for K directions.

    Forward cache: X row, A_l, Z_l, σ′, σ″ (≈ d_0 + 4 Σ hidden + d_L floats). R pass
    and backward: R{z_l}, R{a_l} for every layer and a few (K, d_max) temporaries.
    """
    sizes = model.sizes
    hidden = sum(sizes[1:-1])
    forward = sizes[0] + 4 * hidden + sizes[-1]
    per_direction = 2 * hidden + 3 * max(sizes[1:]) + sizes[-1]
    return 8 * (forward + K * per_direction)
