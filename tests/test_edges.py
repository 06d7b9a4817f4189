"""Every public entry point validates array input as the README promises.

For each (entry point, array argument) the sweep substitutes a value of each kind:
float32, int and bool are real numbers and are converted to float64 (the call succeeds
and returns float64); complex, object and string arrays raise ``TypeError`` naming the
argument; NaN and inf raise ``ValueError`` naming the argument. Plus the edge promises
of docs/theory.md §3 (cross-entropy with one output) and §7 (memory check).
"""

from __future__ import annotations

import numpy as np
import pytest

import hessref as hr
from hessref import spectrum as sp
from hessref.core import dense, validation
from hessref.core.kinds import Curvature
from hessref.core.problem import make_problem
from hessref.core.rop import curvature_matmat
from hessref.core.textbook import textbook_curvature

MODEL = hr.MLP([2, 3, 2], activation="tanh")
P = MODEL.num_params
THETA = MODEL.init(rng=0)
X = np.random.default_rng(1).normal(size=(4, 2))
Y = np.random.default_rng(2).normal(size=(4, 2))
V = np.ones(P)
PARAMS = MODEL.unflatten(THETA)
SYM = np.eye(P) + 0.1


def _op(t, x, y):
    return hr.hessian_operator(MODEL, t, x, y)


# entry point name -> (callable of keyword arrays, default arrays)
ENTRIES = {
    "outputs": (lambda theta, X: hr.outputs(MODEL, theta, X), {"theta": THETA, "X": X}),
    "loss": (lambda theta, X, y: hr.loss(MODEL, theta, X, y), {"theta": THETA, "X": X, "y": Y}),
    "gradient": (
        lambda theta, X, y: hr.gradient(MODEL, theta, X, y),
        {"theta": THETA, "X": X, "y": Y},
    ),
    "jacobian": (lambda theta, X: hr.jacobian(MODEL, theta, X), {"theta": THETA, "X": X}),
    "hvp": (
        lambda theta, X, y, V: hr.hvp(MODEL, theta, X, y, V),
        {"theta": THETA, "X": X, "y": Y, "V": V},
    ),
    "hessian": (
        lambda theta, X, y: hr.hessian(MODEL, theta, X, y),
        {"theta": THETA, "X": X, "y": Y},
    ),
    "gauss_newton": (
        lambda theta, X, y: hr.gauss_newton(MODEL, theta, X, y)[0],
        {"theta": THETA, "X": X, "y": Y},
    ),
    "textbook_curvature": (
        lambda theta, X, y: textbook_curvature(MODEL, theta, X, y)[0],
        {"theta": THETA, "X": X, "y": Y},
    ),
    "hessian_operator": (
        lambda theta, X, y, V: _op(theta, X, y) @ V,
        {"theta": THETA, "X": X, "y": Y, "V": V},
    ),
    "layer_block": (lambda M: hr.layer_block(MODEL, M, 1, 2), {"M": SYM}),
    "MLP.unflatten": (lambda theta: MODEL.unflatten(theta)[0][0], {"theta": THETA}),
    "MLP.flatten": (lambda W: MODEL.flatten([(W, PARAMS[0][1]), PARAMS[1]]), {"W": PARAMS[0][0]}),
    "spectrum.eigenvalues": (lambda A: sp.eigenvalues(A), {"A": SYM}),
    "spectrum.hutchinson_trace": (
        lambda A: np.array(sp.hutchinson_trace(A, 3, rng=0).estimate),
        {"A": SYM},
    ),
    "spectrum.count_outliers": (
        lambda eigenvalues: np.array(float(sp.count_outliers(eigenvalues).count)),
        {"eigenvalues": np.array([5.0, 1.0, 0.5, 0.2])},
    ),
}
CASES = [(entry, arg) for entry, (_, args) in ENTRIES.items() for arg in args]


def _variant(value: np.ndarray, kind: str):
    v = np.array(value, dtype=np.float64)
    if kind == "float32":
        return v.astype(np.float32)
    if kind == "int":
        return np.rint(v * 3).astype(np.int64)
    if kind == "bool":
        return v > 0
    if kind == "complex":
        return v + 1j
    if kind == "object":
        return v.astype(object)
    if kind == "str":
        return v.astype(str)
    if kind in ("nan", "inf"):
        v = v.copy()
        v.flat[0] = np.nan if kind == "nan" else np.inf
        return v
    raise AssertionError(kind)


def _call(entry: str, arg: str, kind: str):
    fn, args = ENTRIES[entry]
    kwargs = dict(args)
    kwargs[arg] = _variant(args[arg], kind)
    return fn(**kwargs)


@pytest.mark.parametrize(("entry", "arg"), CASES)
@pytest.mark.parametrize("kind", ["complex", "object", "str"])
def test_non_real_input_is_a_type_error(entry: str, arg: str, kind: str) -> None:
    name = "eigenvalues" if arg == "eigenvalues" else arg
    with pytest.raises(TypeError, match=rf"(?i){name}.*(complex|real|numeric)"):
        _call(entry, arg, kind)


