"""Issue 23, items 3-4: layer-trace memorization detection and the Local-SGD subspace.

Exact parts: the single-probe variance of the masked Rademacher estimator of a layer
block trace, 2(‖A‖_F² − Σ A_ii²) (docs/theory.md (12.1), (20.1)), checked by enumerating
every sign vector on tiny blocks (HVP channel vs dense block channel), and statistically
against :func:`hessref.layerwise.layer_traces`; the CUSUM recursion (20.2) by hand; the
overlap ω (20.4) against scipy's principal angles; the gradient covariance against a
per-sample loop; the Local-SGD gap identities (gaps sum to zero; no noise, no gap).
"""

import itertools

import numpy as np
import pytest
from scipy.linalg import subspace_angles

import hessref as hr
from hessref.core.problem import make_problem
from hessref.experiments import get_experiment, run_experiment
from hessref.experiments.framework import summarise
from hessref.experiments.local_sgd_subspace import (
    gradient_covariance,
    local_sgd_gaps,
    overlap,
    random_overlaps,
)
from hessref.experiments.memorization_traces import cusum, first_alarm, flip_key, flip_labels
from hessref.layerwise import layer_traces


def _tiny():
    """A tanh MLP 2→3→2 (layer blocks of 9 and 8 parameters), MSE, at a random θ."""
    gen = np.random.default_rng(3)
    model = hr.MLP([2, 3, 2], "tanh")
    X, Y = gen.standard_normal((5, 2)), gen.standard_normal((5, 2))
    return model, model.init(rng=4), X, Y


def _enumerated_forms(model, theta, X, Y, l):
    """z_lᵀ H z_l for ALL 2^{P_l} sign vectors z_l on block l, by the R-op HVP."""
    s = model.layer_slice(l)
    n = s.stop - s.start
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=n))).T  # (n, 2^n)
    Z = np.zeros((model.num_params, signs.shape[1]))
    Z[s] = signs
    HZ = hr.hvp(model, theta, X, Y, Z, loss="mse")
    return np.einsum("pj,pj->j", Z, HZ)


@pytest.mark.parametrize("l", [1, 2])
def test_rademacher_block_variance_by_enumeration(l):
    """Exact: over all sign vectors, mean = tr A_ll and variance = 2(‖A‖_F² − Σ A_ii²)."""
    model, theta, X, Y = _tiny()
    H = hr.hessian(model, theta, X, Y, loss="mse")  # dense block formulas: other channel
    s = model.layer_slice(l)
    A = H[s, s]
    q = _enumerated_forms(model, theta, X, Y, l)
    formula = 2.0 * (np.sum(A * A) - np.sum(np.diag(A) ** 2))
    assert abs(q.mean() - np.trace(A)) <= 1e-10 * np.abs(A).sum()
    assert abs(q.var() - formula) <= 1e-10 * formula
    assert formula > 0  # off-diagonal mass: the check is not 0 = 0


def test_layer_traces_sample_variance_matches_formula():
    """Statistical: layer_traces' samples have mean tr A_ll and variance (12.1) per layer.

    Tolerances are 5 standard errors computed from the EXACT distribution (all sign
    vectors): SE(mean) = σ/√n, SE(s²) = √((μ₄ − σ⁴(n − 3)/(n − 1))/n).
    """
    model, theta, X, Y = _tiny()
    n = 4000
    lt = layer_traces(model, theta, X, Y, n, loss="mse", rng=11)
    for l in (1, 2):
        q = _enumerated_forms(model, theta, X, Y, l)
        mu, var = q.mean(), q.var()
        mu4 = np.mean((q - mu) ** 4)
        se_var = np.sqrt((mu4 - var**2 * (n - 3) / (n - 1)) / n)
        samples = lt.samples[l - 1]
        assert abs(samples.mean() - mu) <= 5 * np.sqrt(var / n)
        assert abs(samples.var(ddof=1) - var) <= 5 * se_var
        assert abs(lt.stderr[l - 1] - np.sqrt(var / n)) <= 5 * se_var / (2 * np.sqrt(var * n))


def test_cusum_by_hand():
    x = np.array([0.3, 0.3, -1.0, 0.15, 0.6])
    # S: 0.2, 0.4, 0 (clipped), 0.05, 0.55 with drift 0.1
    assert np.allclose(cusum(x, 0.1), [0.2, 0.4, 0.0, 0.05, 0.55], rtol=0, atol=1e-15)
    assert np.allclose(cusum(np.full(4, 0.1), 0.1), 0.0, atol=0)  # at the drift: no growth
    assert np.allclose(cusum(np.stack([x, -x]), 0.1)[1], [0, 0, 0.9, 0.65, 0])


def test_first_alarm_reads_every_layer_and_doubling():
    T = np.ones((5, 2))
    assert first_alarm(T, 0.1, np.log(2.0)) == -1
    T[3:, 1] = 2.5  # layer 2 jumps by 2.5x at checkpoint 3: log 2.5 − 0.1 > log 2
    assert first_alarm(T, 0.1, np.log(2.0)) == 3
    T[3:, 1] = 2.1  # log 2.1 − 0.1 < log 2: no alarm
    assert first_alarm(T, 0.1, np.log(2.0)) == -1
    assert first_alarm(np.exp(np.cumsum(np.full((6, 1), 0.3), 0)), 0.1, 0.5) == 3


