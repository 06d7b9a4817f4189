"""The multi-seed framework: rules and their statements, Wilson intervals, seeds parsing,
settings schema, registry, run/summarise, JSON round trip, and verdicts that follow data.

A toy experiment (no network: it draws numbers from the seed) keeps these tests instant.
"""

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from hessref.experiments.baselines import outlier_count, shuffled_labels
from hessref.experiments.framework import (
    Experiment,
    ExperimentResult,
    derive_seeds,
    get_experiment,
    register,
    registry,
    run_experiment,
    summarise,
    validate_settings,
)
from hessref.experiments.rules import AllOf, Compare, Monotone, Ref, Verdict
from hessref.experiments.stats import parse_seeds, rate_summary, spread_summary, wilson_interval
from hessref.spectrum.statistics import ZERO_RTOL, spectrum_statistics


def _toy_measure(settings, seed, progress):
    progress("drawing")
    rng = np.random.default_rng(derive_seeds(seed, "draw")["draw"])
    x = float(rng.normal(settings["centre"], 1.0))
    return {"x": x, "count": int(seed % 3), "margin": 1.0 + seed / 4, "sweep": [1.0, 2.0 + x]}


def _toy_rules(settings):
    return [
        Verdict("x positive", Compare("x", ">", 0.0), claim="x is positive"),
        Verdict(
            "count",
            AllOf(Compare("count", "==", settings["target"]), Compare("margin", ">=", 1.25)),
            claim="the count is the target",
        ),
        Verdict("sweep", Monotone("sweep", along="the sweep"), claim="the sweep increases"),
    ]


TOY = Experiment(
    name="toy-framework-test",
    paper="none",
    claim="x is positive",
    fast={"centre": 1.0, "target": 1},
    full={"centre": 2.0, "target": 1},
    measure=_toy_measure,
    rules=_toy_rules,
    quantities={"x": "the toy number x", "count": "the count", "margin": "the margin"},
    setting_text=lambda s: f"x ~ N({s['centre']}, 1)",
)
register(TOY)


def test_wilson_interval_known_values():
    # k = n = 10: lower bound n/(n + z²) = 0.7225
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + 1.959963984540054**2), rel=1e-12)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # textbook value
    assert wilson_interval(0, 3)[0] == 0.0
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(4, 3)
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(0, 0)
    r = rate_summary([True, False, True, True])
    assert (r["holds"], r["seeds"], r["rate"]) == (3, 4, 0.75) and r["low"] < 0.75 < r["high"]


