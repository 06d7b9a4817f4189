"""Optimizers (GD, sign descent, Muon), injected gradient noise and sharpness tracking."""

import numpy as np
import pytest

import hessref as hr
from hessref import data, spectrum
from hessref.train import (
    GradientNoise,
    Optimizer,
    Tracking,
    TrainingDivergedError,
    polar_factor,
    train,
)


def _mse_problem(sizes=(4, 6, 3), N=25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, sizes[0]))
    Y = rng.normal(size=(N, sizes[-1]))
    return hr.MLP(list(sizes), activation="tanh"), X, Y


# --- optimizers -------------------------------------------------------------------------


def test_sign_descent_step_is_lr_times_sign_of_gradient():
    model, X, Y = _mse_problem()
    theta0 = model.init(0)
    g = hr.gradient(model, theta0, X, Y)
    res = train(model, theta0, X, Y, loss="mse", lr=0.01, steps=1, optimizer="sign")
    np.testing.assert_array_equal(res.theta, theta0 - 0.01 * np.sign(g))
    assert res.settings["optimizer"] == "sign"


def test_momentum_gd_matches_heavy_ball_recursion():
    model, X, Y = _mse_problem()
    theta = model.init(0)
    res = train(model, theta, X, Y, loss="mse", lr=0.05, steps=5, optimizer=Optimizer("gd", 0.9))
    m = np.zeros_like(theta)
    for _ in range(5):
        m = 0.9 * m + hr.gradient(model, theta, X, Y)
        theta = theta - 0.05 * m
    np.testing.assert_allclose(res.theta, theta, rtol=1e-13, atol=1e-15)


def test_muon_update_is_orthogonal_polar_factor_per_matrix():
    # two steps, with momentum: Δ for each W_l is orthogonal to 1e-12, equals U Vᵀ of the
    # momentum, and biases follow the plain heavy-ball rule
    model, X, Y = _mse_problem(sizes=(4, 6, 3))
    theta0 = model.init(1)
    opt = Optimizer("muon", momentum=0.5)
    lr = 0.01
    res = train(model, theta0, X, Y, loss="mse", lr=lr, steps=2, optimizer=opt, record_every=1)
    th = res.recorded_thetas
    g0 = hr.gradient(model, th[0], X, Y)
    m1 = 0.5 * g0 + hr.gradient(model, th[1], X, Y)
    for t, m in ((0, g0), (1, m1)):
        delta = (th[t] - th[t + 1]) / lr
        for l in (1, 2):
            s = model.weight_slice(l)
            D = delta[s].reshape(model.sizes[l], model.sizes[l - 1])
            small = D @ D.T if D.shape[0] <= D.shape[1] else D.T @ D
            assert np.abs(small - np.eye(min(D.shape))).max() < 1e-12
            U, sv, Vt = np.linalg.svd(m[s].reshape(D.shape), full_matrices=False)
            np.testing.assert_allclose(D, U @ Vt, atol=1e-12)
            # the polar factor's defining property: D = M (MᵀM)^{-1/2}
            np.testing.assert_allclose(D @ (Vt.T * sv) @ Vt, m[s].reshape(D.shape), atol=1e-12)
            b = model.bias_slice(l)
            np.testing.assert_allclose(delta[b], m[b], rtol=1e-9, atol=1e-13)


def test_polar_factor_of_rank_deficient_and_wide_matrices():
    rng = np.random.default_rng(0)
    for shape in [(3, 7), (7, 3), (5, 5)]:
        M = rng.normal(size=(shape[0], 2)) @ rng.normal(size=(2, shape[1]))  # rank 2
        O = polar_factor(M)
        k = min(shape)
        G = O @ O.T if shape[0] <= shape[1] else O.T @ O
        assert np.abs(G - np.eye(k)).max() < 1e-12
        # on the range of M it agrees with the unique part U_r V_rᵀ
        U, _, Vt = np.linalg.svd(M)
        np.testing.assert_allclose(U[:, :2].T @ O @ Vt[:2].T, np.eye(2), atol=1e-12)


