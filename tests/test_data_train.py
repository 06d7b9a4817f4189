"""Data generators and GD/SGD training: shapes, seeding, balance, errors, divergence."""

import numpy as np
import pytest

import hessref as hr
from hessref import data
from hessref.landscape import interpolate_loss
from hessref.train import TrainingDivergedError, train

# --- data -----------------------------------------------------------------------------


def test_gaussian_mixture_shapes_dtype_and_balance():
    X, y = data.gaussian_mixture(103, 4, 7, rng=0)
    assert X.shape == (103, 7) and X.dtype == np.float64
    assert y.shape == (103,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=4)
    assert counts.sum() == 103 and counts.max() - counts.min() <= 1
    # globally standardised
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1, rtol=1e-12)


def test_gaussian_mixture_seeding():
    a = data.gaussian_mixture(50, 3, 4, rng=5)
    b = data.gaussian_mixture(50, 3, 4, rng=np.random.default_rng(5))
    c = data.gaussian_mixture(50, 3, 4, rng=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_gaussian_mixture_unbalanced_counts():
    _, y = data.gaussian_mixture(100, 3, 2, balance=[1, 2, 7], rng=0)
    assert np.bincount(y).tolist() == [10, 20, 70]


def test_gaussian_mixture_classes_independent_of_outputs():
    # C = 2 classes, trained on a K = 10 output network: labels only use 0..C-1
    X, y = data.gaussian_mixture(40, 2, 5, rng=0)
    assert set(np.unique(y)) == {0, 1}
    model = hr.MLP([5, 6, 10], activation="relu")
    assert np.isfinite(hr.loss(model, model.init(0), X, y, loss="cross_entropy"))


def test_gaussian_mixture_cluster_geometry():
    # tiny spread: class means are the generated centres; simplex ⇒ equidistant
    X, y = data.gaussian_mixture(
        40, 4, 6, separation=2.0, spread=1e-8, means="simplex", standardize=False, rng=1
    )
    mu = np.array([X[y == c].mean(axis=0) for c in range(4)])
    np.testing.assert_allclose(np.linalg.norm(mu, axis=1), 2.0, rtol=1e-6)
    d = np.linalg.norm(mu[:, None] - mu[None], axis=-1)[np.triu_indices(4, 1)]
    np.testing.assert_allclose(d, 2.0 * np.sqrt(2 * 4 / 3), rtol=1e-6)
    # within-class spread matches the requested std
    X, y = data.gaussian_mixture(4000, 2, 3, spread=0.5, standardize=False, rng=2)
    resid = X - np.array([X[y == c].mean(axis=0) for c in range(2)])[y]
    assert abs(resid.std() - 0.5) < 0.02


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_samples=2, num_classes=3, dim=2), "num_samples"),
        (dict(num_samples=10, num_classes=0, dim=2), "num_classes"),
        (dict(num_samples=10, num_classes=2, dim=2, separation=-1), "separation"),
        (dict(num_samples=10, num_classes=2, dim=2, spread=0), "spread"),
        (dict(num_samples=10, num_classes=2, dim=2, means="grid"), "means"),
        (dict(num_samples=10, num_classes=5, dim=2, means="simplex"), "simplex"),
        (dict(num_samples=10, num_classes=2, dim=2, balance=[1, 2, 3]), "balance"),
        (dict(num_samples=10, num_classes=2, dim=2, balance=[-1, 2]), "balance"),
    ],
)
def test_gaussian_mixture_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.gaussian_mixture(**kwargs)


def test_two_blobs():
    X, y = data.two_blobs(200, std=0.3, rng=0)
    assert X.shape == (400, 2) and np.bincount(y).tolist() == [200, 200]
    np.testing.assert_allclose(X[y == 0].mean(axis=0), [1, 1], atol=0.1)
    np.testing.assert_allclose(X[y == 1].mean(axis=0), [-1, -1], atol=0.1)
    assert abs((X[y == 0] - [1, 1]).std() - 0.3) < 0.03
    np.testing.assert_array_equal(data.two_blobs(rng=3)[0], data.two_blobs(rng=3)[0])
    with pytest.raises(ValueError, match="std"):
        data.two_blobs(std=0)


