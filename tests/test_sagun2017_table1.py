"""sagun2017-table1: the paper's Table 1 as encoded, the counters, the fast run and its printout."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hessref as hr
from hessref.cli import main
from hessref.experiments import run_experiment
from hessref.experiments import sagun2017_table1 as t1

# Table 1 of arXiv:1706.04454 v3 (App. A) transcribed as printed, independently of the
# module's TABLE1 (alg, act | cov | k | P | gap | ratio | heur | cutoff; "–" = not printed).
PRINTED = """
| GD tanh | 1 | 2 | 4022 | 2 | 3 | – | – |
| GD tanh | 1 | 5 | 4115 | 2 | 17 | – | – |
| GD tanh | 1 | 10 | 4270 | 2 | 4 | – | – |
| GD tanh | 1 | 20 | 4580 | 3 | 4 | – | – |
| GD ReLU | 1 | 2 | 4022 | 3 | 4 | 2 | 0.003 |
| GD ReLU | 1 | 5 | 4115 | 6 | 7 | 5 | 0.003 |
| GD ReLU | 1 | 10 | 4270 | 11 | 12 | 10 | 0.003 |
| GD ReLU | 1 | 20 | 4580 | 4 | 21 | 21 | 0.003 |
| GD ReLU | 1 | 50 | 5510 | 50 | 51 | 49 | 0.003 |
| SGD ReLU | 1 | 2 | 4022 | 3 | 4 | 2 | 0.002 |
| SGD ReLU | 1 | 5 | 4115 | 6 | 7 | 7 | 0.002 |
| SGD ReLU | 1 | 10 | 4270 | 2 | 14 | 15 | 0.002 |
| SGD ReLU | 1 | 20 | 4580 | 2 | 3 | 21 | 0.002 |
| SGD ReLU | 1 | 50 | 5510 | 50 | 51 | 49 | 0.002 |
| SGD ReLU | 10 | 2 | 4022 | 2 | 4 | 2 | 0.015 |
| SGD ReLU | 10 | 5 | 4115 | 5 | 6 | 5 | 0.015 |
| SGD ReLU | 10 | 10 | 4270 | 2 | 11 | 9 | 0.015 |
| SGD ReLU | 10 | 20 | 4580 | 20 | 21 | 19 | 0.015 |
| SGD ReLU | 10 | 50 | 5510 | 50 | 51 | 49 | 0.005 |
"""


def _printed_rows() -> list[tuple]:
    rows = []
    for line in PRINTED.strip().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        alg, act = cells[0].split()
        heur = None if cells[6] == "–" else int(cells[6])
        cutoff = None if cells[7] == "–" else float(cells[7])
        rows.append((alg, act, *map(int, cells[1:6]), heur, cutoff))
    return rows


def test_table1_as_encoded_matches_the_printed_table():
    encoded = [
        (r.algorithm, r.activation, r.cov, r.k, r.params, r.gap, r.ratio, r.heur, r.cutoff)
        for r in t1.TABLE1
    ]
    assert encoded == _printed_rows()
    assert len(t1.TABLE1) == 19 and len(t1.ROWS) == 19  # keys are unique


@pytest.mark.parametrize("row", t1.TABLE1, ids=lambda r: r.key)
def test_parameter_count_is_3960_plus_31k_and_the_networks(row):
    assert row.params == 3960 + 31 * row.k
    assert hr.MLP([100, 30, 30, row.k], "relu").num_params == row.params


def test_counters_on_a_spectrum_where_they_disagree():
    # gaps 6, 1, 2, 0.5, 0.05, … → gap rule 1; ratios 2.5, 1.33, 3, 2, 1.1, … → ratio rule 3;
    # relative cutoff 0.25·10 = 2.5 → 3 above; the paper-style cutoff 0.9 → 4 above
    lam = np.array([10.0, 4.0, 3.0, 1.0, 0.5, 0.45, 0.4, 0.35])
    row = t1.Row("GD", "ReLU", 1, 3, 4053, 0, 0, 0, 0.9)
    assert t1.count_row(lam, row, 0.25) == {"gap": 1, "ratio": 3, "heur": 3, "cutoff": 4}
    tanh = t1.Row("GD", "tanh", 1, 3, 4053, 0, 0, None, None)
    assert t1.count_row(lam, tanh, 0.5)["cutoff"] is None
    assert t1.count_row(lam, tanh, 0.5)["heur"] == 1  # 0.5·10 = 5: only λ_1 above
    # a spectrum without two positive candidates: the ratio rule does not apply
    assert t1.count_row(np.array([1.0, -1.0, -2.0]), tanh, 0.25)["ratio"] is None


def test_arpack_top_spectrum_agrees_with_dense_eigh():
    rng = np.random.default_rng(3)
    model = hr.MLP([6, 5, 4, 3], "relu")
    X, y = rng.standard_normal((20, 6)), rng.integers(0, 3, 20)
    H = hr.hessian(model, model.init(1), X, y, loss="cross_entropy")
    dense, r0 = t1.top_spectrum(H, 12, "dense", 0)
    arpack, r1 = t1.top_spectrum(H, 12, "arpack", 0)
    assert r0 == 0.0 and r1 <= 1e-8 * abs(dense[0])
    np.testing.assert_allclose(arpack, dense, rtol=0, atol=1e-10 * abs(dense[0]))
    assert np.all(np.diff(arpack) <= 0)


def test_within_one_rules_decide_at_the_boundaries():
    s = t1._FULL
    rules = {v.name: v for v in t1._rules(s)}
    # 19 rows × (gap, ratio) + 15 ReLU rows × (heur, cutoff): tanh rows print no heuristic
    assert len(rules) == 19 * 2 + 15 * 2
    v = rules["GD ReLU cov 1 k=10 · ratio: paper 12 (off)"]
    assert v.source == t1.SOURCE and v.role == "claim" and "primary" in v.claim
    key = "gd_relu_cov1_k10_ratio"
    assert [v.rule.holds({key: c}) for c in (8, 9, 10, 11, 12)] == [False, True, True, True, False]
    assert not v.rule.holds({key: None})
    assert "primary" not in rules["GD ReLU cov 1 k=10 · gap: paper 11 (within ±1)"].claim


def test_unknown_row_is_a_clear_error():
    with pytest.raises(ValueError, match="rows: unknown Table 1 rows"):
        t1.rows_of({"rows": ["gd_relu_cov1_k3"]})


@pytest.fixture(scope="module")
def fast_result():
    return run_experiment("sagun2017-table1", fast=True, seeds=[0, 1])


def test_fast_run_reports_every_counter_next_to_the_paper(fast_result):
    res = fast_result
    rows = [t1.ROWS[k] for k in res.settings["rows"]]
    for row in rows:
        for counter in t1.COUNTERS:
            paper = row.paper_count(counter)
            if paper is None:
                continue
            v = res.verdict(t1._verdict_name(row, counter))
            assert f"paper {paper}" in v["name"] and v["paper_value"].startswith(str(paper))
            counts = [m[f"{row.key}_{counter}"] for m in res.per_seed]
            assert v["outcomes"] == [c is not None and abs(c - row.k) <= 1 for c in counts]
            assert v["holds"] == sum(v["outcomes"]) and 0 <= v["low"] <= v["rate"] <= v["high"]


def test_fast_run_is_strict_json_and_reproducible(fast_result):
    def reject(constant):
        raise ValueError(f"non-strict JSON constant {constant}")

    json.loads(fast_result.to_json(), parse_constant=reject)
    again = run_experiment("sagun2017-table1", fast=True, seeds=[1])
    assert again.per_seed[0] == fast_result.per_seed[1]


def test_reproduce_prints_the_table(tmp_path, capsys):
    out = tmp_path / "t1"
    argv = ["reproduce", "sagun2017-table1", "--fast", "--seeds", "0", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "GD ReLU cov 1 k=5 · ratio: paper 7 (off)" in text
    assert "SGD ReLU cov 10 k=5 · cutoff: paper 5 (within ±1)" in text
    assert (out / "summary.json").is_file()
    assert (out / "sagun2017-table1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