def test_flip_labels_moves_exactly_the_chosen_labels_to_other_classes():
    y = np.arange(100) % 3
    noisy, idx = flip_labels(y, 0.2, 3, seed=5)
    assert idx.size == 20 and np.all(noisy[idx] != y[idx])
    rest = np.setdiff1d(np.arange(100), idx)
    assert np.array_equal(noisy[rest], y[rest]) and set(noisy) <= {0, 1, 2}
    assert np.array_equal(flip_labels(y, 0.2, 3, seed=5)[0], noisy)
    assert flip_key(0.1) == "flip_10pct" and "." not in flip_key(0.025)


def test_overlap_is_mean_squared_cosine_of_principal_angles():
    gen = np.random.default_rng(0)
    U = np.linalg.qr(gen.standard_normal((12, 3)))[0]
    V = np.linalg.qr(gen.standard_normal((12, 3)) + 2 * U)[0]
    cos2 = np.cos(subspace_angles(U, V)) ** 2
    assert abs(overlap(U, V) - cos2.mean()) <= 1e-12
    assert abs(overlap(U, U @ np.linalg.qr(gen.standard_normal((3, 3)))[0]) - 1.0) <= 1e-12


def test_random_overlaps_have_mean_k_over_p():
    P, k, n = 20, 3, 20000
    w = random_overlaps(P, k, n, rng=1)
    assert np.all((w >= 0) & (w <= 1))
    assert abs(w.mean() - k / P) <= 5 * w.std() / np.sqrt(n)


def _mixture_mlp():
    X, y = hr.data.gaussian_mixture(30, 3, 4, rng=0)
    model = hr.MLP([4, 5, 3], "relu")
    return model, model.init(rng=1), X, y


def test_gradient_covariance_matches_per_sample_loop():
    model, theta, X, y = _mixture_mlp()
    g = np.array([hr.gradient(model, theta, X[i : i + 1], y[i : i + 1], loss="cross_entropy")
                  for i in range(X.shape[0])])  # fmt: skip
    g = g - g.mean(axis=0)
    S = gradient_covariance(model, theta, X, y)
    assert np.max(np.abs(S - g.T @ g / X.shape[0])) <= 1e-12 * np.max(np.abs(S))


def _settings(**kw):
    s = {"workers": 3, "local_steps": 2, "batch_size": 7, "learning_rate": 0.3, "rounds": 4}
    return {**s, **kw}


def test_local_sgd_gaps_sum_to_zero_and_vanish_without_noise():
    model, theta, X, y = _mixture_mlp()
    p = make_problem(model, theta, X, y, "cross_entropy", "mean")
    D, avg = local_sgd_gaps(p, theta, _settings(), np.random.default_rng(0))
    assert D.shape == (4 * 3, model.num_params)
    sums = D.reshape(4, 3, -1).sum(axis=1)
    assert np.max(np.abs(sums)) <= 1e-13 * np.max(np.abs(D)) and np.max(np.abs(D)) > 1e-6
    # full batch: every worker takes the same GD steps, so the gaps are exactly zero
    D0, avg0 = local_sgd_gaps(p, theta, _settings(batch_size=30), np.random.default_rng(0))
    assert np.max(np.abs(D0)) <= 1e-15
    gd = hr.train.train(model, theta, X, y, loss="cross_entropy", lr=0.3, steps=8)
    assert np.allclose(avg0, gd.theta, rtol=0, atol=1e-12)


def test_local_sgd_one_step_matches_a_hand_computed_minibatch_step():
    model, theta, X, y = _mixture_mlp()
    p = make_problem(model, theta, X, y, "cross_entropy", "mean")
    s = _settings(workers=2, local_steps=1, rounds=1)
    D, avg = local_sgd_gaps(p, theta, s, np.random.default_rng(7))
    gen = np.random.default_rng(7)
    W = [theta - 0.3 * hr.gradient(model, theta, X[i], y[i], loss="cross_entropy")
         for i in (gen.choice(30, 7, replace=False) for _ in range(2))]  # fmt: skip
    assert np.allclose(avg, (W[0] + W[1]) / 2, rtol=0, atol=1e-13)
    assert np.allclose(D[0], (W[0] - W[1]) / 2, rtol=0, atol=1e-13)


_RUNS: dict = {}


def _fast(name):
    if name not in _RUNS:
        _RUNS[name] = run_experiment(name, fast=True)
    return _RUNS[name]


@pytest.mark.parametrize("name", ["memorization-traces", "local-sgd-subspace"])
def test_fast_run_is_strict_json_with_claims_nulls_and_data_driven_verdicts(name):
    res = _fast(name)
    assert res.seeds == [0, 1, 2] and "NaN" not in res.to_json()
    roles = {v["role"] for v in res.verdicts}
    assert {"claim", "null"} <= roles
    exp = get_experiment(name)
    blank = summarise(exp, res.settings, res.seeds, [{} for _ in res.per_seed])
    assert all(v["holds"] == 0 for v in blank.verdicts)
    assert any(v["holds"] > 0 for v in res.verdicts)


