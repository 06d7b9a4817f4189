"""A validated curvature problem: model, θ, data (X, y), loss and reduction.

``make_problem`` is where the public curvature functions check their inputs (with
the helpers of :mod:`hessref.core.validation`; validation happens once, at the
boundary), and :meth:`Problem.at` checks a new θ for a problem already built. Engines
receive a ``Problem`` and trust it: they split θ with ``MLP._unflatten_unchecked`` and
assemble results with ``MLP._flatten_unchecked``, never re-validating.
``Problem.chunks`` splits the data into row chunks that keep the *global* per-sample
weight (1/N for the mean), so sums over chunks are exact for ragged chunkings too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.losses import REDUCTIONS, Loss, get_loss, reduction_scale
from hessref.core.mlp import MLP, Params
from hessref.core.validation import as_float_array, as_int_labels, check_choice, check_positive_int

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Problem:
    """Checked inputs of a curvature computation.

    Attributes
    ----------
    model : MLP
    theta : ndarray (P,)
    params : list of (W_l, b_l), views into ``theta``
    X : ndarray (N, d_0)
    y : ndarray, (N, d_L) float targets (MSE) or (N,) int labels (cross-entropy)
    loss : Loss
    scale : float
        Weight of each sample's term: 1/N_total for ``"mean"``, 1 for ``"sum"``.
    """

    model: MLP
    theta: Array
    params: Params
    X: Array
    y: NDArray
    loss: Loss
    scale: float

    @property
    def num_samples(self) -> int:
        """N, the number of rows of X (in this chunk)."""
        return self.X.shape[0]

    def at(self, theta: ArrayLike) -> Problem:
        """The same problem at another θ: θ is checked here, once (finite float64 (P,)).

        ``params`` are views into the checked θ; the engine trusts them from then on.

        Examples
        --------
        >>> import numpy as np, hessref as hr
        >>> model = hr.MLP([2, 2]); X = np.ones((3, 2)); Y = np.zeros((3, 2))
        >>> p = make_problem(model, model.init(rng=0), X, Y)
        >>> q = p.at(np.zeros(model.num_params))
        >>> float(q.params[0][0].sum()), q.X is p.X
        (0.0, True)
        """
        return self._at_unchecked(check_theta(self.model, theta))

    def _at_unchecked(self, theta: Array) -> Problem:
        """:meth:`at` for a θ the caller already checked (an engine's own iterate)."""
        return replace(self, theta=theta, params=self.model._unflatten_unchecked(theta))

    def chunks(self, batch_size: int | None) -> Iterator[Problem]:
        """Yield row chunks of at most ``batch_size`` samples (all rows if None), same scale."""
        N = self.num_samples
        step = N if batch_size is None else batch_size
        for start in range(0, N, step):
            yield replace(self, X=self.X[start : start + step], y=self.y[start : start + step])


def check_model(model: object) -> MLP:
    """Raise ``TypeError`` unless ``model`` is an :class:`MLP`."""
    if not isinstance(model, MLP):
        raise TypeError(
            f"model: expected a hessref.MLP, got {type(model).__name__}; "
            "build one with hessref.MLP([d_0, ..., d_L], activation=...)"
        )
    return model


def check_theta(model: MLP, theta: ArrayLike) -> Array:
    """Return θ as a finite float64 vector of length P, or raise a clear error."""
    theta = as_float_array("theta", theta)
    if theta.shape != (model.num_params,):
        raise ValueError(
            f"theta: expected shape ({model.num_params},) = P for {model!r}, got {theta.shape}; "
            "get a valid vector from model.init(rng) or model.flatten(params)"
        )
    return theta


def check_inputs(model: MLP, X: ArrayLike) -> Array:
    """Return X as a finite float64 (N, d_0) array with N ≥ 1, or raise a clear error."""
    X = as_float_array("X", X)
    d0 = model.sizes[0]
    if X.ndim != 2 or X.shape[1] != d0:
        hint = "; for a single sample use X[None, :]" if X.ndim == 1 else ""
        raise ValueError(
            f"X: expected a 2-D array of shape (N, {d0}) (samples as rows, d_0 = {d0}), "
            f"got shape {X.shape}{hint}"
        )
    if X.shape[0] == 0:
        raise ValueError("X: expected at least one sample (N >= 1), got N = 0")
    return X


def check_targets(model: MLP, loss: Loss, y: ArrayLike, num_samples: int) -> NDArray:
    """Check targets for ``loss``: float (N, d_L) for MSE, int labels (N,) for cross-entropy."""
    k = model.sizes[-1]
    if loss.name == "cross_entropy":
        if k == 1:
            raise ValueError(
                f"loss: cross_entropy needs d_L >= 2 outputs, got {model!r} with d_L = 1; "
                "softmax of one logit is 1, so the loss, gradient and Hessian are identically "
                "zero. Use two logits (d_L = 2, labels 0/1) or loss='mse'"
            )
        return as_int_labels("y", y, num_samples, k)
    Y = as_float_array("y", y)
    if Y.shape != (num_samples, k):
        raise ValueError(
            f"y: mse expects float targets of shape (N, d_L) = ({num_samples}, {k}), "
            f"got shape {Y.shape}"
            + ("; reshape with y.reshape(-1, 1)" if Y.shape == (num_samples,) and k == 1 else "")
        )
    return Y


def make_problem(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    loss: str = "mse",
    reduction: str = "mean",
) -> Problem:
    """Validate the inputs of a public call and bundle them (see module docstring)."""
    model = check_model(model)
    loss_fn = get_loss(loss)
    check_choice("reduction", reduction, REDUCTIONS)
    theta = check_theta(model, theta)
    X = check_inputs(model, X)
    Y = check_targets(model, loss_fn, y, X.shape[0])
    scale = reduction_scale(reduction, X.shape[0])
    # θ was checked just above: split it without a second validation pass
    return Problem(model, theta, model._unflatten_unchecked(theta), X, Y, loss_fn, scale)


def check_directions(model: MLP, V: ArrayLike) -> Array:
    """Return V as finite float64 (P,) or (P, K), or raise a clear error."""
    V = as_float_array("V", V, ndim=(1, 2))
    if V.shape[0] != model.num_params:
        raise ValueError(
            f"V: expected shape (P,) or (P, K) with P = {model.num_params}, got {V.shape}"
        )
    if V.ndim == 2:
        check_positive_int("V.shape[1] (number of directions K)", V.shape[1])
    return V
