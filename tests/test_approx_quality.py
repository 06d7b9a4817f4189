"""The ``kfac-quality`` experiment (hessref/experiments/approx_quality.py): a fast run
round-trips through strict JSON, every rule states its own claim, source and role, the
identities (theorems of docs/theory.md §19) hold at every seed, verdicts follow the data,
and the per-configuration numbers agree with an independent computation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import hessref as hr
from hessref import approx
from hessref.experiments import ExperimentResult, get_experiment, run_experiment
from hessref.experiments.approx_quality import (
    APPROXIMATIONS,
    STAGES,
    config_quality,
    random_psd,
    train_stages,
)
from hessref.experiments.framework import summarise
from hessref.experiments.result import dumps, record

NAME = "kfac-quality"
IDENTITIES = {"EK-FAC ≤ K-FAC per layer", "block diagonal ≤ EK-FAC",
              "K-FAC last layer exact (MSE)", "G − FGN ⪰ 0 (CE)"}  # fmt: skip


@pytest.fixture(scope="module")
def res() -> ExperimentResult:
    return run_experiment(NAME, fast=True)


def test_fast_run_round_trips_through_strict_json(res, tmp_path):
    assert res.mode == "fast" and res.seeds == [0, 1, 2] and len(res.per_seed) == 3
    text = res.to_json()
    assert "NaN" not in text and "Infinity" not in text
    back = ExperimentResult.from_json(text)
    assert json.loads(back.to_json()) == json.loads(text)
    m = res.per_seed[0]
    for loss in res.settings["losses"]:
        for st in STAGES:
            for w in res.settings["widths"]:
                errors = m["q"][loss][st][f"w{w}"]["errors"]
                expected = set(APPROXIMATIONS) - ({"fgn"} if loss == "mse" else set())
                assert set(errors) == expected
    assert res.timings["total"] < 20  # the CI budget of the fast settings


def test_every_rule_has_its_own_claim_source_and_role(recwarn):
    exp = get_experiment(NAME)
    for fast in (True, False):
        verdicts = exp.rules(exp.settings(fast=fast))
        assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
        assert all(v.claim.strip() and v.source.strip() for v in verdicts)
        assert exp.claim not in {v.claim for v in verdicts}
        assert {v.name for v in verdicts if v.role == "identity"} == IDENTITIES
        nulls = [v for v in verdicts if v.role == "null"]
        assert nulls and all("expected to fail" in v.claim for v in nulls)
        assert len({v.name for v in verdicts}) == len(verdicts)


def test_identities_hold_at_every_seed(res):
    for v in res.verdicts:
        if v["role"] == "identity":
            assert v["holds"] == 3 and v["label"] == "holds at every seed", v


def test_verdicts_follow_the_data(res):
    exp = get_experiment(NAME)
    broken = [dict(m, ekfac_minus_kfac=0.1, fgn_min_gap=-0.1) for m in res.per_seed]
    other = summarise(exp, res.settings, res.seeds, broken)
    assert other.verdict("EK-FAC ≤ K-FAC per layer")["holds"] == 0
    assert other.verdict("G − FGN ⪰ 0 (CE)")["holds"] == 0
    # one comparison claim flipped by swapping the two errors it compares
    name = "mse, init: K-FAC closer to G than the diagonal"
    swapped = json.loads(json.dumps(res.per_seed))
    for m in swapped:
        for w in res.settings["widths"]:
            e = m["q"]["mse"]["init"][f"w{w}"]["errors"]
            e["kfac"]["relative"], e["diagonal"]["relative"] = (
                e["diagonal"]["relative"], e["kfac"]["relative"])  # fmt: skip
    before = res.verdict(name)["holds"]
    after = summarise(exp, res.settings, res.seeds, swapped).verdict(name)["holds"]
    assert before + after <= 3 and (before, after) != (0, 0)


def test_same_seed_same_bits():
    exp = get_experiment(NAME)
    s = exp.settings(fast=True, overrides={"widths": [4], "losses": ["cross_entropy"]})
    a = dumps(record(exp.measure(dict(s), 5, lambda m: None)))
    b = dumps(record(exp.measure(dict(s), 5, lambda m: None)))
    assert a == b


def _problem(loss: str, activation: str = "tanh"):
    X, y = hr.data.gaussian_mixture(30, 3, 4, rng=1)
    model = hr.MLP([4, 5, 5, 3], activation)
    Y = y if loss == "cross_entropy" else np.eye(3)[y]
    return model, model.init(rng=2), X, Y


def test_config_numbers_match_an_independent_computation():
    """Relative errors from the exact H by autograd-free dense blocks vs config_quality."""
    model, theta, X, Y = _problem("cross_entropy")
    s = {"top_k": 3, "mc_samples": 1}
    c = config_quality(model, theta, X, Y, "cross_entropy", s, np.random.default_rng(0))
    H = hr.hessian(model, theta, X, Y, loss="cross_entropy")  # second channel: H, not G + R
    G, _ = hr.gauss_newton(model, theta, X, Y, loss="cross_entropy")
    K = approx.kfac(model, theta, X, Y, loss="cross_entropy").dense()
    assert math.isclose(c.kfac_vs_H, np.linalg.norm(K - H) / np.linalg.norm(H), rel_tol=1e-10)
    E = approx.empirical_fisher(model, theta, X, Y, loss="cross_entropy").dense()
    assert math.isclose(c.errors["empirical_fisher"].relative,
                        np.linalg.norm(E - G) / np.linalg.norm(G), rel_tol=1e-12)  # fmt: skip
    # block diagonal: its error is exactly the cross-layer mass of G
    off = G.copy()
    for l in range(1, model.num_layers + 1):
        sl = model.layer_slice(l)
        off[sl, sl] = 0
    rel = np.linalg.norm(off) / np.linalg.norm(G)
    assert math.isclose(c.errors["block_diagonal"].relative, rel, rel_tol=1e-10)
    assert max(c.errors["block_diagonal"].layer_errors) < 1e-14
    assert c.fgn_psd_gap > -1e-12


def test_kfac_is_exact_for_a_deep_linear_mse_net():
    """(19.10): every K-FAC (and so EK-FAC) layer error is 0 for σ = identity under MSE."""
    model, theta, X, Y = _problem("mse", activation="identity")
    c = config_quality(model, theta, X, Y, "mse", {"top_k": 3, "mc_samples": 1},
                       np.random.default_rng(0))  # fmt: skip
    assert max(c.errors["kfac"].layer_errors) < 1e-12
    assert max(c.errors["ekfac"].layer_errors) < 1e-12


def test_null_is_psd_with_the_trace_of_g():
    model, theta, X, Y = _problem("mse")
    M = random_psd(model, 3.5, np.random.default_rng(0)).dense()
    assert math.isclose(np.trace(M), 3.5, rel_tol=1e-12)
    assert np.linalg.eigvalsh(M)[0] > 0 and np.allclose(M, M.T, rtol=0, atol=1e-14)


def test_stages_are_init_halfway_and_trained():
    model, theta0, X, Y = _problem("cross_entropy")
    s = {"steps": 40, "learning_rate": 0.5}
    thetas, step = train_stages(model, theta0, X, Y, "cross_entropy", s)
    L = {k: hr.loss(model, t, X, Y, loss="cross_entropy") for k, t in thetas.items()}
    assert np.array_equal(thetas["init"], theta0) and 0 < step <= 40
    assert L["trained"] <= L["mid"] <= (L["init"] + L["trained"]) / 2 + 1e-12


def test_figure_is_drawn(res, tmp_path):
    path = tmp_path / "k.png"
    get_experiment(NAME).figure(res, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
