# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
# Runs in Colab or a fresh Jupyter: installs hessref if it is missing (a no-op otherwise).
# Course machine requirements: Python >= 3.10 and hessref installed once from the course's copy
# of the repository (`pip install .` in it brings numpy, scipy, matplotlib, autograd,
# scikit-learn, threadpoolctl); no network is needed after that. Set HESSREF_PIP to a wheel, a
# folder or a git URL to install hessref from somewhere else.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("hessref") is None:
    _checkout = os.path.abspath("..")  # a notebook opened from tutorials/ in a checkout
    _default = _checkout if os.path.exists(os.path.join(_checkout, "setup.cfg")) else "hessref"
    _source = os.environ.get("HESSREF_PIP", _default)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", _source])

# %% [markdown]
# # 04 — What changes the spectrum: more parameters (bulk) vs different data (outliers)
#
# Sagun et al. (2016, 2017) separated two influences on the Hessian spectrum:
#
# * **the architecture** (with the data fixed): more parameters add eigenvalues at and near
#   **zero** — the bulk grows — while the top eigenvalues stay roughly where they are;
# * **the data** (with the architecture fixed): harder, more spread-out data move the
#   **outliers** — λ_max grows with the data's complexity.
#
# Part of the first statement is an exact theorem: the Gauss-Newton matrix has rank at most
# $N(K-1)$ for cross-entropy (tutorial 02), so G has **at least $P - N(K-1)$ zero
# eigenvalues**, a number that grows one-for-one with P. The rest are empirical
# observations (docs/theory.md §14; Sagun et al. 2016, 2017): we check them on seeded runs and say what we see.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, spectrum
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "04"

# Figures: shown inline in Jupyter; as a script, each is also saved as PNG into the folder
# named by HESSREF_FIGURES, else figures/ beside this file. Constrained layout: no clipped labels.
plt.rcParams["figure.constrained_layout.use"] = True
_here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
FIGURES = os.environ.get("HESSREF_FIGURES") or (_here and os.path.join(_here, "figures"))


def show(fig, name):
    """Show ``fig``; save it as FIGURES/{TUTORIAL}_{name}.png when FIGURES is set."""
    if FIGURES:
        os.makedirs(FIGURES, exist_ok=True)
        fig.savefig(os.path.join(FIGURES, f"{TUTORIAL}_{name}.png"), dpi=110, bbox_inches="tight")
    plt.show()


threadpool_limits(limits=1, user_api="blas")  # small matrices: one BLAS thread is faster

# %% [markdown]
# ## 1. More parameters, same data
#
# A 3-class Gaussian mixture is fixed; the hidden width of a ReLU MLP d→h→h→3 varies. Every
# network gets the same step size and the **same number of steps** (as in the paper).

# %%
d, N, C = (10, 200, 3) if FAST else (20, 400, 3)
widths = [8, 16, 32] if FAST else [10, 20, 40]
steps = 150
CUTOFF = 1e-3  # "near zero" means |λ| < CUTOFF · λ_max; see the sensitivity check below
X, y = data.gaussian_mixture(N, C, d, separation=3.0, rng=0)

results = {}
for h in widths:
    model = hr.MLP([d, h, h, C], activation="relu")
    run = train(model, model.init(rng=1), X, y, loss="cross_entropy", lr=0.5, steps=steps)
    H = hr.hessian(model, run.theta, X, y, loss="cross_entropy")
    G, R = hr.gauss_newton(model, run.theta, X, y, loss="cross_entropy")
    lam_H, lam_G = spectrum.eigenvalues(H), spectrum.eigenvalues(G)
    P = model.num_params
    # exact: rank G <= N (K - 1), so G has at least P - N (K - 1) zero eigenvalues
    zeros_G = int(np.sum(np.abs(lam_G) <= 1e-10 * lam_G[0]))
    assert zeros_G >= P - N * (C - 1)
    # tr H = tr G holds for piecewise-linear activations (ReLU) only: a labelled check
    same_trace = bool(np.isclose(np.trace(H), np.trace(G), rtol=1e-10))
    near_zero = float(np.mean(np.abs(lam_H) < CUTOFF * lam_H[0]))
    results[h] = dict(P=P, lam=lam_H, near_zero=near_zero, zeros_G=zeros_G, loss=run.losses[-1])
    print(
        f"h = {h:3d}: P = {P:5d}, loss {run.losses[-1]:.1e}, top-3 of H {np.round(lam_H[:3], 4)}, "
        f"|λ| < {CUTOFF:g}·λ_max: {near_zero:.0%}, exact zeros of G: {zeros_G} "
        f"(≥ {max(0, P - N * (C - 1))}), tr H = tr G: {same_trace}"
    )

