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
# # 06 — Small vs large batch: sharper outliers, and one basin?
#
# A widespread belief says that large-batch training finds "sharp" minima and small-batch
# training "flat" ones, and that flat minima generalise better. Sagun et al. (2017, §4)
# looked at this through the Hessian spectrum and claim two things:
#
# 1. the large-batch solution has **larger outliers** (a larger λ_max) with about the same
#    number of them, while the bulk looks alike;
# 2. continuing the large-batch solution with small batches (LB → SB) moves it to a point
#    joined to it by a straight line **without a barrier**: the two lie in one basin
#    (the *connected-basin* test, Sagun et al. 2017 §4.1).
#
# A third, different test is the straight line between two solutions trained from the same
# start with different batch sizes (SB–LB; Sagun, Bottou, LeCun 2016 show such a line for
# GD vs SGD). It is not the connected-basin test, and we report it as what it is.
#
# Two caveats decide how to compare. The cross-entropy curvature shrinks as the loss falls,
# so a sharper point after a fixed number of steps may only be a point with a higher loss:
# we stop **both runs at the same training loss** and record how many steps each took. And
# one run is one seed: `hessref reproduce small-vs-large-batch` gives the rates over seeds.
#
# The originals are a convnet on MNIST and AlexNet on CIFAR-10; both are beyond dense
# Hessians. We use an MLP analogue on scikit-learn's 8×8 digits (a small real dataset,
# **not** MNIST) and exact spectra. Everything here is a seeded single-run demonstration
# (docs/theory.md §14), not a property.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, spectrum
from hessref.landscape import interpolate_loss
from hessref.operators import hessian_operator
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "06"

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

N, steps = (200, 1500) if FAST else (400, 4000)
lr, small, large, target = 0.5, 10, N // 2, 0.01
X, y = data.digits(N, rng=0)
model = hr.MLP([64, 20, 10], activation="relu")
theta0 = model.init(rng=1)
print(
    f"digits: N = {N}, MLP 64-20-10 ReLU, P = {model.num_params}; SGD with step {lr}, batch "
    f"{small} vs {large}, each until the full-batch loss <= {target} (at most {steps} steps)"
)


def sgd(start, batch, seed, stop_loss=target, budget=steps):
    """Minibatch SGD from ``start`` until the full-batch loss <= stop_loss (or the budget)."""
    return train(
        model,
        start,
        X,
        y,
        loss="cross_entropy",
        lr=lr,
        steps=budget,
        batch_size=batch,
        rng=seed,
        stop_loss=stop_loss,
    )


runs = {"small batch": sgd(theta0, small, 2), "large batch": sgd(theta0, large, 3)}
for name, run in runs.items():
    acc = np.mean(hr.outputs(model, run.theta, X).argmax(axis=1) == y)
    print(
        f"{name}: {run.num_steps} steps, full-batch loss {run.losses[-1]:.2e} "
        f"(target reached: {run.losses[-1] <= target}), training accuracy {acc:.0%}"
    )
matched = all(run.losses[-1] <= target for run in runs.values())

# %% [markdown]
# ## The spectra at the two solutions
#
# Same data, same start, same step size, same training loss — only the batch size (and
# hence the number of steps) differs. We compute the exact Hessian of the full training
# loss at both endpoints.

# %%
spectra = {}
for name, run in runs.items():
    H = hr.hessian(model, run.theta, X, y, loss="cross_entropy")
    spectra[name] = spectrum.eigenvalues(H)
    # an independent channel for λ_max: Lanczos on the matrix-free operator
    op = hessian_operator(model, run.theta, X, y, loss="cross_entropy")
    top = spectrum.top_eigenpairs(op, 3, method="lanczos", rng=0)
    assert np.allclose(top.values, spectra[name][:3], rtol=1e-8)

for name, lam in spectra.items():
    print(
        f"{name}: lambda_max {lam[0]:.4f}, top-5 {np.round(lam[:5], 4)}, "
        f"lambda_min {lam[-1]:.1e}, negative {np.mean(lam < 0):.0%}"
    )
