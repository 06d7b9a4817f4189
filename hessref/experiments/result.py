"""The result of a multi-seed experiment, and strict JSON for it.

:class:`ExperimentResult` holds everything a report prints: per-seed values, per rule the
outcomes, rate, Wilson interval and label, spreads of key numbers, derived tables,
timings and versions. JSON written from it is strict (:func:`dumps`: NaN and Infinity
become null), so any conforming parser reads it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hessref.experiments.stats import tagged_label


@dataclass
class ExperimentResult:
    """Plain, JSON-serialisable outcome of a multi-seed run.

    Attributes
    ----------
    name, paper, claim : str
        The experiment's name, the paper reference and the paper's claim it tests.
    mode : {"fast", "full"}
    settings : dict
        Every setting (with ``"fast"``), after overrides.
    seeds : list of int
        The experiment seeds, in run order.
    per_seed : list of dict
        ``measure``'s output for each seed (same order as ``seeds``).
    verdicts : list of dict
        Per rule: ``name``, ``statement`` (generated), ``claim`` (the rule's own paper
        claim), ``source``, ``role`` ("claim", "identity" or "null"), ``outcomes`` (bool
        per seed), ``holds``, ``seeds``, ``rate``, ``low``, ``high`` (Wilson 95%) and
        ``label`` (:func:`~hessref.experiments.stats.verdict_label`).
    numbers : dict
        Per key quantity: its phrase and the median/q1/q3/min/max/n over seeds.
    timings : dict
        ``per_seed`` seconds and ``total`` seconds (wall clock, includes worker start).
    environment : dict
        Versions (hessref, Python, NumPy, SciPy).
    tables : dict
        Derived tables; ``"sensitivity"``: per spectrum label, the counting-rule
        sensitivity rows (:func:`~hessref.experiments.counting.sensitivity_rows`).
    """

    name: str
    mode: str
    settings: dict[str, Any]
    seeds: list[int]
    per_seed: list[dict[str, Any]]
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    paper: str = ""
    claim: str = ""
    setting_text: str = ""
    tables: dict[str, Any] = field(default_factory=dict)

    def values(self, quantity: str) -> list[Any]:
        """The per-seed values of ``quantity`` (None where a seed did not report it)."""
        return [m.get(quantity) for m in self.per_seed]

    def verdict(self, name: str) -> dict[str, Any]:
        """The verdict entry called ``name``."""
        for v in self.verdicts:
            if v["name"] == name:
                return v
        raise KeyError(f"name: no verdict {name!r}; have {[v['name'] for v in self.verdicts]}")

    def summary(self) -> str:
        """Plain-text summary computed from this result only (no fixed claims)."""
        n = len(self.seeds)
        lines = [
            f"{self.name} ({self.mode} configuration, {n} seed{'s' * (n != 1)}: "
            f"{_seed_text(self.seeds)})",
        ]
        if self.setting_text:
            lines.append(f"setting: {self.setting_text}")
        for v in self.verdicts:
            lines.append(
                f"[{v['name']}] {v['statement']}: holds in {v['holds']}/{v['seeds']} seeds, "
                f"rate {v['rate']:.2f} (Wilson 95% [{v['low']:.2f}, {v['high']:.2f}]) -> "
                f"{tagged_label(v)}"
            )
        for key, d in self.numbers.items():
            lines.append(
                f"  {key}: median {_g(d['median'])}, IQR [{_g(d['q1'])}, {_g(d['q3'])}], "
                f"range [{_g(d['min'])}, {_g(d['max'])}] over {d['n']} seed(s)"
            )
        return "\n".join(lines)

    def to_json(self, indent: int | None = None) -> str:
        """The result as STRICT JSON (NaN and ±Infinity written as null; see :func:`strict`).

        Round-trips through :meth:`from_json` (a non-finite number comes back as None).
        """
        return dumps(asdict(self), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> ExperimentResult:
        """Rebuild a result from :meth:`to_json` output (older files: missing fields default)."""
        return cls(**json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ExperimentResult:
        """Read a result written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def strict(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, ±Infinity) replaced by None.

    JSON has no NaN or Infinity; Python's ``json`` writes them as bare tokens that strict
    parsers reject. A missing or undefined number is written as null instead.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON text of ``value`` (:func:`strict`; raises if anything non-finite remains).

    >>> dumps({"a": float("nan"), "b": [1.0, float("inf")]})
    '{"a": null, "b": [1.0, null]}'
    """
    return json.dumps(strict(plain(value)), allow_nan=False, indent=indent)


def _g(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _seed_text(seeds: Sequence[int]) -> str:
    s = list(seeds)
    if s == list(range(s[0], s[0] + len(s))) and len(s) > 2:
        return f"{s[0]}-{s[-1]}"
    return ",".join(map(str, s))


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays and tuples turned into plain JSON types."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def record(measured: Any) -> dict[str, Any]:
    """One seed's measurement as a dict of JSON values.

    ``measure`` may return a dict or a dataclass instance (fields of JSON values,
    lists, nested dataclasses), serialised with :func:`dataclasses.asdict`; rules then
    read its fields by name (nested fields by a dotted path, :func:`.rules.lookup`).
    """
    if is_dataclass(measured) and not isinstance(measured, type):
        measured = asdict(measured)
    if not isinstance(measured, Mapping):
        raise TypeError(
            f"measure: expected a dict or a dataclass instance, got {type(measured).__name__}"
        )
    return plain(dict(measured))
