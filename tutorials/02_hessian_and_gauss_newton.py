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
# # 02 — The exact Hessian and its Gauss-Newton split H = G + R
#
# For a loss $L(\theta) = \frac1N\sum_i \ell(f_i(\theta), y_i)$ the chain rule applied twice gives
#
# $$H = \nabla^2 L = \underbrace{\frac1N \sum_i J_i^\top A_i J_i}_{G\ \text{(Gauss-Newton)}}
#   \;+\; \underbrace{\frac1N \sum_i \sum_c r_{i,c}\, \nabla^2_\theta f_{i,c}}_{R\ \text{(residual)}},$$
#
# where $J_i = \partial f_i / \partial\theta$ is the $k\times P$ output Jacobian,
# $r_i = \nabla_f \ell$ and $A_i = \nabla_f^2 \ell$ the gradient and Hessian of the loss in
# the outputs:
#
# | loss | $r_i$ | $A_i$ |
# |---|---|---|
# | MSE $\frac12\lVert f-y\rVert^2$ | $f_i - y_i$ | $I_k$ |
# | cross-entropy $-\log \mathrm{softmax}(f)_y$ | $p_i - e_{y_i}$ | $\mathrm{diag}(p_i) - p_i p_i^\top$ |
#
# Both $A_i$ are positive semi-definite (PSD), so **G is PSD**: every negative eigenvalue
# of H must come from R. This tutorial computes each piece exactly and checks the
# statements of Sagun et al. (2017, §3) as executable facts: PSD-ness, rank, the
# interpolation limit R = 0, and where negative curvature comes from.

# %%
import os

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import matplotlib.pyplot as plt
import numpy as np

import hessref as hr

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "02"

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


rng = np.random.default_rng(1)

sizes = [4, 6, 3]
model = hr.MLP(sizes, activation="tanh")
N = 20 if FAST else 40
theta = model.init(rng)
X = rng.standard_normal((N, sizes[0]))
y = rng.integers(0, sizes[-1], size=N)  # cross-entropy takes integer labels
P = model.num_params
print(model, "P =", P, " N =", N)

# %% [markdown]
# ## The exact Hessian, checked against autograd
#
# `hr.hessian` assembles H **layer pair by layer pair**: for layers $l \le m$ the block
# $\partial^2 L / \partial\hat W_m \partial\hat W_l$ (with $\hat W_l = [W_l \mid b_l]$) is
# written in closed form from the forward pass and a backward pass of second derivatives
# $M_m = \nabla^2_{z_m}\ell$,
#
# $$M_L = A_i, \qquad M_m = D_m W_{m+1}^\top M_{m+1} W_{m+1} D_m
#   + \operatorname{diag}\!\big(\sigma''(z_m) \odot W_{m+1}^\top \delta_{m+1}\big),$$
#
# ($D_m = \operatorname{diag}\sigma'(z_m)$, $\delta_m = \partial\ell/\partial z_m$), and each block
# is one matrix product whose inner dimension is the number of samples — about $2NP^2$ flops
# in large BLAS calls, no finite differences and no Hessian-vector products. autograd's
# reverse-over-reverse Hessian of the same loss, written independently, must agree to
# rounding error.

# %%
H = hr.hessian(model, theta, X, y, loss="cross_entropy")


def loss_ad(t):
    A, pos = X, 0
    for l, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        W = anp.reshape(t[pos : pos + d_in * d_out], (d_out, d_in))
        pos += d_in * d_out
        b = t[pos : pos + d_out]
        pos += d_out
        A = anp.dot(A, W.T) + b
        if l < len(sizes) - 1:
            A = anp.tanh(A)
    logp = A - asp.logsumexp(A, axis=1, keepdims=True)
    return -anp.mean(logp[np.arange(N), y])


H_ad = autograd.hessian(loss_ad)(theta)
rel = np.linalg.norm(H - H_ad) / np.linalg.norm(H_ad)
print(f"||H - H_autograd|| / ||H|| = {rel:.1e}")
assert rel < 1e-10 and np.array_equal(H, H.T)

