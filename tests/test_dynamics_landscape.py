"""Loss slices: values, the exact second derivative at 0 (= dᵀHd), directions."""

import numpy as np
import pytest

import hessref as hr
from hessref import spectrum
from hessref.landscape import (
    eigen_directions,
    interpolate_loss,
    interpolation_direction,
    loss_along,
    random_direction,
    slice_curvature,
)


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    model = hr.MLP([3, 6, 2], activation="tanh")
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    return model, model.init(seed), X, Y


def test_loss_along_1d_and_2d_values():
    model, theta, X, Y = _problem()
    d1, d2 = random_direction(model, theta, 1), random_direction(model, theta, 2)
    a = np.array([-0.3, 0.0, 0.2])
    b = np.array([0.1, -0.5])
    line = loss_along(model, theta, X, Y, d1, a)
    assert line.shape == (3,)
    for i, al in enumerate(a):
        assert line[i] == hr.loss(model, theta + al * d1, X, Y)
    plane = loss_along(model, theta, X, Y, np.column_stack([d1, d2]), (a, b))
    assert plane.shape == (3, 2)
    for i, j in np.ndindex(3, 2):
        expected = hr.loss(model, theta + a[i] * d1 + b[j] * d2, X, Y)
        assert plane[i, j] == pytest.approx(expected, rel=1e-14)
    square = loss_along(model, theta, X, Y, np.column_stack([d1, d2]), a)
    assert square.shape == (3, 3)


def test_second_derivative_of_slice_is_vHv_closed_form_and_finite_differences():
    model, theta, X, Y = _problem(1)
    H = hr.hessian(model, theta, X, Y)
    D = np.column_stack([random_direction(model, theta, 3), random_direction(model, theta, 4)])
    # closed form by one batched HVP vs the dense H
    M = slice_curvature(model, theta, X, Y, D)
    np.testing.assert_allclose(M, D.T @ H @ D, rtol=1e-12)
    v = D[:, 0]
    assert slice_curvature(model, theta, X, Y, v) == pytest.approx(v @ H @ v, rel=1e-12)

    # finite differences of the slice itself, with Richardson extrapolation (error O(h⁴))
    def fd(h):
        ell = loss_along(model, theta, X, Y, v, [-h, 0.0, h])
        return (ell[0] - 2 * ell[1] + ell[2]) / h**2

    h = 1e-2
    rich = (4 * fd(h / 2) - fd(h)) / 3
    assert abs(rich - v @ H @ v) <= 1e-7 * abs(v @ H @ v)

    # mixed derivative of the 2-D slice = d1ᵀ H d2 (Richardson-extrapolated differences)
    def mixed(h):
        pl = loss_along(model, theta, X, Y, D, ([-h, h], [-h, h]))
        return (pl[1, 1] - pl[1, 0] - pl[0, 1] + pl[0, 0]) / (4 * h * h)

    h = 2e-3
    assert abs((4 * mixed(h / 2) - mixed(h)) / 3 - M[0, 1]) <= 1e-7 * np.abs(M).max()


def test_slice_of_quadratic_is_exact_parabola():
    # linear model + MSE: the slice is exactly L0 + α gᵀd + ½ α² dᵀHd
    rng = np.random.default_rng(0)
    model = hr.MLP([4, 3], activation="identity")
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    theta = model.init(0)
    d = random_direction(model, theta, 5)
    alphas = np.linspace(-2, 2, 9)
    curv = slice_curvature(model, theta, X, Y, d)
    g = hr.gradient(model, theta, X, Y)
    expected = hr.loss(model, theta, X, Y) + alphas * (g @ d) + 0.5 * alphas**2 * curv
    np.testing.assert_allclose(loss_along(model, theta, X, Y, d, alphas), expected, rtol=1e-12)


