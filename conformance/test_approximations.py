"""Approximations: curvlinops' KFAC, EKFAC, MC Fisher; BackPACK's KFLR, KFAC, DiagGGN-MC.

The exact yardstick is :mod:`hessref.approx` (docs/theory.md §19), mapped to PyTorch's
losses by the ``"torch"`` loss factor c (``nn.MSELoss``: 2/d_L mean, 2 sum; CE: 1).
Conventions, each measured by these tests:

- curvlinops ``KFACLinearOperator`` / ``EKFACLinearOperator`` with
  ``separate_weight_and_bias=False`` are hessref's joint [W | b] K-FAC / EK-FAC (19.5)-(19.6):
  the same Ā_l = (1/N) Σ ã ãᵀ, B_l carrying the reduction, times c, over the case's
  ragged batches (curvlinops accumulates the factors over batches, so the result is the
  full-data K-FAC). ``fisher_type="type-2"`` and ``"empirical"`` are exact; under
  ``nn.MSELoss(reduction="mean")`` the empirical one is d_L times the documented scaling,
  the convention of its ``EFLinearOperator`` (see the curvlinops page), divided out here.
  Its default ``separate_weight_and_bias=True`` is the same K-FAC with the W–b cross
  terms zeroed (a convention; hessref's ``assert_approximation_close`` names it).
- BackPACK ``KFLR`` stores per tensor W: [B_l, A_l] (A_l without the bias column) and b: [B_l]:
  the W–W and b–b sub-blocks of hessref's joint K-FAC. One backward pass on the full
  batch: the K-FAC of a union of batches is not a weighted sum of batch K-FACs. Its
  KFLR/KFAC extensions cover ReLU, Sigmoid and Tanh (no LeakyReLU, Softplus or GELU).
- Monte-Carlo variants are random: E[MC K-FAC] = type-2 K-FAC (B_l is linear in the
  seeds' second moment, Ā_l does not depend on them), E[MC Fisher] = G and
  E[DiagGGN-MC] = diag G. Each is averaged over seeded runs and passes when every
  quadratic form vᵀ M v (fixed directions v) or diagonal entry lies within 4 standard
  errors of the exact value.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from backpack import backpack, extend
from backpack.extensions import KFAC, KFLR, DiagGGNMC
from curvlinops import EKFACLinearOperator, FisherMCLinearOperator, KFACLinearOperator

from conformance.adapters import (
    dense,
    to_numpy,
    torch_batches,
    torch_convention,
    torch_loss,
    torch_network,
)
from conformance.test_curvlinops import z_scores
from hessref import approx
from hessref.oracle.catalogue import fixture_catalogue
from hessref.oracle.conventions import loss_factor
from hessref.testing import assert_approximation_close

CASES = [c.name for c in fixture_catalogue()]
BACKPACK_ACTS = ("identity", "tanh", "sigmoid", "relu")  # KFLR/KFAC have no LeakyReLU
STAT_CASES = ["tanh-mse-d1", "relu-cross_entropy-d2-sum", "sigmoid-cross_entropy-d1"]
RUNS = 100
Z_MAX = 4.0
TOL = 1e-10
NUM_DIRECTIONS = 8


def factor(case, empirical=False):
    """c with theirs = c · hessref for K-FAC (linear in the loss) or c_ℓ²·s'/s (empirical)."""
    c = loss_factor(
        case.model,
        case.loss,
        torch_convention(case.reduction),
        num_samples=case.X.shape[0],
        reduction=case.reduction,
    )
    if not empirical or case.loss != "mse":
        return c
    c_l = 2.0 / case.model.sizes[-1] if case.reduction == "mean" else 2.0
    return c * c_l


def curvlinops_kfac(case, cls=KFACLinearOperator, **kwargs):
    net = torch_network(case.model, case.theta)
    op = cls(
        net,
        torch_loss(case.loss, case.reduction),
        list(net.parameters()),
        torch_batches(case),
        separate_weight_and_bias=False,
        check_deterministic=False,
        **kwargs,
    )
    return dense(op, case.model.num_params)


