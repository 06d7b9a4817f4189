"""top_eigenpairs: user start vectors (v0) and both spectrum ends from one Krylov space."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from hessref import spectrum as sp


def _indefinite(P: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric indefinite matrix with well separated ends and its dense eigh."""
    gen = np.random.default_rng(seed)
    Qm = np.linalg.qr(gen.standard_normal((P, P)))[0]
    lam = np.concatenate([[-7.0, -5.0], np.linspace(-1.0, 1.0, P - 5), [4.0, 6.0, 9.0]])
    A = (Qm * lam) @ Qm.T
    A = 0.5 * (A + A.T)
    return A, np.linalg.eigh(A)[0]


@pytest.mark.parametrize("method", ["lanczos", "block", "arpack"])
def test_v0_converges_to_the_same_pairs(method):
    A, ev = _indefinite()
    ref = sp.top_eigenpairs(A, 3, method=method, tol=1e-12, rng=0)
    v0 = np.random.default_rng(5).standard_normal(A.shape[0])
    got = sp.top_eigenpairs(A, 3, method=method, tol=1e-12, rng=1, v0=v0)
    np.testing.assert_allclose(got.values, ev[::-1][:3], rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.values, ref.values, rtol=0, atol=1e-9)
    assert np.all(np.abs(np.sum(got.vectors * ref.vectors, axis=0)) > 1 - 1e-8)
    assert got.residuals.max() <= 1e-9


def test_v0_is_the_start_vector_and_a_warm_start_saves_products():
    A, ev = _indefinite()
    cold = sp.top_eigenpairs(A, 1, method="lanczos", tol=1e-12, rng=0)
    # the same random vector given as v0 gives the same bits as drawing it from rng
    same = sp.top_eigenpairs(
        A, 1, method="lanczos", tol=1e-12, rng=0, v0=np.random.default_rng(0).standard_normal(60)
    )
    assert same.values[0] == cold.values[0] and same.num_matvecs == cold.num_matvecs
    # a start close to the top eigenvector converges in fewer products
    near = cold.vectors[:, 0] + 1e-4 * np.random.default_rng(2).standard_normal(60)
    warm = sp.top_eigenpairs(A, 1, method="lanczos", tol=1e-12, rng=0, v0=near)
    assert abs(warm.values[0] - ev[-1]) <= 1e-10
    assert warm.num_matvecs < cold.num_matvecs


def test_v0_block_accepts_fewer_columns_and_rejects_bad_blocks():
    A, ev = _indefinite()
    gen = np.random.default_rng(3)
    got = sp.top_eigenpairs(A, 3, method="block", tol=1e-12, rng=0, v0=gen.normal(size=(60, 2)))
    np.testing.assert_allclose(got.values, ev[::-1][:3], rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match=r"v0: expected shape \(60,\) or \(60, c\)"):
        sp.top_eigenpairs(A, 3, method="block", v0=np.ones((60, 4)))  # c > block size 3
    with pytest.raises(ValueError, match="rank-deficient"):
        sp.top_eigenpairs(A, 3, method="block", v0=np.ones((60, 2)))


@pytest.mark.parametrize("method", ["lanczos", "arpack"])
@pytest.mark.parametrize("bad", [np.ones(59), np.ones((60, 2)), np.zeros(60)])
def test_v0_of_the_wrong_shape_or_zero_raises(method, bad):
    A, _ = _indefinite()
    with pytest.raises(ValueError, match="v0: expected"):
        sp.top_eigenpairs(A, 2, method=method, v0=bad)


def test_v0_of_the_wrong_kind_raises_type_error():
    A, _ = _indefinite()
    with pytest.raises(TypeError, match="v0"):
        sp.top_eigenpairs(A, 2, method="lanczos", v0=["a"] * 60)


@pytest.mark.parametrize("method", ["lanczos", "block"])
@pytest.mark.parametrize("residuals", ["exact", "ritz"])
def test_both_ends_from_one_run_match_dense_eigh(method, residuals):
    A, ev = _indefinite()
    hi, lo = sp.top_eigenpairs(
        A, 3, which="both", method=method, tol=1e-12, rng=0, k_smallest=2, residuals=residuals
    )
    np.testing.assert_allclose(hi.values, ev[::-1][:3], rtol=0, atol=1e-10)
    np.testing.assert_allclose(lo.values, ev[:2], rtol=0, atol=1e-10)
    for pairs in (hi, lo):
        # the vectors are eigenvectors: residuals recomputed here, and the reported ones
        true = np.linalg.norm(A @ pairs.vectors - pairs.vectors * pairs.values, axis=0)
        assert true.max() <= 1e-10 * 9.0
        np.testing.assert_allclose(pairs.residuals, true, rtol=0, atol=1e-13)
        assert pairs.residual_kind == residuals and pairs.method == method
    assert hi.num_matvecs == lo.num_matvecs  # one shared run
    # one run costs fewer products than two separate runs from the same start
    kw = {"method": method, "tol": 1e-12, "rng": 0, "residuals": residuals}
    separate = sp.top_eigenpairs(A, 3, **kw).num_matvecs
    separate += sp.top_eigenpairs(A, 2, which="smallest", **kw).num_matvecs
    assert hi.num_matvecs < separate


def test_both_on_an_operator_and_with_multiplicity():
    # A = diag(3, 3, 0, …, 0, -2): the restarts find the repeated top value
    d = np.zeros(20)
    d[:2], d[-1] = 3.0, -2.0
    op = spla.aslinearoperator(np.diag(d))
    hi, lo = sp.top_eigenpairs(op, 2, which="both", method="lanczos", rng=0)
    np.testing.assert_allclose(hi.values, [3.0, 3.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lo.values, [-2.0], rtol=0, atol=1e-12)


def test_both_rejects_arpack_and_too_many_pairs():
    A, _ = _indefinite(P=8)
    with pytest.raises(ValueError, match="which: 'both' needs method='lanczos' or 'block'"):
        sp.top_eigenpairs(A, 2, which="both")
    with pytest.raises(ValueError, match="k, k_smallest: expected k \\+ k_smallest < P = 8"):
        sp.top_eigenpairs(A, 4, which="both", method="lanczos", k_smallest=4)
    with pytest.raises(ValueError, match="k_smallest"):
        sp.top_eigenpairs(A, 2, which="both", method="lanczos", k_smallest=0)


def test_both_keeps_restarting_while_the_low_end_improves():
    # λ = -2 three times: each invariant block holds one copy, so the run must restart
    # until a block no longer improves the k_smallest-th value (here after the 3rd copy)
    d = np.zeros(16)
    d[0], d[-3:] = 3.0, -2.0
    hi, lo = sp.top_eigenpairs(np.diag(d), 1, which="both", method="lanczos", k_smallest=3, rng=1)
    np.testing.assert_allclose(hi.values, [3.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lo.values, [-2.0, -2.0, -2.0], rtol=0, atol=1e-12)