def test_memorization_fast_alarm_rates_and_false_alarms():
    """Seeded regression of the fast setting: noisy runs alarm, clean ones do not."""
    res = _fast("memorization-traces")
    assert res.verdict("ρ = 0.1: alarm (exact traces)")["holds"] == 3
    assert res.verdict("null: clean labels, alarm (exact traces)")["holds"] == 0
    m = res.per_seed[0]
    exact = np.array(m["clean"]["exact"])
    assert exact.shape == (11, 3) and np.all(exact > 0)  # ReLU: tr H_ll = tr G_ll > 0


def test_local_sgd_fast_gap_aligns_beyond_chance():
    res = _fast("local-sgd-subspace")
    assert res.verdict("ω(gap, H) above the random 99th percentile")["holds"] == 3
    assert res.verdict("null: random k-subspace, ω ≥ min_overlap")["holds"] == 0
    for m in res.per_seed:
        assert abs(m["null_mean"] - 3 / m["num_params"]) <= 0.1 * 3 / m["num_params"]


# ---- issue 23: sharpness dimension of the GD map's linearisation (docs/theory.md (20.5)) ----
def test_ky_dimension_by_hand_on_diagonal_quadratics():
    from hessref.experiments.edge_of_stability import sharpness_dimension

    # η = 1, λ = (4, 0.5, 0.75): μ = (log 3, log 1/2, log 1/4), S = (1.099, 0.405, −0.981)
    D, unstable = sharpness_dimension(np.array([0.5, 4.0, 0.75]), 1.0)
    assert abs(D - (2 + np.log(1.5) / np.log(4.0))) <= 1e-14 and unstable == 1
    # λ = (3, 0.5, 1.5, 0.9): μ = (log 2, −log 2, −log 2, log 0.1): S_2 = 0 exactly -> D = 2
    assert sharpness_dimension(np.array([3.0, 0.5, 1.5, 0.9]), 1.0)[0] == pytest.approx(2.0)
    assert sharpness_dimension(np.array([0.5, 1.0]), 1.0) == (0.0, 0)  # ηλ = 1: μ = −∞
    assert sharpness_dimension(np.array([2.5, 1.0]), 1.0) == (1.0, 1)  # S_1 ≥ 0, μ_2 = −∞
    assert sharpness_dimension(np.array([-1.0, 3.0]), 1.0) == (2.0, 2)  # all expanding


def test_sharpness_dimension_matches_lyapunov_exponents_of_the_gd_map():
    """Second channel: the exponents of θ ↦ θ − ηAθ by QR iteration on a rotated A."""
    from hessref.experiments.edge_of_stability import ky_dimension, sharpness_dimension

    gen = np.random.default_rng(2)
    P, eta, T = 8, 0.5, 3000
    lam = np.array([4.6, 4.2, 1.0, 0.6, 0.2, 0.0, -0.3, 3.3])
    Q = np.linalg.qr(gen.standard_normal((P, P)))[0]
    A = (Q * lam) @ Q.T
    frame, logs = np.linalg.qr(gen.standard_normal((P, P)))[0], np.zeros(P)
    for _ in range(T):
        frame, R = np.linalg.qr(frame - eta * (A @ frame))
        logs += np.log(np.abs(np.diag(R)))
    mu = np.sort(logs / T)[::-1]
    exact = np.sort(np.log(np.abs(1 - eta * lam)))[::-1]
    assert np.max(np.abs(mu - exact)) <= 2e-3
    assert abs(ky_dimension(mu) - sharpness_dimension(lam, eta)[0]) <= 1e-2


def test_predicted_gap_covariance_is_the_geometric_sum_on_commuting_matrices():
    from hessref.experiments.local_sgd_subspace import predicted_gap_covariance

    gen = np.random.default_rng(5)
    Q = np.linalg.qr(gen.standard_normal((6, 6)))[0]
    lam, sig = np.array([3.0, 1.5, 0.4, 0.0, -0.2, 2.2]), gen.uniform(0.5, 2.0, 6)
    H, Sigma = (Q * lam) @ Q.T, (Q * sig) @ Q.T
    s = {"learning_rate": 0.3, "workers": 4, "batch_size": 8, "local_steps": 5}
    N = 40
    C = predicted_gap_covariance(H, Sigma, s, N)
    r2 = (1 - 0.3 * lam) ** 2
    with np.errstate(invalid="ignore"):  # λ = 0: r² = 1, the sum is 5 (the where's branch)
        geometric = np.where(r2 != 1, (1 - r2**5) / (1 - r2), 5.0)
    per_mode = sig * (N - 8) / (8 * (N - 1)) * geometric
    closed = (Q * (0.3**2 * 0.75 * per_mode)) @ Q.T
    assert np.max(np.abs(C - closed)) <= 1e-13 * np.max(np.abs(closed))
