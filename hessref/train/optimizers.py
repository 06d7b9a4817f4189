"""Update rules for :func:`hessref.train.train`: gradient descent, sign descent and Muon.

Every rule keeps an optional heavy-ball buffer m_t = β m_{t−1} + g_t (m_0 = g_0; β = 0
gives the plain rule) and turns it into a step Δ_t with θ_{t+1} = θ_t − η Δ_t:

=========  ====================================================================
``"gd"``   Δ = m (gradient descent; SGD when ``train`` draws minibatches)
``"sign"`` Δ = sign(m) elementwise, sign(0) = 0 (sign descent; SignSGD on minibatches,
           "signum" with momentum)
``"muon"`` for each weight matrix W_l (d_l × d_{l−1}): Δ_{W_l} = U Vᵀ, the orthogonal
           polar factor of M_l = U Σ Vᵀ (thin SVD, computed exactly, not the
           Newton–Schulz approximation used for speed in practice); biases, and
           weight layers not selected, use the base rule Δ = m
=========  ====================================================================

U Vᵀ has orthonormal rows (d_l ≤ d_{l−1}) or columns (d_l ≥ d_{l−1}); all its singular
values are 1, so Muon moves every singular direction of the momentum by the same
amount η. Zero singular values of M_l are completed by the SVD's own singular vectors
(the polar factor of a rank-deficient matrix is not unique; this choice is
deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hessref.core.mlp import MLP

Array = NDArray[np.float64]

OPTIMIZERS = ("gd", "sgd", "sign", "signsgd", "muon")


def polar_factor(M: Array) -> Array:
    """Orthogonal polar factor U Vᵀ of M = U Σ Vᵀ (thin SVD), shape of M.

    Examples
    --------
    >>> O = polar_factor(np.array([[3.0, 0.0], [0.0, -0.5]]))
    >>> O
    array([[ 1.,  0.],
           [ 0., -1.]])
    """
    U, _, Vt = np.linalg.svd(M, full_matrices=False)
    return U @ Vt


@dataclass(frozen=True)
class Optimizer:
    """An update rule (see the module docstring).

    Parameters
    ----------
    name : {"gd", "sign", "muon"}
        ``"sgd"`` is accepted for ``"gd"`` and ``"signsgd"`` for ``"sign"``: whether the
        gradient is full-batch or a minibatch estimate is decided by ``train``'s
        ``batch_size``.
    momentum : float
        Heavy-ball coefficient β in [0, 1).
    muon_layers : sequence of int, optional
        Muon only: the (1-based) layers whose weight matrix is orthogonalized; default
        all. Each selected W_l must be a true matrix (both dimensions ≥ 2).
    """

    name: str = "gd"
    momentum: float = 0.0
    muon_layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        aliases = {"sgd": "gd", "signsgd": "sign"}
        if not isinstance(self.name, str) or self.name.lower() not in OPTIMIZERS:
            raise ValueError(
                f"optimizer: unknown optimizer {self.name!r}; expected one of "
                f"{', '.join(repr(o) for o in OPTIMIZERS)} or an hessref.train.Optimizer"
            )
        object.__setattr__(self, "name", aliases.get(self.name.lower(), self.name.lower()))
        beta = self.momentum
        ok = isinstance(beta, (int, float, np.integer, np.floating)) and not isinstance(beta, bool)
        if not ok or not np.isfinite(beta) or not 0.0 <= beta < 1.0:
            raise ValueError(f"momentum: expected a number in [0, 1), got {beta!r}")
        if self.muon_layers is not None:
            if self.name != "muon":
                raise ValueError(
                    f"muon_layers: only used by optimizer 'muon', got optimizer {self.name!r}"
                )
            object.__setattr__(self, "muon_layers", tuple(int(l) for l in self.muon_layers))


def get_optimizer(optimizer: str | Optimizer) -> Optimizer:
    """Normalize ``train``'s ``optimizer`` argument (a name or an :class:`Optimizer`)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    return Optimizer(optimizer)


class UpdateRule:
    """The state of one optimizer run on one model: momentum buffer and step directions."""

    def __init__(self, optimizer: Optimizer, model: MLP) -> None:
        self.optimizer = optimizer
        self.model = model
        self.buffer: Array | None = None
        self.layers: Sequence[int] = ()
        if optimizer.name == "muon":
            self.layers = _muon_layers(optimizer, model)

    def direction(self, grad: Array) -> Array:
        """Δ_t from the gradient estimate g_t, shape (P,); updates the momentum buffer."""
        beta = self.optimizer.momentum
        if beta > 0.0:
            self.buffer = grad.copy() if self.buffer is None else beta * self.buffer + grad
            m = self.buffer
        else:
            m = grad
        name = self.optimizer.name
        if name == "gd":
            return m.copy()
        if name == "sign":
            return np.sign(m)
        step = m.copy()
        for l in self.layers:
            s = self.model.weight_slice(l)
            shape = (self.model.sizes[l], self.model.sizes[l - 1])
            step[s] = polar_factor(m[s].reshape(shape)).ravel()
        return step


def _muon_layers(optimizer: Optimizer, model: MLP) -> tuple[int, ...]:
    layers = optimizer.muon_layers
    if layers is None:
        layers = tuple(range(1, model.num_layers + 1))
    for l in layers:
        if not 1 <= l <= model.num_layers:
            raise ValueError(
                f"muon_layers: expected layers in 1..{model.num_layers} (1-based), got {l}"
            )
        shape = (model.sizes[l], model.sizes[l - 1])
        if min(shape) < 2:
            raise ValueError(
                f"optimizer: Muon needs 2-D weight matrices, but W{l} of {model!r} has shape "
                f"{shape}, effectively a 1-D weight (its polar factor is just g/‖g‖); pass "
                "Optimizer('muon', muon_layers=[...]) listing only layers with both "
                "dimensions >= 2 (the others then use the gradient-descent rule)"
            )
    return tuple(layers)
