"""Every outlier-counting rule side by side, as the papers report them.

Sagun et al. 2017 (App. A, Table 1) count the outliers of one spectrum three ways — the
largest gap, the largest ratio and a heuristic threshold ("the elbow in the scree
plot") — and the three disagree. An experiment that reports one rule can pass or fail
by the choice of rule, so every count here is reported by all of them:

``ratio``
    argmax_i λ_i/λ_{i+1} over the positive candidates (the largest gap of log λ), with
    its margin = winning ratio / runner-up ratio (a flat spectrum gives ≈ 1).
``gap``
    argmax_i (λ_i − λ_{i+1}), with its margin = winning gap / runner-up gap.
``threshold``
    Sagun's heuristic: #{λ_i > τ} with τ = ``relative_threshold``·λ_max, or the given
    ``absolute_threshold`` (the paper's cutoffs are 0.002–0.015).
``tukey``
    #{λ_i > exp(q3 + 3·IQR)} of log λ over the positive candidates (a bulk-edge fence).

Each count is compared with a target (usually C) as "= target" and "within ±1".
All rules are those of :func:`hessref.spectrum.count_outliers`; nothing is reimplemented.

>>> lam = [100.0, 50.0, 10.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
>>> c = count_all(lam, target=3, top=9)
>>> c.ratio.count, c.gap.count, c.threshold.count, c.ratio.margin
(3, 1, 2, 2.0)
>>> c.ratio.exact, c.gap.within_one, c.threshold.within_one
(True, False, True)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hessref import spectrum
from hessref.experiments.rules import AllOf, Compare, Rule
from hessref.experiments.stats import rate_summary

#: The counting rules, in the order tables show them.
RULES = ("ratio", "gap", "threshold", "tukey")

#: What each rule is, for table headers and labels.
RULE_TEXT = {
    "ratio": "largest ratio λ_i/λ_(i+1)",
    "gap": "largest gap λ_i − λ_(i+1)",
    "threshold": "heuristic threshold",
    "tukey": "Tukey fence on log λ",
}


@dataclass(frozen=True)
class RuleCount:
    """One rule's count of a spectrum, compared with a target.

    Attributes
    ----------
    rule : {"ratio", "gap", "threshold", "tukey"}
    count : int or None
        None when the rule cannot be applied (e.g. < 2 positive candidates for "ratio").
    exact : bool
        ``count == target``.
    within_one : bool
        ``|count − target| ≤ 1``.
    margin : float or None
        Winning score / runner-up score ("ratio", "gap"); None for threshold rules.
    cut : float or None
        The value separating the outliers from the rest.
    """

    rule: str
    count: int | None
    exact: bool
    within_one: bool
    margin: float | None
    cut: float | None


@dataclass(frozen=True)
class OutlierCounts:
    """The four counts of one spectrum (:func:`count_all`).

    Attributes
    ----------
    target : int
        What the counts are compared with (e.g. the number of classes C).
    ratio, gap, threshold, tukey : RuleCount
    margin_required : float
        The margin the ratio count needs to be called a real group.
    ratio_margin_ok : bool
        ``ratio.margin ≥ margin_required``.
    threshold_rule : str
        How the heuristic threshold was set (e.g. ``"0.25·λ_max"`` or ``"0.003"``).
    """

    target: int
    ratio: RuleCount
    gap: RuleCount
    threshold: RuleCount
    tukey: RuleCount
    margin_required: float
    ratio_margin_ok: bool
    threshold_rule: str

    def by_rule(self) -> dict[str, RuleCount]:
        """The four :class:`RuleCount` by rule name, in :data:`RULES` order."""
        return {r: getattr(self, r) for r in RULES}


def _finite(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _rule_count(lam: np.ndarray, rule: str, top: int, target: int, cut: float | None):
    """One :class:`RuleCount` from :func:`hessref.spectrum.count_outliers`."""
    kind = "threshold" if rule == "tukey" else rule
    try:
        c = spectrum.count_outliers(lam, rule=kind, top=top, threshold=cut)
    except ValueError:  # the rule does not apply to this spectrum: no count
        return RuleCount(rule, None, False, False, None, None)
    margin = None
    runner = c.details.get("runner_up_score")
    if rule in ("ratio", "gap") and runner is not None and runner > 0:
        margin = _finite(c.details["score"] / runner)
    n = int(c.count)
    return RuleCount(rule, n, n == target, abs(n - target) <= 1, margin, _finite(c.threshold))


def count_all(
    eigenvalues: ArrayLike,
    target: int,
    *,
    top: int = 60,
    margin: float = 1.25,
    relative_threshold: float = 0.25,
    absolute_threshold: float | None = None,
) -> OutlierCounts:
    """Count the outliers of one spectrum by every rule (module docstring), against ``target``.

    Parameters
    ----------
    eigenvalues : array_like (P,)
        The spectrum (any order).
    target : int
        The count the claim predicts (e.g. C).
    top : int
        Candidates: the ``top`` largest eigenvalues (every rule).
    margin : float
        Margin the ratio count needs (``ratio_margin_ok``).
    relative_threshold : float
        Heuristic threshold τ = relative_threshold·λ_max (used unless
        ``absolute_threshold`` is given).
    absolute_threshold : float, optional
        A fixed τ, as in Sagun et al.'s Table 1.

    Returns
    -------
    OutlierCounts
    """
    lam = -np.sort(-np.asarray(eigenvalues, dtype=np.float64).ravel())
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target < 0:
        raise ValueError(f"target: expected a non-negative integer, got {target!r}")
    if not (isinstance(margin, (int, float)) and margin >= 1):
        raise ValueError(f"margin: expected a number ≥ 1 (winning/runner-up ratio), got {margin!r}")
    if absolute_threshold is None:
        if not 0 < relative_threshold < 1:
            raise ValueError(
                f"relative_threshold: expected a number in (0, 1), got {relative_threshold!r}"
            )
        tau = relative_threshold * lam[0] if lam.size and lam[0] > 0 else None
        how = f"{relative_threshold:g}·λ_max"
    else:
        tau, how = float(absolute_threshold), f"{absolute_threshold:g}"
    target = int(target)
    counts = {r: _rule_count(lam, r, top, target, None) for r in ("ratio", "gap", "tukey")}
    if tau is None:  # λ_max ≤ 0: no positive outlier can exist above a relative cut
        counts["threshold"] = RuleCount("threshold", None, False, False, None, None)
    else:
        counts["threshold"] = _rule_count(lam, "threshold", top, target, tau)
    ok = counts["ratio"].margin is not None and counts["ratio"].margin >= margin
    return OutlierCounts(
        target,
        **counts,
        margin_required=float(margin),
        ratio_margin_ok=bool(ok),
        threshold_rule=how,
    )


def count_quantities(counts: OutlierCounts, prefix: str = "") -> dict[str, Any]:
    """Flatten :class:`OutlierCounts` into measured quantities with stable names.

    Keys (each with ``prefix``): ``count_<rule>``, ``exact_<rule>``, ``within1_<rule>``
    for every rule in :data:`RULES`; ``ratio_margin``, ``gap_margin``,
    ``ratio_margin_ok``, ``cut_threshold``, ``cut_tukey`` and ``count_target``.

    >>> q = count_quantities(count_all([9.0, 4.0, 1.0, 0.9, 0.8, 0.7], 2, top=6), "H_")
    >>> q["H_count_ratio"], q["H_exact_gap"], q["H_within1_gap"], q["H_count_target"]
    (2, False, True, 2)
    """
    out: dict[str, Any] = {}
    for rule, c in counts.by_rule().items():
        out[f"{prefix}count_{rule}"] = c.count
        out[f"{prefix}exact_{rule}"] = c.exact
        out[f"{prefix}within1_{rule}"] = c.within_one
    out[f"{prefix}ratio_margin"] = counts.ratio.margin
    out[f"{prefix}gap_margin"] = counts.gap.margin
    out[f"{prefix}ratio_margin_ok"] = counts.ratio_margin_ok
    out[f"{prefix}cut_threshold"] = counts.threshold.cut
    out[f"{prefix}cut_tukey"] = counts.tukey.cut
    out[f"{prefix}count_target"] = counts.target
    return out


def count_labels(prefix: str, what: str) -> dict[str, str]:
    """Phrases for the quantities of :func:`count_quantities` of the spectrum ``what``."""
    noun = {
        "ratio": "ratio-rule",
        "gap": "gap-rule",
        "threshold": "heuristic-threshold",
        "tukey": "Tukey-fence",
    }
    out = {f"{prefix}count_{r}": f"the {noun[r]} count of {what}" for r in RULES}
    out[f"{prefix}ratio_margin"] = f"the ratio-rule margin of {what}"
    return out


def count_is(
    prefix: str, rule: str, target: int, *, within: int = 0, margin: float | None = None
) -> Rule:
    """The rule "the ``rule`` count of entry ``prefix`` is target (± within)".

    With ``margin`` (ratio rule only), also ``ratio_margin ≥ margin``. Reads the
    quantities of :func:`count_quantities`.

    >>> count_is("H_", "ratio", 3, within=1).statement()
    '`H_count_ratio` ≥ 2 and `H_count_ratio` ≤ 4'
    """
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    if margin is not None and rule != "ratio":
        raise ValueError(f"margin: only the ratio rule has a margin, got rule={rule!r}")
    key = f"{prefix}count_{rule}"
    parts: list[Rule] = (
        [Compare(key, "==", int(target))]
        if within == 0
        else [Compare(key, ">=", int(target) - within), Compare(key, "<=", int(target) + within)]
    )
    if margin is not None:
        parts.append(Compare(f"{prefix}ratio_margin", ">=", float(margin)))
    return parts[0] if len(parts) == 1 else AllOf(*parts)


# --------------------------------------------------------------------------- sensitivity
#: Default grids of the sensitivity table.
MARGINS = (1.0, 1.1, 1.25, 1.5, 2.0)
RELATIVE_THRESHOLDS = (0.05, 0.1, 0.25, 0.5)


@dataclass(frozen=True)
class CountSensitivity:
    """The ratio and threshold counts of one spectrum over grids of their parameters.

    ``ratio_exact[i]``: ratio count = target and margin ≥ ``margins[i]``;
    ``ratio_within_one[i]``: |count − target| ≤ 1 and margin ≥ ``margins[i]``;
    ``threshold_counts[j]``: #{λ > relative_thresholds[j]·λ_max} (None if λ_max ≤ 0).
    """

    target: int
    margins: list[float]
    ratio_exact: list[bool]
    ratio_within_one: list[bool]
    relative_thresholds: list[float]
    threshold_counts: list[int | None]


def count_sensitivity(
    eigenvalues: ArrayLike,
    target: int,
    *,
    top: int = 60,
    margins: Sequence[float] = MARGINS,
    relative_thresholds: Sequence[float] = RELATIVE_THRESHOLDS,
) -> CountSensitivity:
    """How the ratio-rule verdict and the threshold count move with their parameters."""
    base = count_all(eigenvalues, target, top=top, margin=1.0)
    m = base.ratio.margin
    ratio_exact = [bool(base.ratio.exact and m is not None and m >= x) for x in margins]
    near = [bool(base.ratio.within_one and m is not None and m >= x) for x in margins]
    thr = [
        count_all(eigenvalues, target, top=top, relative_threshold=t).threshold.count
        for t in relative_thresholds
    ]
    return CountSensitivity(
        int(target),
        [float(x) for x in margins],
        ratio_exact,
        near,
        [float(t) for t in relative_thresholds],
        thr,
    )


def sensitivity_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rates over seeds of each grid point of :class:`CountSensitivity` records.

    ``records`` are the per-seed records of ONE spectrum (dicts as written by
    ``dataclasses.asdict``, same grids). Each row: ``setting`` (text), and the rate
    summaries (:func:`~hessref.experiments.stats.rate_summary`) ``exact`` (= target) and
    ``within_one`` (± 1).
    """
    recs = [asdict(r) if isinstance(r, CountSensitivity) else dict(r) for r in records]
    if not recs:
        return []
    rows = []
    for i, m in enumerate(recs[0]["margins"]):
        rows.append(
            {
                "setting": f"ratio rule, margin ≥ {m:g}",
                "exact": rate_summary([r["ratio_exact"][i] for r in recs]),
                "within_one": rate_summary([r["ratio_within_one"][i] for r in recs]),
            }
        )
    for j, t in enumerate(recs[0]["relative_thresholds"]):
        pairs = [(r["threshold_counts"][j], r["target"]) for r in recs]
        rows.append(
            {
                "setting": f"threshold {t:g}·λ_max",
                "exact": rate_summary([c is not None and c == k for c, k in pairs]),
                "within_one": rate_summary([c is not None and abs(c - k) <= 1 for c, k in pairs]),
            }
        )
    return rows


def comparison_rows(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rates over seeds of "= target" and "within ±1" for every rule, for ONE spectrum.

    ``records`` are the per-seed :func:`count_quantities` dicts (no prefix) of one
    spectrum. The ratio rule counts only with its margin (``ratio_margin_ok``).
    Returns ``{rule: {"exact": rate_summary, "within_one": rate_summary}}``.
    """
    out = {}
    for rule in RULES:
        ok = [bool(r.get("ratio_margin_ok")) if rule == "ratio" else True for r in records]
        out[rule] = {
            "exact": rate_summary(
                [bool(r[f"exact_{rule}"]) and o for r, o in zip(records, ok, strict=True)]
            ),
            "within_one": rate_summary(
                [bool(r[f"within1_{rule}"]) and o for r, o in zip(records, ok, strict=True)]
            ),
        }
    return out
