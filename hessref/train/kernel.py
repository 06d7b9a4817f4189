"""The unchecked loss-and-gradient kernel of the training loop.

:func:`hessref.train.train` checks its inputs once (:func:`hessref.core.problem.make_problem`)
and then evaluates L(θ_t) and ∇L(θ_t) a thousand times; every evaluation here trusts
its :class:`~hessref.core.problem.Problem` and θ (no dtype, shape or finite checks,
no copies of θ into parameter lists), and takes the loss's value and its output
gradient δ_L from one pass over the outputs F::

    L = s Σ_i ℓ(f_i, y_i),    δ_L = s ∂ℓ/∂f,    ∇L = backprop(δ_L)  (docs/theory.md §4)

For cross-entropy, one exponential serves both: with z = f − max_c f_c,
ℓ = log Σ_c e^{z_c} − z_y and ∂ℓ/∂f = e^{z} / Σ_c e^{z_c} − e_y. The result equals
:func:`hessref.core.derivatives.problem_loss_and_gradient` to round-off (the tests
compare them); the forward pass and backpropagation are the core's own.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hessref.core.mlp import MLP, Params, backprop_gradient, forward
from hessref.core.problem import Problem

Array = NDArray[np.float64]


def params_view(model: MLP, theta: Array) -> Params:
    """``[(W_l, b_l)]`` as views into a θ that was checked once already (no scan, no copy)."""
    sizes = model.sizes
    return [
        (theta[model.weight_slice(l)].reshape(sizes[l], sizes[l - 1]), theta[model.bias_slice(l)])
        for l in range(1, model.num_layers + 1)
    ]


def output_value_and_gradient(problem: Problem, F: Array) -> tuple[float, Array]:
    """(L, δ_L) = (s Σ_i ℓ(f_i, y_i), s ∂ℓ/∂F) from the outputs F (N, d_L), one pass over F."""
    s, y = problem.scale, problem.y
    if problem.loss.name != "cross_entropy":
        return float(s * problem.loss.value(F, y).sum()), s * problem.loss.gradient(F, y)
    rows = np.arange(F.shape[0])
    Z = F - F.max(axis=1, keepdims=True)  # stable: every exponent ≤ 0
    E = np.exp(Z)
    S = E.sum(axis=1)
    value = float(s * np.sum(np.log(S) - Z[rows, y]))
    E /= S[:, None]  # softmax(F)
    E[rows, y] -= 1.0
    E *= s
    return value, E


def loss_and_gradient(problem: Problem) -> tuple[float, Array]:
    """(L, ∇L (P,)) of a checked problem: one forward pass, one backprop, no validation."""
    model = problem.model
    cache = forward(model, problem.params, problem.X)
    value, delta = output_value_and_gradient(problem, cache.F)
    grad = np.empty(model.num_params)
    for l, (gW, gb) in enumerate(backprop_gradient(problem.params, cache, delta), start=1):
        grad[model.weight_slice(l)] = gW.ravel()
        grad[model.bias_slice(l)] = gb
    return value, grad


__all__ = ["loss_and_gradient", "output_value_and_gradient", "params_view"]
