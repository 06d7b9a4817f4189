"""Output-space seeds: which per-sample vectors each approximation backpropagates.

Every approximation here is a weighted second moment of backpropagated output vectors
(docs/theory.md (19.1)): with seeds S_i (M, d_L) for sample i and g_{i,m} = J_iᵀ S_{i,m},

    M = s Σ_i Σ_m g_{i,m} g_{i,m}ᵀ,

and the variants differ only in S (docs/theory.md (19.2)):

``"type-2"``
    S_i = the loss Hessian factor B_i (d_L rows, B_iᵀB_i = A_i); M = G exactly.
``"mc"``
    S_i = ∇_f ℓ(f_i, ỹ_{i,t}) / √T for T draws ỹ ∼ p(· | f_i); M is unbiased for G.
``"empirical"``
    S_i = r_i = ∇_f ℓ(f_i, y_i), the true label's gradient; M is the empirical Fisher.
``"fgn"``
    S_i = √(q/(1−q)) (e_y − p), q = p_y (cross-entropy only); M is the FGN (19.9).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import softmax

from hessref.core.mlp import ForwardCache, backprop_seeds, forward
from hessref.core.problem import Problem, make_problem
from hessref.core.validation import check_choice, check_positive_int

Array = NDArray[np.float64]

FISHER_TYPES = ("type-2", "mc", "empirical", "fgn")


@dataclass(frozen=True)
class Seeds:
    """A validated problem, its forward pass and the seeds S (N, M, d_L) of one variant."""

    problem: Problem
    cache: ForwardCache
    S: Array

    @cached_property
    def gradients(self) -> Array:
        """g_{i,m} = J_iᵀ S_{i,m} as rows, shape (N·M, P); M = s · gradientsᵀ gradients."""
        model = self.problem.model
        out = backprop_seeds(model, self.problem.params, self.cache, self.S)
        return out.reshape(-1, model.num_params)


def mc_seeds(problem: Problem, F: Array, num_samples: int, rng) -> Array:
    """∇_f ℓ(f_i, ỹ) / √T for T = ``num_samples`` draws from the model's distribution.

    Cross-entropy: ỹ = c ∼ softmax(f_i), gradient p_i − e_c. MSE read as N(f_i, I):
    ỹ = f_i + ε, gradient −ε. E[∇∇ᵀ] = A_i in both cases (docs/theory.md (19.8)).
    """
    gen = np.random.default_rng(rng)
    N, k = F.shape
    if problem.loss.name == "cross_entropy":
        p = softmax(F, axis=1)
        cdf = np.cumsum(p, axis=1)
        u = gen.random((N, num_samples))
        classes = np.minimum((u[:, :, None] >= cdf[:, None, :]).sum(axis=2), k - 1)
        S = p[:, None, :] - np.eye(k)[classes]
    else:
        S = -gen.standard_normal((N, num_samples, k))
    return S / np.sqrt(num_samples)


def fgn_seeds(problem: Problem, F: Array) -> Array:
    """The one FGN row per sample, √(q/(1−q)) (e_y − p) with q = p_y (docs/theory.md (19.9)).

    1 − q is summed from the other classes' probabilities (no cancellation); where it
    underflows to 0 the row is 0, the limit of √(q(1−q))·O(1) as q → 1.
    """
    y = problem.y
    u = -problem.loss.gradient(F, y)  # e_y − p
    rows = np.arange(len(y))
    p = u.copy()
    p[rows, y] = 0.0
    rest = -p.sum(axis=1)  # 1 − q = Σ_{c ≠ y} p_c
    q = 1.0 - rest
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(rest > 0, np.sqrt(q / np.where(rest > 0, rest, 1.0)), 0.0)
    return (w[:, None] * u)[:, None, :]


def make_seeds(
    model,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    loss: str,
    reduction: str,
    fisher_type: str,
    num_samples: int = 1,
    rng=None,
) -> Seeds:
    """Validate the inputs (as ``hr.gauss_newton`` does) and build the seeds of ``fisher_type``."""
    problem = make_problem(model, theta, X, y, loss, reduction)
    check_choice("fisher_type", fisher_type, FISHER_TYPES)
    cache = forward(problem.model, problem.params, problem.X)
    F = cache.F
    if fisher_type == "type-2":
        S = problem.loss.hessian_factor(F, problem.y)
    elif fisher_type == "empirical":
        S = problem.loss.gradient(F, problem.y)[:, None, :]
    elif fisher_type == "mc":
        S = mc_seeds(problem, F, check_positive_int("num_samples", num_samples), rng)
    else:
        if problem.loss.name != "cross_entropy":
            raise ValueError(
                f"loss: fgn is defined for loss='cross_entropy' only, got {loss!r}; under MSE "
                "A = I has no true-vs-rest part (use block_diagonal or gauss_newton)"
            )
        S = fgn_seeds(problem, F)
    return Seeds(problem, cache, np.ascontiguousarray(S, dtype=np.float64))
