"""The edge-of-stability and sign-vs-sgd experiments: registration, exact pieces, verdicts."""

import numpy as np
import pytest
from scipy import stats

import hessref as hr
from hessref.experiments import edge_of_stability as eos
from hessref.experiments import sign_descent as sd
from hessref.experiments import sign_vs_sgd as svs
from hessref.experiments.framework import get_experiment, run_experiment, summarise

TINY_EOS = {
    "samples": 40,
    "hidden": 5,
    "fractions": [0.5, 0.9],
    "steps": 120,
    "every": 10,
    "horizon": 20,
}
TINY_SVS = {
    "dims": [3, 4, 6],
    "sgd_lrs": [0.01, 0.1, 1.0],
    "sign_lrs": [0.01, 0.05],
    "repeats": 2,
    "eps": 0.2,
    "noise_scale": 0.3,
    "max_steps": 20000,
    "max_steps_mc": 5000,
}


def test_both_registered_with_one_schema():
    for name in ("edge-of-stability", "sign-vs-sgd"):
        exp = get_experiment(name)
        assert set(exp.fast) == set(exp.full)
        assert exp.figure is not None


# ----------------------------------------------------------------- edge of stability
def test_edge_of_stability_steps_start_below_the_edge_and_verdicts_follow_the_data():
    res = run_experiment("edge-of-stability", fast=True, seeds=[0], overrides=TINY_EOS)
    m = res.per_seed[0]
    from hessref import data

    seeds = eos.derive_seeds(0, "data", "init")
    X, y = data.digits(40, rng=seeds["data"])
    model = hr.MLP([64, 5, 10], activation="tanh")
    theta0 = TINY_EOS.get("init_scale", eos.FAST["init_scale"]) * model.init(seeds["init"])
    lam0 = np.linalg.eigvalsh(hr.hessian(model, theta0, X, np.eye(10)[y]))[-1]
    assert m["sharpness_init"] == pytest.approx(lam0, rel=1e-10)
    for c, rec in zip(TINY_EOS["fractions"], m["rates"].values(), strict=True):
        # the (η, λ_max(θ₀)) pair of every step size, with λ_max(θ₀) < 2/η by design
        assert rec["eta"] == pytest.approx(c * 2 / lam0, rel=1e-12)
        assert rec["sharpness_init"] == m["sharpness_init"] < 2 / rec["eta"]
        assert rec["sharpness"][0] == pytest.approx(lam0, rel=1e-8)
        assert rec["steps"][:2] == [0, 10] and rec["steps"][-1] == 120
    assert m["below_edge_at_init"] and m["quadratic_growth_rel_error"] < 1e-12
    exp = get_experiment("edge-of-stability")
    name = "hovers at 2/η (c=0.9)"
    fake = {
        **m,
        "rates": {
            **m["rates"],
            "c90": {**m["rates"]["c90"], "crossed": True, "band_fraction": 0.95},
        },
    }
    assert summarise(exp, res.settings, [0], [fake]).verdict(name)["holds"] == 1
    fake["rates"]["c90"]["band_fraction"] = 0.5
    assert summarise(exp, res.settings, [0], [fake]).verdict(name)["holds"] == 0


def test_edge_crossing_definition():
    # below, then up: crossing at the first record >= 1 after the first one below
    assert eos.edge_crossing(np.array([2.0, 0.8, 0.9, 1.01, 0.97])) == (3, 1, True)
    # never below after initialization: started at the edge
    assert eos.edge_crossing(np.array([0.5, 1.2, 1.0, 1.1])) == (1, 1, True)
    # never back up: no crossing, index of the last record
    assert eos.edge_crossing(np.array([1.5, 0.7, 0.9])) == (2, 1, False)


@pytest.mark.parametrize("eta", [0.05, 0.3])
def test_quadratic_model_prediction_matches_gd_on_an_exact_quadratic(eta):
    # a linear model with MSE has an exactly quadratic loss: GD on it IS GD on its model;
    # one output, so H's eigenvalues are simple and "the top mode" is one direction (with
    # d_L outputs H = I ⊗ (…) repeats every eigenvalue d_L times)
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((12, 4)), rng.standard_normal((12, 1))
    model = hr.MLP([4, 1], activation="identity")
    theta = model.init(1)
    H = hr.hessian(model, theta, X, Y)
    g = hr.gradient(model, theta, X, Y)
    L0 = hr.loss(model, theta, X, Y)
    t = theta.copy()
    for k in range(1, 41):
        t = t - eta * hr.gradient(model, t, X, Y)
        total, top = eos.quadratic_model_gd(g, H, eta, k)
        assert L0 + total == pytest.approx(hr.loss(model, t, X, Y), rel=1e-10, abs=1e-13)
    lam, V = np.linalg.eigh(H)
    assert lam[-1] - lam[-2] > 1e-6 * lam[-1]  # a simple top eigenvalue: one top mode
    r = 1 - eta * lam[-1]
    delta = -eta * (V[:, -1] @ g) * (1 - r**40) / (1 - r)  # top mode, geometric sum by hand
    assert top == pytest.approx((V[:, -1] @ g) * delta + 0.5 * lam[-1] * delta**2, rel=1e-10)