# %%
# %% [markdown]
# **"Near zero" needs a cutoff.** We call an eigenvalue near zero when
# $|\lambda| < 10^{-3}\,\lambda_{\max}$. Why relative to $\lambda_{\max}$: the spectrum's scale
# changes with the loss reached, and gradient descent with a step $\eta < 2/\lambda_{\max}$ moves
# along such a direction at most $10^{-3}$ times as fast as along the sharpest one, so on
# the time scale of training it is flat. Why $10^{-3}$ and not another number: there is no
# canonical choice, so we show the share for several cutoffs. The statement "the share
# grows with width" is only worth making if it holds across them.

# %%
cutoffs = np.array([1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
share = {
    h: np.array([np.mean(np.abs(r["lam"]) < c * r["lam"][0]) for c in cutoffs])
    for h, r in results.items()
}
grows = [
    all(share[a][j] <= share[b][j] for a, b in zip(widths[:-1], widths[1:], strict=True))
    for j in range(cutoffs.size)
]
for j, c in enumerate(cutoffs):
    row = "  ".join(f"h={h}: {share[h][j]:4.0%}" for h in widths)
    print(f"cutoff {c:.0e}·λ_max: {row}   grows with width: {grows[j]}")
holds = [f"{c:.0e}" for c, g in zip(cutoffs, grows, strict=True) if g]
print(f"The near-zero share grows with width for the cutoffs {holds} (of {len(cutoffs)}).")

colours = {h: f"C{j}" for j, h in enumerate(widths)}  # one colour per width, in every panel
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for h, r in results.items():
    kw = dict(color=colours[h], label=f"h = {h} (P = {r['P']})")
    axes[0].plot(np.arange(1, 21), r["lam"][:20], "o-", ms=3, **kw)
    frac = np.arange(1, r["P"] + 1) / r["P"]
    axes[1].plot(frac, r["lam"] / r["lam"][0], **kw)
    axes[2].semilogx(cutoffs, 100 * share[h], "o-", **kw)
axes[0].set(xlabel="index i", ylabel="eigenvalue λ_i of H", title="Top 20 eigenvalues of H")
axes[0].xaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1].set(xlabel="rank i / P", ylabel="λ_i / λ_max (symlog)", title="Whole spectrum")
axes[1].set_yscale("symlog", linthresh=1e-4)
axes[2].axvline(CUTOFF, color="0.5", ls=":", label=f"cutoff used ({CUTOFF:g})")
axes[2].set(
    xlabel="cutoff c (relative to λ_max)",
    ylabel="% of eigenvalues with |λ| < c·λ_max",
    title="Near-zero share vs cutoff",
)
for ax in axes:
    ax.legend(fontsize=8)
show(fig, "bulk_vs_width")

top = np.array([r["lam"][0] for r in results.values()])
Ps = np.array([r["P"] for r in results.values()])
print(
    f"From h = {widths[0]} to h = {widths[-1]}, P grows {Ps[-1] / Ps[0]:.1f}-fold while lambda_max "
    f"changes by a factor {top[-1] / top[0]:.2f} (max/min over widths {top.max() / top.min():.2f}); "
    f"with the cutoff {CUTOFF:g} the near-zero share goes "
    + " -> ".join(f"{results[h]['near_zero']:.0%}" for h in widths)
    + "."
)

# %% [markdown]
# The top eigenvalues change far less than P does only as a tolerance statement, not an
# identity: they do move (training with a fixed step count reaches different losses at
# different widths). The exact part — at least $P - N(K-1)$ zeros of G — holds every time
# (the assert above).
#
# ## 2. Same architecture, different data
#
# Sagun, Bottou & LeCun (2016) trained a small ReLU network 2→10→10→2 on two 2-D Gaussian
# blobs centred at (1, 1) and (−1, −1), and made the data harder by increasing the blobs'
# standard deviation. λ_max of the trained Hessian grew by two orders of magnitude (about
# 0.02 to 1.7), far more than its spread over random initialisations.

# %%
stds = [0.2, 0.5, 1.0] if FAST else [0.2, 0.4, 0.6, 0.8, 1.0]
blob_model = hr.MLP([2, 10, 10, 2], activation="relu")
blob = {}
for std in stds:
    Xb, yb = data.two_blobs(100, std=std, rng=0)
    run = train(
        blob_model,
        blob_model.init(rng=2),
        Xb,
        yb,
        loss="cross_entropy",
        lr=0.1,
        steps=1000 if FAST else 2000,
    )
    lam = spectrum.eigenvalues(hr.hessian(blob_model, run.theta, Xb, yb, loss="cross_entropy"))
    blob[std] = (lam, run.losses[-1], Xb, yb)
    print(
        f"std {std:.1f}: loss {run.losses[-1]:.3f}, lambda_max {lam[0]:.4f}, "
        f"top-3 {np.round(lam[:3], 4)}"
    )

lmax = np.array([v[0][0] for v in blob.values()])
print(
    f"lambda_max grows with the spread: {bool(np.all(np.diff(lmax) > 0))} "
    f"({lmax[0]:.3g} -> {lmax[-1]:.3g})"
)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for colour, std in zip(("C0", "C1"), (stds[0], stds[-1]), strict=True):  # one colour per std
    _, _, Xb, yb = blob[std]
    axes[0].scatter(*Xb[yb == 0].T, s=8, color=colour, marker="o", label=f"std {std}, class 0")
    axes[0].scatter(*Xb[yb == 1].T, s=10, color=colour, marker="x", label=f"std {std}, class 1")
axes[0].set(title="Two blobs: easy and hard", xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
axes[0].legend(fontsize=7)
axes[1].plot(stds, lmax, "o-")
axes[1].set(
    xlabel="blob standard deviation",
    ylabel="λ_max of the trained H",
    yscale="log",
    title="Harder data, larger outliers",
)
show(fig, "data_complexity")

# %%
trend = "grows" if np.all(np.diff(lmax) > 0) else "does not grow monotonically"
print(
    f"In this run lambda_max {trend} with the spread, from {lmax[0]:.3g} (std {stds[0]}) to "
    f"{lmax[-1]:.3g} (std {stds[-1]}), a factor {lmax[-1] / lmax[0]:.0f}, while the model "
    f"(P = {blob_model.num_params}) is fixed."
)

# %% [markdown]
# When the outlier grows with the data's spread while the model is fixed, the
# outliers are a property of the **data** (through the class structure of the gradients,
# tutorial 03), the bulk a property of the **parametrisation**. This is a single-seed
# demonstration (docs/theory.md §14): harder data are never fit to zero loss, so the
# trained points differ in loss as well as in data.
#
# ## Exercises
#
# 1. Train every width in part 1 to the same **loss** (`stop_loss=1e-3`) instead of the same
#    step count. Do the top eigenvalues agree better?
# 2. Count outliers (`spectrum.count_outliers(lam, rule="ratio", top=60)`) for each width.
#    Does the count change with P?
# 3. Repeat part 2 with 5 initialisations per standard deviation and plot the spread of
#    λ_max. Is the trend larger than the spread?
# 4. Replace the blobs by `data.gaussian_mixture` with `separation` 6, 3 and 1.5. Which way
#    does λ_max move now?
