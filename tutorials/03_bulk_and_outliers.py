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
# # 03 — Bulk and outliers
#
# Sagun et al. (2016, 2017) looked at the **whole** eigenvalue spectrum of neural-network
# Hessians and found two parts:
#
# * a **bulk** concentrated around zero, whose size grows with the number of parameters;
# * a few **outliers**, large positive eigenvalues separated from the bulk, whose number
#   they related to the number of classes in the data. Papyan (2019, 2020) explained the
#   outliers through the Gauss-Newton part G: they sit at the eigenvalues of a small matrix
#   built from **class means** of output gradients.
#
# "Number of outliers = number of classes" is an **empirical** claim (docs/theory.md §14): it depends
# on the counting rule, the loss, the stage of training and the seed, and the paper's own
# table deviates from it. We measure it here honestly, with exact spectra, in the regime
# where it has been reported to hold (Sagun et al. 2017, arXiv:1706.04454): C-class Gaussian mixtures in 20 dimensions,
# an MLP 20→30→30→K with ReLU, softmax cross-entropy, full-batch gradient descent to a
# training loss of $10^{-3}$. Outliers are counted by the **largest ratio**
# $\lambda_i/\lambda_{i+1}$ among the top 60 eigenvalues (the largest gap on a log scale).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, spectrum
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "03"

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

# the mixture setting of the outliers-vs-classes experiment; fast mode (CI) uses a smaller problem
d, N, width = (10, 300, 16) if FAST else (20, 600, 30)
TOP = 60


def fit(C, K, seed=0):
    """Mixture with C classes, ReLU MLP with K outputs, GD with step 0.5 to loss <= 1e-3."""
    X, y = data.gaussian_mixture(N, C, d, separation=3.0, rng=seed)
    model = hr.MLP([d, width, width, K], activation="relu")
    theta0 = model.init(rng=seed + 1)
    run = train(model, theta0, X, y, loss="cross_entropy", lr=0.5, steps=3000, stop_loss=1e-3)
    return model, X, y, theta0, run


C = 3
model, X, y, theta0, run = fit(C, K=C)
P = model.num_params
print(f"C = K = {C}, P = {P}, N = {N}: {run.num_steps} GD steps, loss {run.losses[-1]:.2e}")

# %% [markdown]
# ## The spectrum before and after training
#
# We compute the exact H and its split G + R at initialisation and at the trained point.

# %%
spectra, norm_ratio, counts = {}, {}, {}
for stage, theta in (("init", theta0), ("trained", run.theta)):
    H = hr.hessian(model, theta, X, y, loss="cross_entropy")
    G, R = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
    assert np.allclose(H, G + R, rtol=0, atol=1e-12 * np.abs(H).max())
    spectra[stage] = {name: spectrum.eigenvalues(M) for name, M in (("H", H), ("G", G), ("R", R))}
    sp = spectra[
        stage
    ]  # spectral norms from the eigenvalues: ||R||_2 = max|λ(R)|, ||G||_2 = λ_1(G)
    norm_ratio[stage] = np.abs(sp["R"]).max() / sp["G"][0]

for stage, sp in spectra.items():
    lam = sp["H"]
    counts[stage] = {k: spectrum.count_outliers(sp[k], rule="ratio", top=TOP).count for k in "HG"}
    print(
        f"{stage:8s} lambda_max(H) = {lam[0]:.4f}  negative: {np.mean(lam < 0):.0%}  "
        f"||R||/||G|| = {norm_ratio[stage]:.2f}  "
        f"outliers by ratio rule: H {counts[stage]['H']}, G {counts[stage]['G']}"
    )

# exact facts at both points: G is PSD, and its rank is at most N (K - 1) for cross-entropy
for sp in spectra.values():
    assert sp["G"][-1] > -1e-12 * sp["G"][0]
    assert np.sum(sp["G"] > 1e-10 * sp["G"][0]) <= min(P, N * (C - 1))

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for stage, marker in (("init", "o"), ("trained", "s")):
    lam = spectra[stage]["H"][:TOP]
    axes[0].semilogy(
        np.arange(1, TOP + 1)[lam > 0], lam[lam > 0] / lam[0], marker, ms=4, label=f"H {stage}"
    )
