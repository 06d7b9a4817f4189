"""Every counting rule side by side (hessref.experiments.counting) and the verdict labels.

The spectra are built by hand so the four rules DISAGREE and each expected count is
worked out in the comments (not read back from the implementation).
"""

import math

import numpy as np
import pytest

from hessref.experiments.counting import (
    RULES,
    count_all,
    count_is,
    count_labels,
    count_quantities,
    count_sensitivity,
    sensitivity_rows,
)
from hessref.experiments.stats import (
    majority_label,
    tagged_label,
    verdict_label,
    wilson_interval,
)

# λ (descending), top = 10 candidates:
#   ratios λ_i/λ_{i+1}: 2, 2.0408, 4.9, 1.0526, 1.0556, 1.0588, 1.0625, 1.0667, 1.0714
#     -> ratio count 3 (4.9), runner-up 10/4.9 = 2.0408, margin 4.9 / 2.0408 = 2.401
#   gaps λ_i − λ_{i+1}: 10, 5.1, 3.9, 0.05, ... -> gap count 1, margin 10 / 5.1 = 1.961
#   heuristic 0.25·λ_max = 5: {20, 10} -> 2
#   Tukey on log λ (np.percentile, linear): q1 = log 0.8 + 0.25 (log 0.85 − log 0.8) = −0.2080,
#     q3 = 0.75 · log 4.9 = 1.1919, fence exp(q3 + 3 (q3 − q1)) = exp(5.391) ≈ 219 -> 0
SPECTRUM = [20.0, 10.0, 4.9, 1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7]


def test_count_all_four_rules_disagree_as_hand_computed():
    c = count_all(SPECTRUM, target=3, top=10)
    assert (c.ratio.count, c.gap.count, c.threshold.count, c.tukey.count) == (3, 1, 2, 0)
    assert c.ratio.margin == pytest.approx(4.9 / (10 / 4.9), rel=1e-12)
    assert c.gap.margin == pytest.approx(10 / 5.1, rel=1e-12)
    assert c.threshold.cut == 5.0 and c.threshold.margin is None
    log_q1 = math.log(0.8) + 0.25 * (math.log(0.85) - math.log(0.8))
    log_q3 = 0.75 * math.log(4.9)
    assert c.tukey.cut == pytest.approx(math.exp(log_q3 + 3 * (log_q3 - log_q1)), rel=1e-12)
    assert [c.by_rule()[r].exact for r in RULES] == [True, False, False, False]
    assert [c.by_rule()[r].within_one for r in RULES] == [True, False, True, False]
    assert c.ratio_margin_ok and c.threshold_rule == "0.25·λ_max"
    assert not count_all(SPECTRUM, 3, top=10, margin=2.5).ratio_margin_ok  # 2.401 < 2.5
    assert count_all(SPECTRUM, 3, top=10, margin=2.4).ratio_margin_ok


def test_count_all_thresholds_and_target_change_the_answer():
    # absolute τ = 0.9: {20, 10, 4.9, 1, 0.95} -> 5; relative 0.1·20 = 2: {20, 10, 4.9} -> 3
    assert count_all(SPECTRUM, 3, top=10, absolute_threshold=0.9).threshold.count == 5
    c = count_all(SPECTRUM, 3, top=10, relative_threshold=0.1)
    assert c.threshold.count == 3 and c.threshold.exact
    # target 2: now the threshold count is exact and the ratio count only within ±1
    c2 = count_all(SPECTRUM, 2, top=10)
    assert c2.threshold.exact and not c2.ratio.exact and c2.ratio.within_one
    # top = 3 candidates: ratio over (20, 10, 4.9) -> 2.0408 at i = 2; Tukey needs ≥ 4
    c3 = count_all(SPECTRUM, 2, top=3)
    assert c3.ratio.count == 2 and c3.tukey.count is None and not c3.tukey.within_one


def test_count_all_when_rules_cannot_apply():
    c = count_all([1.0, -1.0, -2.0, -3.0], 1, top=4)
    assert c.ratio.count is None and not c.ratio_margin_ok and c.ratio.margin is None
    assert c.gap.count == 1 and c.threshold.count == 1  # gaps 2, 1, 1; λ > 0.25: {1}
    neg = count_all([-1.0, -2.0, -3.0], 1, top=3)
    assert neg.threshold.count is None and neg.ratio.count is None
    with pytest.raises(ValueError, match="target"):
        count_all(SPECTRUM, -1)
    with pytest.raises(ValueError, match="margin"):
        count_all(SPECTRUM, 3, margin=0.5)
    with pytest.raises(ValueError, match="relative_threshold"):
        count_all(SPECTRUM, 3, relative_threshold=1.5)