ratio = spectra["large batch"][0] / spectra["small batch"][0]
print(f"lambda_max(large) / lambda_max(small) = {ratio:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, lam in spectra.items():
    axes[0].plot(np.arange(1, 31), lam[:30], "o-", ms=3, label=name)
    axes[1].hist(lam, bins=100, histtype="step", lw=1.5, label=name)
axes[0].set(xlabel="index i", ylabel="λ_i", title="Top 30 eigenvalues")
axes[1].set(xlabel="eigenvalue", ylabel="count (log)", yscale="log", title="All eigenvalues")
for ax in axes:
    ax.legend()
show(fig, "spectra_small_vs_large")

# %% [markdown]
# ## The straight line SB–LB (not the connected-basin test)
#
# Along $\theta(\alpha) = (1-\alpha)\,\theta_{SB} + \alpha\,\theta_{LB}$ we evaluate the full
# training loss, also a little beyond the endpoints ($\alpha \in [-0.5, 1.5]$). A barrier
# would show as a bump between α = 0 and α = 1. We measure it as the highest loss on the
# segment minus the higher endpoint loss, and compare it with the **endpoint losses**
# themselves: a bump that is small next to the initial loss can still be many times the loss
# of the solutions, and then it is a real barrier for them.

# %%
alphas = np.linspace(-0.5, 1.5, 41)
line = interpolate_loss(
    model,
    runs["small batch"].theta,
    runs["large batch"].theta,
    X,
    y,
    loss="cross_entropy",
    alphas=alphas,
)
# the endpoints of the line are exactly the two solutions
assert np.isclose(line[alphas == 0][0], runs["small batch"].losses[-1], rtol=1e-12)
assert np.isclose(line[alphas == 1][0], runs["large batch"].losses[-1], rtol=1e-12)
inside = (alphas >= 0) & (alphas <= 1)
ends = (line[alphas == 0][0], line[alphas == 1][0])
barrier = line[inside].max() - max(ends)
print(
    f"barrier on the SB–LB line: {barrier:.1e} = {barrier / max(ends):.2f} x the higher endpoint "
    f"loss (endpoint losses {ends[0]:.1e} and {ends[1]:.1e}; initial loss "
    f"{runs['small batch'].losses[0]:.2f})"
)

# %% [markdown]
# ## The connected-basin test: large batch, then small batch
#
# The paper's CIFAR experiment continued large-batch training with small batches at the
# same step size. We do the same from the large-batch endpoint for a fixed number of steps:
# does the small-batch noise move the solution to a flatter point, and is the straight path
# between them free of a barrier? A flat line means little if the continuation barely
# moved, so we also compare with a random direction of the same length.

# %%
runs["large → small"] = sgd(runs["large batch"].theta, small, 4, stop_loss=None, budget=300)
spectra["large → small"] = spectrum.eigenvalues(
    hr.hessian(model, runs["large → small"].theta, X, y, loss="cross_entropy")
)
line2 = interpolate_loss(
    model,
    runs["large batch"].theta,
    runs["large → small"].theta,
    X,
    y,
    loss="cross_entropy",
    alphas=alphas,
)
ends2 = (line2[alphas == 0][0], line2[alphas == 1][0])
barrier2 = line2[inside].max() - max(ends2)
step = runs["large → small"].theta - runs["large batch"].theta
d = np.random.default_rng(5).standard_normal(step.size)
d *= np.linalg.norm(step) / np.linalg.norm(d)
rand = interpolate_loss(
    model,
    runs["large batch"].theta,
    runs["large batch"].theta + d,
    X,
    y,
    loss="cross_entropy",
    alphas=alphas[inside],
)
random_rise = (rand.max() - rand[0]) / rand[0]
print(
    f"large → small: loss {runs['large → small'].losses[-1]:.2e}, "
    f"lambda_max {spectra['large → small'][0]:.4f} (large batch: {spectra['large batch'][0]:.4f}); "
    f"barrier on the LB–(LB→SB) line {barrier2:.1e} = {barrier2 / max(ends2):.2f} x the higher "
    f"endpoint loss; a random direction of the same length rises {random_rise:.2f} x"
)

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.semilogy(alphas, line, label="small batch (α=0) → large batch (α=1)")
ax.semilogy(alphas, line2, label="large batch (α=0) → large→small (α=1)")
ax.axvspan(0, 1, color="0.9")
ax.set(xlabel="α", ylabel="full training loss (log)", title="Loss along straight lines")
ax.legend(fontsize=8)
show(fig, "loss_along_lines")

# %% [markdown]
# **What we see in this run** — printed from the numbers above, so it describes *your* run:

# %%
lmax = {name: lam[0] for name, lam in spectra.items()}
top5 = {name: lam[:5] for name, lam in spectra.items()}
sharper = lmax["large batch"] > lmax["small batch"]
rel2 = barrier2 / max(ends2)
print(
    f"* Connected basin (LB -> its SB continuation): the line rises {rel2:.2f} x its higher "
    f"endpoint loss, against {random_rise:.2f} x along a random direction of the same length: "
    f"{'no barrier' if rel2 <= 0.1 else 'a barrier'} at the 10% threshold, "
    f"{'flatter' if rel2 < random_rise else 'not flatter'} than the random direction."
)
loss_note = (
    f"at matched training loss ({runs['small batch'].losses[-1]:.2e} vs "
    f"{runs['large batch'].losses[-1]:.2e})"
    if matched
    else "NOT at matched loss (a run missed the target within the budget)"
)
print(
    f"* lambda_max {loss_note}: large batch {lmax['large batch']:.4f}, small batch "
    f"{lmax['small batch']:.4f} (ratio {ratio:.2f}): the large-batch solution is "
    f"{'sharper' if sharper else 'not sharper'}; its top-5 eigenvalues are larger in "
    f"{np.sum(top5['large batch'] > top5['small batch'])} of 5."
)
rel = barrier / max(ends)
verdict = (
    "negligible even next to the solutions' own loss"
    if rel < 0.05
    else "tiny next to the initial loss, but not negligible next to the solutions' own loss"
    if rel <= 1
    else "higher than the solutions' own loss: a real barrier for them"
)
print(
    f"* The straight SB–LB line (its own test, not the connected basin) rises at most {barrier:.1e} above the higher endpoint, "
    f"{rel:.0%} of that endpoint's loss: {verdict}."
)
print(
    f"* Continuing with small batches from the large-batch point changes lambda_max from "
    f"{lmax['large batch']:.4f} to {lmax['large → small']:.4f}; the highest point of that segment is "
    f"{barrier2:.1e} above its higher endpoint ({barrier2 / max(ends2):.2f} x its loss)."
)

# %% [markdown]
# These are one seed's numbers; they depend on the seed, the step size and the data.
# `hessref reproduce small-vs-large-batch` runs the experiment over many seeds, at matched
# training loss, and reports how often each of these statements holds, with intervals.
#
# ## Exercises
#
# 1. Repeat with 3 seeds for the minibatch order (`rng=`). Is λ_max(large)/λ_max(small) > 1
#    every time?
# 2. Draw the loss along a **random** direction of the same length as θ_LB − θ_SB through
#    θ_SB. Compare with the SB–LB line: what makes the interpolation line special?
# 3. The step size matters: GD is only stable while λ_max < 2/η (docs/theory.md §15). Compute 2/η
#    here and compare with the λ_max values. Which run comes closer to the edge?
# 4. Compute the second derivative of the loss along the line at α = 0 exactly, as
#    $d^\top H d$ with $d = \theta_{LB} - \theta_{SB}$ (use `hr.hvp`), and compare with the curvature
#    of the plotted line. (Careful: finite differences across ReLU kinks are unreliable.)
