"""Matrix-free H, G, R operators: products, chunking, solvers, executors, memory, bad input.

Independent channels: autograd (tests/reference.py) for H and G on smooth
activations; the Jacobian-based dense G of ``hr.gauss_newton`` (not the R-op);
dense ``eigh`` for spectra; dense residuals for linear solves.
"""

from __future__ import annotations

import multiprocessing
import tracemalloc
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import gauss_newton as ref_gauss_newton
from reference import hessian as ref_hessian
from reference import rel_err
from threadpoolctl import threadpool_limits

import hessref as hr
import hessref.core.validation
from hessref.operators import (
    CurvatureOperator,
    ggn_operator,
    hessian_operator,
    residual_operator,
)

ACTS = ("identity", "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "gelu")
FACTORIES = {"hessian": hessian_operator, "ggn": ggn_operator, "residual": residual_operator}
TOL = 1e-10


def make_case(sizes, activation="tanh", loss="mse", N=7, seed=0):
    model = hr.MLP(sizes, activation=activation)
    rng = np.random.default_rng(seed)
    theta = model.init(rng)
    X = rng.normal(size=(N, sizes[0]))
    if loss == "mse":
        y = rng.normal(size=(N, sizes[-1]))
    else:
        y = rng.integers(0, sizes[-1], size=N)
    return model, theta, X, y


def dense_HGR(model, theta, X, y, loss, reduction):
    H = hr.hessian(model, theta, X, y, loss=loss, reduction=reduction)
    G, _ = hr.gauss_newton(model, theta, X, y, loss=loss, reduction=reduction)
    # R from H and the Jacobian-based G, so the R operator is not compared with itself
    return {"hessian": H, "ggn": G, "residual": H - G}


def assert_all_products(op, M, rng, norm):
    """Every way of applying op agrees with the dense M to TOL, relative to ``norm``·‖v‖.

    ``norm`` = max(‖M‖_F, ‖H‖_F): R = H − G is compared relative to ‖H‖, since it
    is exactly zero in some cases (linear model) where the dense H − G is round-off.
    """
    P = M.shape[0]
    v = rng.normal(size=P)
    V = rng.normal(size=(P, 3))
    scale = norm * np.linalg.norm(v)
    Mv, MV = M @ v, M @ V
    for name, got in {
        "op @ v": op @ v,
        "v @ op": v @ op,
        "op.T @ v": op.T @ v,
        "op.H @ v": op.H @ v,
        "op.matvec": op.matvec(v),
        "op.rmatvec": op.rmatvec(v),
        "op(v)": op(v),
        "op.dot(v)": op.dot(v),
    }.items():
        assert got.shape == (P,), name
        assert rel_err(got, Mv, scale) <= TOL, name
    col = op @ v[:, None]
    assert col.shape == (P, 1)
    assert rel_err(col[:, 0], Mv, scale) <= TOL
    scale_V = norm * np.linalg.norm(V)
    for name, got in {
        "op @ V": op @ V,
        "op.matmat": op.matmat(V),
        "op.rmatmat": op.rmatmat(V),
        "V.T @ op": (V.T @ op).T,
    }.items():
        assert got.shape == (P, 3), name
        assert got.dtype == np.float64
        assert rel_err(got, MV, scale_V) <= TOL, name


# --- products against dense matrices -------------------------------------------------------


@settings(max_examples=60)
@given(
    activation=st.sampled_from(ACTS),
    loss=st.sampled_from(("mse", "cross_entropy")),
    reduction=st.sampled_from(("mean", "sum")),
    hidden=st.lists(st.integers(1, 4), min_size=0, max_size=2),
    d0=st.integers(1, 3),
    dL=st.integers(2, 3),
    N=st.integers(1, 8),
    batch=st.sampled_from(("none", "one", "all", "ragged")),
    seed=st.integers(0, 2**16),
)
def test_products_match_dense(activation, loss, reduction, hidden, d0, dL, N, batch, seed):
    if batch == "ragged":
        N = max(N, 3)  # then some b in (2, 3, 4) leaves a shorter last chunk
    model, theta, X, y = make_case([d0, *hidden, dL], activation, loss, N, seed)
    batch_size = {"none": None, "one": 1, "all": N}.get(batch)
    if batch == "ragged":
        batch_size = next(b for b in (2, 3, 4) if N % b)
    dense = dense_HGR(model, theta, X, y, loss, reduction)
    rng = np.random.default_rng(seed + 1)
    for mode, factory in FACTORIES.items():
        op = factory(model, theta, X, y, loss=loss, reduction=reduction, batch_size=batch_size)
        assert op.shape == (model.num_params,) * 2 and op.dtype == np.float64
        norm = max(np.linalg.norm(dense[mode]), np.linalg.norm(dense["hessian"]))
        assert_all_products(op, dense[mode], rng, norm)


@pytest.mark.parametrize(("N", "batch_size"), [(7, 3), (8, 3), (5, 4)])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ragged_chunks_match_dense(N, batch_size, loss, reduction):
    """Global 1/N weights: e.g. 3 + 3 + 1 rows is not an average of per-chunk means."""
    model, theta, X, y = make_case([3, 5, 3], "softplus", loss, N=N, seed=N)
    dense = dense_HGR(model, theta, X, y, loss, reduction)
    V = np.random.default_rng(0).normal(size=(model.num_params, 2))
    for mode, factory in FACTORIES.items():
        op = factory(model, theta, X, y, loss=loss, reduction=reduction, batch_size=batch_size)
        scale = np.linalg.norm(dense["hessian"] @ V)
        assert rel_err(op @ V, dense[mode] @ V, scale) <= TOL, mode


@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_single_output_model(activation):
    """d_L = 1 (scalar regression): every way of applying H, G, R against autograd."""
    sizes = [3, 5, 4, 1]
    model, theta, X, y = make_case(sizes, activation, "mse", N=7, seed=4)
    H_ref = ref_hessian(sizes, activation, theta, X, y, "mse", "mean")
    G_ref = ref_gauss_newton(sizes, activation, theta, X, y, "mse", "mean")
    dense = {"hessian": H_ref, "ggn": G_ref, "residual": H_ref - G_ref}
    rng = np.random.default_rng(5)
    for mode, factory in FACTORIES.items():
        op = factory(model, theta, X, y, batch_size=3)  # 3 + 3 + 1 rows
        assert_all_products(op, dense[mode], rng, np.linalg.norm(H_ref))
    assert np.linalg.norm(H_ref - G_ref) > 1e-3 * np.linalg.norm(H_ref)  # R is not trivial
    # cross-entropy with one logit: softmax ≡ 1, loss and H identically 0 -- refused with advice
    labels = np.zeros(7, dtype=int)
    with pytest.raises(ValueError, match=r"cross_entropy needs d_L >= 2.*two logits"):
        hessian_operator(model, theta, X, labels, loss="cross_entropy", batch_size=3)


@pytest.mark.parametrize("activation", ["tanh", "gelu", "softplus"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_to_dense_matches_autograd(activation, loss):
    """Independent channel: autograd reverse-over-reverse H and autograd-built G."""
    sizes = [3, 4, 3]
    model, theta, X, y = make_case(sizes, activation, loss, N=7, seed=3)
    H_ref = ref_hessian(sizes, activation, theta, X, y, loss, "mean")
    G_ref = ref_gauss_newton(sizes, activation, theta, X, y, loss, "mean")
    ops = {m: f(model, theta, X, y, loss=loss, batch_size=3) for m, f in FACTORIES.items()}
    assert rel_err(ops["hessian"].to_dense(), H_ref) <= TOL
    assert rel_err(ops["ggn"].to_dense(), G_ref) <= TOL
    assert rel_err(ops["residual"].to_dense(), H_ref - G_ref, np.linalg.norm(H_ref)) <= TOL


def test_ragged_chunking_changes_only_roundoff_and_is_deterministic():
    model, theta, X, y = make_case([4, 6, 5, 3], "tanh", "cross_entropy", N=7, seed=5)
    V = np.random.default_rng(0).normal(size=(model.num_params, 4))
    for mode, factory in FACTORIES.items():
        results = {}
        for bs in (None, 1, 2, 3, 6, 7, 100):
            op = factory(model, theta, X, y, loss="cross_entropy", batch_size=bs)
            first, second = op @ V, op @ V
            assert np.array_equal(first, second), (mode, bs)  # same bits twice
            assert np.array_equal(op @ V[:, 1], op @ V[:, 1])
            results[bs] = first
        ref = results[7]
        for bs, got in results.items():
            assert rel_err(got, ref) <= 1e-13, (mode, bs)


def test_sum_reduction_is_N_times_mean():
    model, theta, X, y = make_case([3, 5, 2], "sigmoid", "mse", N=7, seed=2)
    v = np.random.default_rng(1).normal(size=model.num_params)
    mean = hessian_operator(model, theta, X, y, batch_size=3) @ v
    total = hessian_operator(model, theta, X, y, reduction="sum", batch_size=3) @ v
    assert rel_err(total, 7 * mean) <= 1e-13


def test_hessian_equals_ggn_plus_residual():
    """Consistency of the three R-op modes of ONE engine (not an independent check:
    tests/test_theory.py and tests/test_textbook.py compare H, G, R across channels)."""
    model, theta, X, y = make_case([4, 6, 5, 3], "gelu", "cross_entropy", N=9, seed=7)
    kw = {"loss": "cross_entropy", "batch_size": 4}
    H, G, R = (f(model, theta, X, y, **kw) for f in FACTORIES.values())
    V = np.random.default_rng(2).normal(size=(model.num_params, 5))
    assert rel_err(G @ V + R @ V, H @ V) <= 1e-13
    assert rel_err((G + R) @ V, H @ V) <= 1e-13
    assert rel_err((H - G) @ V, R @ V, np.linalg.norm(H @ V)) <= 1e-13


def test_operator_arithmetic():
    model, theta, X, y = make_case([3, 5, 2], "tanh", "mse", N=6, seed=4)
    H = hessian_operator(model, theta, X, y, batch_size=4)
    Hd = hr.hessian(model, theta, X, y)
    v = np.random.default_rng(3).normal(size=model.num_params)
    assert rel_err((H + H) @ v, 2 * Hd @ v) <= TOL
    assert rel_err((2 * H) @ v, 2 * Hd @ v) <= TOL
    assert rel_err((H * 0.5) @ v, 0.5 * Hd @ v) <= TOL
    assert rel_err((H @ H) @ v, Hd @ (Hd @ v)) <= TOL
    assert rel_err((H**2) @ v, Hd @ (Hd @ v)) <= TOL
    assert rel_err((-H) @ v, -Hd @ v) <= TOL
    assert rel_err(H.adjoint() @ v, Hd @ v) <= TOL
    assert H.T is H and H.H is H


def test_attributes_and_counter():
    model, theta, X, y = make_case([3, 4, 2], "tanh", "cross_entropy", N=5, seed=0)
    op = ggn_operator(model, theta, X, y, loss="cross_entropy", reduction="sum", batch_size=2)
    assert isinstance(op, CurvatureOperator) and isinstance(op, spla.LinearOperator)
    assert op.model is model and op.num_samples == 5 and op.batch_size == 2
    assert op.loss == "cross_entropy" and op.reduction == "sum" and op.mode == "ggn"
    assert np.array_equal(op.theta, theta)
    assert op.num_matvecs == 0  # no trial product at construction (dtype passed explicitly)
    op @ np.ones(model.num_params)
    op @ np.ones((model.num_params, 3))
    assert op.num_matvecs == 4
    assert "ggn operator" in repr(op) and "N=5" in repr(op)


def test_forward_cache_is_bounded_and_bit_identical(monkeypatch):
    model, theta, X, y = make_case([4, 6, 5, 3], "tanh", "cross_entropy", N=10, seed=8)
    V = np.random.default_rng(4).normal(size=(model.num_params, 3))
    kw = {"loss": "cross_entropy", "batch_size": 4}  # chunks of 4 + 4 + 2 rows
    for mode, factory in FACTORIES.items():
        want = factory(model, theta, X, y, **kw) @ V
        # a budget for exactly the first two chunks' caches (4 rows each)
        per_row = 8 * (6 + 5 + 6 + 5 + 3 + 6 + 5 + 6 + 5)  # A_1, A_2, Z_1..3, σ′, σ″
        if mode != "ggn":  # H and R also keep δ_1..δ_3 and g_1, g_2 (G needs neither)
            per_row += 8 * (6 + 5 + 3 + 6 + 5)
        op = factory(model, theta, X, y, cache_bytes=8 * per_row, **kw)
        for _ in range(3):
            assert np.array_equal(op @ V, want), mode
            assert np.array_equal(op @ V[:, 0], want[:, 0]), mode
        assert op.cached_bytes == 8 * per_row and op._states.keys() == [(4, 0), (4, 1)]
        assert (op._states._entries[4, 0].backward is None) == (mode == "ggn"), mode
    # automatic chunking that changes with K resets the cache and stays exact
    monkeypatch.setattr("hessref.operators.curvature.WORKSPACE_BYTES", 4000)
    op = hessian_operator(model, theta, X, y, loss="cross_entropy", cache_bytes=10**6)
    ref = hessian_operator(model, theta, X, y, loss="cross_entropy")
    assert op.rows_per_chunk(1) != op.rows_per_chunk(3)
    for W in (V, V[:, 0], V, V[:, :1]):
        assert np.array_equal(op @ W, ref @ W)
    assert 0 < op.cached_bytes <= 10**6


# --- iterative solvers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def indefinite():
    """A small tanh MLP far from a minimum: H has negative eigenvalues."""
    model, theta, X, y = make_case([4, 8, 6, 3], "tanh", "mse", N=12, seed=11)
    theta = theta * 3.0  # larger weights, larger residual curvature
    H = hessian_operator(model, theta, X, y, batch_size=5)
    Hd = hr.hessian(model, theta, X, y)
    return H, Hd, np.linalg.eigvalsh(Hd)


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_eigsh_matches_eigh(indefinite, which):
    H, Hd, evals = indefinite
    assert evals[0] < -1e-3 * abs(evals[-1])  # the fixture really is indefinite
    k = 4
    v0 = np.ones(H.shape[0])
    got = np.sort(spla.eigsh(H, k=k, which=which, tol=1e-13, v0=v0, return_eigenvectors=False))
    want = evals[-k:] if which == "LA" else evals[:k]
    assert np.max(np.abs(got - want)) <= 1e-8 * np.max(np.abs(evals))
    if which == "SA":
        assert got[0] < 0  # negative curvature found


def test_eigsh_ggn_is_psd_and_matches():
    model, theta, X, y = make_case([4, 8, 3], "gelu", "cross_entropy", N=10, seed=1)
    G = ggn_operator(model, theta, X, y, loss="cross_entropy", batch_size=3)
    Gd, _ = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
    evals = np.linalg.eigvalsh(Gd)
    v0 = np.ones(G.shape[0])
    got = np.sort(spla.eigsh(G, k=3, which="LA", tol=1e-13, v0=v0, return_eigenvectors=False))
    assert np.max(np.abs(got - evals[-3:])) <= 1e-8 * evals[-1]
    assert evals[0] >= -1e-12 * evals[-1]


def test_cg_and_minres_solve_damped_system(indefinite):
    H, Hd, evals = indefinite
    P = H.shape[0]
    b = np.random.default_rng(0).normal(size=P)
    identity = spla.aslinearoperator(np.eye(P))
    lam = abs(evals[0]) + 0.1 * (evals[-1] - evals[0])  # H + λI positive definite
    A, Ad = H + lam * identity, Hd + lam * np.eye(P)
    x, info = spla.cg(A, b, rtol=1e-12, maxiter=10 * P)
    assert info == 0
    assert np.linalg.norm(Ad @ x - b) <= 1e-9 * np.linalg.norm(b)
    # minres also handles the indefinite shift H + μI (μ between eigenvalues)
    mu = 0.5 * abs(evals[0])
    x, info = spla.minres(H + mu * identity, b, rtol=1e-12, maxiter=20 * P)
    assert info == 0
    assert np.linalg.norm(Hd @ x + mu * x - b) <= 1e-8 * np.linalg.norm(b)


# --- executors --------------------------------------------------------------------------------


def test_thread_and_process_executors_give_identical_bits():
    model, theta, X, y = make_case([5, 8, 6, 3], "tanh", "cross_entropy", N=11, seed=9)
    rng = np.random.default_rng(0)
    v, V = rng.normal(size=model.num_params), rng.normal(size=(model.num_params, 4))
    kw = {"loss": "cross_entropy", "batch_size": 3}  # 3 + 3 + 3 + 2 rows
    serial = {m: f(model, theta, X, y, **kw) for m, f in FACTORIES.items()}
    want = {m: (op @ v, op @ V) for m, op in serial.items()}
    ctx = multiprocessing.get_context("fork" if hasattr(__import__("os"), "fork") else "spawn")
    with ThreadPoolExecutor(2) as threads, ProcessPoolExecutor(2, mp_context=ctx) as procs:
        for ex in (threads, procs):
            for mode, factory in FACTORIES.items():
                op = factory(model, theta, X, y, executor=ex, **kw)
                assert np.array_equal(op @ v, want[mode][0]), (type(ex).__name__, mode)
                assert np.array_equal(op @ V, want[mode][1]), (type(ex).__name__, mode)
        # eigsh through a thread pool equals eigsh serially
        v0 = np.ones(model.num_params)
        a = spla.eigsh(serial["hessian"], k=2, which="LA", v0=v0, return_eigenvectors=False)
        op = hessian_operator(model, theta, X, y, executor=threads, **kw)
        b = spla.eigsh(op, k=2, which="LA", v0=v0, return_eigenvectors=False)
        assert np.array_equal(a, b)


def test_one_operator_shared_by_threads(monkeypatch):
    """Products from 4 threads at once, forward caches on: same bits, exact counter and cache.

    A barrier starts each round of 4 products together on a fresh operator and a slowed
    forward pass (sleep 20 ms) makes every thread miss the same empty cache slots, then
    insert together; a tiny switch interval interleaves them inside the bookkeeping.
    """
    import sys
    import threading
    import time

    import hessref.operators.cache as cache

    def slow_forward(*args, **kwargs):
        time.sleep(0.02)
        return hr.core.mlp.forward(*args, **kwargs)

    monkeypatch.setattr(cache, "forward", slow_forward)
    model, theta, X, y = make_case([20, 32, 32, 3], "tanh", "cross_entropy", N=400, seed=12)
    kw = {"loss": "cross_entropy", "batch_size": 100}  # 4 chunks
    rng = np.random.default_rng(13)
    Vs = [rng.normal(size=(model.num_params, k)) for k in (1, 2, 3, 4)]
    ref = hessian_operator(model, theta, X, y, **kw)
    want = [ref @ V for V in Vs]
    per_chunk = 8 * 100 * (32 + 32 + 32 + 32 + 3 + 32 + 32 + 32 + 32)  # A, Z, σ′, σ″
    per_chunk += 8 * 100 * (32 + 32 + 3 + 32 + 32)  # the loss's δ_1..δ_3 and g_1, g_2
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(3):
            op = hessian_operator(model, theta, X, y, cache_bytes=2 * per_chunk, **kw)
            barrier = threading.Barrier(len(Vs))

            def product(V, op=op, barrier=barrier):
                barrier.wait()
                return op @ V

            with ThreadPoolExecutor(len(Vs)) as pool:
                got = list(pool.map(product, Vs))
            assert all(np.array_equal(g, w) for g, w in zip(got, want))
            assert op.num_matvecs == 10
            assert op._states.keys() == [(100, 0), (100, 1)]
            assert op.cached_bytes == 2 * per_chunk
    finally:
        sys.setswitchinterval(old)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_non_finite_chunk_is_named():
    """Data with NaN that bypassed validation: ChunkError naming the chunk, rows and culprit."""
    import dataclasses

    from hessref.core.problem import make_problem
    from hessref.operators import ChunkError

    model, theta, X, y = make_case([3, 4, 2], "tanh", "mse", N=7, seed=14)
    X = X.copy()
    problem = make_problem(model, theta, X, y)
    X[5, 1] = np.inf  # after validation
    op = CurvatureOperator(dataclasses.replace(problem, X=X), "ggn", batch_size=3)
    with pytest.raises(
        ChunkError,
        match=r"chunk 1 \(rows 3:6 of X\) of the G product is not finite.*first at row 5",
    ):
        op @ np.ones(model.num_params)


# --- memory -----------------------------------------------------------------------------------


def _peak_bytes(op, V):
    tracemalloc.start()
    try:
        op @ V
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_far_below_dense_and_independent_of_N():
    sizes = [100, 400, 400, 10]
    model = hr.MLP(sizes, activation="tanh")
    P = model.num_params
    assert P == 204_810
    rng = np.random.default_rng(0)
    theta = model.init(rng)
    X = rng.normal(size=(2000, 100))
    y = rng.integers(0, 10, size=2000)
    v, V = rng.normal(size=P), rng.normal(size=(P, 2))
    dense_bytes = 8 * P**2  # ≈ 3.4e11 bytes
    # kept chunk state off: the workspace alone (the default keeps state, bounded below)
    kw = {"loss": "cross_entropy", "batch_size": 250, "cache_bytes": 0}
    with threadpool_limits(1):  # one BLAS thread: faster on a small shared machine
        large = hessian_operator(model, theta, X, y, **kw)
        small = hessian_operator(model, theta, X[:500], y[:500], **kw)
        peak_v, peak_V = _peak_bytes(large, v), _peak_bytes(large, V)
        peak_small = _peak_bytes(small, v)
        kept = hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=250)
        peak_kept = _peak_bytes(kept, v)
    # bound: 64 MiB (the chunk workspace is ≈ 12 MB for one vector, ≈ 17 MB for two,
    # plus a few (P, K) arrays of 1.6 MB per column), i.e. < 2e-4 of one P × P matrix
    bound = 64 * 2**20
    assert bound < 2e-4 * dense_bytes
    assert peak_v < bound and peak_V < bound, (peak_v, peak_V)
    # same batch_size, 4× the data: the peak does not grow (beyond 10% + 1 MiB of slack)
    assert peak_v <= 1.1 * peak_small + 2**20, (peak_small, peak_v)
    # default: the kept state of all 8 chunks (within the default budget) on top of that
    assert 0 < kept.cached_bytes <= kept.cache_bytes
    assert peak_kept <= peak_v + kept.cached_bytes + 2**20, (peak_v, peak_kept, kept.cached_bytes)
    # automatic chunks (batch_size=None) are bounded by the workspace target, not by N
    auto = hessian_operator(model, theta, X, y, loss="cross_entropy")
    assert auto.rows_per_chunk(64) < 2000
    assert auto.rows_per_chunk(64) < auto.rows_per_chunk(1) <= 2000


# --- dense export -----------------------------------------------------------------------------


def test_to_dense_refuses_when_too_big(monkeypatch):
    model, theta, X, y = make_case([3, 4, 2], "tanh", "mse", N=4)
    op = hessian_operator(model, theta, X, y)
    monkeypatch.setattr(hessref.core.validation, "available_memory_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match="to_dense"):
        op.to_dense()


# --- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_op():
    model, theta, X, y = make_case([3, 4, 2], "tanh", "mse", N=5)
    return hessian_operator(model, theta, X, y, batch_size=2), model, theta, X, y


def test_bad_vectors(small_op):
    op = small_op[0]
    P = op.shape[0]
    with pytest.raises(ValueError, match=rf"v: expected shape \(P,\) or \(P, 1\) with P = {P}"):
        op @ np.ones(P + 1)
    with pytest.raises(ValueError, match=r"v: expected shape"):
        np.ones(P - 1) @ op
    with pytest.raises(ValueError, match=r"v: expected shape"):
        op.matvec(np.ones((P, 2)))
    with pytest.raises(ValueError, match=rf"V: expected shape \(P, K\) with P = {P}"):
        op @ np.ones((P + 1, 3))
    with pytest.raises(ValueError, match=r"V: expected a 2-D array"):
        op.matmat(np.ones(P))
    with pytest.raises(ValueError, match=r"V: expected at least one column"):
        op.matmat(np.ones((P, 0)))
    bad = np.ones(P)
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"v: expected finite values"):
        op @ bad
    bad[3] = np.inf
    with pytest.raises(ValueError, match=r"V: expected finite values"):
        op @ np.column_stack([bad, bad])
    with pytest.raises(TypeError, match=r"v: expected real float64 values, got complex"):
        op @ (np.ones(P) + 1j)
    with pytest.raises(TypeError, match=r"V: expected real float64 values, got complex"):
        op.matmat(np.ones((P, 2), dtype=complex))
    with pytest.raises(TypeError, match=r"v: expected a real numeric array"):
        op.matvec(np.array(["a"] * P))
    # 3-D arrays: named by shape, not printed (SciPy's own message prints the whole array)
    for how, call in (("op @ x", lambda x: op @ x), ("x @ op", lambda x: x @ op),
                      ("op @ x", lambda x: op(x)), ("op @ x", lambda x: op.dot(x))):  # fmt: skip
        with pytest.raises(
            ValueError,
            match=rf"x \(in {how}\): expected a vector of shape \(P,\) or a block of shape \(P, K\) with P = {P}, got a 3-D array of shape \({P}, 2, 2\)",
        ) as err:
            call(np.full((P, 2, 2), 7.0))
        assert "7." not in str(err.value)
    # integer and float32 vectors are accepted and converted
    assert (op @ np.ones(P, dtype=np.int64)).dtype == np.float64
    assert (op @ np.ones(P, dtype=np.float32)).dtype == np.float64


@pytest.mark.parametrize(
    ("batch_size", "exc"),
    [(0, ValueError), (-3, ValueError), (2.0, TypeError), (2.5, TypeError), (True, TypeError)],
)
def test_bad_batch_size(small_op, batch_size, exc):
    _, model, theta, X, y = small_op
    with pytest.raises(exc, match="batch_size"):
        hessian_operator(model, theta, X, y, batch_size=batch_size)


def test_bad_construction_arguments(small_op):
    _, model, theta, X, y = small_op
    with pytest.raises(ValueError, match="loss"):
        ggn_operator(model, theta, X, y, loss="hinge")
    with pytest.raises(ValueError, match="reduction"):
        residual_operator(model, theta, X, y, reduction="median")
    with pytest.raises(ValueError, match="cache_bytes"):
        hessian_operator(model, theta, X, y, cache_bytes=-1)
    with pytest.raises(TypeError, match="executor"):
        hessian_operator(model, theta, X, y, executor=object())
    with pytest.raises(ValueError, match="theta"):
        hessian_operator(model, theta[:-1], X, y)
    with pytest.raises(TypeError, match="model"):
        hessian_operator("mlp", theta, X, y)
    with pytest.raises(ValueError, match="X"):
        hessian_operator(model, theta, X[:, :2], y)
    with pytest.raises(ValueError, match="y"):
        hessian_operator(model, theta, X, y[:, :1])
    with pytest.raises(TypeError, match="y"):
        hessian_operator(model, theta, X, np.zeros(5), loss="cross_entropy")
    with pytest.raises(TypeError):
        hessian_operator(model, theta, X, y, "mse")  # loss is keyword-only


# --- one validation pass per product, default kept state ---------------------------------------


def test_one_validation_pass_and_one_finite_scan_per_product(monkeypatch):
    """Every way of applying op checks V once and scans the result for NaN/inf once.

    Counts calls of the array checker (``as_float_array``: dtype, shape, finite scan of V)
    and of the one output scan (``all_finite``), for a product of 3 chunks.
    """
    import hessref.operators.curvature as curvature

    calls = {"check": 0, "scan": 0}
    checker, scanner = curvature.as_float_array, curvature.all_finite

    def counting_check(*args, **kwargs):
        calls["check"] += 1
        return checker(*args, **kwargs)

    def counting_scan(total):
        calls["scan"] += 1
        return scanner(total)

    monkeypatch.setattr(curvature, "as_float_array", counting_check)
    monkeypatch.setattr(curvature, "all_finite", counting_scan)
    model, theta, X, y = make_case([3, 4, 2], "tanh", "cross_entropy", N=7, seed=21)
    P = model.num_params
    op = hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=3)
    v, V = np.ones(P), np.ones((P, 3))
    products = {
        "op @ v": lambda: op @ v,
        "op @ V": lambda: op @ V,
        "op @ v[:, None]": lambda: op @ v[:, None],
        "op(v)": lambda: op(v),
        "v @ op": lambda: v @ op,
        "V.T @ op": lambda: V.T @ op,
        "op.dot(V)": lambda: op.dot(V),
        "op.matvec(v)": lambda: op.matvec(v),
        "op.matmat(V)": lambda: op.matmat(V),
        "op.rmatvec(v)": lambda: op.rmatvec(v),
        "op.T @ v": lambda: op.T @ v,
    }
    for how, product in products.items():
        calls.update(check=0, scan=0)
        product()
        assert calls == {"check": 1, "scan": 1}, how


@pytest.mark.parametrize("method", ["lanczos", "block", "arpack"])
def test_one_finite_scan_per_product_inside_top_eigenpairs(monkeypatch, method):
    """A top_eigenpairs run over a curvature operator scans each product once.

    The operator scans its own sums (``checks_output = True``), so the spectrum wrapper
    skips its scan: operator scans = operator products, spectrum scans = 0. A plain
    LinearOperator that makes no such promise keeps the spectrum scan on every product.
    """
    import hessref.operators.curvature as curvature
    import hessref.spectrum._operator as spectrum_operator

    calls = {"products": 0, "scan": 0, "spectrum_scan": 0}
    scanner, spectrum_scanner = curvature.all_finite, spectrum_operator.all_finite

    def counting_scan(total):
        calls["scan"] += 1
        return scanner(total)

    def counting_spectrum_scan(Y):
        calls["spectrum_scan"] += 1
        return spectrum_scanner(Y)

    monkeypatch.setattr(curvature, "all_finite", counting_scan)
    monkeypatch.setattr(spectrum_operator, "all_finite", counting_spectrum_scan)
    model, theta, X, y = make_case([3, 4, 2], "tanh", "cross_entropy", N=7, seed=24)
    op = hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=3)
    apply = op._apply

    def counting_apply(V):
        calls["products"] += 1
        return apply(V)

    monkeypatch.setattr(op, "_apply", counting_apply)
    found = hr.spectrum.top_eigenpairs(op, 2, method=method, rng=0)
    assert calls["products"] > 2 and calls["scan"] == calls["products"], calls
    assert calls["spectrum_scan"] == 0
    assert found.residuals.max() < 1e-8
    calls.update(products=0, scan=0, spectrum_scan=0)
    plain = spla.LinearOperator(op.shape, matvec=op.matvec, matmat=op.matmat, dtype=np.float64)
    hr.spectrum.top_eigenpairs(plain, 2, method=method, rng=0)
    assert calls["spectrum_scan"] == calls["products"] == calls["scan"] > 2, calls


