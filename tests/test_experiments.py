"""Every registered experiment in its fast configuration (seeds 0-2): runs, round-trips
through JSON, reports only computed text, and its verdicts follow the data.

Each fast experiment runs once per session (cached). The exact theorems (H = G + R,
G ⪰ 0, λ_i(H) ≥ λ_i(R), Weyl, tr R = 0 for ReLU) must hold in every seed; the other
checks are seeded regression statements about the fast settings asserted here.
"""

import json
import math

import numpy as np
import pytest

from hessref.experiments import (
    EXPERIMENTS,
    ExperimentResult,
    data_complexity,
    get_experiment,
    run_experiment,
)
from hessref.experiments.framework import summarise

BUILTIN = [
    "demo",
    "init-vs-trained",
    "outliers-vs-classes",
    "bulk-vs-width",
    "data-complexity",
    "small-vs-large-batch",
    "hessian-split",
    "data-vs-architecture",
    "sample-size",
    "loss-and-activation",
]

_CACHE: dict[str, ExperimentResult] = {}


def fast(name: str) -> ExperimentResult:
    if name not in _CACHE:
        _CACHE[name] = run_experiment(name, fast=True)
    return _CACHE[name]


def test_registry_has_the_builtin_experiments():
    assert set(BUILTIN) <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        exp = EXPERIMENTS[name]
        assert exp.name == name and exp.default_seeds[0] >= 3 and exp.default_seeds[1] >= 10


