"""The dense block engine (hessref.core.dense) across sample chunks and layer pairs.

Channels: autograd's reverse-over-reverse Hessian (tests/reference.py) and the
R-op columns H·I of hessref.core.rop; chunked accumulation is compared with a
single chunk. The 4-layer net has adjacent and non-adjacent layer pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref

import hessref as hr
import hessref.core.dense as dense
from hessref.core.problem import make_problem
from hessref.core.rop import curvature_matmat

TOL = 1e-10


@pytest.fixture(scope="module")
def problem_data():
    rng = np.random.default_rng(3)
    model = hr.MLP([4, 5, 3, 4, 3], activation="tanh")
    X = rng.normal(size=(13, 4))
    y = rng.integers(0, 3, 13)
    return model, model.init(rng=1), X, y


@pytest.mark.parametrize("workspace", [None, 3000])
def test_chunked_blocks_match_autograd_and_rop(problem_data, workspace, monkeypatch):
    model, theta, X, y = problem_data
    if workspace is not None:  # a few samples per chunk: the block sums cross chunks
        monkeypatch.setattr(dense, "_WORKSPACE_BYTES", workspace)
    p = make_problem(model, theta, X, y, "cross_entropy", "mean")
    assert (dense._chunk_rows(p) < 5) == (workspace is not None)
    H, G, R = dense.dense_curvatures(p, ("hessian", "ggn", "residual"))
    H_ref = ref.hessian(list(model.sizes), "tanh", theta, X, y, "cross_entropy", "mean")
    assert ref.rel_err(H, H_ref) <= TOL
    eye = np.eye(model.num_params)
    for M, mode in ((G, "ggn"), (R, "residual")):
        assert ref.rel_err(M, curvature_matmat(p, eye, mode), 1e-3 * np.linalg.norm(H)) <= TOL
        assert np.array_equal(M, M.T)  # written symmetric, not symmetrized
    assert np.array_equal(H, H.T)
    assert ref.rel_err(G + R, H) <= TOL
    G2, R2 = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
    assert np.array_equal(G2, G) and np.array_equal(R2, R)
