"""The Gauss-Newton split H = G + R (docs/theory.md §5, equations (5.1)-(5.3)), exact and dense.

G = s Σ_i J_iᵀ A_i J_i with A_i = ∇²_f ℓ_i is positive semi-definite; R = s Σ_i Σ_c
r_{i,c} ∇²_θ f_{i,c} holds every term of H that carries the output gradient r.
Both come from the layer-pair block formulas of :mod:`hessref.core.dense` (modes "ggn"
and "residual"): R is computed directly, not as H − G, so it stays accurate when it
is tiny next to G (near interpolation, where R → 0).

:func:`scaled_jacobian` gives the per-sample factors B_i J_i (B_iᵀ B_i = A_i), i.e.
G = s Σ_i (B_i J_i)ᵀ(B_i J_i); for cross-entropy its rows are Papyan's δ vectors.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.backward import loss_at
from hessref.core.dense import chunk_workspace_bytes, dense_curvatures
from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP, backprop_seeds, forward
from hessref.core.problem import Problem, make_problem
from hessref.core.validation import check_dense_fits

Array = NDArray[np.float64]


def scaled_jacobian(problem: Problem) -> Array:
    """Per-sample B_i J_i, shape (N, d_L, P), with B_iᵀ B_i = ∇²_f ℓ_i.

    For MSE B_i = I (so this is the Jacobian); for cross-entropy row c of B_i J_i is
    √p_c J_iᵀ(e_c − p), Papyan's δ_{i,c} (docs/theory.md (10.1)). G = s Σ_i (B_i J_i)ᵀ(B_i J_i).
    """
    cache = forward(problem.model, problem.params, problem.X)
    B = loss_at(problem, cache).hessian_factor()
    return backprop_seeds(problem.model, problem.params, cache, B)


def gauss_newton(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> tuple[Array, Array]:
    """Exact Gauss-Newton split ``(G, R)`` with H = G + R, each (P, P) and symmetric.

    G = s Σ_i J_iᵀ A_i J_i is positive semi-definite (the GGN; for these losses it
    equals the Fisher of the model's predictive distribution); R = s Σ_i Σ_c r_{i,c}
    ∇²f_{i,c} carries all negative curvature.

    Parameters
    ----------
    Same as :func:`hessref.hessian`.

    Returns
    -------
    G, R : ndarray, shape (P, P)

    Raises
    ------
    MemoryError
        Up front, if two P×P float64 matrices would not fit (use the operators).

    Examples
    --------
    At interpolation targets (MSE), R = 0 and H = G (docs/theory.md §5):

    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([3, 4, 2], activation="tanh")
    >>> theta = model.init(rng=0); X = np.random.default_rng(1).normal(size=(5, 3))
    >>> Y = hr.outputs(model, theta, X)
    >>> G, R = hr.gauss_newton(model, theta, X, Y)
    >>> float(np.abs(R).max())
    0.0
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    check_dense_fits("gauss_newton", p.model.num_params, 2, chunk_workspace_bytes(p, 2))
    G, R = dense_curvatures(p, (Curvature.G, Curvature.R))
    return G, R
