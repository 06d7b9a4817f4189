"""Plots of spectra and experiment results (matplotlib, imported lazily).

Every function takes numbers that were already computed (eigenvalues, a density on a
grid, an :class:`hessref.experiments.ExperimentResult`) and returns a
``matplotlib.figure.Figure``; none computes eigenvalues, densities or losses. Figures are
built with ``matplotlib.figure.Figure`` directly, not ``pyplot``, so no GUI backend or
global figure state is involved: save with ``fig.savefig("out.png")``, or display a
figure in Jupyter by leaving it as the last expression of a cell.

Functions that draw a single panel accept ``ax`` to draw into an existing Axes (the
returned Figure is then ``ax.figure``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hessref.experiments import ExperimentResult


def _new_axes(ax: Axes | None, ncols: int = 1, figsize=(5.0, 3.5)):
    """(figure, axes) — a fresh Figure unless ``ax`` is given (single panel only)."""
    if ax is not None:
        return ax.figure, [ax]
    from matplotlib.figure import Figure  # lazy: importing matplotlib is slow

    # no layout engine: constrained/tight layout re-draws the figure and is several
    # times slower; fixed margins that fit the labels used here suffice
    fig = Figure(figsize=(figsize[0] * ncols, figsize[1]))
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    top = 0.85 if ncols == 1 else 0.78  # multi-panel figures carry a suptitle
    fig.subplots_adjust(left=0.14 / ncols**0.5, right=0.97, bottom=0.15, top=top, wspace=0.35)
    return fig, list(axes)


def _values(name: str, eigenvalues: ArrayLike) -> np.ndarray:
    ev = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if ev.size == 0:
        raise ValueError(f"{name}: expected at least one eigenvalue, got none")
    return ev


def _hist(ax: Axes, ev: np.ndarray, bins: int, label: str | None = None, color=None) -> None:
    counts, edges = np.histogram(ev, bins=bins)
    ax.stairs(counts, edges, fill=True, alpha=0.6, label=label, color=color)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8)
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("count (log scale)")


def plot_histogram(
    eigenvalues: ArrayLike, bins: int = 100, title: str | None = None, ax: Axes | None = None
) -> Figure:
    """Histogram of eigenvalues with a logarithmic count axis (bulk and outliers both visible).

    Parameters
    ----------
    eigenvalues : array_like (P,)
    bins : int
    title : str, optional
    ax : matplotlib Axes, optional
    """
    ev = _values("eigenvalues", eigenvalues)
    fig, (ax,) = _new_axes(ax)
    _hist(ax, ev, bins)
    ax.set_title(title or f"{ev.size} eigenvalues")
    return fig


def plot_ordered(
    eigenvalues: ArrayLike,
    count: int | None = None,
    top: int | None = 60,
    threshold: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The ``top`` largest eigenvalues against their rank, with the outlier cut marked.

    Parameters
    ----------
    eigenvalues : array_like (P,), any order (sorted descending here — formatting only)
    count : int, optional
        Number of outliers (e.g. ``count_outliers(...).count``): a vertical line is drawn
        between rank ``count`` and ``count + 1`` and the outliers are highlighted.
    top : int or None
        How many of the largest eigenvalues to show (all if None).
    threshold : float, optional
        A horizontal line, e.g. the threshold rule's cut.
    """
    ev = -np.sort(-_values("eigenvalues", eigenvalues))
    if top is not None:
        ev = ev[:top]
    fig, (ax,) = _new_axes(ax)
    rank = np.arange(1, ev.size + 1)
    ax.plot(rank, ev, "o", ms=3, color="C0", label="eigenvalues")
    if count is not None:
        ax.plot(rank[:count], ev[:count], "o", ms=5, color="C3", label=f"{count} outliers")
        ax.axvline(count + 0.5, color="C3", ls="--", lw=1)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", ls=":", lw=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel("rank i")
    ax.set_ylabel("λ_i")
    ax.legend(fontsize="small")
    ax.set_title(title or "ordered eigenvalues")
    return fig


