"""Verdict rules: predicates over one seed's measured quantities, with generated prose.

A rule is a small frozen object. :meth:`Rule.holds` decides it for the measured
quantities of ONE seed (a mapping name → value); :meth:`Rule.statement` writes it as a
sentence built from its parameters, so the text can never disagree with the test:

>>> r = AllOf(Compare("count", "==", 3), Compare("margin", ">=", 1.25))
>>> r.statement({"count": "the ratio-rule outlier count", "margin": "the margin"})
'the ratio-rule outlier count = 3 and the margin ≥ 1.25'
>>> r.holds({"count": 3, "margin": 1.4}), r.holds({"count": 3, "margin": 1.1})
(True, False)

A missing, None or NaN quantity makes a rule fail (never silently pass). A quantity
name may be a dotted path into a nested record (``"counts.ratio"``, see :func:`lookup`).

Every rule is declared in a :class:`Verdict` that names the paper claim it tests, its
source and its role (an empirical ``"claim"``, an exact ``"identity"`` or a ``"null"``).
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_OPS = {
    "==": (operator.eq, "="),
    ">=": (operator.ge, "≥"),
    "<=": (operator.le, "≤"),
    ">": (operator.gt, ">"),
    "<": (operator.lt, "<"),
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _label(labels: Mapping[str, str] | None, key: str) -> str:
    return (labels or {}).get(key, f"`{key}`")


def lookup(measured: Mapping[str, Any], key: str) -> Any:
    """``measured[key]``; a dotted key ``"a.b"`` reads the field ``b`` of the record ``a``.

    Typed per-seed results (dataclasses) are stored as nested dicts, so a rule can read
    a nested field by its path. Missing keys give None.

    >>> lookup({"counts": {"ratio": 3}}, "counts.ratio"), lookup({"x": 1}, "y")
    (3, None)
    """
    if key in measured:
        return measured[key]
    value: Any = measured
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _number(measured: Mapping[str, Any], key: str) -> float | None:
    value = lookup(measured, key)
    if value is None or isinstance(value, (list, dict, str)):
        return None
    value = float(value)
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class Ref:
    """Another measured quantity used as the right-hand side of :class:`Compare`.

    The comparison is against ``factor · measured[name]``.
    """

    name: str
    factor: float = 1.0


class Rule:
    """Base class of verdict rules (see the module docstring)."""

    def holds(self, measured: Mapping[str, Any]) -> bool:  # pragma: no cover - abstract
        """Whether the rule holds for one seed's measured quantities."""
        raise NotImplementedError

    def statement(self, labels: Mapping[str, str] | None = None) -> str:  # pragma: no cover
        """The rule as a sentence; ``labels`` maps quantity names to phrases."""
        raise NotImplementedError

    def quantities(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        """The measured quantities the rule reads."""
        raise NotImplementedError


@dataclass(frozen=True)
class Compare(Rule):
    """``measured[quantity] <op> value`` where value is a number or a :class:`Ref`.

    Parameters
    ----------
    quantity : str
        Key of the measured dict (a number).
    op : {"==", ">=", "<=", ">", "<"}
    value : float, int or Ref
    """

    quantity: str
    op: str
    value: float | int | Ref

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"op: expected one of {sorted(_OPS)}, got {self.op!r}")

    def holds(self, measured: Mapping[str, Any]) -> bool:
        """See :meth:`Rule.holds`."""
        left = _number(measured, self.quantity)
        if isinstance(self.value, Ref):
            right = _number(measured, self.value.name)
            right = None if right is None else self.value.factor * right
        else:
            right = float(self.value)
        if left is None or right is None:
            return False
        return bool(_OPS[self.op][0](left, right))

    def statement(self, labels: Mapping[str, str] | None = None) -> str:
        """See :meth:`Rule.statement`."""
        if isinstance(self.value, Ref):
            rhs = _label(labels, self.value.name)
            if self.value.factor != 1.0:
                rhs = f"{_fmt(float(self.value.factor))}× {rhs}"
        else:
            rhs = _fmt(self.value)
        return f"{_label(labels, self.quantity)} {_OPS[self.op][1]} {rhs}"

    def quantities(self) -> tuple[str, ...]:
        """See :meth:`Rule.quantities`."""
        extra = (self.value.name,) if isinstance(self.value, Ref) else ()
        return (self.quantity, *extra)


