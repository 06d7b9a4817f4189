"""Cross-framework check: hessref's exact quantities against PyTorch's ``torch.func``.

The same network is built as ``nn.Sequential(Linear, act, ..., Linear)`` in float64
from :func:`hessref.conventions.to_state_dict`, and PyTorch's own losses
(``nn.MSELoss``, ``nn.CrossEntropyLoss``, both reductions) are differentiated by
``torch.func``. hessref's bundle, mapped by :func:`hessref.oracle.in_convention`
with the ``"torch"`` convention (which applies the documented 2/d_L or 2 factor of
``nn.MSELoss``), must agree to 1e-10 relative. Skipped when torch is not installed
(hessref never depends on it): CI runs it in the peers' environment of
``.ci/conformance.sh``, where a skip fails the stage.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from hessref import conventions as cv  # noqa: E402
from hessref import oracle  # noqa: E402
from hessref.compare import compare  # noqa: E402

ACTIVATIONS = ("identity", "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "gelu")
SIZES = (4, 6, 5, 3)
NUM_SAMPLES = 7
TOL = 1e-10


def torch_network(model, theta):
    """nn.Sequential in float64 loaded from hessref's state dict."""
    layers = []
    for l in range(1, model.num_layers + 1):
        layers.append(nn.Linear(model.sizes[l - 1], model.sizes[l], dtype=torch.float64))
        if l < model.num_layers:
            name, kwargs = cv.torch_module_spec(model.activation.torch_name)
            layers.append(getattr(nn, name)(**kwargs))
    net = nn.Sequential(*layers)
    state = {k: torch.from_numpy(v) for k, v in cv.to_state_dict(model, theta).items()}
    net.load_state_dict(state)
    return net


def torch_quantities(model, theta, X, y, loss, reduction):
    """Loss, gradient, H, G, per-sample gradients and empirical Fisher by torch.func."""
    net = torch_network(model, theta)
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat = nn.utils.parameters_to_vector(net.parameters()).detach()
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    loss_fn = (nn.MSELoss if loss == "mse" else nn.CrossEntropyLoss)(reduction=reduction)

    def unflat(t):
        out, pos = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(np.prod(s))
            out[n] = t[pos : pos + k].reshape(s)
            pos += k
        return out

    def outputs(t, x=Xt):
        return torch.func.functional_call(net, unflat(t), (x,))

    def L(t):
        return loss_fn(outputs(t), yt)

    def sample_loss(t, x, target):
        return loss_fn(outputs(t, x[None]), target[None])

    J = torch.func.jacrev(outputs)(flat)  # (N, d_L, P)
    F = outputs(flat).detach()
    A = torch.func.hessian(lambda f: loss_fn(f, yt))(F)  # (N, d_L, N, d_L)
    G = torch.einsum("nkp,nkml,mlq->pq", J, A, J)
    per = torch.func.vmap(torch.func.grad(sample_loss), in_dims=(None, 0, 0))(flat, Xt, yt)
    s = 1.0 / X.shape[0] if reduction == "mean" else 1.0
    return {
        "flat": flat.numpy(),
        "loss": float(L(flat)),
        "gradient": torch.func.grad(L)(flat).numpy(),
        "H": torch.func.hessian(L)(flat).numpy(),
        "G": G.numpy(),
        "per_sample_gradients": per.numpy(),
        "empirical_fisher": s * (per.T @ per).numpy(),
    }


def crosscheck(activation, loss, reduction, seed=0):
    """Relative errors (max norm) of hessref vs torch for every compared quantity."""
    model, theta, X, y = oracle.random_problem(
        SIZES, activation, loss, num_samples=NUM_SAMPLES, rng=seed
    )
    bundle = oracle.reference_bundle(model, theta, X, y, loss=loss, reduction=reduction)
    ref = oracle.in_convention(
        bundle, dataclasses.replace(cv.CONVENTIONS["torch"], reduction=reduction)
    )
    ours = torch_quantities(model, theta, X, y, loss, reduction)
    np.testing.assert_array_equal(ours.pop("flat"), theta)  # same flat layout
    v = np.random.default_rng(seed).standard_normal(model.num_params)
    ours["ggn_vector_product"] = ours["G"] @ v
    ref["ggn_vector_product"] = ref["G"] @ v
    kinds = {"loss": "scalar", "H": "H", "G": "G", "empirical_fisher": "G"}
    reports = {
        name: compare(ours[name], ref[name], rtol=TOL, model=model, kind=kinds.get(name))
        for name in ours
    }
    return reports


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_hessref_matches_torch_func(activation, loss, reduction):
    reports = crosscheck(activation, loss, reduction)
    failed = {name: str(r) for name, r in reports.items() if not r.passed}
    assert not failed, failed
    assert max(r.frobenius_rel_error for r in reports.values()) <= TOL


def test_mse_loss_scale_is_needed():
    # without the 2/d_L factor hessref's mean-MSE Hessian is NOT nn.MSELoss's
    model, theta, X, y = oracle.random_problem(SIZES, "tanh", "mse", num_samples=5, rng=1)
    bundle = oracle.reference_bundle(model, theta, X, y, loss="mse")
    H_torch = torch_quantities(model, theta, X, y, "mse", "mean")["H"]
    report = compare(H_torch, bundle.H, model=model, kind="H")
    assert not report.passed
    assert report.best_scale == pytest.approx(2 / SIZES[-1], rel=1e-10)


def test_real_torch_state_dict_loads_without_conversion():
    # torch tensors (float32 and float64, requiring grad) go through the duck-typed path
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model, theta = cv.from_state_dict(net.state_dict(), "tanh")
    assert model.sizes == (3, 4, 2)
    flat = nn.utils.parameters_to_vector(net.parameters()).detach().double().numpy()
    np.testing.assert_array_equal(theta, flat)
    params = {k: v for k, v in net.named_parameters()}  # requires_grad=True tensors
    np.testing.assert_array_equal(cv.from_state_dict(params, "tanh")[1], flat)
