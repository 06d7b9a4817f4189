"""Find references that point outside the repository or to parts of docs/theory.md that do not exist.

Run from the repository root::

    python -m tests.check_references              # list offenders, exit 1 if any
    python -m tests.check_references --fix-hints  # also suggest the docs/theory.md target

Scanned: Python files (package, tests, tutorials, benchmarks), notebooks, Markdown
(README, docs, benchmarks) and text templates under ``hessref/``. Offences:

1. a reference to a team document that is not shipped: "THEORY…", "ANCHORS…",
   "DESIGN.md", "../shared";
2. a section "§N" or equation "(N.M)" cited next to "docs/theory.md" (within the same
   sentence) that docs/theory.md does not define, or a "section <title>" it has no
   heading for; and any bare "§N.M" (docs/theory.md has no subsections) that is not
   visibly a paper's (a year, "arXiv" or "paper" just before it);
3. inside docs/theory.md: a "Test:" entry ``tests/<file>.py::<name>`` whose test
   function does not exist, or a "Code:" name ``hessref.…`` that does not import.

``tests/test_references.py`` runs this on the repository and on planted bad references.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THEORY = "docs/theory.md"
SUFFIXES = (".py", ".ipynb", ".md", ".txt", ".j2", ".html", ".rst", ".cfg", ".toml", ".sh")
#: files that talk ABOUT the forbidden names (this checker and its test)
SELF = {"tests/check_references.py", "tests/test_references.py"}

FORBIDDEN = re.compile(
    r"\bTHEORY(?:\.md)?\b|\bANCHORS(?:\.md)?\b|\bDESIGN\.md\b|\.\./shared|/work/shared"
)
OLD_SECTION = re.compile(r"THEORY(?:\.md)?[ ,]*(?:§|section\s*)?\s*(\d+(?:\.\d+)?)")
SECTION = re.compile(r"§\s*(\d+)(?:\.\d+)?")
EQUATION = re.compile(r"\((\d+)\.(\d+)\)")
EQ_RANGE = re.compile(r"\((\d+)\.(\d+)\)\s*[-–]\s*\((\d+)\.(\d+)\)")
SUBSECTION = re.compile(r"§\s*\d+\.\d+")
TITLE = re.compile(r"section\s+[\"“]?([A-Z][^,.;:)\"”\n]*)")

#: old team-notes section -> docs/theory.md target, for --fix-hints
HINTS = {
    "1": "§1 (conventions), §3 (losses)", "2": "§5", "2.1": "§5, (5.1)-(5.4)",
    "2.2": "§5 (rank bounds)", "2.3": "(5.6) and §5 (inertia)", "2.4": "§5 (interpolation)",
    "2.5": "(5.5)", "2.6": "§9, (9.1)-(9.2)", "2.7": "§10, (10.1)-(10.4)", "3": "§17",
    "4": "§11-§15", "4.1": "§11, §13", "4.2": "§12", "4.3": "§11", "4.4": "§15",
    "5": "§6, (6.1)-(6.5)", "6": "§13", "7": "a paper (see docs/theory.md, References)",
    "7.1": "Sagun, Bottou, LeCun 2016, arXiv:1611.07476",
    "7.2": "Sagun et al. 2017, arXiv:1706.04454", "7.3": "Papyan 2019, arXiv:1901.08244",
    "7.4": "Cohen et al. 2021, arXiv:2103.00065", "8": "§14", "8.1": "§14",
    "9": "§7, (7.4)",
}  # fmt: skip


@dataclass(frozen=True)
class Offence:
    path: str
    line: int
    text: str
    problem: str
    hint: str = ""


@dataclass(frozen=True)
class Theory:
    sections: dict[int, str]
    equations: set[tuple[int, int]]


def parse_theory(text: str) -> Theory:
    """Section numbers and titles ("## N. Title") and equation labels "(N.M)" defined."""
    sections = {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"^## (\d+)\. (.+)$", text, flags=re.M)
    }
    equations = set()
    for line in text.splitlines():
        # a label is defined where it ends a display line or fills a table cell "| (2.1) |"
        for m in re.finditer(r"\((\d+)\.(\d+)\)\s*(?:$|\|)", line):
            equations.add((int(m.group(1)), int(m.group(2))))
    return Theory(sections, equations)


def repo_files(root: Path) -> list[str]:
    """Tracked and untracked (not ignored) files with a scanned suffix."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout.split("\n")  # fmt: skip
    return sorted(f for f in out if f.endswith(SUFFIXES) and (root / f).is_file())


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _window(text: str, start: int) -> str:
    """The rest of the sentence after a "theory.md" mention (at most 200 characters)."""
    chunk = text[start : start + 200]
    cut = re.search(r"\.\s|\n\s*\n|\\n\s*\\n|\"\s*,\s*\n", chunk)
    return chunk[: cut.start()] if cut else chunk


