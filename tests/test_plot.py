"""Plot functions return matplotlib Figures that save to valid PNGs (synthetic inputs)."""

import io

import numpy as np
import pytest

from hessref import plot
from hessref.experiments import ExperimentResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(fig):
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=20)
    data = buf.getvalue()
    assert data[:8] == PNG_SIGNATURE and len(data) > 500


EV = np.concatenate([[5.0, 3.0, 2.0], np.random.default_rng(0).normal(0, 0.05, 200)])


def test_histogram_has_log_count_axis():
    fig = plot.plot_histogram(EV, bins=30, title="t")
    assert fig.axes[0].get_yscale() == "log"
    assert_png(fig)


def test_ordered_with_cut():
    fig = plot.plot_ordered(EV, count=3, top=20, threshold=1.0)
    ax = fig.axes[0]
    assert any(
        np.size(line.get_xdata()) == 2 and np.allclose(line.get_xdata(), 3.5)
        for line in ax.get_lines()
    )
    assert_png(fig)


def test_density_from_arrays_and_object():
    grid = np.linspace(-1, 6, 200)
    dens = np.exp(-(grid**2)) + 1e-9
    assert_png(plot.plot_density(grid, dens))

    class D:
        pass

    d = D()
    d.grid, d.density = grid, dens
    assert_png(plot.plot_density(d, log=False))
    with pytest.raises(ValueError, match="equal length"):
        plot.plot_density(grid, dens[:-1])
    with pytest.raises(TypeError, match="grid"):
        plot.plot_density(grid)


def test_split_side_by_side():
    fig = plot.plot_split(EV, np.abs(EV), EV - np.abs(EV))
    assert len(fig.axes) == 3
    assert_png(fig)


def test_interpolation_curves():
    a = np.linspace(-0.5, 1.5, 9)
    assert_png(plot.plot_interpolation(a, a**2 + 0.1))
    fig = plot.plot_interpolation(a, {"x": a**2 + 0.1, "y": (a - 1) ** 2 + 0.1}, log=True)
    assert len(fig.axes[0].get_lines()) >= 2
    assert_png(fig)
    with pytest.raises(ValueError, match="alphas"):
        plot.plot_interpolation(a, a[:-1])


def test_outliers_vs_classes_chart():
    fig = plot.plot_outliers_vs_classes([2, 3, 5], {"ratio": [2, 3, 5], "gap": [1, None, 2]})
    assert_png(fig)
    with pytest.raises(ValueError, match="expected 3"):
        plot.plot_outliers_vs_classes([2, 3, 5], {"ratio": [2, 3]})


def test_draws_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert plot.plot_histogram(EV, ax=ax) is fig


def _synthetic_result(series: bool = True):
    """A minimal multi-seed result (summarised from made-up per-seed values)."""
    from hessref.experiments import get_experiment
    from hessref.experiments.framework import summarise

    exp = get_experiment("data-complexity")
    per_seed = [
        {"lambda_max": [0.02 * (s + 1), 0.5, 1.2], "growth": 60.0 / (s + 1)} for s in range(3)
    ]
    if not series:
        per_seed = [{"growth": m["growth"]} for m in per_seed]
    return summarise(exp, exp.settings(True), [0, 1, 2], per_seed)


@pytest.mark.parametrize("series", [True, False])
def test_plot_experiment(series):
    res = _synthetic_result(series)
    fig = plot.plot_experiment(res)
    assert len(fig.axes) == (2 if series else 1)
    assert_png(fig)


def test_plot_experiment_needs_verdicts():
    with pytest.raises(ValueError, match="verdicts"):
        plot.plot_experiment(ExperimentResult("x", "fast", {}, [], []))