# %% [markdown]
# ## G by hand from the Jacobians
#
# `hr.jacobian` returns all $J_i$ as an $(N, k, P)$ array. With the softmax probabilities
# $p_i$ we form $A_i$ and contract. `hr.gauss_newton` returns the same G and R from the
# same layer-pair block formulas as H: G keeps $M_L = A_i$ and drops every term with
# $\sigma''$ or with the loss gradient $\delta_m$, which leaves the blocks of
# $\frac1N\sum_i J_i^\top A_i J_i$; R keeps exactly the dropped terms (it is computed
# directly, not as H − G, so the check $H = G + R$ below compares two computations).

# %%
J = hr.jacobian(model, theta, X)  # (N, k, P)
F = hr.outputs(model, theta, X)
p = np.exp(F - F.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
A = np.einsum("ic,cd->icd", p, np.eye(sizes[-1])) - np.einsum("ic,id->icd", p, p)
G_hand = np.einsum("ikp,ikl,ilq->pq", J, A, J) / N

G, R = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
assert np.allclose(G, G_hand, rtol=1e-12, atol=1e-14 * np.abs(G).max())
split_err = np.linalg.norm(H - (G + R)) / np.linalg.norm(H)
print(f"||H - (G + R)|| / ||H|| = {split_err:.1e}")
assert split_err < 1e-12

# Heat maps of log10 |entry| on one colour scale; exact zeros are drawn white. Lines separate
# the parameter blocks W_1, b_1, W_2, b_2 (layer-pair blocks are the rectangles between them).
top = np.log10(np.abs(H).max())
edges, centres, labels = [], [], []
for l in range(1, model.num_layers + 1):
    for kind, sl in (("W", model.weight_slice(l)), ("b", model.bias_slice(l))):
        edges.append(sl.stop - 0.5)
        centres.append((sl.start + sl.stop - 1) / 2)
        labels.append(f"${kind}_{l}$")
cmap = plt.get_cmap("viridis").with_extremes(bad="white")
fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
for ax, M, name in zip(axes, [H, G, R], ["H", "G", "R = H − G"], strict=True):
    with np.errstate(divide="ignore"):
        logabs = np.log10(np.abs(M))
    im = ax.imshow(np.ma.masked_invalid(logabs), cmap=cmap, vmin=top - 8, vmax=top)
    for e, lab in zip(edges[:-1], labels[:-1], strict=True):
        layer_end = lab.startswith("$b")  # thick line between layers, thin between W and b
        for line in (ax.axhline, ax.axvline):
            line(e, color="k", lw=1.2 if layer_end else 0.4)
    ax.set_xticks(centres, labels)
    ax.set_yticks(centres, labels)
    ax.set(title=f"{name}  (P = {P})", xlabel="parameter block", ylabel="parameter block")
cbar = fig.colorbar(im, ax=axes, shrink=0.85)
cbar.set_label("log$_{10}$ |entry|  (white: exactly 0)")
show(fig, "heatmap_H_G_R")

# %% [markdown]
# Look at the lower-right block of R: it is **zero**. The output layer enters $f$
# linearly, so $\nabla^2 f$ has no second derivative within the last layer (docs/theory.md (5.5)).

# %%
last = model.layer_slice(model.num_layers)
assert np.abs(R[last, last]).max() == 0.0

# %% [markdown]
# ## The same G and R, the slow way
#
# `hessref.core.textbook` builds G and R a third way: per sample, from explicit Jacobians
# $J_i$ and output Hessians $\nabla^2_\theta f_{i,c}$ carried through the second-order chain
# rule of docs/theory.md §8 ("The textbook second-order chain rule"), with $r_i$ and $A_i$
# written out again from the loss. It shares nothing with the layer-pair formulas of
# `hr.gauss_newton` except the model's layout, so a wrong sign or a dropped $\sigma''$ term
# in one would show up as a disagreement here, in R as well as in G (the hand-made G above
# only checks G). It costs $O(NP^2(P + \sum_l d_l))$ in Python loops, hence its size limit.

# %%
import time

from hessref.core.textbook import textbook_curvature

t0 = time.perf_counter()
G_fast, R_fast = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
t_fast = time.perf_counter() - t0
t0 = time.perf_counter()
_, G_book, R_book = textbook_curvature(model, theta, X, y, loss="cross_entropy")
t_book = time.perf_counter() - t0
rel_G = np.linalg.norm(G_book - G_fast) / np.linalg.norm(G_fast)
rel_R = np.linalg.norm(R_book - R_fast) / np.linalg.norm(R_fast)
print(f"relative difference textbook vs hr.gauss_newton: G {rel_G:.1e}, R {rel_R:.1e}")
print(f"time: textbook {1e3 * t_book:.1f} ms, hr.gauss_newton {1e3 * t_fast:.1f} ms")
assert rel_G < 1e-12 and rel_R < 1e-11

# %% [markdown]
# ## PSD-ness and where negative eigenvalues come from
#
# Since $G \succeq 0$, $H = G + R \succeq R$, and by Weyl's monotonicity theorem
# $\lambda_i(H) \ge \lambda_i(R)$ for **every** index $i$ (eigenvalues sorted descending).
# In particular $\lambda_{\min}(H) \ge \lambda_{\min}(R)$ and H has at most as many
# negative eigenvalues as R. Weyl's perturbation bound also gives
# $|\lambda_i(H) - \lambda_i(G)| \le \lVert R\rVert_2$.

# %%
from hessref.spectrum import eigenvalues

lam_H, lam_G, lam_R = eigenvalues(H), eigenvalues(G), eigenvalues(R)
tol = 1e-12 * np.abs(lam_H).max()
print(f"lambda_min(G) = {lam_G[-1]:.1e}   (PSD up to rounding)")
print(
    f"negative eigenvalues: H {np.sum(lam_H < -tol)}, G {np.sum(lam_G < -tol)}, R {np.sum(lam_R < -tol)}"
)
assert lam_G[-1] > -tol
assert np.all(lam_H >= lam_R - tol)  # λ_i(H) ≥ λ_i(R) for every i
assert np.sum(lam_H < -tol) <= np.sum(lam_R < -tol)
assert np.all(np.abs(lam_H - lam_G) <= np.abs(lam_R).max() + tol)

fig, ax = plt.subplots(figsize=(6, 4))
for lam, name in [(lam_H, "H"), (lam_G, "G"), (lam_R, "R")]:
    ax.plot(lam, ".-", label=name)
ax.axhline(0, color="k", lw=0.5)
ax.set(xlabel="index i (descending)", ylabel="λ_i", title="Spectra of H, G and R")
ax.legend()
show(fig, "spectra_H_G_R")

# %% [markdown]
# ## Rank: G is low-rank, H need not be
#
# $G = \frac1N \sum_i J_i^\top A_i J_i$ is a sum of N terms of rank at most
# $\operatorname{rank} A_i$: $k$ for MSE, $k-1$ for cross-entropy (since $A_i\mathbf 1 = 0$).
# So $\operatorname{rank} G \le \min(P, Nk)$ or $\min(P, N(k-1))$. Structure lowers it further:
# for ReLU, scaling the incoming weights of a hidden unit up and its outgoing weights down
# leaves $f$ unchanged, so each hidden unit contributes one direction in $\ker J_i$ for
# every $i$; under cross-entropy, shifting all logits by a constant changes nothing, which
# adds $d_{L-1} + 1$ more directions in $\ker G$.
#
# The worked example of docs/theory.md §5: a 5→7→3 ReLU MLP (P = 66) on N = 40 samples has
# $\operatorname{rank} G = 66 - 7 = 59$ for MSE and $66 - 7 - 8 = 51$ for cross-entropy.


# %%
def numerical_rank(M):
    lam = eigenvalues(M)
    return int(np.sum(lam > 1e-10 * lam[0]))


relu = hr.MLP([5, 7, 3], activation="relu")
th = relu.init(rng)
Xr = rng.standard_normal((40, 5))
G_mse, R_mse = hr.gauss_newton(relu, th, Xr, rng.standard_normal((40, 3)), loss="mse")
G_ce, R_ce = hr.gauss_newton(relu, th, Xr, rng.integers(0, 3, 40), loss="cross_entropy")
rank_mse, rank_ce = numerical_rank(G_mse), numerical_rank(G_ce)
print(f"rank G (MSE) = {rank_mse}   rank G (CE) = {rank_ce}")
if relu.activation.name == "relu":  # the count of symmetry directions above is for ReLU only
    print(f"check (ReLU formula 59 and 51): {rank_mse == 59 and rank_ce == 51}")
    assert rank_mse == 59 and rank_ce == 51

# %% [markdown]
# For ReLU (piecewise linear), every layer-diagonal block of R vanishes almost everywhere,
# so $\operatorname{tr} R = 0$ and $\operatorname{diag} H = \operatorname{diag} G$. This fails for
# smooth activations such as tanh.

# %%
# a labelled check, not an assert: it is a fact about piecewise-linear activations only
for name, (mod, G_, R_) in {"5-7-3": (relu, G_ce, R_ce), "4-6-3": (model, G, R)}.items():
    zero = abs(np.trace(R_)) < 1e-12 * np.abs(G_).max()
    print(
        f"{name} {mod.activation.name:5s} MLP: tr R = {np.trace(R_):+.2e}  ->  tr R = 0 holds: {zero}"
    )

# %% [markdown]
# ## Interpolation: R = 0
#
# Under MSE, $r_i = f_i - y_i$. If the network fits the targets exactly, every residual is
# zero, hence $R = 0$ and $H = G \succeq 0$: at an interpolating minimum all curvature is
# Gauss-Newton. A cheap way to build such a point is to use the network's own outputs as
# targets.

# %%
Y_fit = hr.outputs(model, theta, X)
G_i, R_i = hr.gauss_newton(model, theta, X, Y_fit, loss="mse")
H_i = hr.hessian(model, theta, X, Y_fit, loss="mse")
print(
    f"max|R| = {np.abs(R_i).max():.1e},  ||H - G|| / ||G|| = {np.linalg.norm(H_i - G_i) / np.linalg.norm(G_i):.1e}"
)
assert np.abs(R_i).max() < 1e-14 and np.allclose(H_i, G_i, rtol=1e-12, atol=1e-15)

# %% [markdown]
# Cross-entropy never interpolates at finite θ: $p_i - e_{y_i} \ne 0$, so R ≠ 0. As the
# margins grow, p tends to one-hot and **all** of $A_i$, $r_i$, G, R and H shrink toward 0
# (tutorial 03 meets this effect).
#
# ## Summary
#
# * H = G + R exactly; G is PSD with rank at most $N(k-1)$ (CE) or $Nk$ (MSE), often less.
# * Negative eigenvalues of H come only from R: $\lambda_i(H) \ge \lambda_i(R)$.
# * R vanishes at interpolation (MSE), in the last layer's block, and has zero trace for ReLU.
#
# ## Exercises
#
# 1. Verify $\operatorname{tr} G = \frac1N \sum_i \lVert A_i^{1/2} J_i \rVert_F^2$ using `J` and `A` above.
# 2. Build the ReLU rescaling direction $D_j\theta$ for hidden unit $j$ of `relu` (docs/theory.md §9) and check
#    that $J_i D_j\theta = 0$ for all samples.
# 3. Compute the **empirical Fisher** $\frac1N\sum_i \nabla\ell_i \nabla\ell_i^\top$ (per-sample
#    gradients: $J_i^\top r_i$) and compare it with G. When do they coincide?
# 4. Move the interpolating point slightly (`theta + 1e-3 * noise`). How does $\lVert R\rVert$ scale
#    with the size of the residuals?
