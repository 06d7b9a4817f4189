"""Block Lanczos (``top_eigenpairs(..., method="block")``) against dense ``eigh``.

Channels: LAPACK ``numpy.linalg.eigh`` on the same matrix; for the MLP case, the
dense H of ``hr.hessian`` vs the matrix-free ``hessian_operator`` (batched matmat).
"""

import numpy as np
import pytest

import hessref as hr
from hessref import spectrum as sp


def random_symmetric(lam, seed):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((len(lam), len(lam))))
    A = (U * np.asarray(lam, dtype=float)) @ U.T
    return 0.5 * (A + A.T)


@pytest.mark.parametrize("which", ["largest", "smallest"])
@pytest.mark.parametrize("block_size", [1, 3, 10])
def test_block_matches_eigh_to_1e10(which, block_size):
    rng = np.random.default_rng(4)
    A = random_symmetric(np.concatenate([[9.0, 7.5, -8.0], rng.uniform(-2, 2, 147)]), 5)
    exact = np.linalg.eigh(A)[0]
    want = exact[::-1][:5] if which == "largest" else exact[:5]
    res = sp.top_eigenpairs(A, 5, which=which, method="block", block_size=block_size, rng=0)
    assert res.method == "block"
    np.testing.assert_allclose(res.values, want, rtol=0, atol=1e-10 * np.abs(exact).max())
    assert res.residuals.max() <= 1e-9 * np.abs(exact).max()
    np.testing.assert_allclose(res.vectors.T @ res.vectors, np.eye(5), atol=1e-10)


def test_block_finds_multiplicity_up_to_block_size():
    # λ = 4 three times: one Krylov vector sees one copy, a block of 3 sees all three
    A = random_symmetric([4.0, 4.0, 4.0, 2.0] + list(np.linspace(-1, 1, 56)), 1)
    res = sp.top_eigenpairs(A, 4, method="block", block_size=3, rng=2)
    np.testing.assert_allclose(res.values, [4.0, 4.0, 4.0, 2.0], atol=1e-10)


def test_block_whole_space_and_low_rank():
    # P < 2b: the last block is partial and Q spans everything; rank-2 PSD: exact zeros
    B = np.random.default_rng(3).standard_normal((7, 2))
    G = B @ B.T
    res = sp.top_eigenpairs(G, 4, which="largest", method="block", block_size=5, rng=0)
    np.testing.assert_allclose(res.values, np.linalg.eigh(G)[0][::-1][:4], atol=1e-12)


def test_block_on_mlp_hessian_operator():
    rng = np.random.default_rng(0)
    model = hr.MLP([6, 12, 3], activation="tanh")
    theta = model.init(rng=0)
    X, y = rng.normal(size=(40, 6)), rng.integers(0, 3, 40)
    H = hr.hessian(model, theta, X, y, loss="cross_entropy")
    op = hr.hessian_operator(model, theta, X, y, loss="cross_entropy", batch_size=15)
    res = sp.top_eigenpairs(op, 4, method="block", rng=1)
    exact = np.linalg.eigh(H)[0][::-1][:4]
    np.testing.assert_allclose(res.values, exact, rtol=0, atol=1e-10 * exact[0])
    assert res.num_matvecs % 4 == 0  # whole blocks (+ the k residual products)


def test_block_size_is_checked():
    with pytest.raises(ValueError, match="block_size"):
        sp.top_eigenpairs(np.diag([1.0, 2.0, 3.0]), 1, method="block", block_size=0)


def test_slq_with_basis_in_a_file_matches_in_memory(monkeypatch):
    # a budget below one basis forces the file-backed basis (read back in blocks)
    import hessref.spectrum.density as density

    rng = np.random.default_rng(6)
    A = random_symmetric(np.concatenate([[5.0, 4.0], rng.uniform(-1, 1, 88)]), 2)
    ref = sp.slq_density(A, m=30, num_probes=5, rng=3)
    monkeypatch.setattr(density, "_SLQ_BASIS_BYTES", 8 * 4 * 90 * 2)  # 2 probes, 2 steps/read
    spilled = sp.slq_density(A, m=30, num_probes=5, rng=3)
    np.testing.assert_allclose(spilled.nodes, ref.nodes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spilled.weights, ref.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spilled.density, ref.density, rtol=1e-10, atol=0)
    # converged extreme nodes are eigenvalues (full reorthogonalization: no ghosts)
    exact = np.linalg.eigh(A)[0]
    assert abs(spilled.nodes[:, -1] - exact[-1]).max() < 1e-10
    assert np.all(np.diff(spilled.nodes, axis=1) > 1e-8)  # no repeated (ghost) nodes
