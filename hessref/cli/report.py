"""All report prose of the command line: stdout summaries and Markdown reports.

Every sentence here is filled from a result that was computed by the run being
reported (an :class:`hessref.experiments.ExperimentResult` or the demo's measured
dict); nothing states a result in fixed words. Verdict labels use the declared rule of
:func:`hessref.experiments.stats.majority_label` on the Wilson 95% interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hessref.experiments.stats import MAJORITY_RULE, majority_label


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def _g(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def rate_text(v: dict) -> str:
    """'k/n = rate [low, high]' of a verdict entry."""
    return f"{v['holds']}/{v['seeds']} = {v['rate']:.2f} [{v['low']:.2f}, {v['high']:.2f}]"


def verdict_table(result: Any) -> str:
    """Markdown table of the verdict rules of one result."""
    rows = [
        (v["name"], v["statement"], rate_text(v), majority_label(v["low"], v["high"]))
        for v in result.verdicts
    ]
    return md_table(("rule", "statement", "holds (Wilson 95%)", "verdict"), rows)


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
        [seed, *(_g(m.get(k)) for k in keys)]
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
    for v in result.verdicts:
        lines.append(f"  [{majority_label(v['low'], v['high'])}] {v['name']}: {rate_text(v)}")
    lines.append(f"report: {out}/report.md")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ demo
_COUNT_ROWS = (
    ("trained H", ""),
    ("trained G", "G_"),
    ("H at initialisation (null)", "init_"),
    ("G at initialisation", "G_init_"),
    ("H after training on shuffled labels (null)", "shuffled_"),
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
            f"{m['margin']:.2f}), G {m['G_count']}; classes C = {s['classes']}",
            f"  rule '{rule}': {_said(result, 'trained H: count = C')}",
            f"  nulls  : H at init {m['init_count']} (margin {m['init_margin']:.2f}), shuffled "
            f"labels {m['shuffled_count']} (margin {m['shuffled_margin']:.2f}, loss "
            f"{m['shuffled_final_loss']:.2g}); G at init {m['G_init_count']}",
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
        (v["name"], v["statement"], "holds" if v["outcomes"][0] else "does not hold")
        for v in result.verdicts
    ]
    return [
        "## Verdict rules (this seed)",
        "",
        md_table(("rule", "statement", "this seed"), rows),
        "",
    ]


# --------------------------------------------------------------------------- --all
def _claim_cell(result: Any, v: dict) -> str:
    if v["name"].startswith("null"):
        return "null baseline: the same rule where no class signal is expected"
    return v["claim"] or result.claim


def claims_table(results: Sequence[Any]) -> str:
    """One row per verdict rule of every result: claim, setting, rule, rate, verdict.

    The experiment and paper are named on the first row of each experiment only.
    """
    rows = []
    for r in results:
        for i, v in enumerate(r.verdicts):
            first = i == 0
            rows.append(
                (
                    f"[{r.name}](#{r.name})" if first else "",
                    r.paper if first else "",
                    _claim_cell(r, v),
                    f"{r.mode}, {len(r.seeds)} seeds" if first else "",
                    f"{v['name']}: {v['statement']}",
                    rate_text(v),
                    majority_label(v["low"], v["high"]),
                )
            )
    header = ("experiment", "paper", "paper's claim", "our setting", "rule", "rate", "verdict")
    return md_table(header, rows)


def results_markdown(
    results: Sequence[Any], figures: Sequence[str], command: str, total: float
) -> str:
    """results.md of ``hessref reproduce --all``: claims table, then one section each."""
    env = results[0].environment if results else {}
    lines = [
        "# hessref results: the papers' claims over seeds",
        "",
        f"Generated by `{command}` in {total / 60:.1f} min; "
        + ", ".join(f"{k} {v}" for k, v in env.items())
        + ". Each experiment's per-seed numbers are in `<name>.json`.",
        "",
        "## Claims",
        "",
        claims_table(results),
        "",
        MAJORITY_RULE + " Rules whose name starts with 'null' apply the same rule to a null "
        "baseline (initialisation or shuffled labels): a high rate there means the count can "
        "hit its target by chance.",
        "",
        md_table(
            ("experiment", "seeds", "run time (s)"),
            [(r.name, len(r.seeds), f"{r.timings.get('total', 0):.1f}") for r in results],
        ),
        "",
    ]
    for r in results:
        lines += [
            f"## {r.name}",
            "",
            f"{r.paper}. Claim: {r.claim}. Setting ({r.mode}): {r.setting_text}. "
            f"Seeds {r.seeds[0]}–{r.seeds[-1]}, {r.timings.get('total', 0):.1f} s.",
            "",
            verdict_table(r),
            "",
            numbers_table(r),
            "",
        ]
        if r.name in figures:
            lines += [f"![{r.name}]({r.name}.png)", ""]
    return "\n".join(lines)


def results_text(results: Sequence[Any], out: str, total: float) -> str:
    """Short stdout summary of ``hessref reproduce --all``."""
    lines = [f"hessref reproduce --all: {len(results)} experiments in {total:.0f} s"]
    for r in results:
        held = sum(majority_label(v["low"], v["high"]) == "holds" for v in r.verdicts)
        lines.append(f"  {r.name:22s} {held}/{len(r.verdicts)} rules hold ({len(r.seeds)} seeds)")
    lines.append(f"report: {out}/results.md")
    return "\n".join(lines)
