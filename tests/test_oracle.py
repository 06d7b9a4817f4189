"""The oracle: reference bundles, convention adapters, state dicts, comparison reports, fixtures.

Independent channels: autograd (``tests/reference.py``) for every derivative in a
bundle; autograd's own ``flatten`` (which sorts dict keys, as JAX pytrees do) for
the parameter orders of dict- and list-based tools; closed-form permutations.
"""

from __future__ import annotations

import dataclasses
import json

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.misc import flatten
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import gradient as ag_gradient
from reference import hessian as ag_hessian
from reference import jacobian as ag_jacobian
from reference import loss_fn, per_sample_loss, rel_err
from reference import outputs as ag_outputs

import hessref as hr
from hessref import compare as cmp
from hessref import conventions as cv
from hessref import oracle

TOL = 1e-10


def problem(sizes, activation, loss, N=7, seed=0):
    return oracle.random_problem(sizes, activation, loss, num_samples=N, rng=seed)


@st.composite
def architectures(draw, max_layers=4):
    L = draw(st.integers(1, max_layers))
    sizes = draw(st.lists(st.integers(1, 4), min_size=L + 1, max_size=L + 1))
    return hr.MLP(sizes, activation="tanh")


def random_convention(draw):
    order = draw(st.sampled_from(["torch", "weights_then_biases", "sorted_names"]))
    return cv.Convention(
        "random",
        param_order=order,
        weight_layout=draw(st.sampled_from(["out_in", "in_out"])),
        include_biases=draw(st.booleans()),
    )


# --- conventions --------------------------------------------------------------------------


@settings(max_examples=30)
@given(model=architectures(max_layers=11), data=st.data())
def test_round_trips_are_identity(model, data):
    P = model.num_params
    names = list(cv.CONVENTIONS) + ["random"]
    name = data.draw(st.sampled_from(names))
    conv = random_convention(data.draw) if name == "random" else cv.CONVENTIONS[name]
    rng = np.random.default_rng(P)
    v, M = rng.normal(size=P), rng.normal(size=(P, P))
    perm = cv.permutation(model, conv)
    # their vector is a permutation (or a selection) of hessref's
    assert len(set(perm.tolist())) == perm.size
    assert perm.size == (P if conv.include_biases else sum(
        model.sizes[l] * model.sizes[l - 1] for l in range(1, model.num_layers + 1)
    ))  # fmt: skip
    tv, tM = cv.to_convention(model, v, conv), cv.to_convention(model, M, conv)
    np.testing.assert_array_equal(tM, M[np.ix_(perm, perm)])
    if conv.include_biases:
        np.testing.assert_array_equal(cv.from_convention(model, tv, conv), v)
        np.testing.assert_array_equal(cv.from_convention(model, tM, conv), M)
    else:
        bias = np.ones(P, dtype=bool)
        bias[perm] = False
        back = cv.from_convention(model, tv, conv, fill=0.0)
        np.testing.assert_array_equal(back, np.where(bias, 0.0, v))
        backM = cv.from_convention(model, tM, conv, fill=np.nan)
        keep = ~bias[:, None] & ~bias[None, :]
        np.testing.assert_array_equal(backM[keep], M[keep])
        assert np.isnan(backM[~keep]).all()
    # and the other way: theirs -> hessref -> theirs
    np.testing.assert_array_equal(
        cv.to_convention(model, cv.from_convention(model, tv, conv, fill=0.0), conv), tv
    )
    np.testing.assert_array_equal(
        cv.to_convention(model, cv.from_convention(model, tM, conv, fill=0.0), conv), tM
    )


def test_in_out_permutation_closed_form():
    # W (3, 2) at θ[o·2 + i]; (in, out) storage puts it at i·3 + o
    model = hr.MLP([2, 3], activation="identity")
    expected = [0, 2, 4, 1, 3, 5, 6, 7, 8]
    np.testing.assert_array_equal(cv.permutation(model, "sagun"), expected)
    theta = np.arange(9.0)
    W, b = model.unflatten(theta)[0]
    np.testing.assert_array_equal(cv.to_convention(model, theta, "sagun")[:6], W.T.ravel())


