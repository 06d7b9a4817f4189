"""curvlinops: dense Hessian, GGN and empirical Fisher; trace/diagonal estimators; density.

Operators see the case's ragged minibatches (e.g. 3 + 3 + 1 samples) and PyTorch's losses
(the ``"torch"`` convention). Estimators are random: their mean over seeded runs must lie
within 4 standard errors of hessref's exact value. The spectral density
(``lanczos_approximate_spectrum``, Papyan 2020) is an average over random Lanczos
start vectors of Gaussian-smoothed quadratures; with as many Lanczos vectors as
parameters each run's nodes are H's eigenvalues, so its expectation is hessref's exact
smoothed density (:func:`hessref.spectrum.exact_density`) at the same width.
"""

from __future__ import annotations

from math import log, sqrt

import numpy as np
import pytest
import torch
from curvlinops import (
    EFLinearOperator,
    GGNLinearOperator,
    HessianLinearOperator,
    hutchinson_diag,
    hutchinson_trace,
    lanczos_approximate_spectrum,
)
from curvlinops.examples import TensorLinearOperator

from conformance.adapters import (
    dense,
    to_numpy,
    torch_batches,
    torch_convention,
    torch_loss,
    torch_network,
)
from hessref.oracle.catalogue import fixture_catalogue
from hessref.spectrum import exact_density

CASES = [c.name for c in fixture_catalogue()]
OPERATORS = {
    "H": HessianLinearOperator,
    "G": GGNLinearOperator,
    "empirical_fisher": EFLinearOperator,
}
STAT_CASES = ["tanh-mse-d1", "relu-cross_entropy-d2-sum"]
RUNS = 100  # seeded runs per estimator
Z_MAX = 4.0


def operator(case, which):
    net = torch_network(case.model, case.theta)
    loss_fn = torch_loss(case.loss, case.reduction)
    return OPERATORS[which](net, loss_fn, list(net.parameters()), torch_batches(case))


@pytest.mark.parametrize("name", CASES)
def test_dense_curvature_agrees(name, cases, record):
    case = cases[name]
    conv = torch_convention(case.reduction)
    for which in OPERATORS:
        M = dense(operator(case, which), case.model.num_params)
        label = f"{which} (dense, ragged batches)"
        if which == "empirical_fisher" and mse_mean_factor(case) != 1:
            M = M / mse_mean_factor(case)  # the finding of test_empirical_fisher_mse_mean
            label = "empirical_fisher (dense, ragged; nn.MSELoss mean: divided by d_L)"
        report = case.check(M, kind=which, convention=conv, rtol=1e-10)
        record("curvlinops", label, name, report.max_rel_error)


def mse_mean_factor(case):
    """d_L for nn.MSELoss(reduction="mean") (curvlinops' EF scaling), else 1."""
    return case.model.sizes[-1] if (case.loss, case.reduction) == ("mse", "mean") else 1


@pytest.mark.xfail(
    raises=AssertionError,
    strict=True,
    reason="curvlinops 3.0.1 EFLinearOperator with nn.MSELoss(reduction='mean') and d_L > 1 "
    "returns d_L times c Σ_n ∇ℓ_n ∇ℓ_nᵀ (c = 1/N, ℓ_n = nn.MSELoss(mean) on sample n): "
    "it normalises by 1/(N·d_L), the number of output entries, with per-sample loss "
    "Σ_c (f_c − y_c)². A convention, used consistently (its KFAC(fisher_type='empirical') "
    "has the same factor, measured in test_approximations.py; its H, GGN, FisherMC and "
    "type-2/MC KFAC agree with hessref without it), but the EFLinearOperator docstring "
    "does not state it. Smallest case: one Linear(1, 2), one sample: factor 2",
)
def test_empirical_fisher_mse_mean(record):
    from hessref.oracle.catalogue import FixtureCase
    from hessref.testing import OracleCase

    spec = FixtureCase("linear-1x2-one-sample", (1, 2), "identity", "mse", "mean", 1, 1, 0)
    case = OracleCase(spec, *spec.build())
    M = dense(operator(case, "empirical_fisher"), case.model.num_params)
    expected, _ = case.expected("empirical_fisher", torch_convention("mean"))
    ratio = float(np.vdot(M, expected) / np.vdot(expected, expected))
    record(
        "curvlinops",
        "empirical_fisher (nn.MSELoss mean, as documented)",
        spec.name,
        np.abs(M - expected).max() / np.abs(expected).max(),
        kind="xfail",
        best_fit_factor=ratio,
        classification="convention",
    )
    case.check(M, kind="empirical_fisher", convention=torch_convention("mean"))


