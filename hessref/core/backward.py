"""The loss's backward pass at one forward pass: ℓ, r and δ_l, g_l, computed once per F.

docs/theory.md (4.1): with δ_l = ∂(s ℓ)/∂z_l and g_l = W_{l+1}ᵀ δ_{l+1},

    δ_L = s r,   δ_l = σ′(z_l) ⊙ g_l.

:func:`loss_at` evaluates the loss at F once (ℓ, r and, for cross-entropy, the softmax
that every A product reuses) and keeps it with the forward cache; :func:`backward_deltas`
runs the one δ recursion :func:`hessref.core.mlp.backpropagate` seeded with s r. The
gradient, the R-op's direction-independent half and the dense block formulas take their
δ_l and g_l from here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hessref.core.losses import LossAt
from hessref.core.mlp import ForwardCache, backpropagate
from hessref.core.problem import Problem

Array = NDArray[np.float64]


def loss_at(problem: Problem, cache: ForwardCache) -> LossAt:
    """The loss of ``problem`` evaluated at ``cache.F`` (ℓ_i, r_i, softmax), computed once.

    Stored in ``cache.output`` on first use, so later products at the same forward pass
    (the R-op's A Rdir{z_L}, the dense M_L = s A) reuse it. ``cache`` must be a forward
    pass of ``problem``'s rows (as every engine caller's is).
    """
    if cache.output is None:
        cache.output = problem.loss.at(cache.F, problem.y)
    return cache.output


def backward_deltas(problem: Problem, cache: ForwardCache) -> tuple[list[Array], list[Array]]:
    """The direction-independent half of the backward pass, shared by every product at θ.

    Returns ``(delta, g)`` with ``delta[l-1]`` = δ_l = ∂(s ℓ)/∂z_l, shape (N, d_l), for
    l = 1..L, and ``g[l-1]`` = g_l = W_{l+1}ᵀ δ_{l+1}, shape (N, d_l), for l = 1..L-1
    (δ_l = σ′(z_l) ⊙ g_l). Taken from ``cache.backward`` when a caller stored it there.
    """
    if cache.backward is not None:
        return cache.backward
    seed = problem.scale * loss_at(problem, cache).r  # δ_L = s r (N, d_L)
    deltas, gs = [], []
    for _, delta, g in backpropagate(problem.params, cache, seed):
        deltas.append(delta)
        gs.append(g)
    return deltas[::-1], gs[:0:-1]  # layers 1..L; g_1..g_{L-1} (g_L does not exist)
