"""Failure messages that name other tools' conventions (hessref.oracle.traps, diagnose).

"theirs" is computed here by autograd (tests/reference.py) with the OTHER tool's
activation written out independently (JAX's leaky_relu with slope 1 at 0, the tanh GELU,
PyTorch's thresholded softplus), on catalogue cases placed on those traps; hessref must
reject it and name the convention, not report noise.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pytest
import reference as ref

from hessref.core.activations import get_activation
from hessref.oracle.conventions import torch_module_spec
from hessref.oracle.traps import GELU_TANH
from hessref.testing import assert_curvature_close, catalogue_cases

OTHER_TOOLS = {
    "jax_leaky_relu": lambda z: anp.where(z >= 0, z, 0.01 * z),  # jax.nn.leaky_relu
    "gelu_tanh": lambda z: 0.5 * z * (1 + anp.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3))),
    "softplus_torch": ref.ACTIVATIONS["softplus_torch"],
    "softplus": ref.ACTIVATIONS["softplus"],
}


def their_hessian(case, activation, monkeypatch):
    monkeypatch.setitem(ref.ACTIVATIONS, activation, OTHER_TOOLS[activation])
    sizes = list(case.model.sizes)
    return ref.hessian(sizes, activation, case.theta, case.X, case.y, case.loss, case.reduction)


@pytest.mark.parametrize(
    "name, activation, message",
    [
        ("leaky_relu-mse-d1-kink", "jax_leaky_relu", r"kink convention: 2 hidden pre-activation"),
        ("gelu-mse-d1", "gelu_tanh", r"GELU convention: theirs matches the tanh approximation"),
        ("softplus-mse-d1-above20", "softplus_torch", r"PyTorch's thresholded softplus"),
        ("softplus_torch-cross_entropy-d1-above20", "softplus", r"matches the exact softplus"),
    ],
)
def test_activation_convention_is_named(name, activation, message, monkeypatch):
    (case,) = catalogue_cases([name])
    theirs = their_hessian(case, activation, monkeypatch)
    with pytest.raises(AssertionError, match=message) as err:
        case.check(theirs, kind="H")
    if "softplus" in name:  # a 1e-10-level failure that must not read as noise
        rel = np.abs(theirs - case.bundle.H).max() / np.abs(case.bundle.H).max()
        assert 1e-13 < rel < 1e-8
        assert "not rounding noise" in str(err.value) and "do not loosen rtol" in str(err.value)


def test_kink_hint_without_a_match(monkeypatch):
    """On a kink, a failure for another reason still says that the net sits on a kink."""
    (case,) = catalogue_cases(["relu-cross_entropy-d1-kink"])
    theirs = case.bundle.H.copy()
    theirs[0, 0] += 1.0
    with pytest.raises(AssertionError, match=r"2 hidden pre-activation\(s\) are exactly 0") as err:
        case.check(theirs, kind="H")
    assert "kink convention" not in str(err.value)


def test_no_trap_note_when_none_applies():
    (case,) = catalogue_cases(["tanh-mse-d1"])
    with pytest.raises(AssertionError) as err:
        case.check(2.5 * case.bundle.H, kind="H")
    assert "convention:" not in str(err.value) and "threshold" not in str(err.value)


@pytest.mark.parametrize(
    "factor, message",
    [
        (21.0, r"a factor N·d_L = 21 = 7 × 3"),
        (3.0, r"a factor d_L = 3 \(the number of outputs\)"),
        (1 / 21, r"an extra 1/\(N·d_L\) = 1/21"),
        (2 / 3, r"nn.MSELoss's 2/d_L"),
    ],
)
def test_composite_factors_are_named(factor, message):
    (case,) = catalogue_cases(["tanh-mse-d1"])
    assert case.X.shape[0] == 7 and case.model.sizes[-1] == 3
    with pytest.raises(AssertionError, match=message):
        case.check(factor * case.bundle.G, kind="G")


def test_assertion_helpers_hide_their_frames():
    """pytest's __tracebackhide__: the failing frames of hessref's helpers are marked hidden."""
    (case,) = catalogue_cases(["tanh-mse-d1"])
    with pytest.raises(AssertionError) as err:
        case.check(2 * case.bundle.H, kind="H")
    hidden = {
        tb.tb_frame.f_code.co_name
        for tb in _walk(err.value.__traceback__)
        if tb.tb_frame.f_locals.get("__tracebackhide__") is True
    }
    assert {"check", "assert_curvature_close"} <= hidden
    with pytest.raises(AssertionError) as err:
        assert_curvature_close(2 * case.bundle.H, *case.args, kind="H", loss=case.loss)
    assert any(
        tb.tb_frame.f_locals.get("__tracebackhide__") is True
        for tb in _walk(err.value.__traceback__)
    )


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_torch_names_tell_the_softplus_variants_apart():
    exact, torch_like = get_activation("softplus"), get_activation("softplus_torch")
    assert exact.torch_name != torch_like.torch_name
    assert torch_module_spec(torch_like.torch_name) == ("Softplus", {})
    assert torch_module_spec(exact.torch_name) == ("Softplus", {"threshold": float("inf")})
    assert torch_module_spec("GELU") == ("GELU", {})


def test_gelu_tanh_derivatives_match_finite_differences():
    """The tanh-GELU used to recognise JAX's default: σ′, σ″ against central differences."""
    z = np.linspace(-4, 4, 17)
    h = 1e-5
    fd1 = (GELU_TANH.f(z + h) - GELU_TANH.f(z - h)) / (2 * h)
    fd2 = (GELU_TANH.df(z + h) - GELU_TANH.df(z - h)) / (2 * h)
    np.testing.assert_allclose(GELU_TANH.df(z), fd1, rtol=0, atol=1e-9)
    np.testing.assert_allclose(GELU_TANH.d2f(z), fd2, rtol=0, atol=1e-9)
    np.testing.assert_allclose(GELU_TANH.f(z), OTHER_TOOLS["gelu_tanh"](z), rtol=1e-15)