def test_teacher_student_interpolates():
    X, Y, theta = data.teacher_student(20, [3, 5, 2], activation="tanh", rng=0)
    model = hr.MLP([3, 5, 2], activation="tanh")
    assert hr.loss(model, theta, X, Y) == 0.0
    _, Yn, _ = data.teacher_student(20, [3, 5, 2], activation="tanh", noise=0.1, rng=0)
    assert 0.0 < np.abs(Yn - Y).std() < 0.2
    with pytest.raises(ValueError, match="noise"):
        data.teacher_student(5, [2, 1], noise=-1)


def test_digits_is_sklearn_digits():
    # facts of the public dataset (sklearn.datasets.load_digits), not of our code:
    # first image's top two pixel rows, first labels, class sizes, pixel sum (0-16 scale)
    X, y = data.digits(standardize=False)
    assert (X[0, :16] * 16).tolist() == [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]
    assert y[:10].tolist() == list(range(10))
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert (X * 16).sum() == 561718.0
    X, y = data.digits()
    assert X.shape == (1797, 64) and set(np.unique(y)) == set(range(10))
    Xs, ys = data.digits(50, rng=1, standardize=False)
    assert Xs.shape == (50, 64) and Xs.min() >= 0 and Xs.max() <= 1
    np.testing.assert_array_equal(data.digits(50, rng=1)[1], ys)
    with pytest.raises(ValueError, match="num_samples"):
        data.digits(5000)


# --- training -------------------------------------------------------------------------


def _linear_problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    Y = X @ rng.normal(size=(4, 2)) + 0.1
    return hr.MLP([4, 2], activation="identity"), X, Y


def test_gd_on_linear_least_squares_matches_closed_form_iteration():
    # mean MSE of a linear model is a quadratic: GD is θ ← θ − η (H θ − b), checkable exactly
    model, X, Y = _linear_problem()
    theta0 = model.init(1)
    H = hr.hessian(model, theta0, X, Y)
    g0 = hr.gradient(model, theta0, X, Y)
    lr = 1.0 / np.linalg.eigvalsh(H).max()
    res = train(model, theta0, X, Y, loss="mse", lr=lr, steps=25, record_every=5)
    theta = theta0.copy()
    for _ in range(25):
        theta = theta - lr * (g0 + H @ (theta - theta0))
    np.testing.assert_allclose(res.theta, theta, rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(res.losses) <= 1e-15)  # monotone for η < 2/λ_max
    assert res.losses.shape == (26,) and res.grad_norms.shape == (26,)
    assert res.recorded_steps.tolist() == [0, 5, 10, 15, 20, 25]
    np.testing.assert_array_equal(res.recorded_thetas[-1], res.theta)
    np.testing.assert_array_equal(res.recorded_thetas[0], theta0)
    assert res.losses[-1] == pytest.approx(hr.loss(model, res.theta, X, Y), rel=1e-12)


def test_gd_decreases_cross_entropy_and_stops_at_target():
    X, y = data.gaussian_mixture(60, 3, 4, rng=0)
    model = hr.MLP([4, 8, 3], activation="tanh")
    res = train(
        model, model.init(0), X, y, loss="cross_entropy", lr=0.5, steps=2000, stop_loss=0.05
    )
    assert res.stopped_reason == "stop_loss"
    assert res.losses[-1] <= 0.05 < res.losses[-2]
    assert res.losses[-1] < res.losses[0]
    res2 = train(
        model, model.init(0), X, y, loss="cross_entropy", lr=0.5, steps=2000, stop_grad_norm=0.05
    )
    assert res2.stopped_reason == "stop_grad_norm" and res2.grad_norms[-1] <= 0.05


def test_divergence_raises_with_step_and_advice():
    model, X, Y = _linear_problem()
    theta0 = model.init(1)
    lam = np.linalg.eigvalsh(hr.hessian(model, theta0, X, Y)).max()
    with pytest.raises(FloatingPointError, match=r"diverged at step \d+.*smaller lr"):
        train(model, theta0, X, Y, loss="mse", lr=2.5 / lam, steps=10_000)
    with pytest.raises(TrainingDivergedError):
        train(model, theta0, X, Y, loss="mse", lr=1e6, steps=50)
    # just below 2/λ_max it converges (docs/theory.md, section "Gradient descent on a quadratic")
    res = train(model, theta0, X, Y, loss="mse", lr=1.9 / lam, steps=300)
    assert res.losses[-1] < res.losses[0]


