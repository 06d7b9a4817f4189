"""Public evaluation and derivatives: outputs, loss, gradient, Jacobian, HVP.

All functions take ``(model, theta, X, y)`` and keyword-only ``loss`` ("mse" or
"cross_entropy") and ``reduction`` ("mean" or "sum"); inputs are validated once
by :func:`hessref.core.problem.make_problem`. L(θ) = s Σ_i ℓ(f_i(θ), y_i) with
s = 1/N (mean) or 1 (sum).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.backward import loss_at
from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP, backprop_gradient, backprop_seeds, forward
from hessref.core.problem import (
    Problem,
    check_directions,
    check_inputs,
    check_model,
    check_theta,
    make_problem,
)
from hessref.core.rop import curvature_matmat

Array = NDArray[np.float64]


def outputs(model: MLP, theta: ArrayLike, X: ArrayLike) -> Array:
    """Network outputs F = f(θ, X), shape (N, d_L).

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 1], activation="identity")
    >>> hr.outputs(model, np.array([1.0, 2.0, 0.5]), np.array([[1.0, 1.0]]))
    array([[3.5]])
    """
    model = check_model(model)
    theta = check_theta(model, theta)
    X = check_inputs(model, X)
    return forward(model, model._unflatten_unchecked(theta), X).F


def loss(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> float:
    """Loss L(θ) = s Σ_i ℓ(f_i(θ), y_i).

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
    X : array_like, shape (N, d_0)
    y : array_like
        MSE: float targets (N, d_L). Cross-entropy: int labels (N,) in [0, d_L).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 3, 2], activation="tanh")
    >>> theta = np.zeros(model.num_params)
    >>> hr.loss(model, theta, np.ones((4, 2)), np.array([0, 1, 0, 1]), loss="cross_entropy")
    0.6931471805599453
    """
    return problem_loss(make_problem(model, theta, X, y, loss, reduction))


def gradient(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> Array:
    """Gradient ∇L(θ) by backprop, shape (P,).

    δ_L = s r_i, δ_{l-1} = σ′(z_{l-1}) ⊙ W_lᵀ δ_l, ∂L/∂W_l = Σ_i δ_l a_{l-1}ᵀ, ∂L/∂b_l = Σ_i δ_l.
    Arguments as in :func:`loss`.
    """
    return problem_loss_and_gradient(make_problem(model, theta, X, y, loss, reduction))[1]


def problem_loss(p: Problem) -> float:
    """L = s Σ_i ℓ(f_i, y_i) of a validated :class:`~hessref.core.problem.Problem` (one forward).

    The kernel behind :func:`loss`, for callers that validated once and evaluate many
    times (training loops, loss slices); ``p.scale`` is the per-sample weight s.
    """
    F = forward(p.model, p.params, p.X).F
    return float(p.scale * p.loss.at(F, p.y).values.sum())


def problem_loss_and_gradient(p: Problem) -> tuple[float, Array]:
    """(L, ∇L) of a validated Problem from one forward pass and one backprop.

    The kernel behind :func:`gradient`; ∇L has shape (P,). Rows and weight come from
    ``p.X``, ``p.y`` and ``p.scale``, so a minibatch is ``dataclasses.replace(p, X=..., y=...,
    scale=...)``.
    """
    cache = forward(p.model, p.params, p.X)
    out = loss_at(p, cache)  # ℓ and r from one evaluation of the loss at F
    value = float(p.scale * out.values.sum())
    grads = backprop_gradient(p.params, cache, p.scale * out.r)
    return value, p.model._flatten_unchecked(grads)


def jacobian(model: MLP, theta: ArrayLike, X: ArrayLike) -> Array:
    """Per-sample output Jacobians J_i = ∂f_i/∂θ, shape (N, d_L, P).

    Computed by backprop of the d_L unit output covectors for all samples at once.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 1], activation="identity")          # f = w·x + b
    >>> hr.jacobian(model, np.zeros(3), np.array([[3.0, 4.0]]))
    array([[[3., 4., 1.]]])
    """
    model = check_model(model)
    theta = check_theta(model, theta)
    X = check_inputs(model, X)
    params = model._unflatten_unchecked(theta)
    cache = forward(model, params, X)
    N, k = X.shape[0], model.sizes[-1]
    seeds = np.broadcast_to(np.eye(k), (N, k, k))
    return backprop_seeds(model, params, cache, seeds)


def hvp(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    V: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> Array:
    """Exact Hessian-vector product H V by Pearlmutter's R-op.

    Parameters
    ----------
    V : array_like, shape (P,) or (P, K)
        One direction or a block of K directions; a block is computed in one
        batched pass (a few matrix products), not K separate calls.
    Other arguments as in :func:`loss`.

    Returns
    -------
    ndarray, shape (P,) or (P, K), matching V.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([3, 2], activation="identity")
    >>> X = np.eye(3); Y = np.zeros((3, 2)); theta = model.init(rng=0)
    >>> v = np.arange(8.0)
    >>> np.allclose(hr.hvp(model, theta, X, Y, v), hr.hessian(model, theta, X, Y) @ v)
    True
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    V = check_directions(p.model, V)
    out = curvature_matmat(p, V.reshape(p.model.num_params, -1), mode=Curvature.H)
    return out.reshape(V.shape)
