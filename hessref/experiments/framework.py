"""The multi-seed experiment framework: declare, register, run over seeds, summarise.

Interface (stable; other modules build on it)
---------------------------------------------
An experiment is an :class:`Experiment` registered under a name::

    from hessref.experiments.framework import Experiment, register, derive_seeds
    from hessref.experiments.rules import AllOf, Compare, Ref, Monotone, Verdict

    @dataclass(frozen=True)
    class Seed:                                  # a typed per-seed result
        count: int
        margin: float
        eigenvalues: list[float]

    def measure(settings, seed, progress):
        s = derive_seeds(seed, "data", "init")   # independent integer seeds
        ...                                      # train, compute exact spectra
        return Seed(count=3, margin=1.8, eigenvalues=[...])   # or a dict of JSON values

    def rules(settings):
        return [Verdict("count = C", AllOf(Compare("count", "==", settings["classes"]),
                                           Compare("margin", ">=", 1.25)),
                        claim="the Hessian has C outliers after training",
                        source="Sagun et al. 2017 §3.1, Fig. 2", role="claim")]

    register(Experiment(
        name="my-experiment",
        paper="Sagun et al. 2017 (arXiv:1706.04454), Fig. 2",
        claim="the number of outliers equals the number of classes",
        fast={"classes": 3, "samples": 150}, full={"classes": 3, "samples": 600},
        measure=measure, rules=rules,
        quantities={"count": "the ratio-rule outlier count of H", "margin": "..."},
    ))

- ``fast`` and ``full`` are the ONE settings schema of the experiment: two dicts with
  the same keys and JSON values, validated once at :func:`register` (same keys; the
  same JSON type per key; ints may stand where floats are). ``overrides`` passed to
  :func:`run_experiment` are checked against it.
- ``measure(settings, seed, progress)`` computes ONE seed: ``settings`` is a
  plain dict (a copy), ``seed`` a non-negative int from which all randomness must
  derive (use :func:`derive_seeds`), ``progress`` a callable ``str -> None`` (never
  None inside measure). It returns a frozen dataclass instance (fields of JSON values,
  lists, nested dataclasses; serialised by :func:`dataclasses.asdict`, see
  :func:`record`) or a dict of JSON values. Rules read the fields by name (nested ones
  by a dotted path ``"counts.ratio"``). NaN is allowed in memory; JSON gets null.
  It must be a module-level function (runs in worker processes when ``workers > 1``).
- ``rules(settings) -> list[Verdict]``: the verdict rules (:mod:`.rules`), decided per
  seed; their statements are generated from their parameters. Each Verdict states the
  paper claim IT tests (``claim``), its ``source``, and its ``role``: ``"claim"``
  (empirical; the claims table), ``"identity"`` (an exact check; its own table, never
  counted as an empirical result) or ``"null"`` (a null baseline, expected to fail;
  its claim says what it controls for). Quantities named in
  ``quantities`` (key → human-readable phrase) are the key numbers: the result gives
  their median, IQR, min and max over seeds, and the phrases label the statements.
- ``setting_text(settings) -> str`` (optional) describes the setting in one sentence;
  it must only restate settings, never results.
- ``default_seeds``: (fast, full) numbers of seeds, default (3, 10): seeds 0..n−1.
- ``figure(result, path) -> None`` (optional) draws the experiment's own figure of an
  :class:`ExperimentResult` into the PNG file ``path``, from the result's fields only
  (drawing never computes). ``hessref reproduce`` calls it; without it the generic
  figure of :func:`hessref.plot.plot_experiment` is drawn. Experiments cannot import
  :mod:`hessref.plot` (a higher layer): draw with matplotlib through the helpers of
  :mod:`hessref.experiments.figures`.
- Per-seed counting-rule sensitivity: a seed may report ``"sensitivity": {label:
  CountSensitivity}`` (:mod:`.counting`); the result's ``tables["sensitivity"]`` gives
  the rates over seeds per grid point, and the report prints them.

:func:`run_experiment` runs the seeds (optionally in ``workers`` processes) and returns
an :class:`ExperimentResult`: per-seed values, per rule the per-seed outcomes and the
rate with its Wilson 95% interval, spreads of the key numbers, timings and versions;
``to_json``/``from_json`` round-trip it (strict JSON: NaN/Infinity are written as
null; :mod:`.result`). Its :meth:`~ExperimentResult.summary`
is plain text computed from those fields only.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hessref.experiments.counting import comparison_rows, sensitivity_rows
from hessref.experiments.result import (  # noqa: F401 - re-exported: the 0.2 import path
    ExperimentResult,
    dumps,
    plain,
    record,
    strict,
)
from hessref.experiments.rules import Verdict, lookup
from hessref.experiments.stats import rate_summary, spread_summary, verdict_label

Progress = Callable[[str], None]
Measure = Callable[[dict, int, Progress], Any]  # a dict or a frozen dataclass


def _quiet(message: str) -> None:
    """A progress callback that discards its message."""


def derive_seeds(seed: int, *purposes: str) -> dict[str, int]:
    """Independent integer seeds, one per purpose, from one experiment seed.

    Uses ``np.random.SeedSequence(seed).spawn(len(purposes))`` (so the seeds are
    statistically independent and depend only on ``seed`` and the purpose's position).

    Examples
    --------
    >>> s = derive_seeds(0, "data", "init")
    >>> sorted(s) == ["data", "init"] and s == derive_seeds(0, "data", "init")
    True
    """
    children = np.random.SeedSequence(int(seed)).spawn(len(purposes))
    return {p: int(c.generate_state(1)[0]) for p, c in zip(purposes, children, strict=True)}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "dict"
    raise TypeError(f"settings: value {value!r} is not JSON ({type(value).__name__})")


def validate_settings(name: str, fast: Mapping, full: Mapping) -> None:
    """Check the fast/full settings of experiment ``name`` share one schema (see module)."""
    if set(fast) != set(full):
        diff = sorted(set(fast) ^ set(full))
        raise ValueError(
            f"{name}: fast and full settings must have the same keys; differ in {diff}"
        )
    for key in fast:
        if _json_type(fast[key]) != _json_type(full[key]):
            raise ValueError(
                f"{name}: setting {key!r} is {_json_type(fast[key])} in fast but "
                f"{_json_type(full[key])} in full"
            )
    json.dumps(dict(fast)), json.dumps(dict(full))


@dataclass(frozen=True)
class Experiment:
    """Declaration of a multi-seed experiment (see the module docstring)."""

    name: str
    paper: str
    claim: str
    fast: Mapping[str, Any]
    full: Mapping[str, Any]
    measure: Measure
    rules: Callable[[dict], Sequence[Verdict]]
    quantities: Mapping[str, str]
    setting_text: Callable[[dict], str] | None = None
    default_seeds: tuple[int, int] = (3, 10)
    figure: Callable[[Any, Path], None] | None = None

    def settings(self, fast: bool, overrides: Mapping[str, Any] | None = None) -> dict:
        """The settings dict for ``fast``/full, with validated ``overrides``."""
        s = json.loads(json.dumps(dict(self.fast if fast else self.full)))
        for key, value in (overrides or {}).items():
            if key not in s:
                raise ValueError(
                    f"overrides: {self.name} has no setting {key!r}; expected one of {sorted(s)}"
                )
            if _json_type(value) != _json_type(s[key]):
                raise ValueError(
                    f"overrides: setting {key!r} of {self.name} expects a {_json_type(s[key])}, "
                    f"got {value!r}"
                )
            s[key] = json.loads(json.dumps(value))
        s["fast"] = bool(fast)
        return s

    def __call__(self, fast: bool = False, rng: Any = 0, progress: Progress | None = None):
        """Run ONE seed ``rng`` (an int), kept for the 0.1 call ``EXPERIMENTS[name](...)``."""
        return run_experiment(self.name, fast=fast, seeds=[_one_seed(rng)], progress=progress)


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (names are unique); returns it."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment: expected an Experiment, got {type(experiment).__name__}")
    if experiment.name in _REGISTRY and _REGISTRY[experiment.name] is not experiment:
        raise ValueError(f"experiment name {experiment.name!r} is already registered")
    validate_settings(experiment.name, experiment.fast, experiment.full)
    _REGISTRY[experiment.name] = experiment
    return experiment


def registry() -> dict[str, Experiment]:
    """The registered experiments by name (a live, read-only view is not needed: a copy)."""
    return dict(_REGISTRY)


def get_experiment(name: str) -> Experiment:
    """The registered experiment ``name``; a clear error listing the names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(
            f"name: unknown experiment {name!r}; expected one of "
            + ", ".join(repr(n) for n in _REGISTRY)
        )
    return _REGISTRY[name]


def _one_seed(rng: Any) -> int:
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    if rng is None or isinstance(rng, np.random.Generator):
        return int(np.random.default_rng(rng).integers(2**31 - 1))
    raise TypeError(
        f"rng: expected None, a non-negative int seed or a numpy Generator, got {rng!r}"
    )


def _check_seeds(seeds: Any, default: int) -> list[int]:
    if seeds is None:
        return list(range(default))
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = [seeds]
    out = [_one_seed(s) if not isinstance(s, np.random.Generator) else -1 for s in seeds]
    if not out or min(out) < 0 or len(set(out)) != len(out):
        raise ValueError(f"seeds: expected distinct non-negative integers, got {seeds!r}")
    return out


def _mp_context():
    """Fork where available (workers inherit every registration), else the default."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _run_one(name: str, settings: dict, seed: int) -> tuple[dict, float]:
    """One seed in a worker process (no progress: the parent reports completions)."""
    import hessref.experiments  # noqa: F401 - registers the built-in experiments

    t = time.perf_counter()
    measured = get_experiment(name).measure(dict(settings), seed, _quiet)
    return measured, time.perf_counter() - t


def environment() -> dict[str, str]:
    """Versions the numbers may depend on (rounding differs across BLAS builds)."""
    import scipy

    import hessref

    return {
        "hessref": hessref.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


def summarise(
    experiment: Experiment,
    settings: dict,
    seeds: list[int],
    per_seed: list[dict],
    timings: dict | None = None,
) -> ExperimentResult:
    """Build the :class:`ExperimentResult` of per-seed measurements (rules, rates, spreads).

    Public so tests can check that verdicts follow the data: pass altered ``per_seed``.
    """
    per_seed = [record(m) for m in per_seed]  # dataclasses, NumPy values -> JSON values
    labels = dict(experiment.quantities)
    verdicts = [_verdict_entry(v, per_seed, labels) for v in experiment.rules(settings)]
    numbers = {}
    for key, phrase in labels.items():
        vals = [lookup(m, key) for m in per_seed]
        nums = [x for x in vals if x is not None]
        if nums and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in nums):
            clean = [float("nan") if x is None else x for x in vals]  # missing: not counted
            numbers[key] = {"label": phrase, **spread_summary(clean)}
    text = experiment.setting_text(settings) if experiment.setting_text else ""
    return ExperimentResult(
        name=experiment.name,
        mode="fast" if settings.get("fast") else "full",
        settings=settings,
        seeds=list(seeds),
        per_seed=per_seed,
        verdicts=verdicts,
        numbers=numbers,
        timings=timings or {},
        environment=environment(),
        paper=experiment.paper,
        claim=experiment.claim,
        setting_text=text,
        tables=_count_tables(per_seed),
    )


def _verdict_entry(v: Verdict, per_seed: list[dict], labels: Mapping[str, str]) -> dict:
    """One rule decided per seed: its texts, outcomes, rate, interval and label."""
    outcomes = [bool(v.rule.holds(m)) for m in per_seed]
    entry = {
        "name": v.name,
        "statement": v.rule.statement(labels),
        "claim": v.claim,
        "source": v.source,
        "role": v.role,
        "paper_value": v.paper_value,
        "outcomes": outcomes,
        **rate_summary(outcomes),
    }
    entry["label"] = verdict_label(entry)
    return entry


def _count_tables(per_seed: list[dict]) -> dict[str, dict[str, Any]]:
    """Rates over seeds of the counting-rule records every seed reports.

    A seed may report ``"counts": {label: count_quantities(...)}`` (every counting rule,
    :mod:`.counting`) and ``"sensitivity": {label: CountSensitivity}``. The result's
    ``tables["counting"][label]`` gives per rule the rates of "= target" and "within
    ±1"; ``tables["sensitivity"][label]`` the rates at every grid point.
    """
    tables: dict[str, dict[str, Any]] = {}
    kinds = (
        ("counts", "count_ratio", comparison_rows),
        ("sensitivity", "margins", sensitivity_rows),
    )
    for key, marker, build in kinds:
        found = [m.get(key) for m in per_seed]
        records = [
            isinstance(f, dict) and all(isinstance(r, dict) and marker in r for r in f.values())
            for f in found
        ]
        if found and all(records) and found[0]:  # only records of the counting module
            name = "counting" if key == "counts" else key
            tables[name] = {label: build([f[label] for f in found]) for label in found[0]}
    return tables


def run_experiment(
    name: str,
    fast: bool = False,
    seeds: Sequence[int] | int | None = None,
    progress: Progress | None = None,
    overrides: Mapping[str, Any] | None = None,
    workers: int = 1,
    rng: Any = None,
) -> ExperimentResult:
    """Run the registered experiment ``name`` over ``seeds`` and summarise.

    Parameters
    ----------
    name : str
        A registered name (:func:`registry`).
    fast : bool
        The fast settings (seconds; CI) instead of the full ones.
    seeds : sequence of int, int or None
        Experiment seeds (distinct, ≥ 0). None: ``range(n)`` with n the experiment's
        default for the mode (3 fast, 10 full unless declared otherwise).
    progress : callable, optional
        ``str -> None`` progress messages.
    overrides : dict, optional
        Settings to change (validated against the schema).
    workers : int
        Processes for the seeds (1: in this process, deterministic order either way).
    rng : int, optional
        0.1 spelling of a single seed; ``rng=s`` means ``seeds=[s]``.
    """
    exp = get_experiment(name)
    if rng is not None:
        if seeds is not None:
            raise ValueError("seeds: give either seeds or rng (one seed), not both")
        seeds = [_one_seed(rng)]
    seed_list = _check_seeds(seeds, exp.default_seeds[0 if fast else 1])
    settings = exp.settings(fast, overrides)
    say = progress or _quiet
    t0 = time.perf_counter()
    results: list[tuple[dict, float]]
    if workers > 1 and len(seed_list) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            futures = [pool.submit(_run_one, name, settings, s) for s in seed_list]
            results = []
            for s, f in zip(seed_list, futures, strict=True):
                results.append(f.result())
                say(f"{name}: seed {s} done ({results[-1][1]:.1f}s)")
    else:
        results = []
        for s in seed_list:
            t = time.perf_counter()
            measured = exp.measure(dict(settings), s, lambda m, s=s: say(f"{name} seed {s}: {m}"))
            results.append((measured, time.perf_counter() - t))
    timings = {"per_seed": [r[1] for r in results], "total": time.perf_counter() - t0}
    return summarise(exp, settings, seed_list, [r[0] for r in results], timings)
