"""Counting outlier eigenvalues above the bulk: gap, ratio and threshold rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.validation import as_float_array, check_choice, check_positive_int, check_real

Array = NDArray[np.float64]


@dataclass(frozen=True)
class OutlierCount:
    """Result of :func:`count_outliers`.

    Attributes
    ----------
    count : int
        Number of outliers (the largest eigenvalues ``λ_1 … λ_count``).
    rule : str
        ``"gap"``, ``"ratio"`` or ``"threshold"`` (``"log_gap"`` is reported as ``"ratio"``).
    threshold : float
        A cut separating outliers from the rest: the given or bulk-edge threshold, the
        midpoint λ_c/2 + λ_{c+1}/2 for ``"gap"``, the geometric mean √(λ_c λ_{c+1}) for
        ``"ratio"``.
    details : dict
        Rule-specific numbers (winning and runner-up gap or ratio, candidate count, ...).
    """

    count: int
    rule: str
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)


_RULES = ("gap", "ratio", "threshold", "log_gap")


def count_outliers(
    eigenvalues: ArrayLike,
    rule: str = "ratio",
    top: int | None = None,
    threshold: float | None = None,
) -> OutlierCount:
    """Count outlier eigenvalues above the bulk (docs/theory.md §14).

    The eigenvalues are sorted descending, λ_1 ≥ λ_2 ≥ …; the candidates are the
    first ``top`` of them (all if None).

    Rules
    -----
    ``"gap"``
        count = argmax_i (λ_i − λ_{i+1}) over consecutive candidates (largest absolute
        gap; candidates of any sign).
    ``"ratio"`` (alias ``"log_gap"``)
        count = argmax_i λ_i / λ_{i+1} over the POSITIVE candidates. This is the same
        as the largest gap of log λ (log is monotone), so the two names are one rule.
        It is scale-free, unlike ``"gap"``, which tends to split off just λ_1.
    ``"threshold"``
        count = #{λ_i > threshold} among the candidates (Sagun et al.'s elbow, e.g.
        0.002–0.015 there). If ``threshold`` is None, a bulk edge is estimated on a log
        scale: with q1, q3 the quartiles of log λ over the positive candidates, the
        threshold is exp(q3 + 3·(q3 − q1)) (Tukey's "far out" fence), which needs ≥ 4
        positive candidates. Pass ``top`` so the bulk dominates the candidates.

    ``"gap"`` and ``"ratio"`` always return a count ≥ 1: compare ``details["score"]``
    with ``details["runner_up_score"]`` to judge whether the split is real (a flat
    spectrum gives ratio 1). Outlier counts are empirical and rule-dependent
    (docs/theory.md §14): report the rule.

    Parameters
    ----------
    eigenvalues : array_like (P,)
        Any order; at least 2.
    rule : {"ratio", "log_gap", "gap", "threshold"}
    top : int, optional
        Number of largest eigenvalues to consider (≥ 2).
    threshold : float, optional
        Absolute threshold for ``rule="threshold"``.

    Returns
    -------
    OutlierCount
        ``count``, ``rule``, the separating ``threshold`` and ``details``.

    Examples
    --------
    >>> lam = [100.0, 50.0, 10.0, 1.0, 0.9, 0.8]
    >>> count_outliers(lam, rule="gap").count, count_outliers(lam, rule="ratio").count
    (1, 3)
    >>> count_outliers(lam, rule="threshold", threshold=5.0).count
    3
    """
    lam = -np.sort(-as_float_array("eigenvalues", eigenvalues, ndim=1))
    if lam.size < 2:
        raise ValueError(f"eigenvalues: expected at least 2 values, got {lam.size}")
    rule = check_choice("rule", rule, _RULES)
    if rule == "log_gap":
        rule = "ratio"
    if top is not None:
        top = check_positive_int("top", top, minimum=2)
        lam = lam[:top]
    if threshold is not None and rule != "threshold":
        raise ValueError(f"threshold: only used with rule='threshold', got rule={rule!r}")
    if rule == "threshold":
        return _count_threshold(lam, threshold)
    if rule == "ratio":
        lam = lam[lam > 0]
        if lam.size < 2:
            raise ValueError(
                "eigenvalues: rule='ratio' needs at least 2 positive eigenvalues among the "
                f"candidates, got {lam.size}; use rule='gap' or 'threshold'"
            )
        scores = lam[:-1] / lam[1:]
    else:
        scores = lam[:-1] - lam[1:]
    order = np.argsort(-scores, kind="stable")
    i = int(order[0])
    details: dict[str, Any] = {
        "score": float(scores[i]),
        "runner_up_score": float(scores[order[1]]) if scores.size > 1 else None,
        "runner_up_count": int(order[1]) + 1 if scores.size > 1 else None,
        "num_candidates": int(lam.size),
    }
    cut = np.sqrt(lam[i] * lam[i + 1]) if rule == "ratio" else 0.5 * (lam[i] + lam[i + 1])
    return OutlierCount(i + 1, rule, float(cut), details)


def _count_threshold(lam: Array, threshold: float | None) -> OutlierCount:
    details: dict[str, Any] = {"num_candidates": int(lam.size)}
    if threshold is None:
        positive = lam[lam > 0]
        if positive.size < 4:
            raise ValueError(
                "threshold: the default bulk-edge rule needs at least 4 positive eigenvalues "
                f"among the candidates, got {positive.size}; pass threshold explicitly"
            )
        q1, q3 = np.percentile(np.log(positive), [25.0, 75.0])
        threshold = float(np.exp(q3 + 3.0 * (q3 - q1)))
        details.update(
            source="log-scale Tukey fence exp(q3 + 3 IQR)", log_q1=float(q1), log_q3=float(q3)
        )
    else:
        threshold = check_real("threshold", threshold)
        details.update(source="given")
    return OutlierCount(int(np.sum(lam > threshold)), "threshold", threshold, details)
