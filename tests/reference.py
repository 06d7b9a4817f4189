"""An independent reference: the same MLP and losses written in ``autograd.numpy``.

Nothing here imports hessref's engine; only the documented layout convention
(θ = [W_1.ravel(), b_1, ...], W_l of shape (d_l, d_{l-1})) and the loss
definitions of docs/theory.md §1-§3 are shared. autograd's reverse-over-reverse then gives
an independent gradient, Hessian, Jacobian and per-output Hessians.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as np

LEAKY = 0.01

ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": anp.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + anp.exp(-z)),
    "relu": lambda z: anp.where(z > 0, z, 0.0 * z),
    "leaky_relu": lambda z: anp.where(z > 0, z, LEAKY * z),
    "softplus": lambda z: anp.logaddexp(0.0, z),
    "gelu": lambda z: 0.5 * z * (1.0 + asp.erf(z / anp.sqrt(2.0))),
    # PyTorch's nn.Softplus(beta=1, threshold=20)
    "softplus_torch": lambda z: anp.where(z > 20.0, z, anp.logaddexp(0.0, z)),
}
SMOOTH = ("identity", "tanh", "sigmoid", "softplus", "gelu")


def unpack(sizes, theta):
    """Split θ into [(W_l, b_l)] following the documented layout."""
    params, pos = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = anp.reshape(theta[pos : pos + d_out * d_in], (d_out, d_in))
        pos += d_out * d_in
        b = theta[pos : pos + d_out]
        pos += d_out
        params.append((W, b))
    return params


def outputs(sizes, activation, theta, X):
    """f(θ, X), shape (N, d_L)."""
    act = ACTIVATIONS[activation]
    A = X
    params = unpack(sizes, theta)
    for l, (W, b) in enumerate(params, start=1):
        Z = anp.dot(A, W.T) + b
        A = act(Z) if l < len(params) else Z
    return A


def per_sample_loss(F, y, loss):
    """ℓ_i for all samples (MSE: ½‖f − y‖²; CE: −log softmax(f)_y)."""
    if loss == "mse":
        return 0.5 * anp.sum((F - y) ** 2, axis=1)
    logp = F - asp.logsumexp(F, axis=1, keepdims=True)
    onehot = np.eye(F.shape[1])[y]
    return -anp.sum(logp * onehot, axis=1)


def loss_fn(sizes, activation, X, y, loss="mse", reduction="mean"):
    """θ ↦ L(θ) as an autograd-differentiable function."""

    def L(theta):
        total = anp.sum(per_sample_loss(outputs(sizes, activation, theta, X), y, loss))
        return total / X.shape[0] if reduction == "mean" else total

    return L


def gradient(sizes, activation, theta, X, y, loss="mse", reduction="mean"):
    return autograd.grad(loss_fn(sizes, activation, X, y, loss, reduction))(theta)


def hessian(sizes, activation, theta, X, y, loss="mse", reduction="mean"):
    return autograd.hessian(loss_fn(sizes, activation, X, y, loss, reduction))(theta)


def jacobian(sizes, activation, theta, X):
    """(N, d_L, P)."""
    J = autograd.jacobian(lambda t: outputs(sizes, activation, t, X))(theta)
    return np.asarray(J)


def gauss_newton(sizes, activation, theta, X, y, loss="mse", reduction="mean"):
    """G = s Σ_i J_iᵀ A_i J_i with A_i from autograd's Hessian of ℓ in f (independent of hessref)."""
    J = jacobian(sizes, activation, theta, X)
    F = outputs(sizes, activation, theta, X)
    N = X.shape[0]
    A = np.stack(
        [
            autograd.hessian(lambda f, i=i: per_sample_loss(f[None, :], y[i : i + 1], loss)[0])(
                F[i]
            )
            for i in range(N)
        ]
    )
    G = np.einsum("nkp,nkl,nlq->pq", J, A, J)
    return G / N if reduction == "mean" else G


def output_gradients(sizes, activation, theta, X, y, loss="mse"):
    """r_i = ∇_f ℓ(f_i, y_i) for all samples, shape (N, d_L), by autograd."""
    F = outputs(sizes, activation, theta, X)
    return autograd.elementwise_grad(lambda F_: anp.sum(per_sample_loss(F_, y, loss)))(F)


def residual(sizes, activation, theta, X, y, loss="mse", reduction="mean"):
    """R = s Σ_i Σ_c r_{i,c} ∇²_θ f_{i,c} (docs/theory.md (5.3)), not as H − G.

    With the residuals r frozen at θ, R = s ∇²_θ [Σ_i r_iᵀ f_i(θ)]: one autograd Hessian of
    the residual-weighted outputs.
    """
    r = output_gradients(sizes, activation, theta, X, y, loss)
    R = autograd.hessian(lambda t: anp.sum(r * outputs(sizes, activation, t, X)))(theta)
    return R / X.shape[0] if reduction == "mean" else R


def rel_err(a, b, scale=None):
    """‖a − b‖_F / max(‖b‖_F, scale): relative Frobenius error, with an optional floor scale."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    denom = max(np.linalg.norm(b), scale or 0.0, np.finfo(float).tiny)
    return float(np.linalg.norm(a - b) / denom)
