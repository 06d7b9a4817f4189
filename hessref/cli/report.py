"""All report prose of the command line: stdout summaries and Markdown reports.

Every sentence here is filled from a result that was computed by the run being
reported (an :class:`hessref.experiments.ExperimentResult` or the demo's measured
dict); nothing states a result in fixed words. Verdict labels use the declared rule of
:func:`hessref.experiments.stats.majority_label` on the Wilson 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hessref.cli.tables import (
    by_role,
    claims_table,
    counting_table,
    exact_table,
    label_of,
    md_table,
    nulls_table,
    rules_table,
    sensitivity_table,
)
from hessref.experiments.rules import lookup
from hessref.experiments.stats import MAJORITY_RULE, ROLE_TAGS


def _g(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def rate_text(v: dict) -> str:
    """'k/n = rate [low, high]' of a verdict entry."""
    return f"{v['holds']}/{v['seeds']} = {v['rate']:.2f} [{v['low']:.2f}, {v['high']:.2f}]"


def verdict_table(result: Any) -> str:
    """Markdown table of every verdict rule of one result (see :func:`.tables.rules_table`)."""
    return rules_table(result)


def verdict_line(v: dict) -> str:
    """One stdout line of a verdict entry, labelled by its role.

    Claims: ``[holds] name: k/n = …``; nulls: ``null (expected to fail) name: … -> fails,
    as expected``; exact checks: ``exact check name: holds at every seed (k/n)``.
    """
    role = v.get("role", "claim")
    if role == "identity":
        return f"  {ROLE_TAGS[role]} {v['name']}: {label_of(v)} ({v['holds']}/{v['seeds']})"
    if role == "null":
        return f"  {ROLE_TAGS[role]} {v['name']}: {rate_text(v)} -> {label_of(v)}"
    return f"  [{label_of(v)}] {v['name']}: {rate_text(v)}"


def _count_sections(result: Any) -> list[str]:
    """The counting-rule comparison and sensitivity tables, when the result has them."""
    lines: list[str] = []
    counting, sensitivity = counting_table(result), sensitivity_table(result)
    if counting:
        lines += [
            "Counting rules side by side (rate of '= target' · 'within ±1' over seeds; the "
            "ratio rule counts only with its margin):",
            "",
            counting,
            "",
        ]
    if sensitivity:
        lines += ["Sensitivity of the counts to the margin and the threshold:", "", sensitivity, ""]
    return lines


def numbers_table(result: Any) -> str:
    """Markdown table of the key numbers (median, IQR, range over seeds)."""
    rows = [
        (
            key,
            d["label"],
            _g(d["median"]),
            f"[{_g(d['q1'])}, {_g(d['q3'])}]",
            f"[{_g(d['min'])}, {_g(d['max'])}]",
            d["n"],
        )
        for key, d in result.numbers.items()
    ]
    return md_table(("quantity", "meaning", "median", "IQR", "range", "seeds"), rows)


def per_seed_table(result: Any, keys: Sequence[str] | None = None) -> str:
    """Markdown table of the scalar key numbers of every seed."""
    keys = list(keys or result.numbers)
    rows = [
        [seed, *(_g(lookup(m, k)) for k in keys)]
        for seed, m in zip(result.seeds, result.per_seed, strict=True)
    ]
    return md_table(("seed", *keys), rows)


def experiment_markdown(result: Any, figures: Sequence[str], command: str) -> str:
    """report.md of ``hessref reproduce NAME``."""
    lines = [
        f"# hessref reproduce {result.name}",
        "",
        f"Paper: {result.paper}. Claim tested: {result.claim}.",
        "",
        f"Setting ({result.mode}): {result.setting_text}.",
        "",
        f"Seeds {', '.join(map(str, result.seeds))}; run time "
        f"{result.timings.get('total', 0):.1f} s; "
        + ", ".join(f"{k} {v}" for k, v in result.environment.items())
        + ". Every number is in [`summary.json`](summary.json).",
        "",
        "## Verdict rules",
        "",
        verdict_table(result),
        "",
        MAJORITY_RULE,
        "",
        *_count_sections(result),
        "## Key numbers over seeds",
        "",
        numbers_table(result),
        "",
        "## Per seed",
        "",
        per_seed_table(result),
        "",
    ]
    for name in figures:
        lines += [f"![{name}]({name}.png)", ""]
    lines += ["## Reproduce", "", "```", command, "```", ""]
    return "\n".join(lines)


def experiment_text(result: Any, out: str) -> str:
    """Short stdout summary of ``hessref reproduce NAME``."""
    lines = [result.summary().splitlines()[0]]
    lines += [verdict_line(v) for v in result.verdicts]
    lines.append(f"report: {out}/report.md")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ demo
_COUNT_ROWS = (
    ("trained H", ""),
    ("trained G", "G_"),
    ("H at initialisation: null (expected to fail)", "init_"),
    ("G at initialisation", "G_init_"),
    ("H on shuffled labels: null (expected to fail)", "shuffled_"),
)


def _said(result: Any, name: str) -> str:
    v = result.verdict(name)
    return "holds" if v["outcomes"][0] else "does not hold"


def demo_text(result: Any, out: str) -> str:
    """The short stdout summary of ``hessref demo`` (one seed)."""
    m, s = result.per_seed[0], result.settings
    st = m["statistics"]["H"]
    rule = result.verdict("trained H: count = C")["statement"]
    arch = "-".join(map(str, m["sizes"]))
    top = ", ".join(f"{v:.3g}" for v in st["top"][: (m["count"] or 0) + 3])
    return "\n".join(
        [
            f"hessref demo ({result.mode} profile, seed {result.seeds[0]})",
            f"  data   : {s['classes']}-class Gaussian mixture, N = {s['samples']}, "
            f"d = {s['input_dim']}",
            f"  model  : MLP {arch} {s['activation']}, {s['loss']}, P = {m['num_params']}",
            f"  trained: {m['steps']} full-batch GD steps (step {s['learning_rate']}), loss "
            f"{m['initial_loss']:.3g} -> {m['final_loss']:.3g}, "
            f"train accuracy {m['train_accuracy']:.1%}",
            f"  H      : lambda_max = {m['lambda_max']:.4g}, lambda_min = "
            f"{m['lambda_min']:.3g}, {st['fraction_negative']:.1%} negative "
            f"(below -{st['zero_rtol']:g} max|lambda|)",
            f"  top eigenvalues of H: {top}, ...",
            f"  outliers ({s['outlier_rule']} rule, top {s['top']}): H {m['count']} (margin "
            f"{m['margin']:.2f}), G {m['G_count']}, G at init {m['G_init_count']}; classes "
            f"C = {s['classes']}",
            f"  rule '{rule}': {_said(result, 'trained H: count = C')}",
            f"  nulls (expected to fail): H at init {m['init_count']} (margin "
            f"{m['init_margin']:.2f}), shuffled labels {m['shuffled_count']} (margin "
            f"{m['shuffled_margin']:.2f}, loss {m['shuffled_final_loss']:.2g})",
            f"  split  : ||H - (G + R)||/||H|| = {m['split_rel_error']:.1e} (engine consistency), "
            f"lambda_min(G) = "
            f"{m['G_min_eigenvalue']:.1e}, rank G = {m['rank_G']} <= {m['rank_G_bound']}, "
            f"||R||/||G|| = {m['R_over_G_norm']:.3g}",
            f"  report : {out}/report.md (summary.json, figures)",
        ]
    )


def _count_table(m: dict) -> str:
    rows = [
        (label, m[f"{p}count"], _g(m[f"{p}score"]), _g(m[f"{p}runner_up"]), _g(m[f"{p}margin"]))
        for label, p in _COUNT_ROWS
    ]
    return md_table(("spectrum", "count", "winning ratio", "runner-up ratio", "margin"), rows)


def _split_sentence(m: dict) -> str:
    """The Gauss-Newton split paragraph of the demo report, from the measured values ``m``."""
    return (
        f"Gauss-Newton split: ‖H − (G + R)‖_F/‖H‖_F = {m['split_rel_error']:.1e} (a consistency "
        "check of one engine's three curvature kinds; the test suite checks H, G and R against "
        f"autograd and the textbook implementation); λ_min(G) = {m['G_min_eigenvalue']:.1e}; "
        f"rank G = {m['rank_G']} ≤ min(P, N(K − 1)) = {m['rank_G_bound']}; ‖R‖₂/‖G‖₂ = "
        f"{m['R_over_G_norm']:.3g}. Rates over seeds: `hessref reproduce demo --seeds 0-9`."
    )


def demo_markdown(result: Any, figures: Sequence[str], command: str) -> str:
    """report.md of ``hessref demo``: the one-seed result in words and tables."""
    m = result.per_seed[0]
    lines = [
        "# hessref demo report",
        "",
        f"Profile `{result.mode}`, seed {result.seeds[0]}; "
        + ", ".join(f"{k} {v}" for k, v in result.environment.items())
        + ". Every number below, with all settings and the full spectra, is in "
        "[`summary.json`](summary.json).",
        "",
        "## Setting",
        "",
        f"{result.setting_text}. P = {m['num_params']} parameters; mean loss; "
        "PyTorch-default initialisation.",
        "",
        *_demo_result_lines(m, result.settings),
        *_demo_rules_lines(result),
        _split_sentence(m),
        "",
        "## Figures",
        "",
    ]
    for name in figures:
        lines += [f"![{name}]({name}.png)", ""]
    lines += ["## Reproduce", "", "```", command, "```", ""]
    return "\n".join(lines)


def _demo_result_lines(m: dict, s: dict) -> list[str]:
    """The "Result" section: training, the trained H's inertia, the outlier table."""
    st = m["statistics"]["H"]
    return [
        "## Result",
        "",
        f"- Training: {m['steps']} steps, loss {m['initial_loss']:.3g} → {m['final_loss']:.3g} "
        f"({m['stopped_reason']}), training accuracy {m['train_accuracy']:.1%}, "
        f"‖∇L‖ = {m['gradient_norm']:.2e}.",
        f"- Trained H: λ_max = {m['lambda_max']:.4g}, λ_min = {m['lambda_min']:.3g}; "
        f"{st['num_negative']} of {st['num_params']} eigenvalues negative and {st['num_zero']} "
        f"zero (zero tolerance {st['zero_rtol']:g}·max|λ|); {st['fraction_near_zero']:.1%} "
        f"below {st['near_zero_rtol']:g}·max|λ|.",
        f"- Outliers by the {s['outlier_rule']} rule among the top {s['top']} eigenvalues, with "
        "their margin (winning ratio / runner-up ratio) and the null baselines:",
        "",
        _count_table(m),
        "",
    ]