@pytest.mark.parametrize("mode", ["hessian", "ggn", "residual"])
def test_default_cache_is_on_bounded_and_bit_identical(mode):
    """Default budget keeps state; cache_bytes=0 keeps none; the bits are the same."""
    from hessref.operators.cache import default_cache_bytes

    model, theta, X, y = make_case([5, 7, 6, 3], "tanh", "cross_entropy", N=23, seed=22)
    V = np.random.default_rng(23).normal(size=(model.num_params, 4))
    kw = {"loss": "cross_entropy", "batch_size": 5}
    cached = FACTORIES[mode](model, theta, X, y, **kw)
    plain = FACTORIES[mode](model, theta, X, y, cache_bytes=0, **kw)
    assert 0 < cached.cache_bytes <= default_cache_bytes() + 2**20
    assert cached.cache_bytes <= hessref.operators.DEFAULT_CACHE_LIMIT
    want = plain @ V
    for _ in range(2):  # the first product fills the state, the second reads it
        assert np.array_equal(cached @ V, want)
        assert np.array_equal(cached @ V[:, 1], want[:, 1])
    assert cached.cached_bytes > 0 and len(cached._states.keys()) == 5
    assert plain.cached_bytes == 0 and plain._states.keys() == []


def test_default_budget_is_the_smaller_of_fraction_and_limit(monkeypatch):
    from hessref.operators import cache

    monkeypatch.setattr(cache, "available_memory_bytes", lambda: 4 * 2**20)
    assert cache.default_cache_bytes() == 2**20  # 1/4 of 4 MiB
    monkeypatch.setattr(cache, "available_memory_bytes", lambda: 2**40)
    assert cache.default_cache_bytes() == cache.DEFAULT_CACHE_LIMIT == 2 * 2**30
    model, theta, X, y = make_case([3, 4, 2], "tanh", "mse", N=5)
    assert hessian_operator(model, theta, X, y).cache_bytes == 2 * 2**30
    assert hessian_operator(model, theta, X, y, cache_bytes=0).cache_bytes == 0