def relative(theirs, ours):
    return float(np.abs(theirs - ours).max() / np.abs(ours).max())


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("fisher_type", ["type-2", "empirical"])
def test_curvlinops_kfac_agrees(name, fisher_type, cases, record):
    case = cases[name]
    empirical = fisher_type == "empirical"
    theirs = curvlinops_kfac(case, fisher_type=fisher_type) / factor(case, empirical)
    label = f"KFAC ({fisher_type}, joint [W | b], ragged batches)"
    if empirical and (case.loss, case.reduction) == ("mse", "mean"):
        theirs = theirs / case.model.sizes[-1]
        label = "KFAC (empirical; nn.MSELoss mean: divided by d_L, its EF convention)"
    opts = {"loss": case.loss, "reduction": case.reduction, "fisher_type": fisher_type}
    err = assert_approximation_close(theirs, *case.args, kind="kfac", rtol=TOL, **opts)
    record("curvlinops", label, name, err)


def test_curvlinops_default_kfac_separates_weight_and_bias(cases, record):
    """Its default separate_weight_and_bias=True is a convention: hessref's message names it."""
    case = cases["tanh-cross_entropy-d2"]
    net = torch_network(case.model, case.theta)
    loss_fn = torch_loss(case.loss, case.reduction)
    op = KFACLinearOperator(
        net,
        loss_fn,
        list(net.parameters()),
        torch_batches(case),
        check_deterministic=False,
        fisher_type="type-2",
    )
    theirs = dense(op, case.model.num_params)
    with pytest.raises(AssertionError, match="W and b treated as separate K-FAC blocks"):
        assert_approximation_close(theirs, *case.args, kind="kfac", loss=case.loss)
    # and it is the joint K-FAC with the W–b cross terms zeroed, to rounding
    err = _separate_error(theirs, case)
    label = "KFAC (type-2, default separate_weight_and_bias=True: W–W and b–b blocks)"
    record("curvlinops", label, case.name, err)
    assert err <= TOL


def _separate_error(theirs, case):
    """Relative error of theirs against hessref's joint K-FAC with W–b cross terms zeroed."""
    joint = approx.kfac(*case.args, loss=case.loss, reduction=case.reduction)
    errors = []
    for l, (W, b) in enumerate(hessref_sub_blocks(case, joint), start=1):
        s = case.model.layer_slice(l)
        n = W.shape[0]
        expected = np.zeros((s.stop - s.start,) * 2)
        expected[:n, :n], expected[n:, n:] = W, b
        errors.append(relative(theirs[s, s], expected))
    return max(errors)


@pytest.mark.parametrize("name", CASES)
def test_curvlinops_ekfac_agrees(name, cases, record):
    case = cases[name]
    theirs = curvlinops_kfac(case, cls=EKFACLinearOperator, fisher_type="type-2") / factor(case)
    opts = {"loss": case.loss, "reduction": case.reduction}
    err = assert_approximation_close(theirs, *case.args, kind="ekfac", rtol=TOL, **opts)
    record("curvlinops", "EKFAC (type-2, joint [W | b], ragged batches)", name, err)


def _directions(case):
    return np.random.default_rng(0).standard_normal((case.model.num_params, NUM_DIRECTIONS))


def _quadratic_forms(M, V):
    return np.einsum("pj,pq,qj->j", V, M, V)


@pytest.mark.parametrize("name", STAT_CASES)
def test_curvlinops_mc_kfac_and_mc_fisher_are_unbiased(name, cases, record):
    case = cases[name]
    V = _directions(case)
    kfac = approx.kfac(*case.args, loss=case.loss, reduction=case.reduction)
    exact = {
        "KFAC (mc, 1 sample)": factor(case) * kfac.dense(),  # E[MC K-FAC] = type-2 K-FAC
        "FisherMC (1 sample)": factor(case) * case.bundle.G,  # E[MC Fisher] = G
    }
    runs = {
        "KFAC (mc, 1 sample)": [
            curvlinops_kfac(case, fisher_type="mc", seed=s) for s in range(RUNS)
        ],
        "FisherMC (1 sample)": [_fisher_mc(case, s) for s in range(RUNS)],
    }
    for label, samples in runs.items():
        z = z_scores([_quadratic_forms(M, V) for M in samples], _quadratic_forms(exact[label], V))
        record("curvlinops", label, name, z.max(), kind="statistical", runs=RUNS)
        assert z.max() <= Z_MAX, (label, z)


