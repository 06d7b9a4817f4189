"""The results page and the report prose: one compact claims table (fits a 1280-px page),
nulls labelled "expected to fail", exact checks in their own table and never "undecided".

Toy experiments (numbers drawn from the seed, no network) keep these tests instant.
"""

import json

import pytest

from hessref.cli import report
from hessref.cli.tables import (
    MAX_ROW_CHARS,
    claims_table,
    counting_table,
    exact_table,
    nulls_table,
    paper_of,
    sensitivity_table,
    short,
    visible,
)
from hessref.experiments.counting import count_all, count_quantities, count_sensitivity
from hessref.experiments.framework import Experiment, register, run_experiment
from hessref.experiments.rules import Compare, Verdict

LONG = "a claim stated at length " * 20  # 500 characters: must not widen the table

SPECTRA = ([9.0, 4.0, 1.0, 0.9, 0.8, 0.7, 0.6], [9.0, 8.0, 7.5, 1.0, 0.9, 0.8, 0.7])


def _measure(settings, seed, progress):
    ev = SPECTRA[seed % 2]
    return {
        "x": float(seed),
        "exact": 0.0,
        "counts": {"trained H": count_quantities(count_all(ev, 2, top=7))},
        "sensitivity": {"trained H": count_sensitivity(ev, 2, top=7)},
    }


def _rules(settings):
    return [
        Verdict("x ≥ 1", Compare("x", ">=", 1.0), "x is at least one", "Toy 2024 §1",
                paper_value="1.0"),
        Verdict("long claim", Compare("x", ">=", 0.0), LONG, "Toy et al. 2024 " * 8),
        Verdict("null: x < 0", Compare("x", "<", 0.0), "controls for x ≥ 0 by chance: x "
                "shuffled", "Toy 2024 §1", role="null"),
        Verdict("identity: exact = 0", Compare("exact", "==", 0.0), "the exact value is 0",
                "Toy 2024 §2", role="identity"),
    ]  # fmt: skip


PAGE = register(
    Experiment(name="toy-results-page", paper="Toy et al. 2024 (arXiv:0000.00000), Fig. 1",
               claim="toy claim", fast={"t": 1}, full={"t": 1}, measure=_measure,
               rules=_rules, quantities={"x": "x"})
)  # fmt: skip


@pytest.fixture(scope="module")
def two_seeds():
    return run_experiment("toy-results-page", fast=True, seeds=[0, 1])


def test_short_cuts_at_a_word_boundary():
    assert short("one two three", 20) == "one two three"
    assert short("one two three four", 12) == "one two…"
    assert len(short(LONG, 62)) <= 62
    assert visible("[init-vs-trained](#init-vs-trained) · x \\| y") == "init-vs-trained · x | y"


class _Paper:
    paper = "Cohen, Kaur, Li, Kolter, Talwalkar 2021 (arXiv:2103.00065)"


@pytest.mark.parametrize(
    ("source", "shown"),
    [("", "Cohen 2021"), ("Sagun et al. 2017 §3.1, Fig. 2", "Sagun 2017 §3.1, Fig. 2"),
     ("Papyan 2019 (arXiv:1901.08244); Papyan 2020 (arXiv:2008.11865)", "Papyan 2019; Papyan 2020"),
     ("observation, not in the paper", "observation, not in the paper")],
)  # fmt: skip
def test_paper_column_keeps_first_author_year_and_section(source, shown):
    assert paper_of(_Paper, {"source": source}) == shown


def test_claims_table_has_one_row_per_claim_and_fits_the_page(two_seeds):
    text = claims_table([two_seeds] * 6)
    lines = text.splitlines()
    assert lines[0] == "| paper | claim | paper says | our setting (rule) | rate [95%] | verdict |"
    assert len(lines) == 2 + 6 * 2  # header, rule, and the 2 claims (not the null, identity)
    assert max(len(visible(line)) for line in lines) <= MAX_ROW_CHARS
    assert "identity" not in text and "null: x < 0" not in text
    assert "x is at least one" in text and "| 1.0 |" in text and "Toy 2024 §1" in text
    assert "arXiv" not in text and "…" in text  # long text cut, the full claim is in details


def test_nulls_and_exact_checks_have_their_own_tables(two_seeds):
    nulls = nulls_table([two_seeds])
    assert nulls.splitlines()[0].startswith("| null (expected to fail) | controls for |")
    assert "| x ≥ 0 by chance: x shuffled |" in nulls and "undecided" in nulls  # 0/2: no label
    exact = exact_table([two_seeds])
    assert "identity: exact = 0" in exact and "holds at every seed" in exact
    assert "undecided" not in exact  # an exact check is never 'undecided' at two seeds
    for table in (nulls, exact):
        assert max(len(visible(line)) for line in table.splitlines()) <= MAX_ROW_CHARS


def test_stdout_labels_nulls_and_exact_checks(two_seeds):
    text = report.experiment_text(two_seeds, "OUT")
    assert "null (expected to fail) null: x < 0: 0/2" in text
    assert "exact check identity: exact = 0: holds at every seed (2/2)" in text
    assert "[fails] null" not in text and "[undecided] identity" not in text
    assert "[undecided] x ≥ 1: 1/2" in text
    page = report.results_text([two_seeds], "OUT", 1.0)
    assert "claims: 0/2 hold; nulls (expected to fail): 0/1 fail; exact checks: 1/1" in page


def test_counting_and_sensitivity_tables_read_the_result(two_seeds):
    # target 2. seed 0 (9, 4, 1, …): ratio count 2 (4/1 = 4 beats 9/4 = 2.25, margin 1.78),
    #   gap 1 (9 − 4), threshold 2 (λ > 2.25); seed 1 (9, 8, 7.5, 1, …): ratio count 3
    #   (7.5/1, margin 6.56), gap 3 (7.5 − 1), threshold 3.
    counting = counting_table(two_seeds)
    assert (
        counting.splitlines()[0]
        == "| spectrum | ratio (with margin) | gap | threshold | Tukey fence |"
    )
    row = counting.splitlines()[2]
    assert row.startswith("| trained H | 1/2 · 2/2 | 0/2 · 2/2 | 1/2 · 2/2 |")
    sens = sensitivity_table(two_seeds)
    assert "| ratio rule, margin ≥ 1.25 | 1/2 · 2/2 |" in sens
    assert "| ratio rule, margin ≥ 2 | 0/2 · 1/2 |" in sens  # seed 0's margin 1.78 < 2
    assert sens.splitlines()[0] == "| counting rule | trained H |"


def test_results_markdown_sections_and_strict_json(two_seeds):
    doc = report.results_markdown([two_seeds], ["toy-results-page"], "hessref reproduce", 60.0)
    for heading in ("## Claims", "## Null baselines (expected to fail)", "## Exact checks",
                    "## toy-results-page"):  # fmt: skip
        assert heading in doc
    assert LONG.strip() in doc  # the full claim in the details
    assert (
        "rate below is over the seeds of its experiment's run: fast configuration, seeds 0, 1."
        in doc
    )
    assert "Counting rules side by side" in doc and "![toy-results-page]" in doc

    def refuse(name):
        raise ValueError(name)

    data = json.loads(two_seeds.to_json(), parse_constant=refuse)
    assert data["verdicts"][2]["role"] == "null" and data["tables"]["counting"]
