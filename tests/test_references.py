"""No reference in the repository points outside it or to a missing part of docs/theory.md.

The checker is ``tests/check_references.py`` (also a script: ``python -m
tests.check_references --fix-hints``). These tests run it on the repository and show it
fails on planted bad references.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from check_references import ROOT, THEORY, check_repository, check_text, parse_theory

TH = parse_theory((ROOT / THEORY).read_text())


def test_theory_defines_numbered_sections_and_equations() -> None:
    assert sorted(TH.sections) == list(range(1, len(TH.sections) + 1))
    assert len(TH.sections) >= 17
    assert {
        (5, 1),
        (5, 2),
        (5, 3),
        (6, 3),
        (7, 2),
        (8, 2),
        (11, 3),
        (12, 2),
        (14, 3),
    } <= TH.equations


def test_repository_has_no_bad_references() -> None:
    found = check_repository()
    assert not found, "\n".join(f"{o.path}:{o.line}: {o.problem}: {o.text}" for o in found)


GOOD = [
    "see docs/theory.md §6, equations (6.1)-(6.5).",
    "the identities of docs/theory.md (5.5) and (9.1) hold off the kinks",
    "(docs/theory.md, section Gradient descent on a quadratic)",
    "a paper (Papyan 2019, arXiv:1901.08244) §4.1 is not ours",
]
BAD = [
    ("exact, THEORY §2.3", "outside the repository"),
    ("see ANCHORS.md §4 for pitfalls", "outside the repository"),
    ("(DESIGN.md: validation happens once)", "outside the repository"),
    ("notes in ../shared/THEORY.md", "outside the repository"),
    ("docs/theory.md §42", "no section §42"),
    ("docs/theory.md, equation (5.99)", r"no equation \(5.99\)"),
    ("docs/theory.md, equations (6.1)-(6.9)", r"no equation \(6.9\)"),
    ("docs/theory.md, section Nonexistent things", "no section titled"),
    ("# --- §2.1 Gauss-Newton split", "bare subsection"),
]


@pytest.mark.parametrize("text", GOOD)
def test_valid_references_pass(text: str) -> None:
    assert check_text("x.py", text, TH) == []


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_planted_bad_references_are_found(text: str, problem: str) -> None:
    found = check_text("x.py", f"# line one\n# {text}\n", TH)
    assert found and found[0].line == 2
    assert any(__import__("re").search(problem, o.problem) for o in found)


def test_planted_reference_in_a_repository_copy_fails(tmp_path: Path) -> None:
    """End to end: a copy of docs/theory.md plus files with planted offences, in a git tree."""
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / THEORY, tmp_path / THEORY)
    for rel in {"tests/test_textbook.py", "tests/test_edges.py"}:
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "tutorial.ipynb").write_text('{"cells": [{"source": ["see THEORY §2.5\\n"]}]}')
    (tmp_path / "mod.py").write_text(
        '"""H = G + R (docs/theory.md (5.1)); bad: docs/theory.md §99."""\n'
    )
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    found = check_repository(tmp_path)
    problems = {(o.path, o.problem.split(":")[0]) for o in found}
    assert ("tutorial.ipynb", "reference outside the repository") in problems
    assert ("mod.py", "docs/theory.md has no section §99") in problems
    # and every "Test:" citation of docs/theory.md that names a file missing here is flagged
    assert any(o.path == THEORY and o.problem == "cited test does not exist" for o in found)


def test_the_introduction_names_every_section() -> None:
    """The introduction's "numbered §1–§N" is the last numbered section heading."""
    import re

    text = (ROOT / THEORY).read_text()
    stated = int(re.search(r"numbered §1–§(\d+)", text).group(1))
    headings = [int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.M)]
    assert headings == list(range(1, len(headings) + 1))
    assert stated == headings[-1]
