"""Per-sample losses ℓ(f, y) and their derivatives with respect to the output f.

For N samples with outputs ``F`` of shape (N, k), each loss provides (docs/theory.md §3,
equations (3.1)-(3.4)):

- ``value(F, y)``        ℓ_i, shape (N,)
- ``gradient(F, y)``     r_i = ∇_f ℓ_i, shape (N, k)
- ``hessian(F, y)``      A_i = ∇²_f ℓ_i, shape (N, k, k)
- ``hessian_matvec(F, y, U)``  A_i u_{i,j} for U of shape (N, K, k), without forming A
- ``hessian_factor(F, y)``     B_i with B_iᵀ B_i = A_i, shape (N, k, k); used for G = Σ (B J)ᵀ(B J)

| name | ℓ(f, y) | r | A | B (rows) |
|---|---|---|---|---|
| mse | ½‖f − y‖² | f − y | I | e_c |
| cross_entropy | −log softmax(f)_y | p − e_y | diag(p) − ppᵀ | √p_c (e_c − p) |

The cross-entropy factor rows are Papyan's δ directions (docs/theory.md (3.3), (10.1)):
Σ_c p_c (e_c − p)(e_c − p)ᵀ = diag(p) − ppᵀ because Σ_c p_c = 1.
Softmax and log-softmax are computed stably (no clipping); logits of ±1e4 are fine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_softmax, softmax

Array = NDArray[np.float64]


def _softmax(F: Array) -> Array:
    # exp(f - max) / Σ exp(f - max): stable, and Σ_c p_c = 1 to rounding
    return softmax(F, axis=-1)


# --- mean squared error, ℓ = ½‖f − y‖² -------------------------------------------------


def _mse_value(F: Array, Y: Array) -> Array:
    D = F - Y
    return 0.5 * np.einsum("nk,nk->n", D, D)


def _mse_gradient(F: Array, Y: Array) -> Array:
    return F - Y


def _mse_hessian(F: Array, Y: Array) -> Array:
    N, k = F.shape
    return np.broadcast_to(np.eye(k), (N, k, k)).copy()


def _mse_hessian_matvec(F: Array, Y: Array, U: Array) -> Array:
    return U


# --- softmax cross-entropy, ℓ = −log softmax(f)_y ---------------------------------------


def _ce_value(F: Array, y: NDArray[np.int64]) -> Array:
    logp = log_softmax(F, axis=1)
    return -logp[np.arange(F.shape[0]), y]


def _ce_gradient(F: Array, y: NDArray[np.int64]) -> Array:
    r = _softmax(F)
    r[np.arange(F.shape[0]), y] -= 1.0
    return r


def _ce_hessian(F: Array, y: NDArray[np.int64]) -> Array:
    p = _softmax(F)
    A = -p[:, :, None] * p[:, None, :]
    idx = np.arange(F.shape[1])
    A[:, idx, idx] += p
    return A


def _ce_hessian_matvec(F: Array, y: NDArray[np.int64], U: Array) -> Array:
    # (diag(p) - p pᵀ) u = p ⊙ (u - pᵀu), batched over the K directions of U (N, K, k)
    p = _softmax(F)[:, None, :]
    return p * (U - np.sum(U * p, axis=-1, keepdims=True))


def _mse_factor(F: Array, Y: Array) -> Array:
    return _mse_hessian(F, Y)


def _ce_factor(F: Array, y: NDArray[np.int64]) -> Array:
    p = _softmax(F)
    k = F.shape[1]
    B = np.eye(k)[None, :, :] - p[:, None, :]  # row c: e_c − p
    return B * np.sqrt(p)[:, :, None]  # row c scaled by √p_c


@dataclass(frozen=True)
class Loss:
    """A per-sample loss and its output-space derivatives (see module docstring)."""

    name: str
    value: Callable[..., Array]
    gradient: Callable[..., Array]
    hessian: Callable[..., Array]
    hessian_matvec: Callable[..., Array]
    hessian_factor: Callable[..., Array]
    torch_equivalent: str


LOSSES: dict[str, Loss] = {
    "mse": Loss(
        "mse",
        _mse_value,
        _mse_gradient,
        _mse_hessian,
        _mse_hessian_matvec,
        _mse_factor,
        "nn.MSELoss() equals (2 / d_L) times hessref's mean MSE",
    ),
    "cross_entropy": Loss(
        "cross_entropy",
        _ce_value,
        _ce_gradient,
        _ce_hessian,
        _ce_hessian_matvec,
        _ce_factor,
        "nn.CrossEntropyLoss() equals hessref's mean cross-entropy",
    ),
}

REDUCTIONS = ("mean", "sum")


def get_loss(name: str) -> Loss:
    """Return the registered loss called ``name`` (``"mse"`` or ``"cross_entropy"``).

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the valid names.

    Examples
    --------
    >>> import numpy as np
    >>> get_loss("cross_entropy").hessian(np.zeros((1, 2)), np.array([0]))[0]
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    """
    if not isinstance(name, str) or name not in LOSSES:
        valid = ", ".join(repr(n) for n in LOSSES)
        raise ValueError(f"loss: unknown loss {name!r}; expected one of: {valid}")
    return LOSSES[name]


def reduction_scale(reduction: str, num_samples: int) -> float:
    """Weight of one sample's term: 1/N for ``"mean"``, 1 for ``"sum"``.

    Raises
    ------
    ValueError
        If ``reduction`` is not ``"mean"`` or ``"sum"``.
    """
    if reduction == "mean":
        return 1.0 / num_samples
    if reduction == "sum":
        return 1.0
    raise ValueError(f"reduction: unknown reduction {reduction!r}; expected one of: 'mean', 'sum'")