def test_count_quantities_names_and_rules_reading_them():
    q = count_quantities(count_all(SPECTRUM, 3, top=10), "H_")
    assert (q["H_count_ratio"], q["H_count_gap"], q["H_count_threshold"], q["H_count_tukey"]) == (
        3, 1, 2, 0)  # fmt: skip
    assert q["H_exact_ratio"] and q["H_within1_threshold"] and not q["H_within1_gap"]
    assert q["H_ratio_margin"] == pytest.approx(2.401, abs=1e-3) and q["H_ratio_margin_ok"]
    assert q["H_count_target"] == 3 and q["H_cut_threshold"] == 5.0
    assert set(count_labels("H_", "H")) <= set(q)
    assert count_is("H_", "ratio", 3, margin=2.4).holds(q)
    assert not count_is("H_", "ratio", 3, margin=2.5).holds(q)
    assert not count_is("H_", "threshold", 3).holds(q)
    assert count_is("H_", "threshold", 3, within=1).holds(q)
    assert not count_is("H_", "tukey", 3, within=1).holds(q)
    assert count_is("H_", "gap", 1).statement({"H_count_gap": "the gap count"}) == (
        "the gap count = 1"
    )
    with pytest.raises(ValueError, match="margin"):
        count_is("H_", "gap", 1, margin=1.25)
    with pytest.raises(ValueError, match="rule"):
        count_is("H_", "elbow", 1)


def test_sensitivity_over_margins_and_thresholds():
    grids = {"margins": (1.0, 2.0, 2.5), "relative_thresholds": (0.1, 0.25, 0.5)}
    s = count_sensitivity(SPECTRUM, 3, top=10, **grids)
    assert s.ratio_exact == [True, True, False]  # margin 2.401
    assert s.ratio_within_one == [True, True, False]
    assert s.threshold_counts == [3, 2, 1]  # τ = 2, 5, 10 (λ > 10 is only 20)
    other = count_sensitivity(np.array(SPECTRUM), 2, top=10, **grids)  # same λ, target 2
    rows = sensitivity_rows([s, other])
    by = {r["setting"]: r for r in rows}
    assert by["ratio rule, margin ≥ 2"]["exact"]["holds"] == 1  # target 3 yes, target 2 no
    assert by["ratio rule, margin ≥ 2"]["within_one"]["holds"] == 2
    assert by["threshold 0.25·λ_max"]["exact"]["holds"] == 1  # count 2: target 2 only
    assert by["threshold 0.5·λ_max"]["within_one"]["holds"] == 1  # count 1 vs 3, 2
    assert by["threshold 0.5·λ_max"]["exact"]["seeds"] == 2
    assert sensitivity_rows([]) == []


# ------------------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    ("k", "n", "label"),
    [
        (9, 10, "holds"),  # low 0.596
        (8, 10, "undecided"),  # low 0.490: a threshold of 0.45 would say holds
        (15, 20, "holds"),  # low 0.531
        (14, 20, "undecided"),  # low 0.481
        (6, 20, "undecided"),  # high 0.519
        (5, 20, "fails"),  # high 0.469
        (1, 10, "fails"),  # high 0.404
        (2, 10, "undecided"),  # high 0.510: a threshold of 0.55 would say fails
        (3, 3, "undecided"),  # low 0.439: three seeds never decide
        (2, 2, "undecided"),
    ],
)
def test_majority_label_at_the_boundaries(k, n, label):
    lo, hi = wilson_interval(k, n)
    assert majority_label(lo, hi) == label


def test_majority_label_is_strict_at_one_half():
    assert majority_label(0.5, 0.9) == "undecided" and majority_label(0.1, 0.5) == "undecided"
    assert majority_label(0.5000001, 0.9) == "holds" and majority_label(0.1, 0.4999999) == "fails"


def _entry(k, n, role):
    lo, hi = wilson_interval(k, n)
    return {"holds": k, "seeds": n, "low": lo, "high": hi, "role": role}


def test_labels_by_role():
    assert verdict_label(_entry(2, 2, "identity")) == "holds at every seed"  # not "undecided"
    assert verdict_label(_entry(19, 20, "identity")) == "fails at 1 of 20 seeds"  # not "holds"
    assert verdict_label(_entry(0, 10, "null")) == "fails, as expected"
    assert verdict_label(_entry(9, 10, "null")) == "holds: the null contains signal"
    assert verdict_label(_entry(5, 10, "null")) == "undecided"
    assert verdict_label(_entry(9, 10, "claim")) == "holds"
    assert verdict_label({"holds": 9, "seeds": 10, "low": 0.6, "high": 0.98}) == "holds"
    assert tagged_label(_entry(0, 10, "null")) == "null (expected to fail): fails, as expected"
    assert tagged_label(_entry(2, 2, "identity")) == "exact check: holds at every seed"
    assert tagged_label(_entry(9, 10, "claim")) == "holds"