def test_spread_summary_ignores_nan():
    s = spread_summary([1.0, 2.0, 3.0, float("nan"), 4.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.5, 1.0, 4.0, 4)
    assert math.isnan(spread_summary([float("nan")])["median"])


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5") == [5]
    assert parse_seeds("0-1,7, 9") == [0, 1, 7, 9]
    for bad in ("3-1", "a", "1,1", "-2", "0-2,2", ""):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_rule_statements_are_generated_from_parameters():
    labels = {"n": "the count", "m": "the margin"}
    r = AllOf(Compare("n", "==", 5), Compare("m", ">=", 1.25))
    assert r.statement(labels) == "the count = 5 and the margin ≥ 1.25"
    assert AllOf(Compare("n", "==", 7), Compare("m", ">=", 2.0)).statement(labels) == (
        "the count = 7 and the margin ≥ 2"
    )
    assert Compare("a", ">", Ref("b", 1.5)).statement() == "`a` > 1.5× `b`"
    assert Compare("a", ">", Ref("b", 1.5)).holds({"a": 3.1, "b": 2.0})
    assert not Compare("a", ">", Ref("b", 1.5)).holds({"a": 2.9, "b": 2.0})
    assert "decreases" in Monotone("v", increasing=False).statement()
    with pytest.raises(ValueError, match="op"):
        Compare("a", "=>", 1)


def test_rules_fail_on_missing_or_nan():
    assert not Compare("a", ">", 0).holds({})
    assert not Compare("a", ">", 0).holds({"a": float("nan")})
    assert not Compare("a", ">", 0).holds({"a": None})
    assert not Monotone("v").holds({"v": [1.0, float("nan"), 3.0]})
    assert Monotone("v", min_ratio=2.0).holds({"v": [1.0, 2.0, 4.5]})
    assert not Monotone("v", min_ratio=2.0).holds({"v": [1.0, 2.0, 3.0]})


def test_settings_schema_is_validated():
    with pytest.raises(ValueError, match="same keys"):
        validate_settings("x", {"a": 1}, {"b": 1})
    with pytest.raises(ValueError, match="'a' is number in fast but str"):
        validate_settings("x", {"a": 1}, {"a": "1"})
    with pytest.raises(ValueError, match="already registered"):
        register(Experiment(**{**TOY.__dict__}))
    s = TOY.settings(True, {"centre": 3})
    assert s == {"centre": 3, "target": 1, "fast": True}
    with pytest.raises(ValueError, match="no setting 'nope'"):
        TOY.settings(True, {"nope": 1})
    with pytest.raises(ValueError, match="expects a number"):
        TOY.settings(True, {"centre": "big"})
    assert "toy-framework-test" in registry() and get_experiment("toy-framework-test") is TOY
    with pytest.raises(ValueError, match="unknown experiment 'nope'"):
        get_experiment("nope")


def test_run_summarise_and_json_round_trip(tmp_path):
    msgs = []
    res = run_experiment("toy-framework-test", fast=True, progress=msgs.append)
    assert res.seeds == [0, 1, 2] and res.mode == "fast" and len(res.per_seed) == 3
    assert len(msgs) == 3 and all("seed" in m for m in msgs)
    v = res.verdict("count")
    assert v["outcomes"] == [False, True, False]  # count == 1 only at seed 1 (margin 1.25)
    v2 = run_experiment("toy-framework-test", fast=True, seeds=[1, 4]).verdict("count")
    assert (
        v2["outcomes"] == [True, True] and v2["statement"] == "the count = 1 and the margin ≥ 1.25"
    )
    assert res.numbers["x"]["n"] == 3 and "sweep" not in res.numbers
    back = ExperimentResult.from_json(res.to_json())
    assert back == res and json.loads(res.to_json())["name"] == "toy-framework-test"
    res.save(tmp_path / "r.json")
    assert ExperimentResult.load(tmp_path / "r.json") == res
    full = run_experiment("toy-framework-test", seeds=range(10))
    assert full.mode == "full" and len(full.seeds) == 10
    again = run_experiment("toy-framework-test", fast=True)
    assert again.per_seed == res.per_seed  # same seeds => same numbers


def test_default_seed_counts_and_single_seed_call():
    assert TOY.default_seeds == (3, 10)
    assert len(run_experiment("toy-framework-test").seeds) == 10
    one = TOY(fast=True, rng=4)
    assert one.seeds == [4]
    with pytest.raises(ValueError, match="seeds"):
        run_experiment("toy-framework-test", seeds=[1, 1])
    with pytest.raises(ValueError, match="either seeds or rng"):
        run_experiment("toy-framework-test", seeds=[1], rng=2)


def test_workers_give_the_same_result():
    a = run_experiment("toy-framework-test", fast=True, seeds=[0, 1, 2, 3])
    b = run_experiment("toy-framework-test", fast=True, seeds=[0, 1, 2, 3], workers=2)
    assert a.per_seed == b.per_seed and a.verdicts == b.verdicts


def test_verdict_strings_change_when_the_data_change():
    res = run_experiment("toy-framework-test", fast=True, seeds=[0, 1])
    settings = dict(res.settings, target=0)
    flipped = [dict(m, x=-abs(m["x"])) for m in res.per_seed]
    other = summarise(TOY, settings, res.seeds, flipped)
    assert res.summary() != other.summary()
    assert other.verdict("x positive")["holds"] == 0 and res.verdict("x positive")["holds"] == 2
    assert "holds in 0/2 seeds" in other.summary() and "holds in 2/2 seeds" in res.summary()
    assert "the count = 0" in other.summary() and "the count = 1" in res.summary()


def test_spectrum_statistics_one_tolerance():
    lam = np.array([4.0, 1.0, 3e-10, -3e-10, 5e-11, -2.0])
    s = spectrum_statistics(lam, top=2)
    tau = ZERO_RTOL * 4.0
    assert s["zero_tolerance"] == tau
    assert (s["num_positive"], s["num_zero"], s["num_negative"]) == (2, 3, 1)
    assert s["fraction_negative"] == 1 / 6 and s["top"] == [4.0, 1.0]
    assert s["fraction_near_zero"] == 3 / 6 and s["near_zero_cutoff"] == 4e-3
    with pytest.raises(ValueError, match="finite"):
        spectrum_statistics([1.0, np.nan])
    with pytest.raises(ValueError, match="near_zero"):
        spectrum_statistics([1.0], near_zero=2.0)


def test_outlier_count_margin_and_shuffle():
    lam = [100.0, 90.0, 80.0, 1.0, 0.9, 0.8, 0.7]
    c = outlier_count(lam, top=7)
    assert c["count"] == 3 and c["score"] == 80.0
    assert c["runner_up"] == pytest.approx(0.8 / 0.7) and c["margin"] == pytest.approx(70.0)
    flat = outlier_count([1.0, 1.0, 1.0], top=3)
    assert flat["margin"] == pytest.approx(1.0)
    assert outlier_count([1.0, -1.0, -2.0], top=3)["count"] is None
    y = np.repeat(np.arange(3), 5)
    ys = shuffled_labels(y, 0)
    assert np.array_equal(np.sort(ys), y) and not np.array_equal(ys, y)
    assert np.array_equal(ys, shuffled_labels(y, 0))


def test_null_baselines_apply_the_rule_at_init_and_on_shuffled_labels():
    from hessref.experiments.baselines import null_baselines

    y = np.repeat(np.arange(3), 4)
    seen = []

    def eigenvalues_at(theta, labels):
        seen.append((theta.copy(), labels.copy()))
        # a spectrum with as many outliers as distinct labels in the first 4 positions
        k = len(set(labels[:4].tolist()))
        return np.r_[np.full(k, 10.0) * np.arange(k, 0, -1), np.linspace(1.0, 0.5, 10)]

    def train_to(labels):
        return np.ones(2), 0.25

    out = null_baselines(eigenvalues_at, train_to, np.zeros(2), y, shuffle_seed=0, top=12)
    assert out["init_count"] == 1 and out["shuffled_final_loss"] == 0.25
    assert np.array_equal(seen[0][0], np.zeros(2)) and np.array_equal(seen[0][1], y)
    assert np.array_equal(seen[1][0], np.ones(2))
    assert np.array_equal(seen[1][1], shuffled_labels(y, 0))  # the seeded permutation
    assert out["shuffled_count"] == len(set(shuffled_labels(y, 0)[:4].tolist()))
    assert out["init_margin"] > 1 and "shuffled_margin" in out


def test_missing_values_are_not_counted_in_spreads():
    per_seed = [{"x": 1.0, "count": None, "margin": 2.0}, {"x": 3.0, "count": 4, "margin": 1.0}]
    res = summarise(TOY, TOY.settings(True), [0, 1], per_seed)
    assert res.numbers["count"]["n"] == 1 and res.numbers["count"]["median"] == 4.0
    assert res.numbers["x"]["n"] == 2 and res.verdict("count")["outcomes"] == [False, False]


def test_numpy_values_become_plain_json():
    per_seed = [{"x": np.float64(1.5), "count": np.int64(1), "margin": 2.0, "v": np.ones(2)}]
    res = summarise(TOY, TOY.settings(True), [0], per_seed)
    assert type(res.per_seed[0]["x"]) is float and type(res.per_seed[0]["count"]) is int
    assert res.per_seed[0]["v"] == [1.0, 1.0]
    assert ExperimentResult.from_json(res.to_json()) == res


# ------------------------------------------------------------------ the 0.3 framework API
def _raise_on_constant(name):
    raise ValueError(f"non-strict JSON constant {name}")


def test_verdict_validates_claim_source_and_role():
    rule = Compare("x", ">", 0)
    v = Verdict("x > 0", rule, "x is positive")  # the 0.2 positional use
    assert (v.claim, v.source, v.role) == ("x is positive", "", "claim")
    v = Verdict("x > 0", rule, claim="x is positive", source="Paper §1", role="identity")
    assert (v.source, v.role) == ("Paper §1", "identity")
    with pytest.raises(ValueError, match="claim"):
        Verdict("x > 0", rule, "  ")
    with pytest.raises(ValueError, match="claim"):
        Verdict("x > 0", rule, claim=None)
    with pytest.raises(ValueError, match="role"):
        Verdict("x > 0", rule, "x is positive", role="fact")
    with pytest.raises(ValueError, match="source"):
        Verdict("x > 0", rule, "x is positive", source=3)
    with pytest.raises(ValueError, match="name"):
        Verdict("", rule, "x is positive")
    with pytest.raises(TypeError, match="rule"):
        Verdict("x > 0", "x > 0", "x is positive")
    with pytest.warns(DeprecationWarning, match="claim"):
        old = Verdict("x > 0", rule)
    assert old.claim == ""
    with pytest.raises(AttributeError):
        v.claim = "other"  # frozen


def test_verdict_entries_carry_claim_source_role_and_label():
    res = run_experiment("toy-framework-test", fast=True, seeds=[0, 1])
    v = res.verdict("x positive")
    assert (v["claim"], v["source"], v["role"]) == ("x is positive", "", "claim")
    assert v["label"] == "undecided"  # 2/2 seeds: Wilson low 0.34 < 1/2


@dataclass(frozen=True)
class _Inner:
    ratio: int
    margin: float


@dataclass(frozen=True)
class _Seed:
    x: float
    counts: _Inner
    sweep: list


def _typed_measure(settings, seed, progress):
    return _Seed(x=float(seed) - 0.5, counts=_Inner(ratio=seed, margin=float("nan")),
                 sweep=[1.0, 2.0 + seed])  # fmt: skip


TYPED = register(
    Experiment(
        name="toy-typed-test", paper="none", claim="typed results", fast={"t": 1}, full={"t": 1},
        measure=_typed_measure,
        rules=lambda s: [
            Verdict("x > 0", Compare("x", ">", 0.0), "x is positive"),
            Verdict("ratio = t", Compare("counts.ratio", "==", s["t"]), "the ratio count is t",
                    role="identity"),
            Verdict("margin ok", Compare("counts.margin", ">=", 1.0), "a margin", role="null"),
        ],
        quantities={"x": "x", "counts.ratio": "the ratio count"},
    )
)  # fmt: skip


def test_typed_results_are_serialised_and_rules_read_fields_by_name():
    res = run_experiment("toy-typed-test", fast=True, seeds=[0, 1, 2, 3])
    seed1 = res.per_seed[1]
    assert set(seed1) == {"x", "counts", "sweep"} and seed1["sweep"] == [1.0, 3.0]
    assert seed1["counts"]["ratio"] == 1 and seed1["x"] == 0.5
    assert math.isnan(seed1["counts"]["margin"])  # in memory; null in JSON
    assert res.verdict("x > 0")["outcomes"] == [False, True, True, True]
    assert res.verdict("ratio = t")["outcomes"] == [False, True, False, False]
    assert res.verdict("ratio = t")["label"] == "fails at 3 of 4 seeds"
    assert res.verdict("margin ok")["outcomes"] == [False] * 4  # NaN never passes
    assert res.verdict("margin ok")["label"] == "fails, as expected"  # 0/4: high 0.49
    assert "the ratio count = 1" in res.verdict("ratio = t")["statement"]
    with pytest.raises(TypeError, match="measure"):
        summarise(TYPED, TYPED.settings(True), [0], [[1, 2]])


def test_json_is_strict_nan_and_infinity_become_null():
    res = run_experiment("toy-typed-test", fast=True, seeds=[0, 1])
    res.per_seed[0]["inf"] = float("inf")
    text = res.to_json()
    data = json.loads(text, parse_constant=_raise_on_constant)  # rejects NaN/Infinity
    assert data["per_seed"][0]["counts"]["margin"] is None and data["per_seed"][0]["inf"] is None
    assert "NaN" not in text and "Infinity" not in text
    back = ExperimentResult.from_json(text)
    assert back.per_seed[0]["counts"]["margin"] is None
    # an all-missing quantity has NaN spreads: written as null, not NaN
    blank = summarise(TOY, TOY.settings(True), [0], [{"x": None, "count": 1, "margin": 2.0}])
    json.loads(blank.to_json(), parse_constant=_raise_on_constant)
    with pytest.raises(ValueError, match="non-strict"):  # the check itself can fail
        json.loads('{"a": NaN}', parse_constant=_raise_on_constant)


def test_strict_and_dumps():
    from hessref.experiments.result import dumps, strict

    assert strict({"a": [1.0, float("-inf"), {"b": float("nan")}], "c": "x"}) == {
        "a": [1.0, None, {"b": None}], "c": "x"}  # fmt: skip
    assert dumps(np.array([1.0, np.nan])) == "[1.0, null]"
    assert dumps(_Inner(ratio=np.int64(2), margin=np.float64(np.inf))) == (
        '{"ratio": 2, "margin": null}'
    )