def test_muon_layers_selection_and_1d_weight_error():
    model = hr.MLP([4, 6, 1], activation="tanh")  # W2 is (1, 6): a 1-D weight
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 4)), rng.normal(size=(10, 1))
    theta0 = model.init(0)
    with pytest.raises(ValueError, match=r"optimizer: Muon needs 2-D.*W2.*\(1, 6\)"):
        train(model, theta0, X, Y, loss="mse", lr=0.01, steps=1, optimizer="muon")
    res = train(
        model,
        theta0,
        X,
        Y,
        loss="mse",
        lr=0.01,
        steps=1,
        optimizer=Optimizer("muon", muon_layers=[1]),
    )
    g = hr.gradient(model, theta0, X, Y)
    s2 = model.layer_slice(2)
    np.testing.assert_allclose(res.theta[s2], theta0[s2] - 0.01 * g[s2], rtol=1e-13)


@pytest.mark.parametrize("optimizer", ["sgd", "signsgd", Optimizer("muon", momentum=0.9)])
def test_stochastic_optimizers_reproducible_bits(optimizer):
    X, y = data.gaussian_mixture(40, 3, 4, rng=0)
    model = hr.MLP([4, 5, 3], activation="tanh")
    kw = dict(loss="cross_entropy", lr=0.02, steps=15, batch_size=7, optimizer=optimizer)
    kw["noise"] = GradientNoise(0.1, sparsity=3)
    a = train(model, model.init(0), X, y, rng=5, **kw)
    b = train(model, model.init(0), X, y, rng=np.random.default_rng(5), **kw)
    c = train(model, model.init(0), X, y, rng=6, **kw)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.theta, c.theta)


@pytest.mark.parametrize("optimizer", ["sign", "muon"])
def test_divergence_detected_for_every_optimizer(optimizer):
    model, X, Y = _mse_problem()
    with pytest.raises(TrainingDivergedError, match=r"diverged at step \d+"):
        train(model, model.init(0), X, Y, loss="mse", lr=1e5, steps=50, optimizer=optimizer)


def test_gradient_noise_moments_and_sparsity():
    gen = np.random.default_rng(0)
    for s in (1, 4, 16):
        xi = np.array([GradientNoise(0.5, sparsity=s).sample(16, gen) for _ in range(4000)])
        assert np.all(np.count_nonzero(xi, axis=1) == s)
        np.testing.assert_allclose(np.abs(xi[xi != 0]), 0.5 * np.sqrt(16 / s), rtol=1e-15)
        # E ξξᵀ = σ² I: mean squared entry σ², off-diagonal mean ~ 0
        assert abs(np.mean(xi**2) - 0.25) < 0.02
        C = xi.T @ xi / len(xi)
        assert np.abs(C - np.diag(np.diag(C))).max() < 0.1
    with pytest.raises(ValueError, match="sparsity"):
        GradientNoise(1.0, sparsity=5).sample(4, gen)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (lambda: dict(lr=0), ValueError, "lr"),
        (lambda: dict(lr=-0.1), ValueError, "lr"),
        (lambda: dict(lr=float("nan")), ValueError, "lr"),
        (lambda: dict(lr=float("inf")), ValueError, "lr"),
        (lambda: dict(optimizer="adam"), ValueError, "optimizer: unknown optimizer 'adam'"),
        (lambda: dict(optimizer=Optimizer("gd", momentum=1.0)), ValueError, "momentum"),
        (lambda: dict(track=Tracking(every=0)), ValueError, "every"),
        (lambda: dict(track=10), TypeError, "track"),
        (lambda: dict(noise=0.1), TypeError, "noise"),
        (lambda: dict(noise=GradientNoise(-1.0)), ValueError, "noise.scale"),
        (lambda: dict(track=Tracking(top_k=30)), ValueError, "top_k"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, exc, match):
    model, X, Y = _linear_problem()
    args = dict(loss="mse", lr=0.1, steps=2)
    with pytest.raises(exc, match=match):
        args.update(kwargs())
        train(model, model.init(0), X, Y, **args)


