"""conformance/report.py: every finding is classified, and the page shows its class and numbers.

The report is pure Python (it reads the JSON a conformance run wrote), so it is tested
here without the peer tools, on hand-made results.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's conformance/
from conformance.report import CLASSES, render, summarise  # noqa: E402


def results(**xfail_extra):
    record = {"tool": "pyhessian", "quantity": "trace", "case": "c", "value": 7.5}
    record.update(kind="xfail", test="t::xf", **xfail_extra)
    exact = {"tool": "curvlinops", "quantity": "G", "case": "c", "value": 1e-16}
    exact.update(kind="exact", test="t::ok")
    return {
        "versions": {"pyhessian": "0.1", "curvlinops": "3.0.1"},
        "records": [record, exact],
        "outcomes": [
            {"test": "t::xf", "outcome": "xfailed", "reason": "stops early"},
            {"test": "t::ok", "outcome": "passed"},
        ],
    }


@pytest.mark.parametrize("cls", list(CLASSES))
def test_classified_finding_is_rendered_with_class_link_and_numbers(cls):
    data = results(classification=cls, upstream="owner/repo#1", measure="|z|", mean=0.17)
    _, findings, failures = summarise(data)
    assert not failures and len(findings) == 1
    page, failed, _ = render(data)
    line = next(l for l in page.splitlines() if l.startswith("1. "))
    assert f"*{cls}*" in line and "(upstream: owner/repo#1)" in line
    assert "stops early" in line and "mean = 0.17" in line
    assert "7.5e+00 (worst \\|z\\|)" in page


def test_unclassified_finding_fails_the_report():
    _, _, failures = summarise(results())
    assert failures == [("pyhessian", "trace (finding without a classification)")]
    assert "*UNCLASSIFIED*" in render(results())[0]
    _, _, failures = summarise(results(classification="probably fine"))
    assert failures