def test_weights_then_biases_and_explicit_order():
    model = hr.MLP([2, 2, 1], activation="tanh")  # W1 0:4, b1 4:6, W2 6:8, b2 8
    np.testing.assert_array_equal(
        cv.permutation(model, cv.Convention("wb", param_order="weights_then_biases")),
        [0, 1, 2, 3, 6, 7, 4, 5, 8],
    )
    explicit = cv.Convention("x", param_order=("b2", "W2", "b1", "W1"))
    np.testing.assert_array_equal(cv.permutation(model, explicit), [8, 6, 7, 4, 5, 0, 1, 2, 3])


def _ag_container(model, theta, name):
    params = model.unflatten(theta)
    if name in ("torch", "autograd_list", "hessref"):
        return [(W, b) for W, b in params]
    if name == "sagun":
        return [(W.T, b) for W, b in params]
    if name in ("autograd_dict", "jax_dict"):
        d = {f"W{l}": W for l, (W, b) in enumerate(params, 1)}
        d.update({f"b{l}": b for l, (W, b) in enumerate(params, 1)})
        return d
    if name == "jax_flax":
        return {f"Dense_{i}": {"kernel": W.T, "bias": b} for i, (W, b) in enumerate(params)}
    if name == "loss_landscape":
        return [W for W, b in params]
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(cv.CONVENTIONS))
def test_presets_match_autograd_flatten_of_their_containers(name):
    # 11 layers: "W10" < "W2" and "Dense_10" < "Dense_2" as strings
    model = hr.MLP([3] + [2] * 10 + [3], activation="tanh")
    theta = np.arange(model.num_params, dtype=float)
    flat, _ = flatten(_ag_container(model, theta, name))
    np.testing.assert_array_equal(cv.to_convention(model, theta, name), flat)


def test_sorted_names_put_w10_before_w2():
    model = hr.MLP([2] * 12, activation="tanh")
    order = cv._tensor_order(model, cv.CONVENTIONS["autograd_dict"])
    assert order[:4] == ["W1", "W10", "W11", "W2"]
    assert order[11:14] == ["b1", "b10", "b11"]
    flax = cv._tensor_order(model, cv.CONVENTIONS["jax_flax"])
    assert flax[:6] == ["b1", "W1", "b2", "W2", "b11", "W11"]  # Dense_0, Dense_1, Dense_10