def test_sgd_reproducible_and_seed_dependent():
    X, y = data.gaussian_mixture(50, 2, 3, rng=0)
    model = hr.MLP([3, 5, 2], activation="relu")
    kw = dict(loss="cross_entropy", lr=0.1, steps=40, batch_size=8)
    a = train(model, model.init(0), X, y, rng=7, **kw)
    b = train(model, model.init(0), X, y, rng=np.random.default_rng(7), **kw)
    c = train(model, model.init(0), X, y, rng=8, **kw)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.theta, c.theta)
    assert a.losses[-1] < a.losses[0]


def test_sgd_with_full_batch_equals_gd():
    X, y = data.gaussian_mixture(20, 2, 3, rng=0)
    model = hr.MLP([3, 4, 2], activation="tanh")
    kw = dict(loss="cross_entropy", lr=0.3, steps=10)
    np.testing.assert_array_equal(
        train(model, model.init(0), X, y, **kw).theta,
        train(model, model.init(0), X, y, batch_size=20, rng=1, **kw).theta,
    )


def test_sgd_minibatch_gradient_is_batch_mean():
    # one SGD step with B = 1 on a known sample equals θ − η ∇ℓ_i
    X, y = data.gaussian_mixture(5, 2, 3, rng=0)
    model = hr.MLP([3, 4, 2], activation="tanh")
    theta0 = model.init(0)
    res = train(model, theta0, X, y, loss="cross_entropy", lr=0.1, steps=1, batch_size=1, rng=3)
    i = np.random.default_rng(3).permutation(5)[0]
    g = hr.gradient(model, theta0, X[i : i + 1], y[i : i + 1], loss="cross_entropy")
    np.testing.assert_allclose(res.theta, theta0 - 0.1 * g, rtol=1e-13, atol=1e-15)


def test_train_argument_errors():
    model, X, Y = _linear_problem()
    theta0 = model.init(0)
    with pytest.raises(ValueError, match="lr"):
        train(model, theta0, X, Y, loss="mse", lr=0, steps=1)
    with pytest.raises(ValueError, match="batch_size"):
        train(model, theta0, X, Y, loss="mse", lr=0.1, steps=1, batch_size=31)
    with pytest.raises(ValueError, match="steps"):
        train(model, theta0, X, Y, loss="mse", lr=0.1, steps=-1)
    with pytest.raises(ValueError, match="theta"):
        train(model, theta0[:-1], X, Y, loss="mse", lr=0.1, steps=1)
    with pytest.raises(ValueError, match="loss"):
        train(model, theta0, X, Y, loss="hinge", lr=0.1, steps=1)


def test_train_progress_messages():
    model, X, Y = _linear_problem()
    msgs = []
    train(model, model.init(0), X, Y, loss="mse", lr=0.01, steps=20, progress=msgs.append)
    assert len(msgs) == 10 and msgs[-1].startswith("step 20/20")


def test_interpolate_loss_endpoints_and_midpoint():
    X, y = data.gaussian_mixture(30, 3, 4, rng=0)
    model = hr.MLP([4, 6, 3], activation="relu")
    a, b = model.init(0), model.init(1)
    alphas = np.array([0.0, 0.3, 1.0])
    out = interpolate_loss(model, a, b, X, y, loss="cross_entropy", alphas=alphas)
    assert out[0] == pytest.approx(hr.loss(model, a, X, y, loss="cross_entropy"), rel=1e-14)
    assert out[2] == pytest.approx(hr.loss(model, b, X, y, loss="cross_entropy"), rel=1e-14)
    mid = hr.loss(model, 0.7 * a + 0.3 * b, X, y, loss="cross_entropy")
    assert out[1] == pytest.approx(mid, rel=1e-14)
    with pytest.raises(ValueError, match="theta"):
        interpolate_loss(model, a, b[:-1], X, y, loss="cross_entropy", alphas=alphas)