def test_eigen_directions_curvature_equals_eigenvalue():
    model, theta, X, Y = _problem(2)
    ev = spectrum.eigenvalues(hr.hessian(model, theta, X, Y))
    vals, V = eigen_directions(model, theta, X, Y, 2)
    np.testing.assert_allclose(vals, ev[:2], rtol=1e-10)
    for i in range(2):
        assert slice_curvature(model, theta, X, Y, V[:, i]) == pytest.approx(ev[i], rel=1e-10)
    low, U = eigen_directions(model, theta, X, Y, 1, which="smallest")
    assert low[0] == pytest.approx(ev[-1], rel=1e-10, abs=1e-12)


def test_filter_normalized_direction_matches_row_norms_and_zero_biases():
    model, theta, _, _ = _problem()
    d = random_direction(model, theta, rng=7, filter_normalized=True)
    for l in (1, 2):
        shape = (model.sizes[l], model.sizes[l - 1])
        Wd = d[model.weight_slice(l)].reshape(shape)
        Wt = theta[model.weight_slice(l)].reshape(shape)
        np.testing.assert_allclose(np.linalg.norm(Wd, axis=1), np.linalg.norm(Wt, axis=1))
        assert np.all(d[model.bias_slice(l)] == 0)
    np.testing.assert_array_equal(d, random_direction(model, theta, 7, filter_normalized=True))


def test_interpolation_direction_reproduces_interpolate_loss():
    model, a, X, Y = _problem()
    b = model.init(9)
    alphas = np.array([0.0, 0.25, 1.0, 1.5])
    np.testing.assert_allclose(
        loss_along(model, a, X, Y, interpolation_direction(model, a, b), alphas),
        interpolate_loss(model, a, b, X, Y, loss="mse", alphas=alphas),
        rtol=1e-13,
    )


def test_interpolate_loss_old_import_path_warns_and_is_the_same_function():
    import hessref.train

    with pytest.warns(DeprecationWarning, match="hessref.landscape.interpolate_loss"):
        old = hessref.train.interpolate_loss
    assert old is interpolate_loss
    with pytest.warns(DeprecationWarning):
        from hessref.train import interpolate_loss as old_import  # noqa: F401
    with pytest.raises(AttributeError, match="no_such_name"):
        hessref.train.no_such_name  # noqa: B018


def test_interpolate_loss_endpoints_are_exact_and_points_are_convex_combinations():
    # the convex form (1 − α)θ_a + αθ_b gives θ_a, θ_b bit for bit at α = 0, 1
    model, a, X, Y = _problem()
    b = model.init(9)
    out = interpolate_loss(model, a, b, X, Y, loss="mse", alphas=[1.0, 0.0, -0.5])
    assert out[0] == hr.loss(model, b, X, Y) and out[1] == hr.loss(model, a, X, Y)
    assert out[2] == hr.loss(model, 1.5 * a - 0.5 * b, X, Y)


def test_loss_along_errors():
    model, theta, X, Y = _problem()
    with pytest.raises(ValueError, match="directions"):
        loss_along(model, theta, X, Y, np.ones((model.num_params, 3)), [0.0])
    with pytest.raises(ValueError, match="directions"):
        loss_along(model, theta, X, Y, np.ones(5), [0.0])
    with pytest.raises(ValueError, match="alphas"):
        loss_along(model, theta, X, Y, np.ones(model.num_params), [[0.0]])
    with pytest.raises(ValueError, match="alphas"):
        loss_along(model, theta, X, Y, np.ones(model.num_params), [np.nan])


def test_eigen_directions_are_unit_with_a_positive_largest_entry_whatever_the_seed():
    # the documented sign rule makes the directions independent of the Lanczos start
    model, theta, X, Y = _problem(2)
    _, ref = spectrum.eigenvalues(hr.hessian(model, theta, X, Y), vectors=True)
    for seed in (0, 5):
        _, V = eigen_directions(model, theta, X, Y, 2, rng=seed)
        np.testing.assert_allclose(np.linalg.norm(V, axis=0), 1.0, rtol=1e-13)
        biggest = V[np.abs(V).argmax(axis=0), [0, 1]]
        assert np.all(biggest > 0)
        for i in range(2):  # the dense eigenvector with the same sign rule
            u = ref[:, i] * np.sign(ref[np.abs(ref[:, i]).argmax(), i])
            np.testing.assert_allclose(V[:, i], u, atol=1e-8)
