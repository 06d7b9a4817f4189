"""BackPACK: exact diagonals of the Hessian and GGN, and its block-diagonal H and GGN products.

BackPACK works per backward pass, so each ragged minibatch is one pass and the results
are combined with the batch weights B/N (mean) or 1 (sum); its losses are PyTorch's
(the ``"torch"`` convention). Its second-order extensions cover ``nn.Linear`` with ReLU,
Sigmoid, Tanh, LeakyReLU (diagonals) or ReLU, Sigmoid, Tanh (products); the identity
activation is the Linear layers chained without a module in between. Softplus and GELU
have no BackPACK extension, so those catalogue cases are not offered to it.
The products (``HMP``, ``GGNMP``) multiply each parameter tensor's own diagonal block
H[s, s] (s the tensor's slice of θ) with a matrix of vectors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backpack import backpack, extend
from backpack.extensions import GGNMP, HMP, DiagGGNExact, DiagHessian

from conformance.adapters import (
    batch_weights,
    to_numpy,
    torch_batches,
    torch_convention,
    torch_loss,
    torch_network,
)
from hessref.compare import compare
from hessref.oracle.catalogue import fixture_catalogue

DIAG_ACTS = ("identity", "tanh", "sigmoid", "relu", "leaky_relu")
PRODUCT_ACTS = ("identity", "tanh", "sigmoid", "relu")
CASES = [c.name for c in fixture_catalogue()]
NUM_VECTORS = 2


def run_backpack(case, extensions, read):
    """Σ_b w_b · read(net) over the ragged batches, one backward pass with ``extensions`` each."""
    net = extend(torch_network(case.model, case.theta, identity_module=False))
    loss_fn = extend(torch_loss(case.loss, case.reduction))
    total = None
    for (Xb, yb), w in zip(torch_batches(case), batch_weights(case), strict=True):
        net.zero_grad()
        with backpack(*extensions):
            loss_fn(net(Xb), yb).backward()
        part = [w * to_numpy(t) for t in read(net)]
        total = part if total is None else [a + b for a, b in zip(total, part, strict=True)]
    return total


@pytest.mark.parametrize("name", [n for n in CASES if n.split("-")[0] in DIAG_ACTS])
def test_exact_diagonals_agree(name, cases, record):
    case = cases[name]
    conv = torch_convention(case.reduction)
    diag_h, diag_g = run_backpack(
        case,
        (DiagHessian(), DiagGGNExact()),
        lambda net: [
            torch.cat([p.diag_h.flatten() for p in net.parameters()]),
            torch.cat([p.diag_ggn_exact.flatten() for p in net.parameters()]),
        ],
    )
    for kind, theirs in (("diag_H", diag_h), ("diag_G", diag_g)):
        report = case.check(theirs, kind=kind, convention=conv, rtol=1e-10)
        record(
            "backpack",
            f"{kind} ({'DiagHessian' if kind == 'diag_H' else 'DiagGGNExact'})",
            name,
            report.max_rel_error,
        )


@pytest.mark.parametrize("name", [n for n in CASES if n.split("-")[0] in PRODUCT_ACTS])
def test_block_diagonal_products_agree(name, cases, record):
    case = cases[name]
    conv = torch_convention(case.reduction)
    model = case.model
    V = np.random.default_rng(1).standard_normal((NUM_VECTORS, model.num_params))
    slices = [
        model.weight_slice(l) if n[0] == "W" else model.bias_slice(l)
        for n in model.parameter_names()
        for l in [int(n[1:])]
    ]

    def read(field):
        def _read(net):
            out = []
            for p, s in zip(net.parameters(), slices, strict=True):
                Vs = torch.from_numpy(V[:, s].reshape(NUM_VECTORS, *p.shape))
                out.append(getattr(p, field)(Vs).reshape(NUM_VECTORS, -1))
            return [torch.cat(out, dim=1)]

        return _read

    for which, ext, field in (("H", HMP(), "hmp"), ("G", GGNMP(), "ggnmp")):
        (theirs,) = run_backpack(case, (ext,), read(field))
        M, _ = case.expected(which, conv)
        expected = np.concatenate([V[:, s] @ M[s, s] for s in slices], axis=1)  # M[s,s] sym.
        report = compare(theirs, expected, rtol=1e-10)
        record(
            "backpack",
            f"{which} block-diagonal products ({ext.__class__.__name__})",
            name,
            report.max_rel_error,
        )
        assert report.passed, f"{ext.__class__.__name__}:\n{report}"