def _demo_rules_lines(result: Any) -> list[str]:
    """The "Verdict rules" section: each rule's statement and whether it holds this seed."""
    rows = [
        (
            v["name"],
            ROLE_TAGS.get(v.get("role", "claim")) or "claim",
            v["statement"],
            "holds" if v["outcomes"][0] else "does not hold",
        )
        for v in result.verdicts
    ]
    header = ("rule", "kind", "statement", "this seed")
    return ["## Verdict rules (this seed)", "", md_table(header, rows), ""]


# --------------------------------------------------------------------------- --all
def results_markdown(
    results: Sequence[Any], figures: Sequence[str], command: str, total: float
) -> str:
    """results.md of ``hessref reproduce --all``: the compact tables, then one section each.

    Tables: the claims (one row per paper claim), the null baselines (expected to fail),
    the exact checks (engine consistency; not empirical results), run times. Then per
    experiment: every rule in full, the counting-rule comparison and sensitivity, the
    key numbers and the experiment's figure.
    """
    env = results[0].environment if results else {}
    lines = [
        "# hessref results: the papers' claims over seeds",
        "",
        f"Generated by `{command}` in {total / 60:.1f} min; "
        + ", ".join(f"{k} {v}" for k, v in env.items())
        + ". Each experiment's per-seed numbers are in `<name>.json`.",
        "",
        _run_sentence(results),
        "",
        "## Claims",
        "",
        claims_table(results),
        "",
        MAJORITY_RULE,
        "",
        "## Null baselines (expected to fail)",
        "",
        "Each null applies a claim's rule where the claim's cause is absent; a null that "
        "holds contains the signal it was meant to lack, and says so.",
        "",
        nulls_table(results),
        "",
        "## Exact checks",
        "",
        "Algebraic identities and engine consistency: they hold at every seed or reveal a "
        "bug; they are not counted as empirical results.",
        "",
        exact_table(results),
        "",
        md_table(
            ("experiment", "mode", "seeds", "run time (s)"),
            [(r.name, r.mode, len(r.seeds), f"{r.timings.get('total', 0):.1f}") for r in results],
        ),
        "",
    ]
    for r in results:
        lines += _details(r, figures)
    return "\n".join(lines)