@pytest.mark.parametrize(("entry", "arg"), CASES)
@pytest.mark.parametrize("kind", ["nan", "inf"])
def test_non_finite_input_is_a_value_error(entry: str, arg: str, kind: str) -> None:
    with pytest.raises(ValueError, match=rf"(?i){arg}.*finite"):
        _call(entry, arg, kind)


@pytest.mark.parametrize(("entry", "arg"), [c for c in CASES if c[1] not in ("M", "A")])
@pytest.mark.parametrize("kind", ["float32", "int", "bool"])
def test_real_input_of_any_precision_is_converted(entry: str, arg: str, kind: str) -> None:
    out = _call(entry, arg, kind)
    assert np.asarray(out).dtype == np.float64


def test_flatten_refuses_strings_that_look_like_numbers() -> None:
    W = PARAMS[0][0].astype(object)
    W[0, 0] = "7.5"
    with pytest.raises(TypeError, match=r"W1"):
        MODEL.flatten([(W, PARAMS[0][1]), PARAMS[1]])


def test_unflatten_returns_float64_views_of_float64_theta() -> None:
    (W1, b1), _ = MODEL.unflatten(THETA)
    assert np.shares_memory(W1, THETA) and W1.dtype == np.float64
    (W1, _), _ = MODEL.unflatten(THETA.astype(np.float32))
    assert W1.dtype == np.float64


def test_cross_entropy_with_one_output_is_refused_with_advice() -> None:
    model = hr.MLP([2, 3, 1])
    with pytest.raises(ValueError, match=r"cross_entropy needs d_L >= 2.*two logits.*mse"):
        hr.hessian(model, model.init(rng=0), X, np.zeros(4, dtype=int), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"d_L >= 2"):
        hr.hessian_operator(
            model, model.init(rng=0), X, np.zeros(4, dtype=int), loss="cross_entropy"
        )


@pytest.mark.parametrize(
    ("mode", "exc"), [("hesian", ValueError), ("", ValueError), (None, TypeError)]
)
def test_mode_typo_raises(mode, exc) -> None:
    """A typo must not return zeros: unknown names are ValueErrors, non-strings TypeErrors
    (the one policy of core.validation); the message lists the accepted spellings."""
    p = make_problem(MODEL, THETA, X, Y)
    pattern = r"mode: expected one of 'H', 'G', 'R' \(or 'hessian', 'ggn', 'residual'\)"
    with pytest.raises(exc, match=pattern):
        curvature_matmat(p, np.eye(P), mode=mode)
    with pytest.raises(exc, match=pattern):
        dense.dense_curvature(p, mode)


@pytest.mark.parametrize("spelling", ["G", "ggn", "GGN", Curvature.G])
def test_mode_spellings_are_one_kind(spelling) -> None:
    """Every spelling Curvature.parse accepts gives the same bits as the 0.2 mode name."""
    p = make_problem(MODEL, THETA, X, Y)
    V = np.random.default_rng(3).normal(size=(P, 3))
    assert np.array_equal(curvature_matmat(p, V, mode=spelling), curvature_matmat(p, V, "ggn"))
    assert np.array_equal(dense.dense_curvature(p, spelling), dense.dense_curvature(p, "ggn"))


def test_memory_check_counts_chunk_workspace(monkeypatch) -> None:
    """(7.4): small P, large N — the P×P matrices fit, the chunk workspace does not."""
    model = hr.MLP([20, 20, 2])
    N = 5000
    rng = np.random.default_rng(0)
    p = make_problem(model, model.init(rng), rng.normal(size=(N, 20)), rng.normal(size=(N, 2)))
    P = model.num_params
    work = dense.chunk_workspace_bytes(p)
    assert work > 10 * 16 * P**2  # the workspace dominates here
    monkeypatch.setattr(validation, "available_memory_bytes", lambda: 16 * P**2 + work // 2)
    with pytest.raises(MemoryError, match=rf"{work} bytes of chunk workspace"):
        hr.hessian(model, p.theta, p.X, p.y)
    monkeypatch.setattr(validation, "available_memory_bytes", lambda: 24 * P**2 + work - 1)
    with pytest.raises(MemoryError, match=r"gauss_newton"):
        hr.gauss_newton(model, p.theta, p.X, p.y)


def test_chunk_workspace_bounds_the_measured_peak() -> None:
    """The estimate covers the real peak of the chunk intermediates (tracemalloc)."""
    import tracemalloc

    model = hr.MLP([6, 10, 3])
    rng = np.random.default_rng(0)
    p = make_problem(model, model.init(rng), rng.normal(size=(3000, 6)), rng.normal(size=(3000, 3)))
    P = model.num_params
    tracemalloc.start()
    hr.hessian(model, p.theta, p.X, p.y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= 2 * 8 * P**2 + dense.chunk_workspace_bytes(p) + 3 * p.X.nbytes
