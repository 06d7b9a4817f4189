"""Markdown tables of experiment results: claims, nulls, exact checks, counting rules.

Every cell is read from an :class:`hessref.experiments.ExperimentResult` (verdict
entries, derived tables); nothing is computed here except text layout. The claims
table is compact by construction: short columns, long text cut at a word boundary
(the full text is in the per-experiment details), so a row fits a 1280-px page
(:data:`MAX_ROW_CHARS` visible characters, checked by the tests).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hessref.experiments.stats import verdict_label

#: Visible characters per row of the compact tables (a 1280-px page at ~7 px/char, wrapped).
MAX_ROW_CHARS = 180

#: Column widths (visible characters) of the claims table.
WIDTHS = {"paper": 26, "claim": 56, "paper_value": 14, "setting": 32}

NO_CLAIM = "(no claim stated)"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def visible(line: str) -> str:
    """``line`` as rendered: link targets ``[text](#anchor)`` shown as ``text``."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line).replace("\\|", "|")


def short(text: str, width: int) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters (with "…")."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def paper_of(result: Any, v: dict) -> str:
    """The paper (and section) of a rule, first author only: its ``source``, else the
    experiment's paper (``"Sagun, Evci, … 2017 (arXiv:…) §3.1"`` -> ``"Sagun 2017 §3.1"``).
    """
    text = re.sub(r"\s*\(arXiv:[^)]*\)", "", v.get("source") or result.paper)
    year = re.search(r"\b(19|20)\d\d\b", text)
    if year is None:
        return text
    authors = text[: year.start()].strip()
    first = re.split(r"[ ,]", authors, maxsplit=1)[0] if authors else ""
    return f"{first} {text[year.start() :]}".strip() if first else text


def rate_cell(v: dict) -> str:
    """'k/n [low, high]': the rate of a verdict entry with its Wilson 95% interval."""
    return f"{v['holds']}/{v['seeds']} [{v['low']:.2f}, {v['high']:.2f}]"


def label_of(v: dict) -> str:
    """The stored label of a verdict entry (recomputed for 0.2 files without one)."""
    return v.get("label") or verdict_label(v)


def by_role(result: Any, role: str) -> list[dict]:
    """The verdict entries of ``result`` with ``role`` (0.2 entries: role "claim")."""
    return [v for v in result.verdicts if v.get("role", "claim") == role]


def _setting(result: Any, v: dict | None = None, width: int = 32) -> str:
    """The rule (its name names the setting) linked to its experiment's section."""
    text = short(v["name"], width) if v is not None else result.name
    return f"[{text}](#{result.name})"


def claims_table(results: Sequence[Any]) -> str:
    """ONE row per paper claim (role "claim").

    Columns: paper, claim, the paper's number, our setting, rate [Wilson 95%], verdict.
    """
    rows = [
        (
            short(paper_of(r, v), WIDTHS["paper"]),
            short(v.get("claim") or NO_CLAIM, WIDTHS["claim"]),
            short(v.get("paper_value") or "–", WIDTHS["paper_value"]),
            _setting(r, v, WIDTHS["setting"]),
            rate_cell(v),
            label_of(v),
        )
        for r in results
        for v in by_role(r, "claim")
    ]
    header = ("paper", "claim", "paper says", "our setting (rule)", "rate [95%]", "verdict")
    return md_table(header, rows)


def nulls_table(results: Sequence[Any]) -> str:
    """One row per null baseline: what it is and controls for, rate, outcome."""
    rows = [
        (
            short(v["name"], 40),
            short(re.sub(r"^controls for ", "", v.get("claim") or NO_CLAIM), WIDTHS["claim"]),
            _setting(r),
            rate_cell(v),
            label_of(v),
        )
        for r in results
        for v in by_role(r, "null")
    ]
    header = ("null (expected to fail)", "controls for", "experiment", "rate [95%]", "outcome")
    return md_table(header, rows)


def exact_table(results: Sequence[Any]) -> str:
    """One row per exact check (role "identity"): holds at every seed, or where it fails."""
    rows = [
        (
            short(v["name"], 44),
            short(v.get("claim") or NO_CLAIM, WIDTHS["claim"]),
            _setting(r),
            label_of(v),
        )
        for r in results
        for v in by_role(r, "identity")
    ]
    return md_table(("exact check", "what it checks", "experiment", "result"), rows)


def rules_table(result: Any) -> str:
    """Every rule of one experiment in full: role, claim with source, statement, rate, label."""
    rows = [
        (
            v["name"],
            v.get("role", "claim"),
            (v.get("claim") or NO_CLAIM) + (f" ({v['source']})" if v.get("source") else ""),
            v["statement"],
            rate_cell(v),
            label_of(v),
        )
        for v in result.verdicts
    ]
    return md_table(("rule", "role", "claim tested", "statement", "rate [95%]", "verdict"), rows)


def _pair(d: dict) -> str:
    e, w = d["exact"], d["within_one"]
    return f"{e['holds']}/{e['seeds']} · {w['holds']}/{w['seeds']}"


def counting_table(result: Any) -> str:
    """Counting rules side by side: per spectrum, rate of '= target' · 'within ±1' per rule."""
    table = result.tables.get("counting") if isinstance(result.tables, dict) else None
    if not table:
        return ""
    rules = list(next(iter(table.values())))
    rows = [(label, *(_pair(d[rule]) for rule in rules)) for label, d in table.items()]
    names = {"ratio": "ratio (with margin)", "tukey": "Tukey fence"}
    return md_table(("spectrum", *(names.get(r, r) for r in rules)), rows)


def sensitivity_table(result: Any) -> str:
    """Per grid point (margin, threshold), rate of '= target' · 'within ±1' per spectrum."""
    table = result.tables.get("sensitivity") if isinstance(result.tables, dict) else None
    if not table:
        return ""
    labels = list(table)
    settings = [row["setting"] for row in table[labels[0]]]
    rows = [
        (setting, *(_pair(table[label][i]) for label in labels))
        for i, setting in enumerate(settings)
    ]
    return md_table(("counting rule", *labels), rows)
