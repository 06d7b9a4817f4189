"""Per-sample losses ℓ(f, y) and their derivatives with respect to the output f.

For N samples with outputs ``F`` of shape (N, k), each loss provides (docs/theory.md §3,
equations (3.1)-(3.4)):

- ``value(F, y)``        ℓ_i, shape (N,)
- ``gradient(F, y)``     r_i = ∇_f ℓ_i, shape (N, k)
- ``hessian(F, y)``      A_i = ∇²_f ℓ_i, shape (N, k, k)
- ``hessian_matvec(F, y, U)``  A_i u_{i,j} for U of shape (N, K, k), without forming A
- ``hessian_factor(F, y)``     B_i with B_iᵀ B_i = A_i, shape (N, k, k); used for G = Σ (B J)ᵀ(B J)
- ``at(F, y)``           all of the above at one F as a :class:`LossAt` (the softmax of
  cross-entropy computed once); what the engine uses

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

Array = NDArray[np.float64]


def _shifted_exp(F: Array) -> tuple[Array, Array, Array]:
    """``(F − max_c f_c, exp(F − max_c f_c), Σ_c exp(f_c − max))`` per row (N, k), (N, k), (N, 1).

    The one exp pass behind both softmax p = exp / Σ and log-softmax = shifted − log Σ,
    in the arithmetic of ``scipy.special.softmax`` / ``log_softmax`` (the same bits for
    finite F); stable, no clipping, so logits of ±1e4 are fine.
    """
    shifted = F - F.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return shifted, e, e.sum(axis=-1, keepdims=True)


def _softmax(F: Array) -> Array:
    _, e, total = _shifted_exp(F)
    return e / total  # Σ_c p_c = 1 to rounding


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


def _mse_factor(F: Array, Y: Array) -> Array:
    return _mse_hessian(F, Y)


def _mse_at(F: Array, Y: Array) -> LossAt:
    r = _mse_gradient(F, Y)  # = F − Y = D, so ℓ = ½‖r‖²
    return LossAt("mse", F, Y, 0.5 * np.einsum("nk,nk->n", r, r), r, None)


# --- softmax cross-entropy, ℓ = −log softmax(f)_y ---------------------------------------


def _largest_and_rest(p: Array) -> tuple[Array, Array, Array]:
    """(rows, m, 1 − p_m) with m = argmax_c p_c and 1 − p_m = Σ_{c≠m} p_c summed directly.

    Near saturation p_m = 1 − δ and the float 1 − p_m has an absolute error of ε, a
    relative error of ε/δ; every other p_c ≤ ½, so 1 − p_c is accurate as computed.
    """
    rows = np.arange(p.shape[0])
    m = p.argmax(axis=1)
    others = p.copy()
    others[rows, m] = 0.0
    return rows, m, others.sum(axis=1)


def _ce_residual(p: Array, y: NDArray[np.int64]) -> Array:
    r = p.copy()
    r[np.arange(p.shape[0]), y] -= 1.0
    rows, m, rest = _largest_and_rest(p)
    true_is_largest = m == y
    r[rows[true_is_largest], m[true_is_largest]] = -rest[true_is_largest]  # p_y − 1 = −Σ_{c≠y} p_c
    return r


def _ce_hessian_of(p: Array) -> Array:
    A = -p[:, :, None] * p[:, None, :]
    idx = np.arange(p.shape[1])
    A[:, idx, idx] += p
    rows, m, rest = _largest_and_rest(p)
    A[rows, m, m] = p[rows, m] * rest  # p_m − p_m² without the cancellation
    return A


def _ce_matvec_of(p: Array, U: Array) -> Array:
    # (diag(p) - p pᵀ) u = p ⊙ (u - pᵀu), batched over the K directions of U (N, K, k)
    P = p[:, None, :]
    out = P * (U - np.sum(U * P, axis=-1, keepdims=True))
    # the largest class's entry, p_m((1 − p_m) u_m − Σ_{c≠m} p_c u_c), without the
    # cancellation of u_m − pᵀu when p_m ≈ 1 (the others' entries carry no such loss)
    rows, m, rest = _largest_and_rest(p)
    others = p.copy()
    others[rows, m] = 0.0
    u_m = U[rows, :, m]  # (N, K)
    out[rows, :, m] = p[rows, m][:, None] * (
        rest[:, None] * u_m - np.einsum("nkc,nc->nk", U, others)
    )
    return out


def _ce_factor_of(p: Array) -> Array:
    k = p.shape[1]
    B = np.eye(k)[None, :, :] - p[:, None, :]  # row c: e_c − p
    rows, m, rest = _largest_and_rest(p)
    B[rows, m, m] = rest  # 1 − p_m, summed from the other classes
    return B * np.sqrt(p)[:, :, None]  # row c scaled by √p_c


def _ce_at(F: Array, y: NDArray[np.int64]) -> LossAt:
    shifted, e, total = _shifted_exp(F)  # ONE exp pass for ℓ, r and every A product
    p = e / total
    # ℓ_i = −log softmax(f_i)_{y_i} = −(shifted[i, y_i] − log Σ_c exp)
    values = -(shifted[np.arange(F.shape[0]), y] - np.log(total[:, 0]))
    return LossAt("cross_entropy", F, y, values, _ce_residual(p, y), p)


def _ce_value(F: Array, y: NDArray[np.int64]) -> Array:
    return _ce_at(F, y).values


def _ce_gradient(F: Array, y: NDArray[np.int64]) -> Array:
    return _ce_residual(_softmax(F), y)


def _ce_hessian(F: Array, y: NDArray[np.int64]) -> Array:
    return _ce_hessian_of(_softmax(F))


def _ce_hessian_matvec(F: Array, y: NDArray[np.int64], U: Array) -> Array:
    return _ce_matvec_of(_softmax(F), U)


def _ce_factor(F: Array, y: NDArray[np.int64]) -> Array:
    return _ce_factor_of(_softmax(F))


@dataclass(frozen=True)
class LossAt:
    """A loss evaluated ONCE at outputs F (N, k) and targets y: ℓ_i, r_i and what A needs.

    Built by ``Loss.at(F, y)``; the engine (gradient, R-op, dense blocks) takes every
    output-space quantity of one F from here, so the softmax of a chunk is computed once.

    Attributes
    ----------
    name : str
        The loss's name.
    F, y : ndarray
        The outputs and targets it was evaluated at.
    values : ndarray, shape (N,)
        ℓ_i (unscaled).
    r : ndarray, shape (N, k)
        r_i = ∇_f ℓ_i.
    probs : ndarray, shape (N, k), or None
        softmax(f_i) for cross-entropy (A_i = diag(p) − ppᵀ); None for MSE (A_i = I).
    """

    name: str
    F: Array
    y: NDArray
    values: Array
    r: Array
    probs: Array | None

    def hessian(self) -> Array:
        """A_i = ∇²_f ℓ_i, shape (N, k, k)."""
        if self.probs is None:
            return _mse_hessian(self.F, self.y)
        return _ce_hessian_of(self.probs)

    def hessian_matvec(self, U: Array) -> Array:
        """A_i u_{i,j} for U of shape (N, K, k), without forming A."""
        return U if self.probs is None else _ce_matvec_of(self.probs, U)

    def hessian_factor(self) -> Array:
        """B_i with B_iᵀ B_i = A_i, shape (N, k, k)."""
        if self.probs is None:
            return _mse_factor(self.F, self.y)
        return _ce_factor_of(self.probs)


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
    at: Callable[..., LossAt]


LOSSES: dict[str, Loss] = {
    "mse": Loss(
        "mse",
        _mse_value,
        _mse_gradient,
        _mse_hessian,
        _mse_hessian_matvec,
        _mse_factor,
        "nn.MSELoss() equals (2 / d_L) times hessref's mean MSE",
        _mse_at,
    ),
    "cross_entropy": Loss(
        "cross_entropy",
        _ce_value,
        _ce_gradient,
        _ce_hessian,
        _ce_hessian_matvec,
        _ce_factor,
        "nn.CrossEntropyLoss() equals hessref's mean cross-entropy",
        _ce_at,
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