lam_G0 = spectra["init"]["G"][:TOP]
axes[0].semilogy(np.arange(1, TOP + 1), lam_G0 / lam_G0[0], "^", ms=4, label="G init")
axes[0].set(
    xlabel="index i",
    ylabel="λ_i / λ_1 (log)",
    title=f"Top {TOP} eigenvalues: {counts['trained']['H']} outliers in trained H (ratio rule)",
)
axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
axes[0].legend()
bins = np.linspace(-1, 1, 101)
for stage in ("init", "trained"):
    lam = spectra[stage]["H"]
    axes[1].hist(lam / np.abs(lam).max(), bins=bins, histtype="step", lw=1.5, label=f"H {stage}")
axes[1].set(yscale="log", xlabel="λ / max|λ|", ylabel="count (log)", title="All eigenvalues")
axes[1].legend()
show(fig, "spectrum_init_vs_trained")

# %% [markdown]
# What to look for, and what this run shows (the sentences below are printed from the numbers
# above, so they describe *your* run):
#
# * **At initialisation** R can be as large as G, many eigenvalues of H are negative and H
#   has no clean outlier group. G alone may show a few outliers, but they can count the
#   **outputs** (K − 1 of them: cross-entropy is invariant to shifting all logits), whatever
#   the classes are — so a "count = C" check at initialisation with K = C can pass for the
#   wrong reason.
# * **After training** the spectrum should be a narrow bulk at 0 with a few large eigenvalues.

# %%
init, trained = spectra["init"]["H"], spectra["trained"]["H"]
print(
    f"At initialisation ||R||/||G|| = {norm_ratio['init']:.2f} and {np.mean(init < 0):.0%} of the "
    f"eigenvalues of H are negative; the ratio rule finds {counts['init']['G']} outlier(s) in G "
    f"(K - 1 = {C - 1})."
)
rel_init, rel_trained = abs(init[-1]) / init[0], abs(trained[-1]) / trained[0]
print(
    f"After training ||R||/||G|| = {norm_ratio['trained']:.2f}; {np.mean(trained < 0):.0%} of the "
    f"eigenvalues are negative and the most negative is {trained[-1]:.1e}, "
    f"{rel_trained:.1e} times lambda_max (at initialisation {rel_init:.1e} times): relative to the "
    f"top of the spectrum the negative part {'shrank' if rel_trained < rel_init else 'did not shrink'}."
)

# %% [markdown]
#
# ## Where the outliers come from: class means (Papyan)
#
# For cross-entropy, $A_i = \mathrm{diag}(p_i) - p_ip_i^\top = \sum_{c'} p_{i,c'}(e_{c'}-p_i)(e_{c'}-p_i)^\top$,
# so with $\delta_{i,c'} = \sqrt{p_{i,c'}}\, J_i^\top (e_{c'} - p_i)$
#
# $$G = \frac1N \sum_i \sum_{c'} \delta_{i,c'} \delta_{i,c'}^\top \quad\text{exactly.}$$
#
# Average $\delta_{i,c'}$ over the samples of class $c$ to get $\delta_{c,c'}$, and let
# $\delta_c = \frac1{C-1}\sum_{c'\ne c}\delta_{c,c'}$. Papyan's term
# $G_1 = \frac{C-1}{C}\sum_c \delta_c\delta_c^\top$ has rank ≤ C, and for balanced classes
# $\lambda_j(G) \ge \lambda_j(G_1)$ for all j (it is one of four PSD parts of G). How far
# above is an empirical question, not a law: the cell below prints this run's ratios
# $\lambda_j(G)/\lambda_j(G_1)$, and `hessref reproduce papyan-hierarchy` gives the rate over
# seeds at which they stay within its declared bound.

