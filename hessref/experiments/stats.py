"""Statistics over seeds: Wilson intervals for rates, medians and spreads of numbers.

These helpers know nothing about networks or Hessians; the experiment framework
(:mod:`hessref.experiments.framework`) uses them to summarise per-seed measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Two-sided 95% normal quantile, Φ⁻¹(0.975).
Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    For k successes in n trials, p̂ = k/n and

        centre = (p̂ + z²/(2n)) / (1 + z²/n),
        half   = z √(p̂(1 − p̂)/n + z²/(4n²)) / (1 + z²/n),

    the interval is [centre − half, centre + half] (Wilson 1927), clipped to [0, 1].
    Unlike the normal (Wald) interval it stays informative at k = 0 and k = n.

    Parameters
    ----------
    successes : int
        k, with 0 ≤ k ≤ n.
    trials : int
        n ≥ 1.
    z : float
        Normal quantile (default: 95% two-sided).

    Returns
    -------
    (low, high) : tuple of float

    Examples
    --------
    >>> lo, hi = wilson_interval(10, 10)
    >>> round(lo, 3), hi
    (0.722, 1.0)
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials: expected a positive integer, got {trials!r}")
    if (
        isinstance(successes, bool)
        or not isinstance(successes, (int, np.integer))
        or not 0 <= successes <= trials
    ):
        raise ValueError(
            f"successes: expected an integer in [0, trials={trials}], got {successes!r}"
        )
    n, p = float(trials), successes / trials
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: rounding only
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def rate_summary(outcomes: Sequence[bool]) -> dict[str, Any]:
    """Rate of True among per-seed outcomes, with its Wilson 95% interval.

    Returns
    -------
    dict
        ``holds`` (count of True), ``seeds`` (n), ``rate`` (k/n), ``low``, ``high``.
    """
    n = len(outcomes)
    k = int(sum(bool(o) for o in outcomes))
    lo, hi = wilson_interval(k, n)
    return {"holds": k, "seeds": n, "rate": k / n, "low": lo, "high": hi}


def spread_summary(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (IQR), min and max of per-seed numbers, ignoring NaN.

    Returns
    -------
    dict
        ``median``, ``q1``, ``q3``, ``min``, ``max`` (all NaN if no finite value) and
        ``n`` (number of finite values).
    """
    a = np.asarray([float(v) for v in values], dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        nan = float("nan")
        return {"median": nan, "q1": nan, "q3": nan, "min": nan, "max": nan, "n": 0}
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "min": float(a.min()),
        "max": float(a.max()),
        "n": int(a.size),
    }


def parse_seeds(text: str) -> list[int]:
    """Parse a seed specification: ``"0-19"``, ``"0,3,7"``, ``"0-4,10"`` or ``"5"``.

    Ranges are inclusive. Duplicates are an error (they would count one run twice).

    Examples
    --------
    >>> parse_seeds("0-2,7")
    [0, 1, 2, 7]
    """
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(
                f"seeds: expected non-negative integers and inclusive ranges like "
                f"'0-19' or '0,3,7', got {text!r}"
            ) from None
    if min(seeds) < 0:
        raise ValueError(f"seeds: expected non-negative integers, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: each seed at most once, got {text!r}")
    return seeds


#: The declared rule that turns a rate's Wilson interval into a word (used in reports).
MAJORITY_RULE = (
    "Verdict of a claim: 'holds' when the lower end of the Wilson 95% interval of the rate "
    "exceeds 1/2, 'fails' when its upper end is below 1/2, 'undecided' otherwise (with 10 "
    "seeds 'holds' needs 9/10, with 20 seeds 15/20). An exact check holds only if it holds at "
    "every seed. A null baseline applies a claim's rule where the claim's cause is absent: it "
    "is expected to fail, and a null that holds contains the signal. The margin of an "
    "outlier count is its winning ratio λ_k/λ_(k+1) divided by the runner-up ratio."
)

#: The half the Wilson interval must clear (strictly) for 'holds' or 'fails'.
MAJORITY = 0.5


def majority_label(low: float, high: float) -> str:
    """'holds' if low > 1/2, 'fails' if high < 1/2, else 'undecided' (see MAJORITY_RULE).

    Examples
    --------
    >>> [majority_label(*wilson_interval(k, 20)) for k in (5, 6, 14, 15)]
    ['fails', 'undecided', 'undecided', 'holds']
    """
    if low > MAJORITY:
        return "holds"
    if high < MAJORITY:
        return "fails"
    return "undecided"


#: How each role of a rule is named next to its label.
ROLE_TAGS = {"claim": "", "identity": "exact check", "null": "null (expected to fail)"}


def verdict_label(entry: dict[str, Any]) -> str:
    """The label of a verdict entry (``role``, ``holds``, ``seeds``, ``low``, ``high``).

    - ``role="claim"`` (default): :func:`majority_label` of the Wilson interval.
    - ``role="identity"``: ``"holds at every seed"`` or ``"fails at k of n seeds"``: an
      exact check has no rate; one failing seed is a bug, however many seeds ran.
    - ``role="null"``: ``"fails, as expected"``, ``"undecided"``, or, when the majority
      label is 'holds', ``"holds: the null contains signal"``.

    Examples
    --------
    >>> verdict_label({"role": "identity", "holds": 2, "seeds": 2, "low": 0.34, "high": 1.0})
    'holds at every seed'
    >>> verdict_label({"role": "null", "holds": 0, "seeds": 10, "low": 0.0, "high": 0.28})
    'fails, as expected'
    """
    role = entry.get("role", "claim")
    if role == "identity":
        k, n = int(entry["holds"]), int(entry["seeds"])
        return "holds at every seed" if k == n else f"fails at {n - k} of {n} seeds"
    label = majority_label(float(entry["low"]), float(entry["high"]))
    if role == "null":
        return {"fails": "fails, as expected", "holds": "holds: the null contains signal"}.get(
            label, label
        )
    return label


def tagged_label(entry: dict[str, Any]) -> str:
    """``verdict_label`` prefixed by the role: e.g. ``"null (expected to fail): fails, ..."``."""
    tag = ROLE_TAGS.get(entry.get("role", "claim"), "")
    return f"{tag}: {verdict_label(entry)}" if tag else verdict_label(entry)