def test_kept_state_does_not_go_stale_when_theta_changes():
    """θ changed in place after construction: the operator (and its kept state) keep the old θ."""
    model, theta, X, y = make_case([4, 6, 3], "tanh", "mse", N=9, seed=24)
    theta = theta.copy()
    V = np.random.default_rng(25).normal(size=(model.num_params, 2))
    op = hessian_operator(model, theta, X, y, batch_size=4)
    want = hessian_operator(model, theta.copy(), X, y, batch_size=4, cache_bytes=0) @ V
    assert np.array_equal(op @ V, want)
    theta *= 3.0  # the caller's array, not the operator's copy
    assert np.array_equal(op @ V, want)
    moved = hessian_operator(model, theta, X, y, batch_size=4)
    assert not np.array_equal(moved @ V, want)
    assert rel_err(moved @ V, hr.hessian(model, theta, X, y) @ V) < TOL


def test_curvature_operator_takes_the_kind():
    from hessref.core.kinds import Curvature
    from hessref.operators import curvature_operator

    model, theta, X, y = make_case([3, 4, 2], "tanh", "mse", N=5, seed=26)
    V = np.random.default_rng(27).normal(size=(model.num_params, 2))
    for kind, factory in zip(Curvature, FACTORIES.values(), strict=True):
        for spelling in (kind, kind.symbol, kind.value):
            op = curvature_operator(spelling, model, theta, X, y)
            assert op.kind is kind and op.mode == kind.value
            assert np.array_equal(op @ V, factory(model, theta, X, y) @ V)
            assert f"({kind.symbol})" in repr(op)
    with pytest.raises(ValueError, match="kind: expected one of 'H', 'G', 'R'"):
        curvature_operator("F", model, theta, X, y)
    with pytest.warns(DeprecationWarning, match="Curvature"):
        from hessref.operators.chunks import NAMES
    assert NAMES == {"hessian": "H", "ggn": "G", "residual": "R"}


