"""One convention adapter per peer tool, written once.

hessref's θ is PyTorch's ``parameters_to_vector`` order for
``nn.Sequential(Linear, act, ..., Linear)`` (W_l (out, in) row-major, then b_l), so
the PyTorch tools (torch.func, curvlinops, BackPACK, PyHessian) share the ``"torch"``
convention: identical layout, and PyTorch's losses, of which ``nn.MSELoss`` is
2/d_L (mean) or 2 (sum) times hessref's ½‖f − y‖² loss and ``nn.CrossEntropyLoss`` is
hessref's. JAX is written in flax style (``{"Dense_i": {"kernel": Wᵀ, "bias": b}}``,
ravelled by ``jax.flatten_util.ravel_pytree``: sorted keys, kernels (in, out)) with
hessref's own loss scaling, the ``"jax_flax"`` convention.

Everything is float64 (``torch.set_default_dtype`` and ``jax_enable_x64``).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import torch
from torch import nn

from hessref.oracle.conventions import CONVENTIONS, to_state_dict, torch_module_spec

torch.set_default_dtype(torch.float64)
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402


def torch_convention(reduction):
    """PyTorch's layout and loss scaling with ``reduction`` ("mean" or "sum")."""
    return dataclasses.replace(CONVENTIONS["torch"], reduction=reduction)


# --- PyTorch: one network, one loss, one data layout for every torch-based tool -----------


def torch_network(model, theta, *, identity_module=True):
    """``nn.Sequential(Linear, act, ..., Linear)`` in float64 holding θ.

    ``identity_module=False`` leaves the identity activation out (BackPACK has no
    extension for ``nn.Identity``); the flat parameter order is the same either way.
    """
    layers = []
    act = model.activation.torch_name
    for l in range(1, model.num_layers + 1):
        layers.append(nn.Linear(model.sizes[l - 1], model.sizes[l], dtype=torch.float64))
        if l < model.num_layers and (act != "Identity" or identity_module):
            name, kwargs = torch_module_spec(act)  # e.g. "Softplus(threshold=inf)"
            layers.append(getattr(nn, name)(**kwargs))
    net = nn.Sequential(*layers)
    linear_ids = [i for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    state = {}
    for key, value in to_state_dict(model, theta, index_step=1).items():
        layer, part = key.split(".")  # "0.weight", "1.weight", ...: 0-based layer
        state[f"{linear_ids[int(layer)]}.{part}"] = torch.from_numpy(value)
    net.load_state_dict(state)
    return net


def torch_loss(loss, reduction):
    """``nn.MSELoss`` or ``nn.CrossEntropyLoss`` with ``reduction``."""
    return (nn.MSELoss if loss == "mse" else nn.CrossEntropyLoss)(reduction=reduction)


def torch_targets(y):
    """Targets as a tensor: float (N, d_L) for MSE, int64 labels (N,) for cross-entropy."""
    return torch.from_numpy(np.asarray(y))


def torch_batches(case):
    """The case's ragged minibatches as tensors ``[(X_b, y_b), ...]``."""
    return [(torch.from_numpy(Xb), torch_targets(yb)) for Xb, yb in case.batches()]


def torch_full_batch(case):
    """All N samples as one batch ``(X, y)`` of tensors."""
    return torch.from_numpy(case.X), torch_targets(case.y)


def flat(net):
    """θ of ``net`` (``parameters_to_vector``, detached): hessref's order."""
    return nn.utils.parameters_to_vector(net.parameters()).detach()


def to_numpy(t):
    """A tensor as a float64 NumPy array."""
    return t.detach().cpu().numpy().astype(np.float64)


def dense(op, P):
    """A curvlinops operator as a dense (P, P) NumPy matrix (P products with the basis)."""
    return to_numpy(op @ torch.eye(P))


def batch_weights(case):
    """Per-batch factor turning batch-reduced quantities into the full-data one.

    Mean reduction: B/N (the batch mean times its share); sum: 1.
    """
    N = case.X.shape[0]
    return [len(Xb) / N if case.reduction == "mean" else 1.0 for Xb, _ in case.batches()]


# --- JAX, flax-style parameters -------------------------------------------------------------

JAX_ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, negative_slope=0.01),
    "softplus": jax.nn.softplus,
    "gelu": lambda z: jax.nn.gelu(z, approximate=False),
    # PyTorch's nn.Softplus: linear above the threshold 20
    "softplus_torch": lambda z: jnp.where(z > 20.0, z, jax.nn.softplus(jnp.minimum(z, 20.0))),
}


def jax_params(model, theta):
    """flax-style ``{"Dense_i": {"kernel": W_lᵀ (in, out), "bias": b_l}}``."""
    return {
        f"Dense_{l}": {"kernel": jnp.asarray(W.T), "bias": jnp.asarray(b)}
        for l, (W, b) in enumerate(model.unflatten(theta))
    }


def jax_problem(case):
    """``(flat θ in "jax_flax" order, outputs(flat, X), loss(F, y), loss(flat))`` in JAX."""
    model = case.model
    flat0, unravel = ravel_pytree(jax_params(model, case.theta))
    act = JAX_ACTIVATIONS[model.activation.name]
    X, y = jnp.asarray(case.X), jnp.asarray(case.y)
    L = model.num_layers
    s = 1.0 / X.shape[0] if case.reduction == "mean" else 1.0

    def outputs(v, x=X):
        p = unravel(v)
        a = x
        for l in range(L):
            a = a @ p[f"Dense_{l}"]["kernel"] + p[f"Dense_{l}"]["bias"]
            a = act(a) if l < L - 1 else a
        return a

    def loss_of_outputs(F):
        if case.loss == "mse":
            return s * 0.5 * jnp.sum((F - y) ** 2)
        return -s * jnp.sum(jax.nn.log_softmax(F)[jnp.arange(F.shape[0]), y])

    return flat0, outputs, loss_of_outputs, lambda v: loss_of_outputs(outputs(v))
