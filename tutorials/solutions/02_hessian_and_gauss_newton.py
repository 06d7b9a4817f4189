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
# # Solutions to tutorial 02 — The exact Hessian and its Gauss-Newton split

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import hessref as hr

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution02"
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
y = rng.integers(0, sizes[-1], size=N)
G, R = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
J = hr.jacobian(model, theta, X)  # (N, k, P)
F = hr.outputs(model, theta, X)
p = np.exp(F - F.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
A = np.einsum("ic,cd->icd", p, np.eye(sizes[-1])) - np.einsum("ic,id->icd", p, p)

# %% [markdown]
# ## Exercise 1 — $\operatorname{tr} G$ from the Jacobians
#
# $\operatorname{tr}(J^\top A J) = \operatorname{tr}(A^{1/2} J J^\top A^{1/2}) = \lVert A^{1/2} J\rVert_F^2$
# for PSD $A$; the square root comes from the eigendecomposition of each $A_i$.

# %%
print("Exercise 1")
w, U = np.linalg.eigh(A)  # batched over samples
sqrtA = np.einsum("icd,id,ied->ice", U, np.sqrt(np.clip(w, 0, None)), U)
trace_by_norms = np.sum(np.einsum("icd,idp->icp", sqrtA, J) ** 2) / N
print(f"tr G = {np.trace(G):.12f},  (1/N) sum ||A_i^(1/2) J_i||_F^2 = {trace_by_norms:.12f}")
assert np.isclose(trace_by_norms, np.trace(G), rtol=1e-12)

# %% [markdown]
# ## Exercise 2 — the ReLU rescaling direction
#
# Scaling the incoming weights and bias of hidden unit $j$ by $e^{t}$ and its outgoing
# weights by $e^{-t}$ leaves $f$ unchanged for ReLU (positive homogeneity). Its derivative at
# $t = 0$ is the direction $D_j\theta$: $+W_1[j,:]$, $+b_1[j]$ and $-W_2[:, j]$, zero elsewhere.

# %%
print("Exercise 2")
relu = hr.MLP([5, 7, 3], activation="relu")
th = relu.init(rng)
Xr = rng.standard_normal((40, 5))
Jr = hr.jacobian(relu, th, Xr)
(W1, b1), (W2, _) = relu.unflatten(th)
worst = 0.0
for j in range(7):
    Wd1, bd1, Wd2 = np.zeros_like(W1), np.zeros_like(b1), np.zeros_like(W2)
    Wd1[j], bd1[j], Wd2[:, j] = W1[j], b1[j], -W2[:, j]
    d = relu.flatten([(Wd1, bd1), (Wd2, np.zeros(3))])
    worst = max(worst, np.abs(Jr @ d).max() / (np.abs(Jr).max() * np.linalg.norm(d)))
print(f"max over units and samples of |J_i D_j theta| (relative): {worst:.1e}")
assert worst < 1e-14

# %% [markdown]
# ## Exercise 3 — empirical Fisher vs G
#
# The per-sample gradient is $g_i = J_i^\top r_i$ with $r_i = p_i - e_{y_i}$, so the empirical
# Fisher is $\frac1N\sum_i J_i^\top r_i r_i^\top J_i$ while $G = \frac1N \sum_i J_i^\top A_i J_i$. They
# coincide when $r_i r_i^\top$ averages to $A_i$: $\mathbb E_{y\sim p_i}[(p_i - e_y)(p_i - e_y)^\top]
# = \mathrm{diag}(p_i) - p_ip_i^\top = A_i$, i.e. when the labels are **drawn from the model's
# own predictions** (the true Fisher). With the real labels they differ; at a perfect fit
# the empirical Fisher vanishes while G does not.

# %%
print("Exercise 3")
r = p - np.eye(3)[y]
EF = np.einsum("ikp,ik,il,ilq->pq", J, r, r, J) / N
print(f"real labels: ||EF - G|| / ||G|| = {np.linalg.norm(EF - G) / np.linalg.norm(G):.2f}")
draws = [1, 10, 100] if FAST else [1, 10, 100, 1000]
errors = []
for m in draws:
    acc = np.zeros_like(G)
    for _ in range(m):
        ys = np.array([rng.choice(3, p=pi) for pi in p])
        rs = p - np.eye(3)[ys]
        acc += np.einsum("ikp,ik,il,ilq->pq", J, rs, rs, J) / N
    errors.append(np.linalg.norm(acc / m - G) / np.linalg.norm(G))
    print(f"labels drawn from p, averaged over {m:4d} draws: ||EF - G|| / ||G|| = {errors[-1]:.3f}")
assert errors[-1] < errors[0]
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(draws, errors, "o-", label="labels drawn from the model")
ax.loglog(draws, errors[0] / np.sqrt(draws), "k:", label="1/sqrt(draws)")
ax.set(xlabel="number of label draws", ylabel="||EF − G|| / ||G||", title="Empirical Fisher → G")
ax.legend()
show(fig, "empirical_fisher")

# %% [markdown]
# ## Exercise 4 — leaving the interpolating point
#
# R is linear in the residuals $r_i = f_i - y_i$. Moving θ by $\varepsilon$ makes the
# residuals $O(\varepsilon)$, so $\lVert R\rVert$ grows linearly in $\varepsilon$: slope 1 on a log-log plot.

# %%
print("Exercise 4")
Y_fit = hr.outputs(model, theta, X)
noise = rng.standard_normal(theta.size)
scales = np.logspace(-6, -1, 11)
normR, normres = [], []
for s in scales:
    t = theta + s * noise
    normR.append(np.linalg.norm(hr.gauss_newton(model, t, X, Y_fit, loss="mse")[1], 2))
    normres.append(np.linalg.norm(hr.outputs(model, t, X) - Y_fit))
slope = np.polyfit(np.log(scales), np.log(normR), 1)[0]
print(f"||R||_2 against the step size: slope {slope:.2f} (expect 1)")
assert abs(slope - 1) < 0.1
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(scales, normR, "o-", label="||R||₂")
ax.loglog(scales, normres, "s--", label="||residuals||")
ax.set(
    xlabel="distance ε from the interpolating point",
    ylabel="norm",
    title="R scales with the residuals",
)
ax.legend()
show(fig, "residual_scaling")