# %%
theta = run.theta
J = hr.jacobian(model, theta, X)  # (N, K, P)
F = hr.outputs(model, theta, X)
p = np.exp(F - F.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
E = np.eye(C)[None, :, :] - p[:, None, :]  # E[i, c'] = e_c' - p_i
delta = np.sqrt(p)[:, :, None] * np.einsum("ikp,ick->icp", J, E)  # (N, C, P)

G = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")[0]
G_delta = np.einsum("icp,icq->pq", delta, delta) / N
assert np.allclose(G_delta, G, rtol=0, atol=1e-12 * np.abs(G).max())

assert np.all(np.bincount(y) == N // C)  # balanced classes
delta_cc = np.stack([delta[y == c].mean(axis=0) for c in range(C)])  # (C, C', P)
delta_c = np.stack([np.delete(delta_cc[c], c, axis=0).mean(axis=0) for c in range(C)])  # (C, P)
gram = (C - 1) / C * delta_c @ delta_c.T  # C×C: same nonzero eigenvalues as G_1
lam_G1 = np.sort(np.linalg.eigvalsh(gram))[::-1]
lam_G, lam_H = spectra["trained"]["G"], spectra["trained"]["H"]
print("top C of H :", np.round(lam_H[:C], 5))
print("top C of G :", np.round(lam_G[:C], 5))
print("eig(G_1)   :", np.round(lam_G1, 5), " (class means)")
print("next of G  :", np.round(lam_G[C : C + 3], 5))
assert np.all(lam_G[:C] >= lam_G1 - 1e-12 * lam_G[0])  # exact inequality
ratio_G1 = lam_G[:C] / lam_G1
print(
    f"In this run lambda_j(G) / lambda_j(G_1) for j <= C ranges from {ratio_G1.min():.2f} to "
    f"{ratio_G1.max():.2f}: the top C of G are "
    + (
        "within 10% of"
        if ratio_G1.max() <= 1.1
        else "within 1.5x of"
        if ratio_G1.max() <= 1.5
        else "well above"
    )
    + " the class-mean eigenvalues eig(G_1) here (one seed; the inequality >= 1 is exact)."
)

# %% [markdown]
# ## Outliers vs number of classes
#
# Now vary C. A caveat of docs/theory.md §14 matters: with K = C outputs, anything that counts
# *outputs* would look like it counts classes. So we also train with **K = 10 outputs
# fixed** while C changes: if the count follows C there, it really tracks the data.

# %%
rows = []
lam_33 = spectra["trained"]["H"]  # C = K = 3 was computed above
for C_, K_ in [(2, 2), (3, 3), (5, 5), (2, 10), (3, 10), (5, 10)]:
    if (C_, K_) == (3, 3):
        steps, lam = run.num_steps, lam_33
    else:
        m_, X_, y_, _, r_ = fit(C_, K_)
        steps = r_.num_steps
        lam = spectrum.eigenvalues(hr.hessian(m_, r_.theta, X_, y_, loss="cross_entropy"))
    oc = spectrum.count_outliers(lam, rule="ratio", top=TOP)
    rows.append((C_, K_, oc.count, oc.details["score"], oc.details["runner_up_score"], lam[:TOP]))
    print(
        f"C = {C_}, K = {K_:2d}: {steps:4d} steps, outliers {oc.count} "
        f"(winning ratio {oc.details['score']:.2f}, runner-up {oc.details['runner_up_score']:.2f})"
    )
matches = sum(count == C_ for C_, _, count, *_ in rows)
print(f"count == C in {matches} of {len(rows)} runs")

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, K_fixed in zip(axes, (False, True), strict=True):
    for C_, K_, count, _, _, lam in rows:
        if (K_ == 10) == K_fixed:
            pos = lam[lam > 0]
            ax.semilogy(
                np.arange(1, 21), (pos / pos[0])[:20], "o-", ms=3, label=f"C = {C_} (count {count})"
            )
    found = ", ".join(f"C={C_}: {n}" for C_, K_, n, *_ in rows if (K_ == 10) == K_fixed)
    kind = "K = 10 outputs fixed" if K_fixed else "K = C outputs"
    ax.set(xlabel="index i", title=f"{kind}\noutliers found ({found})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
axes[0].set_ylabel("λ_i / λ_1 (log)")
show(fig, "outliers_vs_classes")

# %% [markdown]
# **What this shows, honestly.** The printed summary below is computed from the table above.
# A count is only convincing when the winning ratio clearly exceeds the runner-up; a thin
# margin means the rule had no clear boundary to find (we call a margin clear when the
# winning ratio exceeds 1.5 times the runner-up: a convention of this tutorial, not a theorem). The fast (CI) mode uses a smaller
# network and is less clean than the full-size settings.

# %%
for K_fixed in (False, True):
    sel = [(C_, n, s_, r_) for C_, K_, n, s_, r_, _ in rows if (K_ == 10) == K_fixed]
    hits = [C_ for C_, n, *_ in sel if n == C_]
    kind = "K = 10 outputs" if K_fixed else "K = C outputs"
    print(f"{kind}: the count equals C for C in {hits} (of {[C_ for C_, *_ in sel]}).")
    for C_, n, s_, r_ in sel:
        margin = "clear" if s_ > 1.5 * r_ else "thin"
        print(
            f"  C = {C_}: count {n}, winning ratio {s_:.2f} vs runner-up {r_:.2f} ({margin} margin)"
        )

# %% [markdown]
# ## One seed is an anecdote: the same sweep over seeds
#
# Everything above used one seed. `hessref.experiments` runs the same kind of sweep over
# many seeds, with a verdict rule declared in code (the count by the ratio rule equals C **and**
# the winning ratio beats the runner-up by at least 1.25×), a Wilson 95% interval for the rate
# at which the rule holds, and **null baselines**: the same rule applied to H at initialisation
# and to H trained on shuffled labels, where no class structure should be found. This uses the
# experiment's small (fast) configuration so it stays quick; `hessref reproduce
# outliers-vs-classes --seeds 0-9` runs the full one.

# %%
from hessref.experiments import run_experiment

sweep = run_experiment("outliers-vs-classes", fast=True, seeds=range(3 if FAST else 10))
for v in sweep.verdicts:
    print(
        f"{v['name']:<40s} holds in {v['holds']:2d}/{v['seeds']} seeds, "
        f"Wilson 95% [{v['low']:.2f}, {v['high']:.2f}]"
    )

# %% [markdown]
# Read the null rows first: a rule that also "finds" C outliers at initialisation or with
# shuffled labels would not be evidence of anything. Then compare the rates of the K = C and
# the K = 10 rows: only if they agree does the count follow the classes rather than the
# outputs. The comparison is printed from the rates above: two rates "agree" when each lies
# inside the other's Wilson interval and "disagree" when the intervals are disjoint; in
# between, the seeds cannot tell them apart.

# %%
import re

by_c = {}
for v in sweep.verdicts:
    found = re.match(r"C = (\d+), K = (\S+): (?:ratio )?count = C$", v["name"])
    if found:
        by_c.setdefault(int(found[1]), {})[found[2]] = v
for C_, pair in sorted(by_c.items()):
    if len(pair) != 2:
        continue
    (ka, a), (kb, b) = sorted(pair.items())
    if a["low"] <= b["rate"] <= a["high"] and b["low"] <= a["rate"] <= b["high"]:
        verdict = "agree (each inside the other's interval)"
    elif a["high"] < b["low"] or b["high"] < a["low"]:
        verdict = "DISAGREE (disjoint intervals)"
    else:
        verdict = "differ, but the intervals overlap: more seeds are needed to tell"
    print(
        f"C = {C_}: K = {ka} holds in {a['holds']}/{a['seeds']}, K = {kb} in {b['holds']}/"
        f"{b['seeds']}: the rates {verdict}"
    )
if not by_c:
    print("(no 'C = .., K = ..: count = C' rows in this version of the experiment)")

# %% [markdown]
# The reason is Papyan's hierarchy (Papyan 2019, arXiv:1901.08244). G splits into PSD parts:
# a class-mean part $G_1$ built from the C vectors $\delta_c$ (the C outliers), and a
# cross-class part $G_2$ built from $\nu_{c,c'} = \delta_{c,c'} - \delta_c$ for the
# $C(C-1)$ pairs $c' \ne c$. For each class $c$ these $C - 1$ vectors sum to zero
# ($\delta_c$ is their mean), which removes one dimension per class: $G_2$ has rank at most
# $C(C-1) - C = C(C-2)$. So **C(C − 1) counts the cross-class means, C(C − 2) the directions
# they actually span**, and the two groups together have at most $C + C(C-2) = C(C-1)$
# eigenvalues. As C grows the cross-class group moves up and merges with the first.
# "Outliers = classes" is a good picture for a few well-separated classes, not a law.
#
# ## Exercises
#
# 1. Repeat the sweep with `activation="tanh"`. Does tanh + CE still give C? (Compare with
#    the `loss-and-activation` experiment on the results page.) What do you find, and does G show C(C − 1) = C + C(C − 2) outliers instead (the class
#    means plus the cross-class group)?
# 2. Use MSE with one-hot targets (`np.eye(K)[y]`) instead of cross-entropy. How many outliers
#    now? (Hint: C·K.)
# 3. Count with `rule="gap"` and `rule="threshold"` as well. Which rule is most stable across seeds?
# 4. Stop training earlier (`stop_loss=1e-1`) and later (`1e-5`). What happens to the scale of the
#    whole spectrum, and to the count? (docs/theory.md §14.)