def test_sum_over_chunks_keeps_every_chunk_in_order():
    """Chunked products equal the one-chunk product to round-off, whatever the last chunk."""
    model, theta, X, y = make_case([4, 6, 3], "tanh", "cross_entropy", N=11, seed=28)
    V = np.random.default_rng(29).normal(size=(model.num_params, 2))
    whole = hessian_operator(model, theta, X, y, loss="cross_entropy", cache_bytes=0) @ V
    for batch_size in (1, 2, 5, 10):  # last chunk of 1 row each time
        op = hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=batch_size)
        assert rel_err(op @ V, whole) < TOL, batch_size


def test_chunks_are_summed_first_to_last():
    """The documented order t_0 = p_0, t_c = t_{c-1} + p_c, to the bit (not only to round-off)."""
    from hessref.core.kinds import Curvature
    from hessref.core.problem import make_problem
    from hessref.operators.chunks import chunk_product

    model, theta, X, y = make_case([4, 9, 3], "tanh", "cross_entropy", N=13, seed=30)
    V = np.random.default_rng(31).normal(size=(model.num_params, 3))
    problem = make_problem(model, theta, X, y, "cross_entropy")
    parts = [chunk_product(c, np.asfortranarray(V), Curvature.H) for c in problem.chunks(3)]
    want = parts[0].copy()
    for p in parts[1:]:
        want = want + p
    backward = parts[-1].copy()
    for p in parts[-2::-1]:
        backward = backward + p
    assert not np.array_equal(want, backward)  # the order is visible in the bits here
    for cache_bytes in (0, None):
        op = hessian_operator(
            model, theta, X, y, loss="cross_entropy", batch_size=3, cache_bytes=cache_bytes
        )
        assert np.array_equal(op @ V, want)
