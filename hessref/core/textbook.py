"""H, G and R of an MLP the slow, obvious way: a second implementation for checking.

This module is written the way a student derives the Hessian (docs/theory.md, §8), one
sample at a time, with explicit layer Jacobians and the second-order chain rule:

    ∂z_l/∂θ = W_l ∂a_{l-1}/∂θ + E_l                                         (8.1)
    ∂²z_l[o]/∂θ_p∂θ_q = Σ_i W_l[o,i] ∂²a_{l-1}[i] + cross terms of W_l      (8.2)
    ∂a_l = σ′ ∂z_l,   ∂²a_l = σ″ ∂z_l ∂z_lᵀ + σ′ ∂²z_l                       (8.3)

then G = s Σ_i J_iᵀ A_i J_i (5.2) and R = s Σ_i Σ_c r_{i,c} ∇²f_{i,c} (5.3), with r and A
written out again from the loss definitions (3.1), (3.2). It shares nothing with the fast
engine (:mod:`hessref.core.dense`, :mod:`hessref.core.rop`) except the model's layout and
its activation triple (σ, σ′, σ″), which is checked separately against mpmath.

It is deliberately NOT fast: the cost is O(N · P² · (P + Σ_l d_l)) with Python loops over samples,
layers and units. Use :func:`hessref.hessian` and :func:`hessref.gauss_newton` for real work;
this module refuses problems beyond about a second of work.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.mlp import MLP
from hessref.core.problem import make_problem

Array = NDArray[np.float64]

MAX_PARAMS = 2000
#: N · P² · (P + Σ_l d_l) multiply-adds: about one to two seconds (measured, 2-core CPU).
MAX_WORK = 2e8


def _check_size(N: int, model: MLP) -> None:
    """Refuse problems the textbook loops would take more than about a second on."""
    P = model.num_params
    work = N * P * P * (P + sum(model.sizes[1:]))
    if P > MAX_PARAMS or work > MAX_WORK:
        raise ValueError(
            f"textbook_curvature: N = {N} samples and P = {P} parameters need about "
            f"{work:.2g} multiply-adds (limits: P <= {MAX_PARAMS}, "
            f"N·P²·(P + Σd_l) <= {MAX_WORK:.0e}); "
            "this slow reference is for small checks only. Use hessref.hessian / "
            "hessref.gauss_newton (or the matrix-free operators) instead."
        )


def _output_derivatives(loss: str, f: Array, y: ArrayLike) -> tuple[Array, Array]:
    """The output gradient r = ∇_f ℓ and Hessian A = ∇²_f ℓ of one sample, from (3.1) and (3.2)."""
    k = f.shape[0]
    if loss == "mse":
        return f - y, np.eye(k)
    e = np.exp(f - f.max())
    p = e / e.sum()
    r = p.copy()
    r[int(y)] -= 1.0
    return r, np.diag(p) - np.outer(p, p)


def _one_sample(model: MLP, params: list, x: Array) -> tuple[Array, Array, Array]:
    """Output f (d_L,), Jacobian J (d_L, P) and Hessians ∇²f_c (d_L, P, P) of one sample."""
    P = model.num_params
    act = model.activation
    a = x
    da = np.zeros((x.shape[0], P))  # ∂a_0/∂θ = 0
    d2a = np.zeros((x.shape[0], P, P))  # ∂²a_0/∂θ² = 0
    for l, (W, b) in enumerate(params, start=1):
        d_out, d_in = W.shape
        z = W @ a + b
        w0, b0 = model.weight_slice(l).start, model.bias_slice(l).start
        # (8.1): the chain through a_{l-1}, plus the explicit dependence E_l on W_l and b_l
        dz = W @ da
        d2z = np.einsum("oi,ipq->opq", W, d2a)
        for o in range(d_out):
            cols = w0 + o * d_in + np.arange(d_in)  # θ indices of W_l[o, :]
            dz[o, cols] += a
            dz[o, b0 + o] += 1.0
            # (8.2): ∂W_l[o,i]/∂θ_p · ∂a_{l-1}[i]/∂θ_q and its transpose
            d2z[o, cols, :] += da
            d2z[o, :, cols] += da
        if l == model.num_layers:
            return z, dz, d2z
        s1, s2 = act.df(z), act.d2f(z)
        # (8.3): second-order chain rule through σ
        d2a = s2[:, None, None] * np.einsum("op,oq->opq", dz, dz) + s1[:, None, None] * d2z
        da = s1[:, None] * dz
        a = act.f(z)
    raise AssertionError("unreachable")  # pragma: no cover


def textbook_curvature(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> tuple[Array, Array, Array]:
    """Exact (H, G, R), each (P, P), by the per-sample second-order chain rule (§8).

    H = G + R with G = s Σ_i J_iᵀ A_i J_i and R = s Σ_i Σ_c r_{i,c} ∇²_θ f_{i,c}
    (docs/theory.md, equations (5.1)-(5.3)), s = 1/N ("mean") or 1 ("sum").

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
    X : array_like, shape (N, d_0)
    y : array_like
        MSE: float targets (N, d_L). Cross-entropy: int labels (N,).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}

    Returns
    -------
    H, G, R : ndarray, shape (P, P)
        G and R are accumulated separately; H is their sum (this module has no other H).

    Raises
    ------
    ValueError
        If P > 2,000 or N·P²·(P + Σ_l d_l) > 2e8 (about a second): use :func:`hessref.hessian`.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 3, 1], activation="tanh")
    >>> theta = model.init(rng=0); X = np.ones((2, 2)); Y = np.zeros((2, 1))
    >>> H, G, R = textbook_curvature(model, theta, X, Y)
    >>> bool(np.allclose(H, hr.hessian(model, theta, X, Y), rtol=0, atol=1e-14))
    True
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    _check_size(p.num_samples, p.model)
    P = p.model.num_params
    G, R = np.zeros((P, P)), np.zeros((P, P))
    for i in range(p.num_samples):
        f, J, hess_f = _one_sample(p.model, p.params, p.X[i])
        r, A = _output_derivatives(p.loss.name, f, p.y[i])
        G += p.scale * (J.T @ A @ J)
        R += p.scale * np.einsum("c,cpq->pq", r, hess_f)
    return G + R, G, R
