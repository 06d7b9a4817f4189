"""Layer-wise curvature: exact block traces/eigenvalues, Hutchinson per layer, vs dense."""

import numpy as np
import pytest

import hessref as hr
from hessref import spectrum
from hessref.core.kinds import Curvature
from hessref.layerwise import layer_curvature, layer_top_eigenvalues, layer_traces


def _problem(activation="tanh", loss="mse", seed=0):
    rng = np.random.default_rng(seed)
    model = hr.MLP([3, 5, 4, 2], activation=activation)
    X = rng.normal(size=(25, 3))
    y = rng.normal(size=(25, 2)) if loss == "mse" else rng.integers(0, 2, size=25)
    return model, model.init(seed), X, y


def _dense(model, theta, X, y, loss):
    H = hr.hessian(model, theta, X, y, loss=loss)
    G, R = hr.gauss_newton(model, theta, X, y, loss=loss)
    return {"H": H, "G": G, "R": R}


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_exact_layer_traces_and_top_eigenvalues(loss):
    model, theta, X, y = _problem(loss=loss)
    lc = layer_curvature(model, theta, X, y, loss=loss, top=2)
    dense = _dense(model, theta, X, y, loss)
    assert lc.sizes.tolist() == [20, 24, 10]
    for name, M in dense.items():
        np.testing.assert_allclose(lc.trace[name].sum(), np.trace(M), rtol=1e-12)
        for l in (1, 2, 3):
            s = model.layer_slice(l)
            block = M[s, s]
            assert lc.trace[name][l - 1] == pytest.approx(np.trace(block), rel=1e-12, abs=1e-15)
            np.testing.assert_allclose(
                lc.top[name][l - 1], np.linalg.eigvalsh(block)[::-1][:2], rtol=1e-10, atol=1e-13
            )
    # the last layer's block of R is zero (f is affine in W_L, b_L)
    assert np.all(lc.top["R"][2] == 0) and lc.trace["R"][2] == 0
    np.testing.assert_allclose(lc.trace["H"], lc.trace["G"] + lc.trace["R"], rtol=1e-10)


def test_relu_layer_traces_of_R_vanish():
    model, theta, X, y = _problem(activation="relu")
    lc = layer_curvature(model, theta, X, y)
    np.testing.assert_allclose(lc.trace["R"], 0.0, atol=1e-14)


@pytest.mark.parametrize("kind, key", [(Curvature.H, "H"), ("G", "G"), (Curvature.R, "R")])
def test_matrix_free_layer_top_eigenvalues_match_dense_blocks(kind, key):
    model, theta, X, y = _problem()
    M = _dense(model, theta, X, y, "mse")[key]
    top = layer_top_eigenvalues(model, theta, X, y, 2, kind=kind)
    for l in (1, 2, 3):
        s = model.layer_slice(l)
        ev = spectrum.eigenvalues(M[s, s])[:2]
        np.testing.assert_allclose(top[l - 1], ev, rtol=1e-9, atol=1e-10 * np.abs(M).max())


def test_layer_hutchinson_exact_samples_and_statistics():
    model, theta, X, y = _problem(seed=1)
    M = _dense(model, theta, X, y, "mse")["H"]
    n = 400
    est = layer_traces(model, theta, X, y, n, rng=3)
    assert est.samples.shape == (3, n) and est.num_matvecs == 3 * n
    # exact channel: every sample is z_lᵀ H_ll z_l for the same Rademacher z
    Z = np.random.default_rng(3).integers(0, 2, size=(model.num_params, n)) * 2.0 - 1.0
    for l in (1, 2, 3):
        s = model.layer_slice(l)
        expected = np.einsum("pi,pq,qi->i", Z[s], M[s, s], Z[s])
        np.testing.assert_allclose(est.samples[l - 1], expected, rtol=1e-10, atol=1e-12)
        # statistical channel: within 4 standard errors of the exact trace, and the
        # standard error agrees with the exact single-probe variance 2(‖B‖_F² − Σ B_ii²)/n
        B = M[s, s]
        assert abs(est.estimate[l - 1] - np.trace(B)) <= 4 * est.stderr[l - 1]
        exact_se = np.sqrt(2 * (np.sum(B**2) - np.sum(np.diag(B) ** 2)) / n)
        assert est.stderr[l - 1] == pytest.approx(exact_se, rel=0.2)
    again = layer_traces(model, theta, X, y, n, rng=3)
    np.testing.assert_array_equal(again.samples, est.samples)


def test_old_matrix_keyword_warns_and_selects_the_same_kind():
    model, theta, X, y = _problem()
    with pytest.warns(DeprecationWarning, match="matrix= is deprecated, use kind="):
        old = layer_traces(model, theta, X, y, 3, matrix="ggn", rng=1)
    new = layer_traces(model, theta, X, y, 3, kind=Curvature.G, rng=1)
    np.testing.assert_array_equal(old.samples, new.samples)
    other = layer_traces(model, theta, X, y, 3, kind="H", rng=1)
    assert not np.array_equal(other.samples, new.samples)  # the kind is really used
    with pytest.warns(DeprecationWarning, match="layer_top_eigenvalues"):
        layer_top_eigenvalues(model, theta, X, y, 1, matrix="residual")


def test_layerwise_errors():
    model, theta, X, y = _problem()
    with pytest.raises(ValueError, match="kind"):
        layer_traces(model, theta, X, y, 3, kind="fisher")
    with pytest.raises(TypeError, match="kind"):
        layer_top_eigenvalues(model, theta, X, y, 1, kind=2)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="matrix"):
        layer_traces(model, theta, X, y, 3, matrix="fisher")
    with pytest.raises(ValueError, match="num_probes"):
        layer_traces(model, theta, X, y, 0)
    with pytest.raises(ValueError, match="top"):
        layer_curvature(model, theta, X, y, top=11)
    with pytest.raises(ValueError, match="k"):
        layer_top_eigenvalues(model, theta, X, y, 10)


def test_single_probe_layer_trace_has_nan_stderr_and_its_sample_as_estimate():
    model, theta, X, y = _problem(seed=2)
    est = layer_traces(model, theta, X, y, 1, rng=0)
    assert np.all(np.isnan(est.stderr)) and est.num_matvecs == model.num_layers
    np.testing.assert_array_equal(est.estimate, est.samples[:, 0])