def _fisher_mc(case, seed):
    net = torch_network(case.model, case.theta)
    op = FisherMCLinearOperator(
        net,
        torch_loss(case.loss, case.reduction),
        list(net.parameters()),
        torch_batches(case),
        check_deterministic=False,
        seed=seed,
    )
    return dense(op, case.model.num_params)


def run_backpack_full_batch(case, extension, seed=0):
    """One backward pass with ``extension`` on all N samples; returns the network."""
    net = extend(torch_network(case.model, case.theta, identity_module=False))
    loss_fn = extend(torch_loss(case.loss, case.reduction))
    X, y = torch.from_numpy(case.X), torch.from_numpy(np.asarray(case.y))
    torch.manual_seed(seed)
    net.zero_grad()
    with backpack(extension):
        loss_fn(net(X), y).backward()
    return net


def backpack_kfac_blocks(case, net, field):
    """Their W–W and b–b blocks B ⊗ A and B, per layer, from the ``field`` factors."""
    params = list(net.parameters())
    out = []
    for l in range(case.model.num_layers):
        B_W, A_W = (to_numpy(t) for t in getattr(params[2 * l], field))
        (B_b,) = (to_numpy(t) for t in getattr(params[2 * l + 1], field))
        out.append((np.kron(B_W, A_W), B_b))
    return out


def hessref_sub_blocks(case, kfac):
    """hessref's joint K-FAC restricted to W–W and b–b: B ⊗ Ā[:d, :d] and B · Ā[d, d] = B."""
    return [(np.kron(B, A[:-1, :-1]), B * A[-1, -1]) for A, B in kfac.factors]


@pytest.mark.parametrize("name", [n for n in CASES if n.split("-")[0] in BACKPACK_ACTS])
def test_backpack_kflr_agrees(name, cases, record):
    case = cases[name]
    theirs = backpack_kfac_blocks(case, run_backpack_full_batch(case, KFLR()), "kflr")
    ours = hessref_sub_blocks(
        case, approx.kfac(*case.args, loss=case.loss, reduction=case.reduction)
    )
    err = _blocks_error(theirs, ours, factor(case))
    record("backpack", "KFLR (type-2 K-FAC, W and b blocks, full batch)", name, err)
    assert err <= TOL


def _blocks_error(theirs, ours, c):
    """Largest relative error over the (W–W, b–b) block pairs of every layer."""
    errors = []
    for pair_t, pair_o in zip(theirs, ours, strict=True):
        errors += [relative(t, c * o) for t, o in zip(pair_t, pair_o, strict=True)]
    return max(errors)


@pytest.mark.parametrize("name", [n for n in STAT_CASES if n.split("-")[0] in BACKPACK_ACTS])
def test_backpack_mc_kfac_and_diag_ggn_mc_are_unbiased(name, cases, record):
    case = cases[name]
    c = factor(case)
    kfac = hessref_sub_blocks(
        case, approx.kfac(*case.args, loss=case.loss, reduction=case.reduction)
    )
    exact_kfac = np.concatenate([c * np.concatenate([W.ravel(), b.ravel()]) for W, b in kfac])
    exact_diag = c * np.diag(case.bundle.G)
    kfac_runs, diag_runs = [], []
    for seed in range(RUNS):
        net = run_backpack_full_batch(case, KFAC(mc_samples=1), seed)
        blocks = backpack_kfac_blocks(case, net, "kfac")
        kfac_runs.append(
            np.concatenate([np.concatenate([W.ravel(), b.ravel()]) for W, b in blocks])
        )
        net = run_backpack_full_batch(case, DiagGGNMC(mc_samples=1), seed)
        diag_runs.append(
            np.concatenate([to_numpy(p.diag_ggn_mc).ravel() for p in net.parameters()])
        )
    for label, runs, exact in (
        ("KFAC (mc, 1 sample; W and b blocks, full batch)", kfac_runs, exact_kfac),
        ("DiagGGNMC (1 sample, full batch)", diag_runs, exact_diag),
    ):
        z = z_scores(runs, exact)
        record("backpack", label, name, z.max(), kind="statistical", runs=RUNS)
        assert z.max() <= Z_MAX, (label, np.sort(z)[-5:])