def test_loss_factors():
    model = hr.MLP([3, 4], activation="identity")
    torch_sum = dataclasses.replace(cv.CONVENTIONS["torch"], reduction="sum")
    assert cv.loss_factor(model, "mse", "torch", num_samples=5) == pytest.approx(2 / 4)
    assert cv.loss_factor(model, "mse", torch_sum, num_samples=5) == pytest.approx(10.0)
    assert cv.loss_factor(model, "mse", torch_sum, num_samples=5, reduction="sum") == 2.0
    assert cv.loss_factor(model, "cross_entropy", "torch", num_samples=5) == 1.0
    assert cv.loss_factor(model, "cross_entropy", torch_sum, num_samples=5) == 5.0
    # the "hessref" preset is mean-reduced: a sum-reduced hessref H maps to it by 1/N
    assert cv.loss_factor(model, "mse", "hessref", num_samples=5, reduction="sum") == 0.2
    half = cv.Convention("h", loss_scale=0.5, reduction="sum")
    assert cv.loss_factor(model, "mse", half, num_samples=4) == pytest.approx(2.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_in_convention_torch_matches_torch_loss_formulas(reduction):
    # nn.MSELoss = mean or sum of (f - y)^2 over all N·d_L entries, written out in NumPy
    model, theta, X, Y = problem([3, 4, 2], "tanh", "mse")
    bundle = oracle.reference_bundle(model, theta, X, Y, loss="mse", reduction="mean")
    conv = dataclasses.replace(cv.CONVENTIONS["torch"], reduction=reduction)
    theirs = oracle.in_convention(bundle, conv)
    sq = (hr.outputs(model, theta, X) - Y) ** 2
    torch_loss = sq.mean() if reduction == "mean" else sq.sum()
    assert theirs["loss"] == pytest.approx(torch_loss, rel=1e-13)

    def torch_mse(t):
        s = (ag_outputs(model.sizes, "tanh", t, X) - Y) ** 2
        return anp.mean(s) if reduction == "mean" else anp.sum(s)

    assert rel_err(theirs["gradient"], autograd.grad(torch_mse)(theta)) < TOL
    assert rel_err(theirs["H"], autograd.hessian(torch_mse)(theta)) < TOL
    # per-sample gradients of the per-sample torch loss, empirical Fisher s' Σ g g^T
    per = autograd.jacobian(
        lambda t: (
            anp.sum((ag_outputs(model.sizes, "tanh", t, X) - Y) ** 2, axis=1)
            / (Y.shape[1] if reduction == "mean" else 1)
        )
    )(theta)
    assert rel_err(theirs["per_sample_gradients"], per) < TOL
    s = 1 / X.shape[0] if reduction == "mean" else 1.0
    assert rel_err(theirs["empirical_fisher"], s * per.T @ per) < TOL


def test_in_convention_without_biases_gives_weight_block_spectra():
    model, theta, X, y = problem([3, 4, 2], "relu", "cross_entropy")
    bundle = oracle.reference_bundle(model, theta, X, y, loss="cross_entropy")
    ll = oracle.in_convention(bundle, "loss_landscape")
    w = np.r_[np.arange(0, 12), np.arange(16, 24)]
    np.testing.assert_array_equal(ll["H"], bundle.H[np.ix_(w, w)])
    np.testing.assert_allclose(
        ll["eigenvalues_H"], np.linalg.eigvalsh(bundle.H[np.ix_(w, w)])[::-1], atol=1e-14
    )
    assert ll["jacobian"].shape == (7, 2, 20)


# --- state dicts --------------------------------------------------------------------------


class FakeTensor:
    """Duck-typed stand-in for a torch tensor (detach/cpu/numpy), float32 like torch's default."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.a


@settings(max_examples=15)
@given(model=architectures(max_layers=5), seed=st.integers(0, 2**16))
def test_state_dict_round_trip(model, seed):
    theta = model.init(rng=seed)
    sd = cv.to_state_dict(model, theta)
    assert list(sd) == [f"{2 * l}.{p}" for l in range(model.num_layers) for p in ("weight", "bias")]
    back, theta2 = cv.from_state_dict(sd, "tanh")
    assert back.sizes == model.sizes
    np.testing.assert_array_equal(theta2, theta)
    # torch-like tensors, any increasing indices, a prefix and foreign keys
    fake = {f"net.{5 * int(k.split('.')[0]) + 1}.{k.split('.')[1]}": FakeTensor(v)
            for k, v in sd.items()}  # fmt: skip
    fake["optimizer_state"] = "ignored because of the prefix"
    back, theta3 = cv.from_state_dict(fake, "relu", prefix="net.")
    assert back.sizes == model.sizes and back.activation.name == "relu"
    np.testing.assert_array_equal(theta3, theta)


def test_from_npz_and_fixture_state_dict(tmp_path):
    model, theta, X, y = problem([3, 5, 2], "gelu", "mse")
    np.savez(tmp_path / "sd.npz", **cv.to_state_dict(model, theta))
    m2, t2 = cv.from_npz(tmp_path / "sd.npz", "gelu")
    assert m2.sizes == model.sizes
    np.testing.assert_array_equal(t2, theta)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda sd: sd.pop("2.bias"), r"missing key 2\.bias"),
        (lambda sd: sd.update({"4.running_mean": np.zeros(2)}), r"unexpected key '4.running_mean'"),
        (lambda sd: sd.update({"0.bias": np.zeros(4)}), r"state_dict\['0.bias'\].*\(3,\)"),
        (lambda sd: sd.update({"2.weight": np.zeros((2, 4))}), r"'2.weight'.*3 input features"),
        (lambda sd: sd.update({"0.weight": np.zeros(6)}), r"'0.weight'.*2-D"),
        (lambda sd: sd.update({"0.weight": np.full((3, 2), np.nan)}), r"'0.weight'.*finite"),
    ],
)
def test_state_dict_errors_name_the_key(edit, match):
    model = hr.MLP([2, 3, 2], activation="tanh")
    sd = cv.to_state_dict(model, model.init(rng=0))
    edit(sd)
    with pytest.raises(ValueError, match=match):
        cv.from_state_dict(sd, "tanh")


def test_state_dict_bad_arguments():
    with pytest.raises(TypeError, match="state_dict"):
        cv.from_state_dict([("0.weight", np.ones((1, 1)))], "tanh")
    with pytest.raises(ValueError, match="no '<index>.weight'"):
        cv.from_state_dict({"a.weight": 1}, "tanh", prefix="net.")
    with pytest.raises(ValueError, match="activation"):
        cv.from_state_dict({"0.weight": np.ones((1, 1)), "0.bias": np.ones(1)}, "swish")


# --- reference bundle against autograd ------------------------------------------------------


@pytest.mark.parametrize(
    ("activation", "loss", "reduction"),
    [("tanh", "mse", "mean"), ("gelu", "cross_entropy", "sum"), ("relu", "cross_entropy", "mean")],
)
def test_bundle_matches_autograd(activation, loss, reduction):
    sizes = [3, 5, 4, 3]
    model, theta, X, y = problem(sizes, activation, loss, N=6, seed=3)
    b = oracle.reference_bundle(
        model, theta, X, y, loss=loss, reduction=reduction, eigenvectors=True,
        density_grid=50, density_sigma=0.05,
    )  # fmt: skip
    H = ag_hessian(sizes, activation, theta, X, y, loss, reduction)
    assert b.loss == pytest.approx(loss_fn(sizes, activation, X, y, loss, reduction)(theta))
    assert rel_err(b.gradient, ag_gradient(sizes, activation, theta, X, y, loss, reduction)) < TOL
    assert rel_err(b.H, H) < TOL
    assert rel_err(b.G + b.R, H) < TOL
    assert rel_err(b.jacobian, ag_jacobian(sizes, activation, theta, X)) < TOL
    per = autograd.jacobian(
        lambda t: per_sample_loss(ag_outputs(sizes, activation, t, X), y, loss)
    )(theta)
    assert rel_err(b.per_sample_gradients, per) < TOL
    s = 1 / 6 if reduction == "mean" else 1.0
    assert rel_err(b.empirical_fisher, s * per.T @ per) < TOL
    lam = np.linalg.eigvalsh(H)[::-1]
    np.testing.assert_allclose(b.eigenvalues_H, lam, atol=1e-10 * np.abs(lam).max())
    assert np.all(np.diff(b.eigenvalues_G) <= 0) and b.eigenvalues_G[-1] > -1e-12
    V = b.eigenvectors_H
    np.testing.assert_allclose(V.T @ V, np.eye(model.num_params), atol=1e-12)
    np.testing.assert_allclose(b.H @ V, V * b.eigenvalues_H, atol=1e-10)
    assert np.all(V[np.abs(V).argmax(axis=0), np.arange(V.shape[1])] > 0)
    assert b.trace_H == pytest.approx(np.trace(H), rel=1e-10)
    assert b.trace_H == pytest.approx(b.trace_G + b.trace_R, rel=1e-10)
    assert b.trace_empirical_fisher == pytest.approx(s * (per**2).sum(), rel=1e-12)
    # density: direct kernel sum at one point; grid covers the spectra ±4σ
    t = b.density_grid[17]
    direct = np.mean(np.exp(-((t - lam) ** 2) / (2 * 0.05**2))) / (0.05 * np.sqrt(2 * np.pi))
    assert b.density_H[17] == pytest.approx(direct, rel=1e-9)
    assert b.density_grid[0] < b.eigenvalues_G[-1] and b.density_grid[-1] > b.eigenvalues_H[0]
    names = [p.torch_name for p in b.layers]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert b.layers[2].shape == (4, 5) and b.layers[2].slice == model.weight_slice(2)


def test_bundle_bad_inputs():
    model, theta, X, y = problem([2, 3, 2], "tanh", "mse")
    with pytest.raises(ValueError, match="density_sigma"):
        oracle.reference_bundle(model, theta, X, y, loss="mse", density_grid=10)
    with pytest.raises(ValueError, match="density_sigma"):
        oracle.reference_bundle(model, theta, X, y, loss="mse", density_sigma=0.1)
    with pytest.raises(ValueError, match="density_sigma"):
        oracle.reference_bundle(
            model, theta, X, y, loss="mse", density_grid=[0.0], density_sigma=-1
        )
    with pytest.raises(ValueError, match="theta"):
        oracle.reference_bundle(model, theta[:-1], X, y, loss="mse")
    with pytest.raises(ValueError, match="loss"):
        oracle.reference_bundle(model, theta, X, y, loss="hinge")
    with pytest.raises(TypeError, match="eigenvectors"):
        oracle.reference_bundle(model, theta, X, y, loss="mse", eigenvectors="yes")


# --- comparison reports -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref():
    model, theta, X, y = problem([4, 6, 3], "tanh", "cross_entropy", N=9)
    return model, oracle.reference_bundle(model, theta, X, y, loss="cross_entropy")


def test_compare_passes_on_exact_and_roundoff(ref):
    model, b = ref
    assert cmp.compare(b.H.copy(), b.H, model=model, kind="H").passed
    noisy = b.H * (1 + 1e-14 * np.random.default_rng(0).standard_normal(b.H.shape))
    report = cmp.compare(noisy, b.H, model=model, kind="H")
    assert report.passed and "PASS" in str(report)


def test_compare_names_a_changed_entry(ref):
    model, b = ref
    H = b.H.copy()
    i, j = model.weight_slice(2).start + 7, model.bias_slice(1).start + 2  # W2[1, 1], b1[2]
    H[i, j] += 1e-7
    report = cmp.compare(H, b.H, model=model, kind="H")
    assert not report.passed
    assert report.worst_index == (i, j)
    assert report.worst_location == "(W2[1, 1], b1[2])"
    assert list(report.block_errors) == ["(W2, b1)"]
    assert "(W2[1, 1], b1[2])" in str(report) and "not symmetric" in str(report)
    g = b.gradient.copy()
    g[j] *= 1 + 1e-8
    vr = cmp.compare(g, b.gradient, model=model)
    assert not vr.passed and vr.worst_location == "b1[2]" and list(vr.block_errors) == ["b1"]


def test_compare_names_a_transposed_weight_block(ref):
    model, b = ref
    q = np.arange(model.num_params)
    s = model.weight_slice(2)
    q[s] = s.start + np.arange(18).reshape(3, 6).T.ravel()  # W2 stored (in, out)
    report = cmp.compare(b.H[np.ix_(q, q)], b.H, model=model, kind="H")
    assert not report.passed
    assert any("W2" in n and "transposed" in n for n in report.notes)
    assert report.worst_location.count("W2") >= 1
    vr = cmp.compare(b.gradient[q], b.gradient, model=model)
    assert any("W2" in n and "layer 2" in n for n in vr.notes)


def test_compare_flags_float32_round_trip(ref):
    model, b = ref
    report = cmp.compare(b.H.astype(np.float32), b.H, model=model, kind="H")
    assert not report.passed
    assert 1e-9 < report.max_rel_error < 1e-6
    assert any("float32" in n for n in report.notes)


def test_compare_flags_missing_normalisation(ref):
    model, b = ref
    report = cmp.compare(9 * b.H, b.H, model=model, kind="H")  # sum instead of mean, N = 9
    assert not report.passed
    assert report.best_scale == pytest.approx(9.0, rel=1e-12)
    assert any("9 × reference" in n for n in report.notes)
    assert "best-fit scale" in str(report)


def test_compare_recognises_a_whole_convention(ref):
    model, b = ref
    theirs = cv.to_convention(model, b.H, "jax_flax")
    report = cmp.compare(theirs, b.H, model=model, kind="H")
    assert not report.passed and any("'jax_flax'" in n for n in report.notes)
    declared = cmp.compare(theirs, b.H, model=model, kind="H", convention="jax_flax")
    assert declared.passed
    theirs[0, 0] += 1.0  # their index 0 is Dense_0/bias = b1[0]
    bad = cmp.compare(theirs, b.H, model=model, kind="H", convention="jax_flax")
    assert bad.worst_location == "(b1[0], b1[0])"
    ll = cmp.compare(
        cv.to_convention(model, b.gradient, "loss_landscape"), b.gradient, model=model,
        convention="loss_landscape",
    )  # fmt: skip
    assert ll.passed


def test_compare_psd_symmetry_and_nan(ref):
    model, b = ref
    P = model.num_params
    report = cmp.compare(b.G - 1e-6 * np.eye(P), b.G, model=model, kind="G")
    assert not report.passed and report.min_eigenvalue == pytest.approx(
        b.eigenvalues_G[-1] - 1e-6, abs=1e-12
    )
    assert any("positive semi-definite" in n for n in report.notes)
    assert cmp.compare(b.G, b.G, kind="G").min_eigenvalue > -1e-12
    bad = b.H.copy()
    bad[3, 5] = np.nan
    nan_report = cmp.compare(bad, b.H, model=model)
    assert not nan_report.passed and any("NaN" in n for n in nan_report.notes)
    assert nan_report.worst_index == (3, 5)


def test_compare_names_jacobian_entries(ref):
    model, b = ref
    J = b.jacobian.copy()
    j = model.weight_slice(2).start + 1  # W2[0, 1]
    J[3, 1, j] += 1e-6
    report = cmp.compare(J, b.jacobian, model=model, kind="jacobian")
    assert not report.passed and report.worst_location == "(3, 1, W2[0, 1])"
    assert list(report.block_errors) == ["W2"]
    theirs = cv.to_convention(model, b.per_sample_gradients, "sagun", axes=(-1,))
    assert cmp.compare(
        theirs, b.per_sample_gradients, model=model, kind="per_sample_gradients",
        convention="sagun",
    ).passed  # fmt: skip


def test_compare_scalars(ref):
    _, b = ref
    ok = cmp.compare(b.loss, b.loss, kind="loss")
    assert ok.passed and ok.kind == "scalar" and ok.worst_index == ()
    bad = cmp.compare(b.loss * (1 + 1e-9), b.loss)
    assert not bad.passed and bad.max_rel_error == pytest.approx(1e-9, rel=1e-3)
    assert not cmp.compare(float("nan"), b.loss).passed
    zero = cmp.compare(np.full(3, 1e-20), np.zeros(3))
    assert not zero.passed and any("atol" in n for n in zero.notes)
    assert cmp.compare(np.full(3, 1e-20), np.zeros(3), atol=1e-15).passed


def test_compare_spectra(ref):
    _, b = ref
    lam = b.eigenvalues_H
    assert cmp.compare(lam[::-1].copy(), lam, kind="eigenvalues").passed
    top = cmp.compare(lam[:4], lam, kind="spectrum")
    assert top.passed and any("top-4" in n for n in top.notes)
    bottom = lam[-3:].copy()
    bottom[1] += 1e-6
    r = cmp.compare(bottom, lam, kind="spectrum")
    assert not r.passed and any("bottom-3" in n for n in r.notes)
    assert r.worst_location.startswith(f"eigenvalue #{lam.size - 2}")
    assert not cmp.compare(np.r_[lam, 0.0], lam, kind="spectrum").passed
    assert any("factor" in n for n in cmp.compare(2 * lam, lam, kind="spectrum").notes)


def test_compare_bad_inputs(ref):
    model, b = ref
    with pytest.raises(ValueError, match="theirs: expected shape"):
        cmp.compare(b.H[:5], b.H)
    with pytest.raises(ValueError, match="bias-free"):
        cmp.compare(np.zeros(model.num_params - 9), b.gradient, model=model)
    with pytest.raises(ValueError, match="kind"):
        cmp.compare(b.H, b.H, kind="hessian-ish")
    with pytest.raises(ValueError, match="rtol"):
        cmp.compare(b.H, b.H, rtol=-1)
    with pytest.raises(TypeError, match="theirs"):
        cmp.compare(b.H.astype(complex), b.H)
    with pytest.raises(ValueError, match="reference"):
        cmp.compare(b.H, np.full_like(b.H, np.inf))
    with pytest.raises(ValueError, match="convention"):
        cmp.compare(b.H, b.H, convention="torch")


# --- convention argument errors -------------------------------------------------------------


def test_convention_errors():
    model = hr.MLP([2, 3, 1], activation="tanh")
    with pytest.raises(ValueError, match="weight_layout"):
        cv.Convention("x", weight_layout="io")
    with pytest.raises(ValueError, match="param_order"):
        cv.Convention("x", param_order="alphabetical")
    with pytest.raises(ValueError, match="loss_scale"):
        cv.Convention("x", loss_scale=0.0)
    with pytest.raises(ValueError, match="weight_name"):
        cv.Convention("x", weight_name="W{layer}")
    with pytest.raises(ValueError, match="param_order must list"):
        cv.permutation(model, cv.Convention("x", param_order=("W1", "b1")))
    with pytest.raises(ValueError, match="duplicate names"):
        cv.permutation(model, cv.Convention("x", param_order="sorted_names", weight_name="w"))
    with pytest.raises(ValueError, match="unknown preset"):
        cv.permutation(model, "pyhessian2")
    with pytest.raises(ValueError, match="A: expected length 13"):
        cv.to_convention(model, np.zeros(9), "torch")
    with pytest.raises(ValueError, match="axes="):
        cv.to_convention(model, np.zeros((3, 13)), "torch")
    with pytest.raises(ValueError, match="fill"):
        cv.from_convention(model, np.zeros(9), "loss_landscape")
    with pytest.raises(ValueError, match="num_samples"):
        cv.loss_factor(model, "mse", "torch", num_samples=0)


# --- fixtures -----------------------------------------------------------------------------


def test_fixture_is_plain_numpy_and_recomputable(tmp_path):
    model, theta, X, y = problem([3, 4, 2], "softplus", "cross_entropy", N=5)
    path = oracle.write_fixture(
        tmp_path / "f.npz", model, theta, X, y, loss="cross_entropy", reduction="sum",
        eigenvectors=True, density_grid=np.linspace(-1, 3, 40), density_sigma=0.1,
        extra_spec={"seed": 0},
    )  # fmt: skip
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["metadata"]))
    assert meta["format"] == "hessref-oracle-fixture" and meta["spec"]["seed"] == 0
    assert meta["hessref_version"] and sorted(meta["keys"]) == sorted(arrays)
    # recompute from the stored spec alone, through the public API
    m = hr.MLP(arrays["spec/sizes"].tolist(), activation=str(arrays["spec/activation"]))
    kw = {"loss": str(arrays["spec/loss"]), "reduction": str(arrays["spec/reduction"])}
    args = (m, arrays["theta"], arrays["X"], arrays["y"])
    assert rel_err(arrays["H"], hr.hessian(*args, **kw)) < 1e-12
    G, R = hr.gauss_newton(*args, **kw)
    assert rel_err(arrays["G"], G) < 1e-12 and rel_err(arrays["R"], R) < 1e-12
    assert rel_err(arrays["gradient"], hr.gradient(*args, **kw)) < 1e-12
    assert float(arrays["loss"]) == pytest.approx(hr.loss(*args, **kw), rel=1e-14)
    for key in (
        "jacobian",
        "per_sample_gradients",
        "empirical_fisher",
        "eigenvectors_H",
        "density/H",
        "density/grid",
        "perm/jax_flax",
        "state_dict/2.weight",
    ):
        assert key in arrays  # fmt: skip
    # the state dict inside loads back to the same θ
    m2, t2 = cv.from_npz(path, "softplus", prefix="state_dict/")
    assert m2.sizes == m.sizes
    np.testing.assert_array_equal(t2, arrays["theta"])
    np.testing.assert_array_equal(arrays["perm/sagun"], cv.permutation(m, "sagun"))
    assert float(arrays["torch/loss_factor"]) == 1.0  # CE, sum, same reduction
    fx = oracle.load_fixture(path)
    assert fx["spec/activation"] == "softplus" and isinstance(fx["trace_H"], float)
    assert fx["metadata"]["spec"]["num_params"] == m.num_params


def test_fixture_regeneration_is_byte_identical(tmp_path):
    names = ["relu-mse-d1", "tanh-cross_entropy-d11", "tanh-mse-d1-sum"]
    first = oracle.write_catalogue(tmp_path / "a", names)
    second = oracle.write_catalogue(tmp_path / "b", names)
    for p, q in zip(first, second, strict=True):
        assert p.name == q.name and p.read_bytes() == q.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        oracle.write_catalogue(tmp_path / "a", names[:1])
    assert oracle.write_catalogue(tmp_path / "a", names[:1], overwrite=True) == first[:1]


def test_catalogue_cases():
    cases = oracle.fixture_catalogue()
    assert len({c.name for c in cases}) == len(cases)
    acts = {c.activation for c in cases}
    assert acts == set(hr.ACTIVATIONS)
    assert {c.loss for c in cases} == {"mse", "cross_entropy"}
    assert {c.reduction for c in cases} == {"mean", "sum"}
    for c in cases:
        model, theta, X, y = c.build()
        assert model.num_params <= 300
        assert c.num_samples % c.batch_size != 0  # ragged last batch
        m2, t2, X2, y2 = c.build()
        np.testing.assert_array_equal(t2, theta)
        np.testing.assert_array_equal(X2, X)
    assert max(len(c.sizes) for c in cases) >= 12  # W10/W11 exist


def test_fixture_errors(tmp_path):
    model, theta, X, y = problem([2, 2], "identity", "mse")
    with pytest.raises(ValueError, match="npz"):
        oracle.write_fixture(tmp_path / "f.txt", model, theta, X, y, loss="mse")
    with pytest.raises(FileNotFoundError, match="directory"):
        oracle.write_fixture(tmp_path / "no" / "f.npz", model, theta, X, y, loss="mse")
    with pytest.raises(TypeError, match="extra_spec"):
        oracle.write_fixture(tmp_path / "f.npz", model, theta, X, y, loss="mse",
                             extra_spec={"x": object()})  # fmt: skip
    with pytest.raises(ValueError, match="unknown case"):
        oracle.write_catalogue(tmp_path, ["nope"])
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="not a hessref fixture"):
        oracle.load_fixture(tmp_path / "other.npz")
    p = oracle.write_random_fixture(
        tmp_path / "r.npz", sizes=[2, 3, 2], activation="tanh", loss="mse", num_samples=4, rng=1
    )
    assert oracle.load_fixture(p)["metadata"]["spec"]["seed"] == 1


def test_bundle_one_dense_pass_matches_three_single_passes():
    """reference_bundle's H, G, R (one pass, dense_curvatures) are bit-identical to three
    separate single-kind passes, and so are the traces and eigenvalues built on them."""
    from hessref.core.dense import dense_curvature
    from hessref.core.problem import make_problem

    cases = oracle.fixture_catalogue()
    picked = [c for c in cases if c.placement == ""]
    picked = picked[:: max(1, len(picked) // 5)][:5]
    picked += [c for c in cases if c.placement][:1]
    assert {c.loss for c in picked} == {"mse", "cross_entropy"}
    for case in picked:
        model, theta, X, y = case.build()
        b = oracle.reference_bundle(model, theta, X, y, loss=case.loss, reduction=case.reduction)
        p = make_problem(model, theta, X, y, case.loss, case.reduction)
        for kind, got in (("hessian", b.H), ("ggn", b.G), ("residual", b.R)):
            assert np.array_equal(got, dense_curvature(p, kind)), (case.name, kind)
        assert b.trace_R == float(np.trace(dense_curvature(p, "residual")))