def z_scores(samples, exact):
    """|mean − exact| / standard error, entrywise (0 where both error and spread vanish)."""
    samples = np.asarray(samples)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    err = np.abs(mean - exact)
    scale = np.abs(exact).max() if np.ndim(exact) else abs(exact)
    exact_enough = err <= 1e-12 * max(scale, 1.0)
    return np.where(exact_enough, 0.0, err / np.maximum(se, np.finfo(np.float64).tiny))


@pytest.mark.parametrize("name", STAT_CASES)
@pytest.mark.parametrize("which", ["H", "G"])
def test_trace_and_diagonal_estimators_are_unbiased(name, which, cases, record):
    case = cases[name]
    conv = torch_convention(case.reduction)
    op = operator(case, which)
    exact_M, _ = case.expected(which, conv)
    traces, diags = [], []
    for seed in range(RUNS):
        torch.manual_seed(seed)
        traces.append(float(hutchinson_trace(op, num_matvecs=4)))
        torch.manual_seed(10_000 + seed)
        diags.append(to_numpy(hutchinson_diag(op, num_matvecs=4)))
    z_trace = float(z_scores(traces, np.trace(exact_M)))
    z_diag = float(z_scores(diags, np.diag(exact_M)).max())
    record(
        "curvlinops",
        f"hutchinson_trace({which})",
        name,
        z_trace,
        kind="statistical",
        runs=RUNS,
        matvecs=4,
    )
    record(
        "curvlinops",
        f"hutchinson_diag({which})",
        name,
        z_diag,
        kind="statistical",
        runs=RUNS,
        matvecs=4,
    )
    assert z_trace <= Z_MAX, f"trace: mean is {z_trace:.2f} standard errors from exact"
    assert z_diag <= Z_MAX, f"diagonal: worst entry {z_diag:.2f} standard errors from exact"


@pytest.mark.parametrize("name", ["tanh-mse-d1", "sigmoid-cross_entropy-d1"])
def test_spectral_density_is_unbiased(name, cases, record):
    case = cases[name]
    conv = torch_convention(case.reduction)
    H, _ = case.expected("H", conv)
    lam = np.linalg.eigvalsh(H)
    P = lam.size
    # their operator's dense export (checked to 1e-10 above) keeps the runs cheap
    A = TensorLinearOperator(torch.from_numpy(dense(operator(case, "H"), P)))
    kappa, margin, points = 3.0, 0.05, 101
    runs = []
    for seed in range(2 * RUNS):
        torch.manual_seed(seed)
        grid, rho = lanczos_approximate_spectrum(
            A,
            ncv=P,
            num_points=points,
            kappa=kappa,
            margin=margin,
            boundaries=(float(lam[0]), float(lam[-1])),
        )
        runs.append(to_numpy(rho))
    # their Gaussian width: 2 / (ncv - 1) / sqrt(8 ln kappa) on the spectrum mapped to [-1, 1]
    half_width = (1 + 2 * margin) * (lam[-1] - lam[0]) / 2
    sigma = half_width * 2 / (P - 1) / sqrt(8 * log(kappa))
    exact = exact_density(lam, to_numpy(grid), sigma).density
    z = z_scores(runs, exact)
    rel = float(np.abs(np.mean(runs, axis=0) - exact).max() / exact.max())
    record(
        "curvlinops",
        "lanczos_approximate_spectrum(H)",
        name,
        float(z.max()),
        kind="statistical",
        runs=2 * RUNS,
        max_rel_error_of_mean=rel,
        sigma=sigma,
    )
    assert z.max() <= Z_MAX, f"density: worst grid point {z.max():.2f} standard errors off"
