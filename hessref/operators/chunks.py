"""One data chunk's share of a curvature product, its errors, and the workspace per row.

A product M V is summed over row chunks of the data, in chunk order::

    M V = Σ_{c = 0, 1, ...} Σ_{i ∈ chunk c} s M_i V,     s = 1/N_total (mean) or 1 (sum).

:func:`chunk_matmat` computes one term of the outer sum: it is the per-chunk hook of
:class:`~hessref.operators.CurvatureOperator` (the only part that depends on the
curvature kind). It is module level, so process pools and dask workers import it by
reference, and it does not scan its result: the operator scans the *sum* once per
product (NaN and inf propagate through the sum). Only when that scan fails does
:func:`locate_non_finite` recompute the chunks one by one with :func:`chunk_product`
(which checks each term) to raise a :class:`ChunkError` naming the chunk, its rows and
the first bad input row, instead of silently spreading NaN through every later
iteration of a solver.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP, ForwardCache
from hessref.core.problem import Problem
from hessref.core.rop import curvature_matmat

Array = NDArray[np.float64]


class ChunkError(RuntimeError):
    """A data chunk's share of a curvature product failed (message names the chunk and rows)."""


def chunk_label(kind: Curvature | str, index: int, start: int, stop: int) -> str:
    """``"chunk 3 (rows 30:40 of X) of the H product"`` — used in every chunk error."""
    symbol = Curvature.parse(kind, argument="kind").symbol
    return f"chunk {index} (rows {start}:{stop} of X) of the {symbol} product"


def chunk_matmat(
    problem: Problem,
    V: Array,
    kind: Curvature,
    index: int = 0,
    start: int = 0,
    cache: ForwardCache | None = None,
) -> Array:
    """Σ_{i ∈ chunk} s M_i V for one chunk, M the curvature ``kind`` (not scanned for NaN).

    Parameters
    ----------
    problem : Problem
        The chunk: its rows of X and y, θ, and the *global* weight s.
    V : ndarray, shape (P, K)
        Checked directions (finite float64).
    kind : Curvature
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
        If the computation raises; the message names the chunk and its rows and the
        original exception is kept as ``__cause__``.
    """
    try:
        return curvature_matmat(problem, V, mode=kind.value, cache=cache)
    except Exception as exc:  # re-raised with the chunk named; the cause is kept
        label = chunk_label(kind, index, start, start + problem.num_samples)
        raise ChunkError(f"{label} failed: {type(exc).__name__}: {exc}") from exc


def chunk_product(
    problem: Problem,
    V: Array,
    kind: Curvature | str,
    index: int = 0,
    start: int = 0,
    cache: ForwardCache | None = None,
) -> Array:
    """:func:`chunk_matmat`, then checked finite (``ChunkError`` naming the chunk if not)."""
    kind = Curvature.parse(kind, argument="kind")
    part = chunk_matmat(problem, V, kind, index, start, cache)
    if not np.isfinite(part).all():
        label = chunk_label(kind, index, start, start + problem.num_samples)
        raise ChunkError(f"{label} is not finite (NaN or inf): {_blame(problem, V, start)}")
    return part


def indexed_chunk_matmat(problem: Problem, index: int, start: int, V: Array, kind: Any) -> Array:
    """:func:`chunk_matmat` with the position first, for ``executor.map(fn, chunks, ...)``."""
    return chunk_matmat(problem, V, kind, index, start)


def locate_non_finite(chunks: Iterable[Problem], rows: int, V: Array, kind: Curvature) -> None:
    """Recompute the chunks in order, raising ``ChunkError`` for the first non-finite one.

    Called only after a product's sum failed the finite scan. If every chunk is finite,
    the *sum* overflowed, and that is what the error says.
    """
    for index, chunk in enumerate(chunks):
        chunk_product(chunk, V, kind, index, index * rows)
    raise ChunkError(
        f"the {kind.symbol} product is not finite although every chunk's share is: the "
        "sum over chunks overflowed; rescale the data or theta"
    )


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


def __getattr__(name: str) -> Any:
    # 0.2 vocabulary: NAMES mapped mode names to letters; Curvature.symbol does that now
    if name == "NAMES":
        warnings.warn(
            "hessref.operators.chunks.NAMES is deprecated; use "
            "hessref.core.kinds.Curvature.parse(mode).symbol",
            DeprecationWarning,
            stacklevel=2,
        )
        return {kind.value: kind.symbol for kind in Curvature}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
