"""Drawing helpers for the figures experiments declare (``Experiment.figure``).

An experiment owns its figure: ``figure(result, path)`` picks numbers already in the
:class:`~hessref.experiments.result.ExperimentResult` (verdict rates and intervals,
per-seed values) and draws them with these helpers; nothing here computes a statistic.
They live in the experiments layer because :mod:`hessref.plot` sits above it (the
layering of docs/architecture.md); matplotlib is imported only when drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def new_figure(ncols: int = 1, figsize: tuple[float, float] = (6.0, 3.5)) -> tuple[Any, list]:
    """A matplotlib ``Figure`` (no pyplot, no GUI backend) and its ``ncols`` axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _interval(entries: Sequence[Mapping[str, Any]]) -> tuple[list, list]:
    rate = [float(v["rate"]) for v in entries]
    err = [
        [r - float(v["low"]) for r, v in zip(rate, entries, strict=True)],
        [float(v["high"]) - r for r, v in zip(rate, entries, strict=True)],
    ]
    return rate, err


def rates_panel(
    ax: Any,
    x: Sequence[float],
    series: Mapping[str, Sequence[Mapping[str, Any]]],
    xlabel: str,
    title: str = "",
) -> None:
    """Rates over seeds with their Wilson 95% intervals, one line per series.

    ``series[label]`` is a list of verdict entries (``rate``, ``low``, ``high``), one
    per value of ``x`` (e.g. the number of classes C).
    """
    for i, (label, entries) in enumerate(series.items()):
        rate, err = _interval(entries)
        shift = (i - (len(series) - 1) / 2) * 0.06 * (max(x) - min(x) or 1)  # side by side
        ax.errorbar(
            [xi + shift for xi in x], rate, yerr=err, fmt="o-", capsize=3, ms=4, lw=1, label=label
        )
    ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel=xlabel, ylabel="rate over seeds (Wilson 95%)", ylim=(-0.05, 1.05), title=title)
    ax.legend(fontsize="x-small")


def rule_comparison_panel(
    ax: Any, rows: Mapping[str, Sequence[Mapping[str, Any]]], title: str = ""
) -> None:
    """Horizontal rates with intervals: one row per label, one marker per entry.

    ``rows[label]`` is a pair of verdict entries: (= target, within ±1).
    """
    labels = list(rows)
    for j, (kind, marker) in enumerate((("= target", "o"), ("within ±1", "s"))):
        entries = [rows[k][j] for k in labels]
        rate, err = _interval(entries)
        y = [len(labels) - 1 - i + (0.15 if j == 0 else -0.15) for i in range(len(labels))]
        ax.errorbar(rate, y, xerr=err, fmt=marker, capsize=3, ms=4, label=kind)
    ax.set_yticks(range(len(labels)), labels[::-1], fontsize="x-small")
    ax.set(xlim=(-0.05, 1.05), xlabel="rate over seeds (Wilson 95%)", title=title)
    ax.axvline(0.5, color="0.6", lw=0.8, ls=":")
    ax.legend(fontsize="x-small")


def save(fig: Any, path: str | Path) -> None:
    """Write ``fig`` to the PNG file ``path`` (100 dpi, as every report figure)."""
    fig.savefig(path, format="png", dpi=100)