def _linear_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    return hr.MLP([4, 6], activation="identity"), X, rng.normal(size=(30, 6))


def test_tracking_error_messages_for_bad_settings():
    with pytest.raises(ValueError, match="every"):
        Tracking(every=-3)
    with pytest.raises(ValueError, match="tol"):
        Tracking(tol=0.0)
    with pytest.raises(ValueError, match="muon_layers"):
        Optimizer("gd", muon_layers=[1])


# --- sharpness tracking -----------------------------------------------------------------


def test_tracked_sharpness_equals_dense_eigenvalues_at_every_record():
    # smooth MSE net trained by GD: the recorded λ_max, λ_2, λ_min and the trace
    # equal eigenvalues(hessian(θ_t)) at every record (recomputed here from recorded θ_t)
    model, X, Y = _mse_problem(sizes=(3, 8, 2), N=30, seed=2)
    theta0 = model.init(3)
    track = Tracking(every=5, top_k=2, smallest=True, trace_probes=40, dense=True, rng=1)
    res = train(model, theta0, X, Y, loss="mse", lr=0.2, steps=23, track=track, record_every=5)
    tr = res.tracking
    assert tr.steps.tolist() == [0, 5, 10, 15, 20, 23]
    assert res.recorded_steps.tolist() == tr.steps.tolist()
    for t, theta in zip(res.recorded_steps, res.recorded_thetas, strict=True):
        ev = spectrum.eigenvalues(hr.hessian(model, theta, X, Y))
        i = tr.steps.tolist().index(t)
        assert abs(tr.sharpness[i] - ev[0]) <= 1e-8 * max(1.0, abs(ev[0]))
        np.testing.assert_allclose(tr.top[i], ev[:2], rtol=0, atol=1e-8)
        assert abs(tr.smallest[i] - ev[-1]) <= 1e-8
        assert tr.dense_top[i, 0] == ev[0]
    assert np.all(tr.residuals <= 1e-4 * np.abs(tr.top).max())
    # Hutchinson trace (40 probes) within 5 standard errors of the exact trace
    assert np.all(np.abs(tr.trace - tr.dense_trace) <= 5 * tr.trace_stderr + 1e-12)
    assert np.all(tr.matvecs > 0)


def test_tracking_does_not_change_the_trajectory():
    X, y = data.gaussian_mixture(60, 3, 5, rng=0)
    model = hr.MLP([5, 10, 3], activation="tanh")
    kw = dict(loss="cross_entropy", lr=0.5, steps=40, batch_size=10, rng=3)
    a = train(model, model.init(0), X, y, **kw)
    b = train(model, model.init(0), X, y, track=Tracking(every=4, dense=True), **kw)
    np.testing.assert_array_equal(a.theta, b.theta)
    tr = b.tracking
    np.testing.assert_allclose(tr.sharpness, tr.dense_top[:, 0], rtol=1e-10, atol=1e-12)
    # the reported residuals are the true ones, ‖H v − λ v‖, recomputed here
    H = hr.hessian(model, b.theta, X, y, loss="cross_entropy")
    v = tr.vectors[:, 0]
    true = np.linalg.norm(H @ v - tr.sharpness[-1] * v)
    assert abs(tr.residuals[-1, 0] - true) <= 1e-12 * np.abs(H).max()
    assert np.all(tr.residuals <= 3e-11 * 2 * np.abs(tr.dense_top).max())


def test_tracking_gd_on_quadratic_constant_sharpness():
    # linear model + MSE: H is constant, so every record equals the same λ_max
    model, X, Y = _linear_problem()
    lam = spectrum.eigenvalues(hr.hessian(model, model.init(0), X, Y))[0]
    res = train(
        model, model.init(0), X, Y, loss="mse", lr=1.0 / lam, steps=30, track=Tracking(every=10)
    )
    np.testing.assert_allclose(res.tracking.sharpness, lam, rtol=1e-10)


