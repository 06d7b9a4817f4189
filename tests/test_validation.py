"""Bad input gets a clear error that names the argument; float32 is converted."""

import numpy as np
import pytest

import hessref as hr
from hessref.core import validation

MODEL = hr.MLP([3, 4, 2], activation="tanh")
THETA = MODEL.init(0)
X = np.random.default_rng(0).normal(size=(5, 3))
Y = np.zeros((5, 2))
LABELS = np.array([0, 1, 1, 0, 1])

CALLS = {
    "loss": lambda t, X, y, **kw: hr.loss(MODEL, t, X, y, **kw),
    "gradient": lambda t, X, y, **kw: hr.gradient(MODEL, t, X, y, **kw),
    "hessian": lambda t, X, y, **kw: hr.hessian(MODEL, t, X, y, **kw),
    "gauss_newton": lambda t, X, y, **kw: hr.gauss_newton(MODEL, t, X, y, **kw),
    "hvp": lambda t, X, y, **kw: hr.hvp(MODEL, t, X, y, np.ones(26), **kw),
}

BAD = [
    # (theta, X, y, kwargs, exception, message regex)
    (THETA[:-1], X, Y, {}, ValueError, r"theta: expected shape \(26,\).*got \(25,\)"),
    (THETA.reshape(2, 13), X, Y, {}, ValueError, r"theta: expected shape \(26,\)"),
    (np.where(np.arange(26) == 3, np.nan, THETA), X, Y, {}, ValueError, r"theta: expected finite"),
    (THETA + 0j, X, Y, {}, TypeError, r"theta: .*complex"),
    (THETA.astype(object), X, Y, {}, TypeError, r"theta: expected a real numeric array"),
    (THETA, X[:, :2], Y, {}, ValueError, r"X: expected a 2-D array of shape \(N, 3\).*\(5, 2\)"),
    (
        THETA,
        X[0],
        Y,
        {},
        ValueError,
        r"X: .*got shape \(3,\); for a single sample use X\[None, :\]",
    ),
    (THETA, X[:0], Y[:0], {}, ValueError, r"X: expected at least one sample"),
    (THETA, np.where(X > 1, np.inf, X), Y, {}, ValueError, r"X: expected finite values"),
    (
        THETA,
        X,
        Y[:, :1],
        {},
        ValueError,
        r"y: mse expects float targets of shape \(N, d_L\) = \(5, 2\)",
    ),
    (THETA, X, Y[:4], {}, ValueError, r"y: mse expects float targets .*got shape \(4, 2\)"),
    (THETA, X, np.where(Y == 0, np.nan, Y), {}, ValueError, r"y: expected finite values"),
    (
        THETA,
        X,
        LABELS.astype(float),
        {"loss": "cross_entropy"},
        TypeError,
        r"y: cross_entropy expects integer class labels",
    ),
    (THETA, X, np.eye(2)[LABELS], {"loss": "cross_entropy"}, TypeError, r"y: .*Y.argmax\(axis=1\)"),
    (
        THETA,
        X,
        LABELS + 1,
        {"loss": "cross_entropy"},
        ValueError,
        r"y: labels must lie in \[0, 2\).*\[1, 2\]",
    ),
    (
        THETA,
        X,
        LABELS - 1,
        {"loss": "cross_entropy"},
        ValueError,
        r"y: labels must lie in \[0, 2\)",
    ),
    (
        THETA,
        X,
        LABELS[:3],
        {"loss": "cross_entropy"},
        ValueError,
        r"y: cross_entropy expects integer labels of shape \(5,\)",
    ),
    (
        THETA,
        X,
        Y,
        {"loss": "hinge"},
        ValueError,
        r"loss: unknown loss 'hinge'; expected one of: 'mse', 'cross_entropy'",
    ),
    (
        THETA,
        X,
        Y,
        {"reduction": "avg"},
        ValueError,
        r"reduction: expected one of 'mean', 'sum', got 'avg'",
    ),
]


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("theta, X_, y, kwargs, exc, pattern", BAD)
def test_bad_inputs_raise_named_errors(call, theta, X_, y, kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        CALLS[call](theta, X_, y, **kwargs)


def test_bad_directions():
    with pytest.raises(
        ValueError, match=r"V: expected shape \(P,\) or \(P, K\) with P = 26, got \(25,\)"
    ):
        hr.hvp(MODEL, THETA, X, Y, np.ones(25))
    with pytest.raises(ValueError, match=r"V: expected a 1-D or 2-D array"):
        hr.hvp(MODEL, THETA, X, Y, np.ones((26, 1, 1)))
    with pytest.raises(ValueError, match=r"V: expected finite"):
        hr.hvp(MODEL, THETA, X, Y, np.full(26, np.inf))
    with pytest.raises(ValueError, match=r"number of directions K"):
        hr.hvp(MODEL, THETA, X, Y, np.ones((26, 0)))


def test_bad_model_and_names():
    with pytest.raises(TypeError, match=r"model: expected a hessref.MLP, got dict"):
        hr.loss({}, THETA, X, Y)
    with pytest.raises(ValueError, match=r"sizes: expected a sequence of at least two positive"):
        hr.MLP([3])
    with pytest.raises(ValueError, match=r"sizes: .*got \[3, 0, 2\]"):
        hr.MLP([3, 0, 2])
    with pytest.raises(ValueError, match=r"sizes: "):
        hr.MLP([3, 2.5])
    with pytest.raises(
        ValueError, match=r"activation: unknown activation 'swish'; expected one of: gelu"
    ):
        hr.MLP([3, 2], activation="swish")
    with pytest.raises(ValueError, match=r"layer: expected an integer in 1..2"):
        MODEL.layer_slice(0)


def test_float32_and_int_inputs_are_converted_to_float64():
    H64 = hr.hessian(MODEL, THETA, X, Y)
    t32, X32 = THETA.astype(np.float32), X.astype(np.float32)
    H32in = hr.hessian(MODEL, t32, X32, Y.astype(np.float32))
    assert H32in.dtype == np.float64
    H_ref = hr.hessian(MODEL, t32.astype(np.float64), X32.astype(np.float64), Y)
    assert np.array_equal(H32in, H_ref)  # converted exactly, then computed in float64
    assert not np.array_equal(H32in, H64)  # (the float32 rounding of the inputs is real)
    assert hr.loss(MODEL, THETA, np.ones((2, 3), dtype=int), np.zeros((2, 2), dtype=int)) >= 0


def test_dense_request_that_cannot_fit_is_refused_up_front(monkeypatch):
    monkeypatch.setattr(validation, "available_memory_bytes", lambda: 10**3)
    with pytest.raises(MemoryError, match=r"hessian: an exact result for P = 26.*hessian_operator"):
        hr.hessian(MODEL, THETA, X, Y)
    with pytest.raises(
        MemoryError, match=r"gauss_newton: an exact result for P = 26 .* 2 P×P float64"
    ):
        hr.gauss_newton(MODEL, THETA, X, Y)
    big = hr.MLP([1000, 1000, 1000])
    monkeypatch.undo()
    with pytest.raises(MemoryError, match=r"needs about .* GiB .* bytes"):
        validation.check_dense_fits("hessian", big.num_params * 100)


SCALAR_CHECKERS = {
    "check_real": lambda v: validation.check_real("x", v),
    "check_finite_float": lambda v: validation.check_finite_float("x", v),
    "check_positive_float": lambda v: validation.check_positive_float("x", v),
    "check_nonnegative_float": lambda v: validation.check_nonnegative_float("x", v),
    "check_probability": lambda v: validation.check_probability("x", v),
    "check_positive_int": lambda v: validation.check_positive_int("x", v),
}


@pytest.mark.parametrize("checker", sorted(SCALAR_CHECKERS))
@pytest.mark.parametrize("value", ["0.1", "3", None, True, np.bool_(True), 1j, [0.5], np.ones(1)])
def test_one_scalar_policy_wrong_kind_is_a_type_error(checker, value):
    """Every scalar checker answers the same input the same way: TypeError for a wrong kind
    (the string '0.1' included), naming the argument and the kind given."""
    with pytest.raises(TypeError, match=r"^x: expected .*got "):
        SCALAR_CHECKERS[checker](value)


@pytest.mark.parametrize(
    ("checker", "value"),
    [
        ("check_real", float("nan")),
        ("check_finite_float", np.inf),
        ("check_positive_float", 0.0),
        ("check_positive_float", -1),
        ("check_nonnegative_float", -1e-300),
        ("check_probability", 1.5),
        ("check_probability", -0.1),
        ("check_positive_int", 0),
        ("check_positive_int", np.int64(-2)),
    ],
)
def test_one_scalar_policy_bad_value_is_a_value_error(checker, value):
    with pytest.raises(ValueError, match=r"^x: expected "):
        SCALAR_CHECKERS[checker](value)


def test_scalar_checkers_accept_and_convert():
    assert validation.check_positive_float("x", np.float32(0.5)) == 0.5
    assert validation.check_real("x", 3) == 3.0 and type(validation.check_real("x", 3)) is float
    assert validation.check_positive_int("x", np.int32(4)) == 4
    assert validation.check_probability("x", 1.0) == 1.0
    with pytest.raises(ValueError, match=r"x: expected a probability in \(0, 1\), got 1.0"):
        validation.check_probability("x", 1.0, open_interval=True)
    with pytest.raises(TypeError, match=r"x: expected an integer >= 1, got float 2.0"):
        validation.check_positive_int("x", 2.0)
