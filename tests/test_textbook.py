"""The textbook second-order chain rule (docs/theory.md §8) as a third channel.

``textbook_curvature`` builds H, G and R per sample from explicit layer Jacobians and
second-derivative tensors, sharing no code with the fast engine's block formulas (§7) or
its R-op (§6). Agreement to 1e-10 relative over random architectures, every activation,
both losses and both reductions is evidence that both are right; autograd is the anchor.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from strategies import Case, cases

import hessref as hr
from hessref.core.problem import make_problem
from hessref.core.rop import curvature_matmat
from hessref.core.textbook import textbook_curvature

EXACT = 1e-10
SMALL = {"max_depth": 3, "max_width": 5, "max_samples": 5}


def rel(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    return float(np.linalg.norm(a - b) / max(scale, np.finfo(float).tiny))


def textbook(case: Case):
    return textbook_curvature(case.model, case.theta, case.X, case.y, **case.kwargs)


@settings(max_examples=40)
@given(case=cases(**SMALL))
def test_textbook_matches_engine(case: Case) -> None:
    """hr.hessian (mode "hessian" of §7) and hr.gauss_newton (modes "ggn", "residual")
    equal the textbook H, G, R to 1e-10 relative to ‖H‖ + ‖G‖ + ‖R‖."""
    H_tb, G_tb, R_tb = textbook(case)
    H = hr.hessian(case.model, case.theta, case.X, case.y, **case.kwargs)
    G, R = hr.gauss_newton(case.model, case.theta, case.X, case.y, **case.kwargs)
    scale = np.linalg.norm(H_tb) + np.linalg.norm(G_tb) + np.linalg.norm(R_tb)
    assert rel(H, H_tb, scale) <= EXACT
    assert rel(G, G_tb, scale) <= EXACT
    assert rel(R, R_tb, scale) <= EXACT


@settings(max_examples=25)
@given(case=cases(**SMALL))
def test_rop_modes_match_textbook(case: Case) -> None:
    """The R-op's three modes (§6) applied to the identity equal the textbook H, G, R."""
    p = make_problem(case.model, case.theta, case.X, case.y, case.loss, case.reduction)
    I = np.eye(case.model.num_params)
    mats = textbook(case)
    scale = sum(np.linalg.norm(M) for M in mats)
    for mode, M in zip(("hessian", "ggn", "residual"), mats, strict=True):
        assert rel(curvature_matmat(p, I, mode=mode), M, scale) <= EXACT


@settings(max_examples=15)
@given(case=cases(**SMALL))
def test_textbook_matches_autograd(case: Case) -> None:
    """Textbook H = autograd's reverse-over-reverse Hessian; textbook G = autograd's J A J."""
    sizes, act = list(case.model.sizes), case.model.activation.name
    if act not in ref.ACTIVATIONS:
        return  # variants without an autograd twin are covered by the engine comparison
    H_tb, G_tb, _ = textbook(case)
    H_ag = ref.hessian(sizes, act, case.theta, case.X, case.y, case.loss, case.reduction)
    G_ag = ref.gauss_newton(sizes, act, case.theta, case.X, case.y, case.loss, case.reduction)
    scale = np.linalg.norm(H_ag) + np.linalg.norm(G_ag)
    assert rel(H_tb, H_ag, scale) <= EXACT
    assert rel(G_tb, G_ag, scale) <= EXACT


def test_textbook_refuses_large_models() -> None:
    model = hr.MLP([30, 40, 10], activation="tanh")  # P = 1650
    with pytest.raises(ValueError, match=r"textbook_curvature: .*P = 1650.*Use hessref.hessian"):
        textbook_curvature(model, model.init(rng=0), np.ones((1, 30)), np.ones((1, 10)))
    big = hr.MLP([50, 50, 1], activation="tanh")  # P = 2601 > 2000 even for one sample
    with pytest.raises(ValueError, match=r"P <= 2000"):
        textbook_curvature(big, big.init(rng=0), np.ones((1, 50)), np.ones((1, 1)))


def test_textbook_validates_inputs_like_the_engine() -> None:
    model = hr.MLP([2, 3, 2])
    with pytest.raises(ValueError, match="theta"):
        textbook_curvature(model, np.ones(3), np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="loss"):
        textbook_curvature(model, model.init(rng=0), np.ones((1, 2)), np.ones((1, 2)), loss="l2")