# ----------------------------------------------------------------------- sign vs sgd
@pytest.mark.parametrize("d", [3, 10, 50])
def test_stiff_flat_design_fixes_l_inf_gap_and_initial_gradient(d):
    for noise in ("sparse", "dense"):
        p = sd.stiff_flat_problem(d, noise, 2.0)
        A = p.dense()
        assert np.abs(A).sum() == pytest.approx(1.0, rel=1e-12)  # L∞ = Σ|A_ij|
        assert 0.5 * p.x0 @ A @ p.x0 == pytest.approx(0.25, rel=1e-12)  # Δ
        assert np.abs(A @ p.x0).sum() == pytest.approx(0.5, rel=1e-12)
        assert np.abs(p.sigma).sum() == pytest.approx(2.0, rel=1e-12)  # same ‖σ‖₁
    assert sd.noise_density(sd.stiff_flat_problem(d, "sparse", 1.0).sigma) == pytest.approx(1 / d)
    assert sd.noise_density(sd.stiff_flat_problem(d, "dense", 1.0).sigma) == pytest.approx(1.0)


def test_rotated_problem_keeps_spectrum_value_and_noise_but_is_dense():
    p = sd.stiff_flat_problem(20, "sparse", 1.0)
    q = sd.rotated(p, np.random.default_rng(0))
    A = q.dense()
    np.testing.assert_allclose(A, A.T, atol=1e-15)
    np.testing.assert_allclose(np.linalg.eigvalsh(A), np.sort(p.h), atol=1e-14)
    assert 0.5 * q.x0 @ A @ q.x0 == pytest.approx(0.25, rel=1e-12)
    np.testing.assert_array_equal(q.sigma, p.sigma)
    assert np.count_nonzero(np.abs(A) > 1e-12) > 0.9 * A.size and np.abs(A).sum() > 3
    X = np.random.default_rng(1).standard_normal((5, 20))
    np.testing.assert_allclose(q.grad(X), X @ A, atol=1e-14)