def plot_density(
    grid: ArrayLike | Any,
    density: ArrayLike | None = None,
    log: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A smoothed spectral density φ_σ(t) on a grid (e.g. from ``spectrum.slq_density``).

    Parameters
    ----------
    grid : array_like (M,) or an object with ``grid`` and ``density`` attributes
        (a ``hessref.spectrum.SpectralDensity``).
    density : array_like (M,), optional if ``grid`` is such an object
    log : bool
        Logarithmic density axis (the bulk is many orders of magnitude above outliers).
    """
    if density is None:
        grid, density = getattr(grid, "grid", None), getattr(grid, "density", None)
        if grid is None or density is None:
            raise TypeError(
                "grid: pass arrays (grid, density) or an object with .grid and .density"
            )
    t = np.asarray(grid, dtype=np.float64)
    phi = np.asarray(density, dtype=np.float64)
    if t.shape != phi.shape or t.ndim != 1:
        raise ValueError(
            f"grid, density: expected two 1-D arrays of equal length, got {t.shape} and {phi.shape}"
        )
    fig, (ax,) = _new_axes(ax)
    ax.plot(t, phi, lw=1)
    if log:
        positive = phi[phi > 0]
        ax.set_yscale("log")
        if positive.size:
            ax.set_ylim(bottom=max(positive.min(), positive.max() * 1e-12))
    ax.set_xlabel("λ")
    ax.set_ylabel("density")
    ax.set_title(title or "spectral density")
    return fig


def plot_split(
    eigenvalues_H: ArrayLike,
    eigenvalues_G: ArrayLike,
    eigenvalues_R: ArrayLike,
    bins: int = 80,
    title: str | None = None,
) -> Figure:
    """Histograms (log counts) of the spectra of H, G and R side by side, shared x-axis."""
    evs = [
        _values(f"eigenvalues_{m}", e)
        for m, e in (("H", eigenvalues_H), ("G", eigenvalues_G), ("R", eigenvalues_R))
    ]
    lo = min(e.min() for e in evs)
    hi = max(e.max() for e in evs)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    fig, axes = _new_axes(None, ncols=3, figsize=(4.0, 3.2))
    for ax, ev, name, color in zip(axes, evs, "HGR", ("C0", "C2", "C3"), strict=True):
        counts, _ = np.histogram(ev, bins=edges)
        ax.stairs(counts, edges, fill=True, alpha=0.7, color=color)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.8)
        ax.set_xlabel("eigenvalue")
        ax.set_title(f"{name}: min {ev.min():.2g}, max {ev.max():.2g}")
    axes[0].set_ylabel("count (log scale)")
    if title:
        fig.suptitle(title)
    return fig


def plot_interpolation(
    alphas: ArrayLike,
    losses: ArrayLike | Mapping[str, ArrayLike],
    log: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Loss along straight lines θ(α) = (1 − α) θ_a + α θ_b; endpoints α = 0, 1 marked.

    Parameters
    ----------
    alphas : array_like (M,)
    losses : array_like (M,) or mapping label → array_like (M,)
    log : bool
        Logarithmic loss axis.
    """
    a = np.asarray(alphas, dtype=np.float64)
    curves = dict(losses) if isinstance(losses, Mapping) else {"loss": losses}
    fig, (ax,) = _new_axes(ax)
    for label, L in curves.items():
        L = np.asarray(L, dtype=np.float64)
        if L.shape != a.shape:
            raise ValueError(
                f"losses[{label!r}]: expected shape {a.shape} like alphas, got {L.shape}"
            )
        ax.plot(a, L, lw=1.5, label=label)
    for x in (0.0, 1.0):
        ax.axvline(x, color="0.6", ls=":", lw=1)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("α")
    ax.set_ylabel("full-batch loss")
    ax.legend(fontsize="small")
    ax.set_title(title or "loss along the line")
    return fig


def plot_outliers_vs_classes(
    classes: Sequence[int],
    counts: Mapping[str, Sequence[float | None]],
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Outlier counts against the number of classes C, one marker series per rule/case.

    Parameters
    ----------
    classes : sequence of int (M,)
    counts : mapping label → sequence (M,)
        E.g. ``{"ratio, K = C": [...], "gap, K = 10": [...]}``; None entries are skipped.
    """
    C = np.asarray(classes, dtype=np.float64)
    fig, (ax,) = _new_axes(ax)
    ax.plot([C.min(), C.max()], [C.min(), C.max()], color="0.6", ls="--", lw=1, label="count = C")
    markers = "osD^vP*X"
    for i, (label, values) in enumerate(counts.items()):
        v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
        if v.shape != C.shape:
            raise ValueError(f"counts[{label!r}]: expected {C.size} values, got {v.size}")
        jitter = 0.08 * (i - (len(counts) - 1) / 2)  # keep overlapping series visible
        ax.plot(C + jitter, v, markers[i % len(markers)], ms=5, label=label)
    ax.set_xlabel("number of classes C")
    ax.set_ylabel("number of outliers")
    ax.legend(fontsize="x-small")
    ax.set_title(title or "outliers vs classes")
    return fig


# ----------------------------------------------------------------------------------------
# Experiment results
# ----------------------------------------------------------------------------------------
def _first_series(per_seed: Sequence[Mapping[str, Any]]) -> tuple[str, list] | None:
    """The first measured quantity that is a list of numbers in every seed, if any."""
    for key, value in per_seed[0].items():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            if all(isinstance(m.get(key), list) for m in per_seed):
                return key, [m[key] for m in per_seed]
    return None


#: name → figure function of an experiment with its own figure (others get the generic one).
_PLOTTERS: dict[str, Any] = {}


def plot_experiment(result: ExperimentResult) -> Figure:
    """The standard figure of a multi-seed experiment result.

    If the experiment registered its own figure function in ``_PLOTTERS`` (by name),
    that one draws it. Otherwise: left, the rate at which each verdict rule held over
    the seeds with its Wilson 95% interval (read from ``result.verdicts``); right (when
    the experiment measured one), the first list-valued quantity of each seed (e.g. the
    top eigenvalues, or λ_max along a sweep), one line per seed, on a log scale when all
    values are positive.

    Raises
    ------
    ValueError
        If ``result`` has no verdicts or no seeds.
    """
    if getattr(result, "name", None) in _PLOTTERS:
        return _PLOTTERS[result.name](result)
    verdicts = getattr(result, "verdicts", None)
    if not verdicts or not getattr(result, "per_seed", None):
        raise ValueError("result: expected an ExperimentResult with verdicts and per-seed values")
    series = _first_series(result.per_seed)
    fig, axes = _new_axes(None, ncols=2 if series else 1, figsize=(6.0, 0.3 * len(verdicts) + 2))
    # rule names are long: leave room for them left of the first panel
    fig.subplots_adjust(left=0.42 if not series else 0.25, wspace=0.6)
    ax = axes[0]
    rate = np.array([v["rate"] for v in verdicts])
    err = np.array(
        [[v["rate"] - v["low"] for v in verdicts], [v["high"] - v["rate"] for v in verdicts]]
    )
    y = np.arange(len(verdicts))[::-1]
    null = np.array([v.get("role") == "null" or v["name"].startswith("null") for v in verdicts])
    for mask, color, label in ((~null, "C0", "rule"), (null, "0.55", "null baseline")):
        if mask.any():
            ax.errorbar(
                rate[mask], y[mask], xerr=err[:, mask], fmt="o", capsize=3, color=color, label=label
            )
    if null.any():
        ax.legend(fontsize="xx-small", loc="lower right")
    ax.set_yticks(y, [v["name"] for v in verdicts], fontsize="x-small")
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel(f"rate over {len(result.seeds)} seeds (Wilson 95%)")
    ax.set_title("verdict rules")
    if series:
        key, values = series
        for seed, v in zip(result.seeds, values, strict=True):
            axes[1].plot(np.arange(1, len(v) + 1), v, "o-", ms=2, lw=0.8, label=f"seed {seed}")
        if all(min(v) > 0 for v in values):
            axes[1].set_yscale("log")
        axes[1].set_xlabel("index")
        axes[1].set_title(key)
        if len(values) <= 10:
            axes[1].legend(fontsize="xx-small")
    fig.suptitle(f"{result.name} ({result.mode})")
    return fig


# ----------------------------------------------------------------------------------------
# Training dynamics (edge of stability, loss slices, sign descent vs SGD)
# ----------------------------------------------------------------------------------------
def plot_sharpness(
    steps: ArrayLike,
    sharpness: ArrayLike,
    lr: float | None = None,
    losses: tuple[ArrayLike, ArrayLike] | None = None,
    label: str | None = None,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """λ_max(H) against the step, with the 2/η line; optionally the loss in a second panel.

    Parameters
    ----------
    steps, sharpness : array_like (M,)
        Recorded steps and λ_max (e.g. ``result.tracking.steps`` and ``.sharpness``).
    lr : float, optional
        Draws the stability threshold 2/η as a dashed line.
    losses : (steps, values), optional
        Loss curve for a second panel (log scale).
    axes : sequence of Axes, optional
        Draw into these (one, or two with ``losses``), e.g. to overlay several runs.
    """
    n = 2 if losses is not None else 1
    if axes is None:
        fig, axes = _new_axes(None, ncols=n)
    fig = axes[0].figure
    (line,) = axes[0].plot(np.asarray(steps), np.asarray(sharpness), label=label)
    if lr is not None:
        axes[0].axhline(2.0 / lr, ls="--", color=line.get_color(), lw=1)
    axes[0].set_xlabel("step t")
    axes[0].set_ylabel("sharpness λ_max(H)")
    if losses is not None:
        axes[1].plot(np.asarray(losses[0]), np.asarray(losses[1]), color=line.get_color())
        axes[1].set_yscale("log")
        axes[1].set_xlabel("step t")
        axes[1].set_ylabel("training loss")
    if label is not None:
        axes[0].legend(fontsize=8)
    return fig


def plot_loss_slice(
    alphas: ArrayLike | tuple[ArrayLike, ArrayLike],
    values: ArrayLike,
    label: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A 1-D slice (a curve) or a 2-D slice (contours) from :func:`hessref.landscape.loss_along`."""
    fig, (ax,) = _new_axes(ax)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        ax.plot(np.asarray(alphas), values, label=label)
        ax.set_xlabel("α")
        ax.set_ylabel("L(θ + α d)")
        if label is not None:
            ax.legend(fontsize=8)
        return fig
    a, b = alphas if isinstance(alphas, tuple) else (alphas, alphas)
    cs = ax.contour(np.asarray(a), np.asarray(b), values.T, levels=15)
    ax.clabel(cs, fontsize=6)
    ax.set_xlabel("α (d₁)")
    ax.set_ylabel("β (d₂)")
    return fig


def plot_edge_of_stability(result: Any) -> Figure:
    """Figure of the ``edge-of-stability`` experiment (drawn by the experiment's own
    :func:`hessref.experiments.edge_of_stability.draw`): λ_max·η/2 vs step per η for
    every seed, and the loss of the first seed.
    """
    from hessref.experiments.edge_of_stability import draw

    fig, axes = _new_axes(None, ncols=2)
    draw(result, axes)
    fig.suptitle(f"edge of stability, {len(result.seeds)} seeds")
    return fig


def plot_sign_vs_sgd(result: Any) -> Figure:
    """Figure of the ``sign-vs-sgd`` experiment (drawn by the experiment's own
    :func:`hessref.experiments.sign_vs_sgd.draw`): T_SGD/T_Sign vs d and T_Sign vs d.
    """
    from hessref.experiments.sign_vs_sgd import draw

    fig, axes = _new_axes(None, ncols=2)
    draw(result, axes)
    fig.suptitle(f"SGD vs SignSGD, iterations to target, {len(result.seeds)} seeds")
    return fig


_PLOTTERS.update({"edge-of-stability": plot_edge_of_stability, "sign-vs-sgd": plot_sign_vs_sgd})
