"""Loss slices: the loss along 1-D lines and 2-D planes through θ.

A slice along unit-free directions d_1 (and d_2) is::

    ℓ(α) = L(θ + α d_1),              ℓ(α, β) = L(θ + α d_1 + β d_2),

and its derivatives at the origin are exact curvature quantities:
ℓ''(0) = d_1ᵀ H d_1 and ∂²ℓ/∂α∂β(0, 0) = d_1ᵀ H d_2 (:func:`slice_curvature`,
by one Hessian-vector product). Directions commonly used:

- **eigenvectors** of H (:func:`eigen_directions`): the sharpest and flattest
  directions; along a unit eigenvector u_i, ℓ''(0) = λ_i;
- **random** directions (:func:`random_direction`), optionally *filter-normalized*
  (Li, Xu, Taylor, Studer, Goldstein 2018, arXiv:1712.09913): each row of each
  random weight matrix (the incoming weights of one unit) is rescaled to the norm of
  the same row of θ, and bias entries are set to 0, so slices of networks with
  different weight scales are comparable;
- **interpolation** between two parameter vectors (Goodfellow, Vinyals, Saxe 2015;
  Sagun et al. 2016, 2017): :func:`interpolate_loss` evaluates L((1 − α) θ_a + α θ_b),
  the same line as ``loss_along(model, θ_a, X, y, θ_b − θ_a, α)``
  (:func:`interpolation_direction`) but with exact endpoints. Both evaluate their points
  through one loop (``_losses_at``) on one validated problem.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref import spectrum
from hessref.core.derivatives import problem_loss
from hessref.core.mlp import MLP
from hessref.core.problem import Problem, check_model, check_theta, make_problem
from hessref.core.rop import curvature_matmat
from hessref.core.validation import as_float_array, check_positive_int
from hessref.operators import hessian_operator

Array = NDArray[np.float64]

__all__ = [
    "eigen_directions",
    "interpolate_loss",
    "interpolation_direction",
    "loss_along",
    "random_direction",
    "slice_curvature",
]


def _check_directions(model: MLP, directions: ArrayLike) -> Array:
    D = as_float_array("directions", directions, ndim=(1, 2))
    P = model.num_params
    if D.shape[0] != P or (D.ndim == 2 and D.shape[1] not in (1, 2)):
        raise ValueError(
            f"directions: expected shape (P,) for a 1-D slice or (P, 2) for a 2-D slice with "
            f"P = {P}, got {D.shape}"
        )
    return D.reshape(P) if D.ndim == 2 and D.shape[1] == 1 else D


def loss_along(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    directions: ArrayLike,
    alphas: ArrayLike | tuple[ArrayLike, ArrayLike],
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> Array:
    """The loss on a 1-D line or a 2-D plane through θ.

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
        The origin of the slice.
    X, y : array_like
        Data, as for :func:`hessref.loss`.
    directions : array_like, shape (P,) or (P, 2)
        d_1, or the columns d_1, d_2 (used as given: normalize them yourself if needed).
    alphas : array_like (M,), or a pair of arrays (M_1,), (M_2,) for a 2-D slice
        Coordinates along the directions; a single array is used for both axes of a
        2-D slice.
    loss, reduction : as for :func:`hessref.loss`

    Returns
    -------
    ndarray, shape (M,) or (M_1, M_2)
        ``out[i] = L(θ + α_i d_1)`` or ``out[i, j] = L(θ + α_i d_1 + β_j d_2)``.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([1, 1], activation="identity")          # f = w x + b
    >>> X, Y = np.array([[1.0]]), np.array([[0.0]])
    >>> loss_along(model, [0.0, 0.0], X, Y, [1.0, 1.0], [-1.0, 0.0, 1.0])  # ½ (2α)²
    array([2., 0., 2.])
    """
    problem = make_problem(model, theta, X, y, loss, reduction)
    D = _check_directions(problem.model, directions)
    if D.ndim == 1:
        grids = (as_float_array("alphas", alphas, ndim=1),)
    else:
        pair = alphas if isinstance(alphas, tuple) else (alphas, alphas)
        if len(pair) != 2:
            raise ValueError(f"alphas: expected an array or a pair of arrays, got {len(pair)}")
        grids = tuple(as_float_array(f"alphas[{i}]", a, ndim=1) for i, a in enumerate(pair))
    D = D.reshape(problem.model.num_params, -1)
    shape = tuple(g.size for g in grids)
    points = (
        problem.theta + D @ np.array([grids[k][i] for k, i in enumerate(index)])
        for index in np.ndindex(shape)
    )
    return _losses_at(problem, points, shape)


def interpolate_loss(
    model: MLP,
    theta_a: ArrayLike,
    theta_b: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    loss: str,
    alphas: ArrayLike,
    *,
    reduction: str = "mean",
) -> Array:
    """Loss along the straight line θ(α) = (1 − α) θ_a + α θ_b (Sagun et al. 2016, 2017).

    The convex form makes α = 0 and α = 1 give θ_a and θ_b bit for bit (θ_a + α(θ_b − θ_a)
    would not). Formerly ``hessref.train.interpolate_loss`` (still importable, deprecated).

    Parameters
    ----------
    theta_a, theta_b : array_like, shape (P,)
    alphas : array_like, shape (M,)
        Line coordinates; 0 gives θ_a, 1 gives θ_b, values outside [0, 1] extrapolate.

    Returns
    -------
    ndarray, shape (M,)
        L(θ(α_m)).

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([1, 1], activation="identity")
    >>> X = np.array([[1.0]]); Y = np.array([[0.0]])
    >>> interpolate_loss(model, [1.0, 0.0], [-1.0, 0.0], X, Y, loss="mse", alphas=[0, 0.5, 1])
    array([0.5, 0. , 0.5])
    """
    problem = make_problem(model, theta_a, X, y, loss, reduction)
    theta_b = check_theta(problem.model, theta_b)
    alphas = as_float_array("alphas", alphas, ndim=1)
    points = ((1.0 - alpha) * problem.theta + alpha * theta_b for alpha in alphas)
    return _losses_at(problem, points, alphas.shape)


def _losses_at(problem: Problem, points: Iterable[Array], shape: tuple[int, ...]) -> Array:
    """L at each θ of ``points`` (checked (P,) arrays), in C order into an array of ``shape``."""
    out = np.empty(shape)
    flat = out.reshape(-1)
    for m, point in enumerate(points):
        flat[m] = problem_loss(replace(problem, theta=point, params=problem.model.unflatten(point)))
    return out


def slice_curvature(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    directions: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> Array | float:
    """Second derivatives of the slice at its origin: d_1ᵀ H d_1, or the 2×2 matrix DᵀHD.

    Computed exactly with one batched Hessian-vector product (Pearlmutter's R-op).

    Returns
    -------
    float for directions (P,); ndarray (2, 2) for directions (P, 2), whose entry (a, b)
    is ∂²L(θ + α d_1 + β d_2)/∂a∂b at 0.
    """
    problem = make_problem(model, theta, X, y, loss, reduction)
    D = _check_directions(problem.model, directions)
    D2 = D.reshape(problem.model.num_params, -1)
    M = D2.T @ curvature_matmat(problem, D2, mode="hessian")
    M = 0.5 * (M + M.T)
    return float(M[0, 0]) if D.ndim == 1 else M


def random_direction(
    model: MLP, theta: ArrayLike, rng: Any = None, *, filter_normalized: bool = False
) -> Array:
    """A standard normal direction (P,), optionally filter-normalized.

    With ``filter_normalized`` each row r of each weight matrix W_l of the direction
    (the incoming weights of one unit) is rescaled to ‖W_l[r]‖ of θ, and the bias
    entries are set to 0 (Li et al. 2018, arXiv:1712.09913; see the module docstring).
    """
    model = check_model(model)
    theta = check_theta(model, theta)
    d = np.random.default_rng(rng).standard_normal(model.num_params)
    if not filter_normalized:
        return d
    for l in range(1, model.num_layers + 1):
        shape = (model.sizes[l], model.sizes[l - 1])
        W = d[model.weight_slice(l)].reshape(shape)
        W_theta = theta[model.weight_slice(l)].reshape(shape)
        scale = np.linalg.norm(W_theta, axis=1) / np.linalg.norm(W, axis=1)
        d[model.weight_slice(l)] = (W * scale[:, None]).ravel()
        d[model.bias_slice(l)] = 0.0
    return d


def interpolation_direction(model: MLP, theta_a: ArrayLike, theta_b: ArrayLike) -> Array:
    """D = θ_b − θ_a, so that α = 0 is θ_a and α = 1 is θ_b on ``loss_along(θ_a, d, α)``."""
    model = check_model(model)
    return check_theta(model, theta_b) - check_theta(model, theta_a)


def eigen_directions(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    k: int = 2,
    *,
    which: str = "largest",
    loss: str = "mse",
    reduction: str = "mean",
    rng: Any = 0,
) -> tuple[Array, Array]:
    """The k largest (or smallest) eigenpairs of H(θ), matrix-free, as slice directions.

    Returns
    -------
    values : ndarray (k,)
    vectors : ndarray (P, k)
        Unit eigenvectors (columns); the sign of each is fixed so that its largest-magnitude
        entry is positive (a slice along −u is the mirror image).
    """
    k = check_positive_int("k", k)
    op = hessian_operator(model, theta, X, y, loss=loss, reduction=reduction)
    pairs = spectrum.top_eigenpairs(op, k, which=which, method="lanczos", tol=1e-12, rng=rng)
    V = pairs.vectors.copy()
    signs = np.sign(V[np.abs(V).argmax(axis=0), np.arange(k)])
    return pairs.values, V * np.where(signs == 0, 1.0, signs)