@dataclass(frozen=True)
class Monotone(Rule):
    """The list ``measured[quantity]`` increases (or decreases) along its order.

    Parameters
    ----------
    quantity : str
        Key of a list of numbers (e.g. λ_max for each value of a swept setting).
    increasing : bool
    min_ratio : float
        Each step must change by at least this factor (1.0: strict monotonicity;
        e.g. 1.1 means every next value ≥ 1.1× the previous one when increasing).
    along : str
        What the list is indexed by, for the statement (e.g. "the blob spread").
    """

    quantity: str
    increasing: bool = True
    min_ratio: float = 1.0
    along: str = "the swept setting"

    def holds(self, measured: Mapping[str, Any]) -> bool:
        """See :meth:`Rule.holds`."""
        values = lookup(measured, self.quantity)
        if not isinstance(values, Sequence) or len(values) < 2:
            return False
        v = [float(x) for x in values]
        if any(math.isnan(x) for x in v):
            return False
        pairs = zip(v, v[1:], strict=False)
        if self.increasing:
            return all(b > a and b >= self.min_ratio * a for a, b in pairs)
        return all(b < a and a >= self.min_ratio * b for a, b in pairs)

    def statement(self, labels: Mapping[str, str] | None = None) -> str:
        """See :meth:`Rule.statement`."""
        way = "increases" if self.increasing else "decreases"
        by = ""
        if self.min_ratio > 1:
            by = f" by a factor ≥ {_fmt(float(self.min_ratio))} per step"
        return f"{_label(labels, self.quantity)} strictly {way} with {self.along}{by}"

    def quantities(self) -> tuple[str, ...]:
        """See :meth:`Rule.quantities`."""
        return (self.quantity,)


@dataclass(frozen=True)
class AllOf(Rule):
    """All of several rules hold (their statements joined by "and")."""

    rules: tuple[Rule, ...]

    def __init__(self, *rules: Rule) -> None:
        if not rules or not all(isinstance(r, Rule) for r in rules):
            raise TypeError("AllOf: expected one or more Rule objects")
        object.__setattr__(self, "rules", tuple(rules))

    def holds(self, measured: Mapping[str, Any]) -> bool:
        """See :meth:`Rule.holds`."""
        return all(r.holds(measured) for r in self.rules)

    def statement(self, labels: Mapping[str, str] | None = None) -> str:
        """See :meth:`Rule.statement`."""
        return " and ".join(r.statement(labels) for r in self.rules)

    def quantities(self) -> tuple[str, ...]:
        """See :meth:`Rule.quantities`."""
        return tuple(q for r in self.rules for q in r.quantities())


#: The roles a verdict rule can play (see :class:`Verdict`).
ROLES = ("claim", "identity", "null")

_NO_CLAIM = object()  # sentinel: ``claim`` not passed (0.2 call; deprecated)


@dataclass(frozen=True, init=False)
class Verdict:
    """A named rule with the paper claim it tests: ``Verdict(name, rule, claim, source, role)``.

    Parameters
    ----------
    name : str
        Short id used in JSON and tables (non-empty).
    rule : Rule
        The per-seed predicate.
    claim : str
        The paper claim THIS rule tests, in its own words (non-empty; never inherited
        from the experiment). For a null: what the null controls for.
    source : str
        Paper and section, e.g. ``"Sagun et al. 2017 §3.1, Table 1"``.
    role : {"claim", "identity", "null"}
        ``"claim"``: an empirical paper claim (the claims table). ``"identity"``: an exact
        or engine-consistency check (the "exact checks" table; never counted as an
        empirical result). ``"null"``: a null baseline, expected to fail.
    paper_value : str
        The paper's own number for this claim where it gives one (short, e.g.
        ``"k (Fig. 2)"`` or ``"±1 of k, Table 1"``); empty if it gives none.

    Examples
    --------
    >>> v = Verdict("x > 0", Compare("x", ">", 0), "x is positive", role="claim")
    >>> v.claim, v.role
    ('x is positive', 'claim')
    >>> Verdict("x > 0", Compare("x", ">", 0), "x is positive", role="fact")
    Traceback (most recent call last):
    ...
    ValueError: role: expected one of ('claim', 'identity', 'null'), got 'fact'
    """

    name: str
    rule: Rule
    claim: str
    source: str
    role: str
    paper_value: str

    def __init__(
        self,
        name: str,
        rule: Rule,
        claim: Any = _NO_CLAIM,
        source: str = "",
        role: str = "claim",
        *,
        paper_value: str = "",
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        if not isinstance(rule, Rule):
            raise TypeError(f"rule: expected a Rule (Compare, Monotone, AllOf), got {rule!r}")
        if claim is _NO_CLAIM:  # 0.2 spelling: keeps working while modules are converted
            warnings.warn(
                f"Verdict {name!r}: pass claim= (the paper claim this rule tests); a Verdict "
                "without a claim is deprecated and will be an error",
                DeprecationWarning,
                stacklevel=2,
            )
            claim = ""
        elif not isinstance(claim, str) or not claim.strip():
            raise ValueError(
                f"claim: expected a non-empty string stating the paper claim rule {name!r} "
                f"tests, got {claim!r}"
            )
        if not isinstance(source, str):
            raise ValueError(f"source: expected a string (paper and section), got {source!r}")
        if role not in ROLES:
            raise ValueError(f"role: expected one of {ROLES}, got {role!r}")
        if not isinstance(paper_value, str):
            raise ValueError(f"paper_value: expected a string, got {paper_value!r}")
        for key, value in (("name", name), ("rule", rule), ("claim", claim)):
            object.__setattr__(self, key, value)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "paper_value", paper_value)
