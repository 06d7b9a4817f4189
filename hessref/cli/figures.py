"""Figures of ``hessref demo``, drawn by :mod:`hessref.plot` from numbers already computed."""

from __future__ import annotations

from typing import Any

import numpy as np


def demo_figures(m: dict, settings: dict) -> dict[str, Any]:
    """Figures of one demo seed ``m`` (its measured dict), keyed by file stem."""
    from matplotlib.figure import Figure

    from hessref import plot

    ev = {k: np.asarray(v) for k, v in m["eigenvalues"].items()}
    top = settings["top"]
    figs: dict[str, Any] = {}
    fig = Figure(figsize=(15, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    plot.plot_ordered(
        ev["H"],
        count=m["count"],
        top=top,
        title=f"Trained H: top {top} eigenvalues ({settings['classes']} classes)",
        ax=ax1,
    )
    plot.plot_histogram(ev["H"], title="Trained H: all eigenvalues", ax=ax2)
    plot.plot_histogram(ev["H_init"], title="H at initialisation: all eigenvalues", ax=ax3)
    figs["spectrum"] = fig
    figs["split"] = plot.plot_split(
        ev["H"], ev["G"], ev["R"], title="Gauss-Newton split H = G + R at the trained point"
    )
    figs["outliers"] = plot.plot_ordered(
        ev["G"], count=m["G_count"], top=top, title=f"Trained G: top {top} eigenvalues"
    )
    fig = Figure(figsize=(5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.semilogy(m["loss_curve"])
    ax.axhline(settings["target_loss"], color="0.4", ls=":", lw=1, label="target")
    ax.set(xlabel="GD step", ylabel="training loss (log scale)", title="Full-batch GD")
    ax.legend(fontsize="small")
    figs["training"] = fig
    return figs
