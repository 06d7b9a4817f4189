"""σ, σ′, σ″ of every activation through independent channels.

Channel 1: high-precision numerical differentiation with mpmath (50 digits, so
its own error is far below 1e-10). Channel 2: autograd on the independent
re-implementation in tests/reference.py. Channel 3: closed forms at special
points (GELU″(0) = 2φ(0), the bug numpy-ml shipped). Plus stability at ±1e4.
"""

import autograd
import mpmath
import numpy as np
import pytest
from reference import ACTIVATIONS as REF
from reference import SMOOTH

from hessref.core.activations import ACTIVATIONS, get_activation

mpmath.mp.dps = 50

MP_FUNCS = {
    "identity": lambda z: z,
    "tanh": mpmath.tanh,
    "sigmoid": lambda z: 1 / (1 + mpmath.exp(-z)),
    "softplus": lambda z: mpmath.log(1 + mpmath.exp(z)),
    "gelu": lambda z: z * mpmath.ncdf(z),
}

POINTS = np.array([-7.3, -2.5, -1.0, -0.3, 0.0, 0.2, 0.9, 1.7, 3.2, 6.1])


def rel(a, b):
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300 + 1e-12 * np.max(np.abs(b))))


@pytest.mark.parametrize("name", SMOOTH)
def test_derivatives_match_mpmath(name):
    act = get_activation(name)
    f = MP_FUNCS[name]
    for order, ours in ((0, act.f), (1, act.df), (2, act.d2f)):
        want = np.array([float(mpmath.diff(f, mpmath.mpf(z), order)) for z in POINTS])
        got = ours(POINTS)
        # relative accuracy, also where the value is tiny (far tails)
        assert np.all(np.abs(got - want) <= 1e-12 * np.abs(want) + 1e-40), (name, order)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivatives_match_autograd(name):
    act = get_activation(name)
    f = REF[name]
    d1 = autograd.elementwise_grad(f)
    d2 = autograd.elementwise_grad(d1)
    # |z| <= 3.2: the reference's GELU 0.5 z (1 + erf(z/√2)) cancels in the far left tail;
    # ReLU kinks excluded: the convention at 0 is tested below
    z = POINTS[(POINTS != 0.0) & (np.abs(POINTS) < 4)]
    assert np.allclose(act.f(z), f(z), rtol=1e-14, atol=0)
    assert np.allclose(act.df(z), d1(z), rtol=1e-12, atol=1e-300)
    assert np.allclose(act.d2f(z), d2(z), rtol=1e-12, atol=1e-15)


def test_closed_forms_at_special_points():
    phi0 = 1.0 / np.sqrt(2 * np.pi)
    gelu = get_activation("gelu")
    assert gelu.d2f(np.array([0.0]))[0] == pytest.approx(2 * phi0, rel=1e-15)
    z = np.array([1.3])
    assert gelu.d2f(z)[0] == pytest.approx(phi0 * np.exp(-0.845) * (2 - 1.69), rel=1e-14)
    assert get_activation("sigmoid").df(np.array([0.0]))[0] == 0.25
    assert get_activation("tanh").d2f(np.array([0.0]))[0] == 0.0
    # ReLU convention at the kink: σ′(0) = 0, σ″ ≡ 0 (PyTorch's choice)
    relu = get_activation("relu")
    assert relu.df(np.array([0.0]))[0] == 0.0
    assert not relu.d2f(np.array([-1.0, 0.0, 1.0])).any()
    leaky = get_activation("leaky_relu")
    assert leaky.df(np.array([-2.0, 3.0])).tolist() == [0.01, 1.0]


def test_kink_conventions_match_torch():
    """docs/theory.md §2: at exactly z = 0 the derivative is the LEFT one, as in PyTorch's
    autograd (relu: 0; leaky_relu: the negative slope 0.01), and σ″ ≡ 0. Values from
    torch.autograd.grad of F.relu / F.leaky_relu at 0 (torch 2.x): 0.0 and 0.01."""
    z = np.array([-1e-300, 0.0, 1e-300])
    relu, leaky = get_activation("relu"), get_activation("leaky_relu")
    assert relu.df(z).tolist() == [0.0, 0.0, 1.0]
    assert leaky.df(z).tolist() == [0.01, 0.01, 1.0]
    assert relu.f(z).tolist() == [0.0, 0.0, 1e-300]
    assert leaky.f(z).tolist() == [0.01 * -1e-300, 0.0, 1e-300]
    for act in (relu, leaky):
        assert not act.d2f(z).any()


def test_softplus_torch_threshold():
    """softplus_torch (2.8) equals softplus (2.6) up to 20 and z itself above it."""
    exact, torch_like = get_activation("softplus"), get_activation("softplus_torch")
    below = np.array([-30.0, -1.0, 0.0, 5.0, 19.5, 20.0])
    for order in ("f", "df", "d2f"):
        assert np.array_equal(getattr(torch_like, order)(below), getattr(exact, order)(below))
    above = np.array([20.25, 21.0, 100.0])
    assert np.array_equal(torch_like.f(above), above)
    assert np.array_equal(torch_like.df(above), np.ones(3))
    assert np.array_equal(torch_like.d2f(above), np.zeros(3))
    # the documented size of the difference: log(1 + e^-z) at z = 20.25 is about 1.6e-9
    gap = exact.f(above[:1])[0] - above[0]
    assert gap == pytest.approx(np.log1p(np.exp(-20.25)), rel=1e-6)
    assert 1e-9 < gap < 2.1e-9
    assert torch_like.torch_name == "Softplus" and not torch_like.smooth


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_stable_for_huge_inputs(name):
    act = get_activation(name)
    z = np.array([-1e4, -800.0, 800.0, 1e4])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is exact
        values = [act.f(z), act.df(z), act.d2f(z)]
    for v in values:
        assert np.all(np.isfinite(v))
    if name == "softplus":
        assert act.f(z)[-1] == 1e4 and act.f(z)[0] == 0.0
    if name == "softplus":
        assert act.df(z)[-1] == 1.0 and act.d2f(z)[-1] == 0.0
    if name == "sigmoid":
        assert act.f(z)[-1] == 1.0 and act.f(z)[0] == 0.0 and act.df(z)[-1] == 0.0


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match="activation: unknown activation 'swish'.*gelu"):
        get_activation("swish")
