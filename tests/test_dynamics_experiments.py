"""The edge-of-stability and sign-vs-sgd experiments: registration, exact pieces, verdicts."""

import numpy as np
import pytest

import hessref as hr
from hessref.experiments import edge_of_stability as eos
from hessref.experiments import sign_vs_sgd as svs
from hessref.experiments.framework import get_experiment, run_experiment, summarise

TINY_EOS = {"samples": 40, "hidden": 5, "lrs": [0.3, 0.9], "steps": 120, "every": 10}
TINY_SVS = {
    "sizes": [2, 3],
    "steps": 40,
    "lrs": [1e-3, 1e-2, 1e-1],
    "mlp_widths": [2, 3],
    "mlp_samples": 20,
}


def test_both_registered_with_one_schema():
    for name in ("edge-of-stability", "sign-vs-sgd"):
        exp = get_experiment(name)
        assert set(exp.fast) == set(exp.full)


def test_edge_of_stability_measures_and_verdicts_follow_the_data():
    res = run_experiment("edge-of-stability", fast=True, seeds=[0], overrides=TINY_EOS)
    m = res.per_seed[0]
    assert len(m["sharpness_0"]) == len(m["steps_0"]) == 13
    assert m["steps_0"][:2] == [0, 10] and m["steps_0"][-1] == 120
    # sharpness values equal the exact dense λ_max at the recorded steps (spot check at 0)
    from hessref import data

    seeds = eos.derive_seeds(0, "data", "init")
    X, y = data.digits(40, rng=seeds["data"])
    model = hr.MLP([64, 5, 10], activation="tanh")
    H = hr.hessian(model, model.init(seeds["init"]), X, np.eye(10)[y])
    assert m["sharpness_init_0"] == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-10)
    assert m["quadratic_growth_rel_error"] < 1e-12
    # verdict outcomes follow altered data
    exp = get_experiment("edge-of-stability")
    fake = dict(m, crossed_1=1, band_fraction_1=0.95)
    assert (
        summarise(exp, res.settings, [0], [fake]).verdict("edge-of-stability lr=0.9")["holds"] == 1
    )
    fake["band_fraction_1"] = 0.5
    assert (
        summarise(exp, res.settings, [0], [fake]).verdict("edge-of-stability lr=0.9")["holds"] == 0
    )


def test_edge_crossing_definition():
    # below, then up: crossing at the first record >= 1 after the first one below
    assert eos.edge_crossing(np.array([2.0, 0.8, 0.9, 1.01, 0.97])) == (3, 1, True)
    # never below after initialization: started at the edge
    assert eos.edge_crossing(np.array([0.5, 1.2, 1.0, 1.1])) == (1, 1, True)
    # never back up: no crossing, index of the last record
    assert eos.edge_crossing(np.array([1.5, 0.7, 0.9])) == (2, 1, False)


@pytest.mark.parametrize("rotate", [False, True])
def test_sign_vs_sgd_quadratic_has_the_stated_exact_hessian(rotate):
    model, X, Y, H = svs.quadratic_problem(3, 0.3, rotate, seed=4)
    theta = model.init(1)
    np.testing.assert_allclose(hr.hessian(model, theta, X, Y), H, atol=1e-13)
    assert hr.loss(model, theta, X, Y) == pytest.approx(0.5 * theta @ H @ theta, rel=1e-12)
    ev = np.linalg.eigvalsh(H)
    np.testing.assert_allclose(ev[-1], 1.0, rtol=1e-12)
    c = svs.curvature(H)
    assert c["trace"] == pytest.approx(np.trace(H)) and c["d_lambda_max"] == 12
    if rotate:
        assert c["l1_smoothness"] > c["trace"] * (1 + 1e-6)
    else:
        assert c["l1_smoothness"] == pytest.approx(c["trace"], rel=1e-14)


def test_sign_vs_sgd_runs_and_is_reproducible():
    a = run_experiment("sign-vs-sgd", fast=True, seeds=[1], overrides=TINY_SVS)
    b = run_experiment("sign-vs-sgd", fast=True, seeds=[1], overrides=TINY_SVS)
    assert a.per_seed == b.per_seed
    m = a.per_seed[0]
    assert m["q_d_0"] == 6 and m["q_d_1"] == 12
    assert m["q_gap_sparse_by_d"] == [m["q_gap_sparse_0"], m["q_gap_sparse_1"]]
    for key in ("q_final_sgd_sparse_0", "mlp_final_muon_dense_1"):
        assert 0 < m[key] < 10
    assert {v["name"] for v in a.verdicts} >= {"q sparse gap grows with d", "mlp sparse gap j=0"}


def test_plots_draw_what_was_computed():
    from hessref import plot

    res = run_experiment("edge-of-stability", fast=True, seeds=[0], overrides=TINY_EOS)
    fig = plot.plot_edge_of_stability(res)
    ax0 = fig.axes[0]
    # one sharpness curve per η (per seed) plus one dashed 2/η line per η
    assert len(ax0.lines) == 2 * len(TINY_EOS["lrs"])
    np.testing.assert_array_equal(ax0.lines[0].get_ydata(), res.per_seed[0]["sharpness_0"])
    assert ax0.lines[2].get_ydata()[0] == pytest.approx(2 / 0.3)
    assert plot.plot_experiment(res).axes
    fig = plot.plot_sharpness([0, 10], [1.0, 2.0], lr=0.5, losses=([0, 10], [1.0, 0.5]))
    assert len(fig.axes) == 2 and fig.axes[0].lines[1].get_ydata()[0] == 4.0
    fig = plot.plot_loss_slice(np.array([-1.0, 0, 1]), np.array([1.0, 0, 1]))
    assert fig.axes[0].lines[0].get_ydata().tolist() == [1.0, 0, 1]
    fig = plot.plot_loss_slice(np.array([-1.0, 1]), np.ones((2, 2)) + np.eye(2))
    assert fig.axes[0].collections