def _run_sentence(results: Sequence[Any]) -> str:
    """Which configuration and seeds the rates of the tables rest on (from the results)."""
    runs = sorted({(r.mode, ", ".join(map(str, r.seeds))) for r in results})
    text = "; ".join(f"{mode} configuration, seeds {seeds}" for mode, seeds in runs)
    return f"Every rate below is over the seeds of its experiment's run: {text}."


def _details(r: Any, figures: Sequence[str]) -> list[str]:
    """The per-experiment section of results.md."""
    lines = [
        f"## {r.name}",
        "",
        f"{r.paper}. Claim: {r.claim}. Setting ({r.mode}): {r.setting_text}. "
        f"Seeds {r.seeds[0]}–{r.seeds[-1]}, {r.timings.get('total', 0):.1f} s.",
        "",
        verdict_table(r),
        "",
        *_count_sections(r),
        numbers_table(r),
        "",
    ]
    if r.name in figures:
        lines += [f"![{r.name}]({r.name}.png)", ""]
    return lines


def results_text(results: Sequence[Any], out: str, total: float) -> str:
    """Short stdout summary of ``hessref reproduce --all`` (claims, nulls, exact checks)."""
    lines = [f"hessref reproduce --all: {len(results)} experiments in {total:.0f} s"]
    for r in results:
        claims, nulls, exact = (by_role(r, x) for x in ("claim", "null", "identity"))
        held = sum(label_of(v) == "holds" for v in claims)
        quiet = sum(label_of(v).startswith("fails") for v in nulls)
        ok = sum(v["holds"] == v["seeds"] for v in exact)
        lines.append(
            f"  {r.name:22s} claims: {held}/{len(claims)} hold; nulls (expected to fail): "
            f"{quiet}/{len(nulls)} fail; exact checks: {ok}/{len(exact)} hold at every seed "
            f"({len(r.seeds)} seeds)"
        )
    lines.append(f"report: {out}/results.md")
    return "\n".join(lines)