def test_first_average_below_known_answer_and_chunking():
    v = np.array([[4.0, 2.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    T, carry = sd.first_average_below(v, 1.0)
    # row 0: running means 4, 3, 2, 1.5, 1.2, 1.0 -> first ≤ 1 at T = 6; row 1 at T = 1
    np.testing.assert_array_equal(T, [6.0, 1.0])
    np.testing.assert_array_equal(carry, [6.0, 6.0])
    T1, c1 = sd.first_average_below(v[:, :3], 1.0)
    T2, _ = sd.first_average_below(v[:, 3:], 1.0, offset=3, carry=c1)
    assert T1[0] == np.inf and T2[0] == 6.0 and T1[1] == 1.0


def test_sgd_closed_form_expectation_matches_monte_carlo():
    for noise in ("sparse", "dense"):
        p = sd.stiff_flat_problem(5, noise, 1.0)
        lrs = np.array([0.05, 1.5])
        t = np.arange(0, 120, 15)
        exact = sd.sgd_expected_l1(p, lrs, t)
        rng = np.random.default_rng(0)
        X = np.broadcast_to(p.x0, (2, 40000, 5)).copy()
        mc = []
        for k in range(120):
            G = p.grad(X)
            if k % 15 == 0:
                mc.append(np.abs(G).sum(-1))
            X -= lrs[:, None, None] * (G + p.sigma * rng.standard_normal(X.shape))
        mc = np.array(mc).transpose(1, 0, 2)  # (lr, t, run)
        se = mc.std(-1) / np.sqrt(mc.shape[-1])
        assert np.all(np.abs(mc.mean(-1) - exact) <= 5 * se + 1e-12)


def test_iterations_monte_carlo_agrees_with_exact_sgd_without_noise():
    p = sd.stiff_flat_problem(6, "sparse", 0.0)  # no noise: Monte Carlo is exact
    lrs = [0.1, 0.5, 2.0]
    exact = sd.sgd_iterations_exact(p, lrs, 0.05, 10000)
    mc = sd.iterations_monte_carlo(p, "sgd", lrs, 0.05, 10000, 1, np.random.default_rng(0))
    assert exact == mc and np.isfinite(exact[0])


def test_loglog_slope_known_slope_and_interval():
    x = np.array([10.0, 30, 100, 300, 1000])
    s, lo, hi = sd.loglog_slope(x, 2.0 * x**1.5)
    assert s == pytest.approx(1.5, abs=1e-12) and hi - lo < 1e-10
    rng = np.random.default_rng(0)
    y = 3.0 * x**0.7 * np.exp(0.1 * rng.standard_normal(5))
    s, lo, hi = sd.loglog_slope(x, y)
    ref = stats.linregress(np.log(x), np.log(y))
    half = stats.t.ppf(0.975, 3) * ref.stderr
    assert s == pytest.approx(ref.slope, rel=1e-12)
    assert (lo, hi) == pytest.approx((ref.slope - half, ref.slope + half), rel=1e-12)
    covered = 0
    for _ in range(400):  # the 95% interval covers the true slope ≈ 95% of the time
        y = x**0.7 * np.exp(0.2 * rng.standard_normal(5))
        _, lo, hi = sd.loglog_slope(x, y)
        covered += lo <= 0.7 <= hi
    assert 0.90 <= covered / 400 <= 0.99
    assert np.isnan(sd.loglog_slope([1, 2], [1, 2])[0])


def test_sign_vs_sgd_runs_is_reproducible_and_typed():
    a = run_experiment("sign-vs-sgd", fast=True, seeds=[1], overrides=TINY_SVS)
    b = run_experiment("sign-vs-sgd", fast=True, seeds=[1], overrides=TINY_SVS)
    assert a.per_seed == b.per_seed
    m = a.per_seed[0]
    for case in svs.CASES:
        assert m[case]["d"] == TINY_SVS["dims"] and m[case]["case"] == case
        assert all(v is not None and v >= 1 for v in m[case]["iters_sign"])
    assert m["sparse"]["phi"] == pytest.approx([1 / 3, 1 / 4, 1 / 6])
    assert m["dense"]["phi"] == pytest.approx([1.0] * 3)
    ratio = np.array(m["sparse"]["iters_sgd"]) / np.array(m["sparse"]["iters_sign"])
    np.testing.assert_allclose(m["sparse"]["ratio"], ratio)
    assert m["slope_sparse"] == pytest.approx(sd.loglog_slope(TINY_SVS["dims"], ratio)[0])
    assert m["rotated"]["iters_sgd"] == [None] * 3
    exp = get_experiment("sign-vs-sgd")
    fake = dict(m, slope_sparse=1.0, slope_dense=0.1)
    out = summarise(exp, a.settings, [1], [fake])
    assert out.verdict("factor d under sparse noise")["holds"] == 1
    assert out.verdict("no factor d under dense noise")["holds"] == 1
    fake = dict(m, slope_sparse=0.5, slope_dense=0.6)
    out = summarise(exp, a.settings, [1], [fake])
    assert out.verdict("factor d under sparse noise")["holds"] == 0
    assert out.verdict("sparse beats dense")["holds"] == 0


def test_sign_vs_sgd_quadratic_helper_has_the_stated_exact_hessian():
    for rotate in (False, True):  # the tutorial-09 helper
        model, X, Y, H = svs.quadratic_problem(3, 0.3, rotate, seed=0)
        theta = model.init(0)
        np.testing.assert_allclose(hr.hessian(model, theta, X, Y), H, atol=1e-12)


def test_plots_draw_what_was_computed(tmp_path):
    from hessref import plot

    res = run_experiment("edge-of-stability", fast=True, seeds=[0], overrides=TINY_EOS)
    fig = plot.plot_edge_of_stability(res)
    ax0 = fig.axes[0]
    # one λ_max·η/2 curve per η (per seed) plus the dashed edge line at 1
    assert len(ax0.lines) == len(TINY_EOS["fractions"]) + 1
    rec = res.per_seed[0]["rates"]["c50"]
    np.testing.assert_allclose(
        ax0.lines[0].get_ydata(), np.array(rec["sharpness"]) * rec["eta"] / 2
    )
    assert ax0.lines[-1].get_ydata()[0] == 1.0
    get_experiment("edge-of-stability").figure(res, tmp_path / "eos.png")
    assert (tmp_path / "eos.png").stat().st_size > 0
    fig = plot.plot_sharpness([0, 10], [1.0, 2.0], lr=0.5, losses=([0, 10], [1.0, 0.5]))
    assert len(fig.axes) == 2 and fig.axes[0].lines[1].get_ydata()[0] == 4.0
    fig = plot.plot_loss_slice(np.array([-1.0, 0, 1]), np.array([1.0, 0, 1]))
    assert fig.axes[0].lines[0].get_ydata().tolist() == [1.0, 0, 1]