def test_tracking_finds_repeated_eigenvalues_and_keeps_its_budget():
    # H = I (linear model on orthonormal, centred inputs): every Krylov space has dimension
    # 1, yet the restarted Lanczos of top_eigenpairs returns the multiplicity
    n = 3
    X = np.vstack([np.sqrt(2 * n) * np.eye(n), -np.sqrt(2 * n) * np.eye(n)]) / np.sqrt(2)
    model = hr.MLP([n, 1], activation="identity")
    Y = np.zeros((2 * n, 1))
    H = hr.hessian(model, model.init(0), X, Y)
    np.testing.assert_allclose(H, np.eye(n + 1), atol=1e-14)
    res = train(model, model.init(0), X, Y, loss="mse", lr=0.1, steps=2, track=Tracking(every=1))
    np.testing.assert_allclose(res.tracking.sharpness, 1.0, rtol=1e-14)
    res = train(model, model.init(0), X, Y, loss="mse", lr=0.1, steps=2, track=Tracking(top_k=2))
    np.testing.assert_allclose(res.tracking.top, 1.0, rtol=1e-14)
    with pytest.raises(RuntimeError, match="max_matvecs=2"):
        train(
            model,
            model.init(0),
            X,
            Y,
            loss="mse",
            lr=0.1,
            steps=2,
            track=Tracking(top_k=2, max_matvecs=2),
        )


def test_tracking_matvecs_count_every_product_including_trace_probes():
    # the first record's eigensolve sees the same random state with or without probes,
    # so the two counts differ by exactly the 40 probe products
    model, X, Y = _mse_problem(sizes=(3, 8, 2), N=30, seed=2)
    kw = dict(loss="mse", lr=0.2, steps=3)
    plain = train(model, model.init(3), X, Y, track=Tracking(every=5, rng=4), **kw).tracking
    probed = Tracking(every=5, trace_probes=40, rng=4)
    withp = train(model, model.init(3), X, Y, track=probed, **kw).tracking
    assert withp.matvecs[0] - plain.matvecs[0] == 40
    np.testing.assert_array_equal(withp.top[0], plain.top[0])
    # and the eigensolve's own count is what top_eigenpairs reports for the same operator
    # (Ritz residuals: no extra product for the residual check)
    op = hr.hessian_operator(model, model.init(3), X, Y, loss="mse")
    kw = dict(method="lanczos", tol=Tracking().tol, rng=4)
    ref = spectrum.top_eigenpairs(op, 1, residuals="ritz", **kw)
    assert plain.matvecs[0] == ref.num_matvecs
    assert plain.top[0, 0] == ref.values[0]
    assert plain.residuals[0, 0] == ref.residuals[0]
    exact = spectrum.top_eigenpairs(op, 1, residuals="exact", **kw)
    assert exact.num_matvecs == ref.num_matvecs + 1
    assert abs(exact.residuals[0] - ref.residuals[0]) <= 1e-13 * abs(ref.values[0])


def test_tracking_warm_start_from_the_previous_record_saves_products():
    # two records at the same θ: the second starts from the first's eigenvectors (plus
    # WARM_NOISE of a random vector), so it needs fewer products for the same pairs
    from hessref.train.tracking import Tracker

    X, y = data.gaussian_mixture(80, 3, 5, rng=1)
    model = hr.MLP([5, 12, 12, 3], activation="tanh")
    theta = model.init(2)
    args = dict(model=model, X=X, y=y, loss="cross_entropy", reduction="mean")
    tracker = Tracker(Tracking(top_k=3, smallest=True, rng=0), args, model.num_params)
    tracker.record(0, theta)
    tracker.record(1, theta)
    first, second = tracker.rows
    assert second["matvecs"] < first["matvecs"]
    ev = spectrum.eigenvalues(hr.hessian(model, theta, X, y, loss="cross_entropy"))
    scale = np.abs(ev).max()
    for row in (first, second):
        np.testing.assert_allclose(row["top"], ev[:3], rtol=0, atol=1e-10 * scale)
        assert abs(row["smallest"] - ev[-1]) <= 1e-10 * scale
