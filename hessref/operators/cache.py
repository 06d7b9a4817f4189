"""Forward/backward state of data chunks kept across products, within a memory budget.

Every product M V over a chunk starts with work that does not depend on V: the
forward pass (activations A_l, pre-activations Z_l, σ′(Z_l), σ″(Z_l)) and, for H and
R, the loss's backward δ_l and g_l = W_{l+1}ᵀ δ_{l+1} (:func:`hessref.core.rop.backward_deltas`).
An operator keeps that state for as many chunks as fit in its budget, so an iterative
solver pays for it once instead of once per product (it is up to one forward pass
of an H product). The kept state was computed by the same functions the product would call, on
the same rows, so results are bit-identical with and without the cache.

Budget. ``cache_bytes=None`` (the default of every operator factory) means
:func:`default_cache_bytes`: the smaller of ``DEFAULT_CACHE_FRACTION`` (1/4) of the
memory available when the operator is built and ``DEFAULT_CACHE_LIMIT`` (2 GiB);
``cache_bytes=0`` keeps nothing. Chunks are kept first come, first kept: a chunk that
does not fit in what is left is recomputed at every product. Entries are keyed by
(rows per chunk, chunk index), so products whose chunking differs (``batch_size=None``
chooses fewer rows for more directions) keep their own entries and never see a
chunk of another shape. The operator's θ is its own copy, so the kept state cannot go
stale; X and y must not be modified in place while the operator is in use.
"""

from __future__ import annotations

import threading

from hessref.core.kinds import Curvature
from hessref.core.mlp import ForwardCache, forward
from hessref.core.problem import Problem
from hessref.core.rop import backward_deltas
from hessref.core.validation import available_memory_bytes

#: Share of the available memory a default operator cache may use.
DEFAULT_CACHE_FRACTION = 0.25
#: Upper bound of a default operator cache (bytes).
DEFAULT_CACHE_LIMIT = 2 * 2**30


def default_cache_bytes() -> int:
    """min(DEFAULT_CACHE_FRACTION · available memory, DEFAULT_CACHE_LIMIT), in bytes."""
    return int(min(DEFAULT_CACHE_FRACTION * available_memory_bytes(), DEFAULT_CACHE_LIMIT))


def chunk_state(chunk: Problem, kind: Curvature) -> ForwardCache:
    """The V-independent state of one chunk: forward pass, plus δ_l, g_l unless ``kind`` is G."""
    cache = forward(chunk.model, chunk.params, chunk.X, second_order=True)
    if kind is not Curvature.G:  # the residual terms need δ_l and g_l; G does not
        cache.backward = backward_deltas(chunk, cache)
    return cache


def state_bytes(cache: ForwardCache) -> int:
    """Bytes held by a chunk state (A_0 = X belongs to the data and is not counted)."""
    arrays = [*cache.A[1:], *cache.Z, *cache.dsigma, *(cache.d2sigma or [])]
    arrays += [a for part in cache.backward or () for a in part]
    return sum(a.nbytes for a in arrays)


class ChunkStates:
    """The kept chunk states of one operator (thread safe).

    Parameters
    ----------
    budget : int
        Bytes the states may hold in total (0: keep nothing).

    Attributes
    ----------
    nbytes : int
        Bytes currently held (≤ ``budget``).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.nbytes = 0
        self._entries: dict[tuple[int, int], ForwardCache] = {}
        self._lock = threading.Lock()

    def keys(self) -> list[tuple[int, int]]:
        """The kept (rows per chunk, chunk index) pairs, sorted."""
        with self._lock:
            return sorted(self._entries)

    def get(self, rows: int, index: int, chunk: Problem, kind: Curvature) -> ForwardCache | None:
        """The state of chunk ``index`` of the ``rows``-row chunking: kept, or computed now.

        Returns None when the budget is 0 (the product then computes its own forward
        pass). The forward pass runs outside the lock, so threads sharing an operator
        compute in parallel; two threads that miss the same slot both compute it and
        the first to finish keeps it.
        """
        if self.budget <= 0:
            return None
        key = (rows, index)
        with self._lock:
            cache = self._entries.get(key)
        if cache is None:
            cache = chunk_state(chunk, kind)
            size = state_bytes(cache)
            with self._lock:
                if key not in self._entries and self.nbytes + size <= self.budget:
                    self._entries[key] = cache
                    self.nbytes += size
        return cache


__all__ = [
    "DEFAULT_CACHE_FRACTION",
    "DEFAULT_CACHE_LIMIT",
    "ChunkStates",
    "chunk_state",
    "default_cache_bytes",
    "state_bytes",
]
