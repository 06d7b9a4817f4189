"""Fixtures and result recording for the conformance suite.

Every comparison is recorded with :func:`record` (tool, quantity, case, worst relative
error or z-score, verdict kind); ``--conformance-json PATH`` writes them, with the tool
versions and the outcome of every test (xfail reasons included), for
``python -m conformance.report``. A skipped test fails the session: in this environment
every peer must be installed, so a skip would hide a missing comparison.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import platform
from pathlib import Path

import pytest

from conformance import TOOLS
from hessref.testing import catalogue_cases

_RECORDS: list[dict] = []
_OUTCOMES: list[dict] = []
_SKIPPED: list[str] = []


def pytest_addoption(parser):
    parser.addoption(
        "--conformance-json",
        default=None,
        help="write every recorded comparison and test outcome to this JSON file",
    )


@pytest.fixture(scope="session")
def cases():
    """Hessref's catalogue cases by name (bundles are computed lazily, once)."""
    return {c.name: c for c in catalogue_cases()}


@pytest.fixture
def record(request):
    """``record(tool, quantity, case, value, kind="exact"|"statistical", **extra)``."""

    def _record(tool, quantity, case, value, kind="exact", **extra):
        if tool not in TOOLS:
            raise ValueError(f"tool: expected one of {list(TOOLS)}, got {tool!r}")
        entry = {"tool": tool, "quantity": quantity, "case": case, "value": float(value)}
        entry.update(kind=kind, test=request.node.nodeid, **extra)
        _RECORDS.append(entry)

    return _record


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome == "skipped":
        entry = {"test": report.nodeid, "outcome": report.outcome}
        if hasattr(report, "wasxfail"):
            entry.update(outcome="xfailed" if report.skipped else "xpassed")
            entry["reason"] = report.wasxfail
        elif report.skipped:
            _SKIPPED.append(report.nodeid)
        _OUTCOMES.append(entry)


def _versions():
    out = {"python": platform.python_version(), "hessref": md.version("hessref")}
    for tool, dist in TOOLS.items():
        out[tool] = md.version(dist)
    out["jaxlib"] = md.version("jaxlib")
    return out


def pytest_sessionfinish(session, exitstatus):
    if _SKIPPED:
        session.exitstatus = 1
    path = session.config.getoption("--conformance-json")
    if path and not hasattr(session.config, "workerinput"):
        data = {"versions": _versions(), "records": _RECORDS, "outcomes": _OUTCOMES}
        Path(path).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter):
    if _SKIPPED:
        terminalreporter.write_line(
            f"conformance: {len(_SKIPPED)} skipped test(s) -- every peer must run here: "
            + ", ".join(_SKIPPED),
            red=True,
        )
