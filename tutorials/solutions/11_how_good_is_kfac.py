# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions to tutorial 11 — How good is K-FAC?
#
# Each exercise is solved with code that runs (fast mode: `HESSREF_FAST=1`) and prints the
# numbers the answer rests on.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import approx, data
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution11"
threadpool_limits(limits=1, user_api="blas")
plt.rcParams["figure.constrained_layout.use"] = True
_here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
FIGURES = os.environ.get("HESSREF_FIGURES") or (_here and os.path.join(_here, "figures"))


def show(fig, name):
    """Show ``fig``; save it as FIGURES/{TUTORIAL}_{name}.png when FIGURES is set."""
    if FIGURES:
        os.makedirs(FIGURES, exist_ok=True)
        fig.savefig(os.path.join(FIGURES, f"{TUTORIAL}_{name}.png"), dpi=110, bbox_inches="tight")
    plt.show()


def rel(M_tilde, M):
    return np.linalg.norm(M_tilde - M) / np.linalg.norm(M)


# the tutorial's trained network
N = 90 if FAST else 150
X, y = data.gaussian_mixture(N, 3, 6, rng=0)
model = hr.MLP([6, 12, 12, 3], activation="tanh")
theta0 = model.init(rng=1)
steps = 300 if FAST else 1000
theta = train(model, theta0, X, y, loss="cross_entropy", lr=0.5, steps=steps).theta
P = model.num_params
G, _ = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
layers = range(1, model.num_layers + 1)

# %% [markdown]
# ## Exercise 1 — K-FAC with W and b as separate blocks
#
# θ stores $W_l$ row-major, entry $(o, i)$ at $o\,d_{l-1} + i$, which is the row-major order of
# $B_l \otimes \bar A_l[{:}d, {:}d]$; the bias block is $B_l \bar A_l[d, d] = B_l$ (the bias
# entry of $\tilde a$ is 1). The W–b cross terms are zero. Dropping them can only move the
# block away from K-FAC's; whether it moves it away from $G$ is measured.

# %%
print("Exercise 1")
K = approx.kfac(model, theta, X, y, loss="cross_entropy")
for l, (A_bar, B) in zip(layers, K.factors, strict=True):
    d = A_bar.shape[0] - 1
    sep = np.zeros((B.shape[0] * (d + 1),) * 2)
    nW = B.shape[0] * d
    sep[:nW, :nW] = np.kron(B, A_bar[:d, :d])
    sep[nW:, nW:] = B * A_bar[d, d]
    assert A_bar[d, d] == 1.0
    s_l = model.layer_slice(l)
    G_l = G[s_l, s_l]
    K_l = K.layer_block(l)
    assert np.allclose(sep[:nW, :nW], K_l[:nW, :nW], rtol=1e-13, atol=1e-15)  # same W–W block
    print(f"layer {l}: augmented K-FAC error {rel(K_l, G_l):.3f}, separate W/b {rel(sep, G_l):.3f}")

# %% [markdown]
# ## Exercise 2 — Monte-Carlo Fisher with T labels per sample
#
# The MC Fisher is unbiased for G; its entries' variance falls like $1/T$, so the Frobenius
# error should fall like $1/\sqrt T$ once the noise dominates. We fit the slope on log-log
# axes, at initialisation and at the trained network. At the trained network almost every
# sampled label is the true one; the curvature of $G$ lives in the rare other labels, and
# their expected number, $T\sum_i (1 - q_i)$, says how many draws carry it.

# %%
print("Exercise 2")
Ts = [1, 4, 16, 64] if FAST else [1, 4, 16, 64, 256]
seeds = range(3 if FAST else 8)
fig, ax = plt.subplots(figsize=(5.5, 3.8))
med = {}
for label, th in (("init", theta0), ("trained", theta)):
    G_th, _ = hr.gauss_newton(model, th, X, y, loss="cross_entropy")
    errs = np.array([[rel(approx.mc_fisher(model, th, X, y, loss="cross_entropy",
                                          num_samples=T, rng=s).dense(), G_th) for s in seeds]
                     for T in Ts])  # fmt: skip
    med[label] = np.median(errs, axis=1)
    slope = np.polyfit(np.log(Ts), np.log(med[label]), 1)[0]
    p = np.exp(hr.outputs(model, th, X))
    p /= p.sum(axis=1, keepdims=True)
    rare = np.sum(1 - p[np.arange(N), y])
    print(f"{label}: median errors {np.round(med[label], 3)} for T = {Ts} over {len(seeds)} "
          f"seeds; log-log slope {slope:.2f} (1/sqrt(T): -0.50); expected draws of a label "
          f"other than the true one: {rare:.2f} T")  # fmt: skip
    ax.loglog(Ts, med[label], "o-", label=f"{label} (median)")
    ax.loglog(Ts, med[label][0] * np.array(Ts) ** -0.5, "k--", lw=0.6)
ax.set(xlabel="labels per sample T", ylabel="‖F_MC − G‖_F / ‖G‖_F", title="dashed: 1/sqrt(T)")
ax.legend()
show(fig, "mc_samples")
assert med["init"][-1] < med["init"][0] / 2  # the regular regime: the error falls with T

# %% [markdown]
# ## Exercise 3 — damped inverses
#
# $(K + \mu I)^{-1}$ is exact for K-FAC's Kronecker-eigen form. The step it gives is compared
# with the exact damped Gauss-Newton step by their cosine. Large damping makes both steps
# close to $\nabla L/\mu$, so it hides K-FAC's error; small damping exposes it.

# %%
print("Exercise 3")
g = hr.gradient(model, theta, X, y, loss="cross_entropy")
for mu in (1e-3, 1e-2, 1e-1, 1.0):
    step_k = K.inverse(mu) @ g
    step_g = np.linalg.solve(G + mu * np.eye(P), g)
    exact_k = np.linalg.solve(K.dense() + mu * np.eye(P), g)
    assert np.allclose(step_k, exact_k, rtol=1e-8, atol=1e-12 * np.abs(exact_k).max())
    cos = step_k @ step_g / np.linalg.norm(step_k) / np.linalg.norm(step_g)
    print(f"damping {mu:g}: cosine(K-FAC step, exact GN step) = {cos:.3f}")

# %% [markdown]
# ## Exercise 4 — the zoo under MSE
#
# Under MSE $A_i = I$ for every sample, so the last layer's backpropagated factor is the
# same for all samples and K-FAC's last block equals G's (theory (19.10)).

# %%
print("Exercise 4")
Y = np.eye(3)[y]
theta_m = train(model, theta0, X, Y, loss="mse", lr=0.5, steps=steps).theta
G_m, _ = hr.gauss_newton(model, theta_m, X, Y, loss="mse")
args = (model, theta_m, X, Y)
zoo = {"K-FAC": approx.kfac(*args, loss="mse"), "EK-FAC": approx.ekfac(*args, loss="mse"),
       "block-diagonal G": approx.block_diagonal(*args, loss="mse"),
       "diagonal G": approx.diagonal(*args, loss="mse"),
       "empirical Fisher": approx.empirical_fisher(*args, loss="mse"),
       "MC Fisher (1 label)": approx.mc_fisher(*args, loss="mse", rng=0)}  # fmt: skip
for name, a in zoo.items():
    q = approx.quality(a, G_m, k=3)
    print(f"{name:20s} error {q.relative_frobenius:.3f}, layers {np.round(q.layer_errors, 3)}")
last = approx.quality(zoo["K-FAC"], G_m).layer_errors[-1]
print(f"K-FAC's last-layer error under MSE: {last:.1e}")
assert last < 1e-12