def _json_equal(a, b):
    """Equality for JSON values with NaN == NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("name", BUILTIN)
def test_fast_run_round_trips_and_reports_every_rule(name, tmp_path):
    res = fast(name)
    assert res.name == name and res.mode == "fast" and res.seeds == [0, 1, 2]
    assert res.settings["fast"] is True and len(res.per_seed) == 3
    back = ExperimentResult.from_json(res.to_json())
    assert _json_equal(json.loads(back.to_json()), json.loads(res.to_json()))
    res.save(tmp_path / "r.json")
    assert _json_equal(ExperimentResult.load(tmp_path / "r.json").per_seed, res.per_seed)
    text = res.summary()
    assert text.startswith(f"{name} (fast configuration, 3 seeds: 0-2)")
    for v in res.verdicts:
        assert len(v["outcomes"]) == 3 and 0 <= v["low"] <= v["rate"] <= v["high"] <= 1
        assert f"[{v['name']}] {v['statement']}: holds in {v['holds']}/3 seeds" in text
    assert res.numbers, "every experiment declares key numbers"
    for fixed in ("Expected", "paper ~", "fails for C", "yes ("):
        assert fixed not in text


@pytest.mark.parametrize("name", BUILTIN)
def test_verdicts_follow_the_data(name):
    """The same rules on altered measurements give other outcomes and other text."""
    res = fast(name)
    exp = get_experiment(name)
    blank = [{k: float("nan") for k in m} for m in res.per_seed]
    other = summarise(exp, res.settings, res.seeds, blank)
    assert all(v["holds"] == 0 for v in other.verdicts)
    held = [v for v in res.verdicts if v["holds"] > 0]
    assert held, f"{name}: no rule held in any seed, so this test could not fail"
    assert other.summary() != res.summary()
    for v in held:
        assert f"[{v['name']}] {v['statement']}: holds in 0/3 seeds" in other.summary()


def test_count_statement_is_generated_from_settings():
    exp = get_experiment("init-vs-trained")
    res = fast("init-vs-trained")
    other = summarise(exp, dict(res.settings, classes=7, min_margin=2.0), res.seeds, res.per_seed)
    s = other.verdict("trained H: ratio count = C")["statement"]
    assert "= 7" in s and "≥ 2" in s and other.verdict("trained H: ratio count = C")["holds"] == 0
    assert "≥ 6 and" in other.verdict("trained H: threshold count within ±1 of C")["statement"]


EXACT = {
    "hessian-split": [
        f"{a}: {t}"
        for a in ("relu", "tanh")
        for t in ("λ_i(H) ≥ λ_i(R) for all i", "G ⪰ 0", "#neg H ≤ #neg R",
                  "|λ_i(H) − λ_i(G)| ≤ ‖R‖₂ (Weyl)")
    ] + ["relu: tr R = 0"],
    "demo": ["engine consistency: H = G + R", "G ⪰ 0", "λ_min(H) ≥ λ_min(R)"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_theorems_hold_in_every_seed(name):
    res = fast(name)
    assert {v["name"] for v in res.verdicts if v["role"] == "identity"} == set(EXACT[name])
    for rule in EXACT[name]:
        v = res.verdict(rule)
        assert v["holds"] == 3, (rule, v["outcomes"])
        assert v["label"] == "holds at every seed"


#: The experiments whose rules were converted to the claim-per-rule API (issue 21).
CONVERTED = ["demo", "init-vs-trained", "outliers-vs-classes", "bulk-vs-width",
             "data-complexity", "hessian-split", "loss-and-activation"]  # fmt: skip


@pytest.mark.parametrize("name", CONVERTED)
def test_every_rule_states_its_own_claim_source_and_role(name, recwarn):
    exp = get_experiment(name)
    verdicts = exp.rules(exp.settings(fast=False))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
    claims = [v.claim for v in verdicts]
    assert all(c.strip() for c in claims) and all(v.source for v in verdicts)
    assert exp.claim not in claims  # no inheritance of the experiment's claim
    assert {v.role for v in verdicts} <= {"claim", "identity", "null"}
    for v in verdicts:
        if v.role == "null":
            assert "controls for" in v.claim and v.name.startswith("null")


def test_counts_are_reported_by_every_rule():
    for name in ("init-vs-trained", "outliers-vs-classes", "loss-and-activation"):
        res = fast(name)
        table = res.tables["counting"]
        assert table and all(
            set(d) == {"ratio", "gap", "threshold", "tukey"} for d in table.values()
        )
        for label, rules in table.items():
            for rule, d in rules.items():
                key = f"exact_{rule}"
                exact = [m["counts"][label][key] for m in res.per_seed]
                if rule == "ratio":
                    exact = [
                        e and m["counts"][label]["ratio_margin_ok"]
                        for e, m in zip(exact, res.per_seed)
                    ]
                assert d["exact"]["holds"] == sum(exact), (name, label, rule)
                assert d["within_one"]["holds"] >= d["exact"]["holds"]
    ivt = fast("init-vs-trained")
    assert list(ivt.tables["sensitivity"]) == ["trained H"]
    assert fast("outliers-vs-classes").settings["control_outputs"] not in [2, 3]


def test_single_seed_call_of_0_1_is_deterministic():
    msgs = []
    a = EXPERIMENTS["data-complexity"](fast=True, rng=3, progress=msgs.append)
    b = data_complexity(fast=True, rng=3)
    assert a.seeds == [3] and a.per_seed == b.per_seed
    assert len(msgs) == 3 and all("std" in m for m in msgs)
    with pytest.raises(TypeError, match="rng"):
        EXPERIMENTS["data-complexity"](fast=True, rng="seed")
    with pytest.raises(ValueError, match="unknown experiment"):
        run_experiment("nope")


# --- seeded regression statements about the fast settings -------------------------------


@pytest.mark.regression  # empirical outcomes of the fast settings, seeds 0-2
def test_outliers_follow_classes_at_c2_with_nulls_failing():
    res = fast("outliers-vs-classes")
    assert res.settings["class_counts"] == [2, 3] and res.settings["samples"] == 150
    assert res.verdict("C = 2, K = C: ratio count = C")["holds"] == 3
    assert res.verdict("C = 2, K = 15: ratio count = C")["holds"] == 3
    assert res.verdict("null C = 2: H at init, ratio count = C")["holds"] == 0
    assert res.verdict("null C = 2: shuffled labels, ratio count = C")["holds"] == 0


@pytest.mark.regression  # empirical outcomes of the fast settings, seeds 0-2
def test_init_vs_trained_nulls_and_curvature():
    res = fast("init-vs-trained")
    assert res.verdict("lambda_max shrinks in training")["holds"] == 3
    for m in res.per_seed:
        assert m["reached_target"] and m["final_loss"] <= 1e-3
        assert 0.3 <= m["init_fraction_negative"] <= 0.5
        init, trained = m["counts"]["H at init"], m["counts"]["trained H"]
        assert init["ratio_margin"] < trained["ratio_margin"] or init["count_ratio"] != 3


@pytest.mark.regression  # empirical outcomes of the fast settings, seeds 0-2
def test_data_complexity_and_bulk():
    dc = fast("data-complexity")
    assert dc.settings["stds"] == [0.2, 0.6, 1.0]
    assert dc.verdict("lambda_max increases with spread")["holds"] == 3
    bw = fast("bulk-vs-width")
    assert bw.settings["widths"] == [10, 15, 20]
    assert bw.verdict("near-zero share grows with P")["holds"] == 3
    assert all(m["num_params"] == [760, 1135, 1510] for m in bw.per_seed)


def test_small_vs_large_batch_compares_at_matched_loss():
    res = fast("small-vs-large-batch")
    s = res.settings
    for m in res.per_seed:
        runs = m["runs"]
        assert [r["batch"] for r in runs] == s["batch_sizes"]
        assert m["lambda_max"] == [r["lambda_max"] for r in runs]
        # matched loss: every run stopped at its first step with full-batch loss ≤ target
        for r in runs:
            assert r["reached"] == (r["train_loss"] <= s["target_loss"])
            assert r["steps"] < s["max_steps"] or not r["reached"]
        assert m["matched"] == all(r["reached"] for r in runs)
        assert m["small"] == runs[0] and m["large"] == runs[-1]
        L = np.array(m["line_sb_lb"])
        a = np.array(s["alphas"])
        inside, high = L[(a >= 0) & (a <= 1)], max(L[a == 0][0], L[a == 1][0])
        assert m["barrier_sb_lb"] == pytest.approx((inside.max() - high) / high)
        assert m["random_rise"] > 0 and m["distance"] > 0
        assert m["sharpness_ratio"] == pytest.approx(runs[-1]["lambda_max"] / runs[0]["lambda_max"])
    names = [v["name"] for v in res.verdicts]
    assert names[0] == "connected basin: LB → its SB continuation"
    null = res.verdict("null: init H count = C ± 1 (ratio rule)")
    assert null["role"] == "null" and "expected to fail" in null["claim"]
    # the verdict follows the data: make the large batch flatter than the small one
    exp = EXPERIMENTS["small-vs-large-batch"]
    m = res.per_seed[0]
    fake = {
        **m,
        "matched": True,
        "large": {**m["large"], "lambda_max": 0.5 * m["small"]["lambda_max"]},
    }
    out = summarise(exp, s, [0], [fake])
    assert out.verdict("large batch sharper at matched loss")["holds"] == 0
    fake["large"]["lambda_max"] = 2 * m["small"]["lambda_max"]
    assert (
        summarise(exp, s, [0], [fake]).verdict("large batch sharper at matched loss")["holds"] == 1
    )
    fake["matched"] = False
    assert (
        summarise(exp, s, [0], [fake]).verdict("large batch sharper at matched loss")["holds"] == 0
    )


@pytest.mark.regression  # empirical outcomes of the fast settings, seeds 0-2
def test_loss_and_activation_mse_gives_c_times_k():
    res = fast("loss-and-activation")
    assert res.settings["classes"] == 3 and res.settings["mse_target_loss"] == 1e-2
    assert res.verdict("relu + MSE: count = C·K")["holds"] == 3
    assert res.verdict("relu + MSE: count = C")["holds"] == 0
    assert all(m[f"{c}_reached_target"] for m in res.per_seed for c in ("relu_ce", "relu_mse"))


@pytest.mark.regression  # empirical outcomes of the fast settings, seeds 0-2
def test_data_vs_architecture_crossed_design():
    res = fast("data-vs-architecture")
    assert res.verdict("every cell at the loss target")["holds"] == 3
    assert res.verdict("near-zero share grows with width")["holds"] == 3
    for m in res.per_seed:
        assert len(m["cells"]) == 8
        assert all(c["final_loss"] <= res.settings["target_loss"] for c in m["cells"].values())
        # like with like: ONE data factor against width, each doubled (no max over factors)
        for f in ("classes", "separation"):
            ratio = abs(np.log(m[f"{f}_lambda_max_ratio"])) / abs(
                np.log(m["width_lambda_max_ratio"])
            )
            assert m[f"{f}_over_width_lambda_max"] == pytest.approx(ratio, rel=1e-12)
    s = res.settings
    for levels in ("class_levels", "separation_levels", "width_levels"):
        assert s[levels][1] == 2 * s[levels][0]
    exp = EXPERIMENTS["data-vs-architecture"]
    fake = dict(
        res.per_seed[0], separation_over_width_lambda_max=1.9, classes_over_width_lambda_max=5.0
    )
    out = summarise(exp, s, [0], [fake])
    assert out.verdict("λ_max moves more with separation than with width")["holds"] == 0
    assert out.verdict("λ_max moves more with the number of classes than with width")["holds"] == 1


def test_sample_size_spans_a_factor_ten():
    res = fast("sample-size")
    n = res.settings["sample_sizes"]
    assert n[-1] >= 10 * n[0]
    assert all(len(m["count"]) == len(n) for m in res.per_seed)


def test_null_helpers_keep_shapes_counts_and_the_real_loss():
    from hessref.experiments.baselines import NULL_BUDGET_FACTOR, null_budget, unstructured_data

    X = np.random.default_rng(0).normal(3.0, 2.0, (60, 5))
    y = np.repeat(np.arange(3), 20)
    Z, yz = unstructured_data(X, y, seed=1)
    assert Z.shape == X.shape and np.allclose(Z.mean(0), 0) and np.allclose(Z.std(0), 1)
    assert np.array_equal(np.bincount(yz), np.bincount(y)) and not np.array_equal(yz, y)
    Z2, yz2 = unstructured_data(X, y, seed=1)
    assert np.array_equal(Z, Z2) and np.array_equal(yz, yz2)
    # the null stops at the real run's loss, never below the target
    assert null_budget(200, 0.004, 1e-3) == {"steps": 200 * NULL_BUDGET_FACTOR, "stop_loss": 0.004}
    assert null_budget(200, 5e-4, 1e-3)["stop_loss"] == 1e-3


def test_shuffled_and_unstructured_nulls_train_to_the_real_loss():
    from hessref.experiments.common import MIXTURE_FAST, fit_and_count

    s = dict(MIXTURE_FAST, samples=60, input_dim=4, hidden=[6, 6], max_steps=400, top=20)
    out = fit_and_count(s, 0, 1, lambda m: None, shuffle_seed=2)
    for pre in ("shuffled_", "unstructured_"):
        target = max(out["final_loss"], s["target_loss"])
        assert out[f"{pre}reached"] == (out[f"{pre}final_loss"] <= target)
        assert out[f"{pre}steps"] <= 5 * s["max_steps"]
        assert out[f"{pre}reached"] or out[f"{pre}steps"] == 5 * s["max_steps"]
        assert f"{pre}count" in out and f"{pre}margin" in out