def check_text(path: str, text: str, theory: Theory) -> list[Offence]:
    """Offences 1 and 2 in one file's text."""
    found = []
    for m in FORBIDDEN.finditer(text):
        if text[max(0, m.start() - 1) : m.end() + 1] in ('"THEORY"', "'THEORY'"):
            continue  # the bare word as a string literal (e.g. a test that it is NOT printed)
        line = _line_of(text, m.start())
        snippet = text.splitlines()[line - 1].strip()[:120]
        old = OLD_SECTION.match(text, m.start())
        hint = HINTS.get(old.group(1), HINTS.get(old.group(1).split(".")[0], "")) if old else ""
        found.append(Offence(path, line, snippet, f"reference outside the repository: {m.group(0)!r}",
                             f"docs/theory.md {hint}" if hint else "docs/theory.md or a paper"))  # fmt: skip
    for m in SUBSECTION.finditer(text):
        before = text[max(0, m.start() - 40) : m.start()]
        if not re.search(r"(19|20)\d\d|arXiv|paper|[Ss]ection|of\s*$", before):
            line = _line_of(text, m.start())
            found.append(Offence(path, line, text.splitlines()[line - 1].strip()[:120],
                                 f"bare subsection {m.group(0)!r}: docs/theory.md has none; "
                                 "cite docs/theory.md §N or (N.M), or name the paper"))  # fmt: skip
    for m in re.finditer(r"theory\.md", text):
        window = _window(text, m.end())
        line = _line_of(text, m.start())
        for problem in _bad_targets(window, theory):
            snippet = text.splitlines()[line - 1].strip()[:120]
            found.append(Offence(path, line, snippet, problem))
    return found


def _bad_targets(window: str, theory: Theory) -> list[str]:
    bad = []
    for s in SECTION.finditer(window):
        if int(s.group(1)) not in theory.sections:
            bad.append(f"docs/theory.md has no section §{s.group(1)}")
    labels = {(int(e.group(1)), int(e.group(2))) for e in EQUATION.finditer(window)}
    for r in EQ_RANGE.finditer(window):
        labels |= {(int(r.group(1)), int(r.group(2))), (int(r.group(3)), int(r.group(4)))}
    for sec, eq in sorted(labels - theory.equations):
        bad.append(f"docs/theory.md has no equation ({sec}.{eq})")
    for t in TITLE.finditer(window):
        title = t.group(1).strip().lower()
        if not any(h.lower().startswith(title[:20]) for h in theory.sections.values()):
            bad.append(f"docs/theory.md has no section titled {t.group(1).strip()!r}")
    return bad


def check_theory_citations(root: Path, text: str) -> list[Offence]:
    """Offence 3: the "Test:" and "Code:" names in docs/theory.md exist."""
    found = []
    for m in re.finditer(r"(tests/[\w/]+\.py)::(\w+)", text):
        file, name = root / m.group(1), m.group(2)
        if not file.is_file() or not re.search(rf"^def {name}\(", file.read_text(), flags=re.M):
            found.append(Offence(THEORY, _line_of(text, m.start()), m.group(0),
                                 "cited test does not exist"))  # fmt: skip
    for m in re.finditer(r"`(hessref(?:\.\w+)+)`", text):
        if not _importable(m.group(1)):
            found.append(Offence(THEORY, _line_of(text, m.start()), m.group(1),
                                 "cited code name does not import"))  # fmt: skip
    return found


def _importable(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def check_repository(root: Path = ROOT) -> list[Offence]:
    """All offences in the repository at ``root``."""
    theory_path = root / THEORY
    if not theory_path.is_file():
        return [Offence(THEORY, 0, "", "docs/theory.md is missing")]
    theory_text = theory_path.read_text()
    theory = parse_theory(theory_text)
    found = check_theory_citations(root, theory_text)
    for rel in repo_files(root):
        if rel in SELF:
            continue
        found += check_text(rel, (root / rel).read_text(errors="replace"), theory)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix-hints", action="store_true", help="suggest replacements")
    args = parser.parse_args(argv)
    found = check_repository()
    for o in found:
        print(f"{o.path}:{o.line}: {o.problem}\n    {o.text}")
        if args.fix_hints and o.hint:
            print(f"    -> cite {o.hint}")
    print(f"{len(found)} offending reference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
