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
# %% [markdown]
# # 10 — Permutation saddles and Hessian surgery
#
# Two recent uses of the exact Hessian, each small enough to check every step:
#
# 1. **Permutation saddles** (after Brea et al. 2019, arXiv:1907.02911). Duplicate a hidden
#    unit of a trained network and split its outgoing weights $\alpha$ / $1-\alpha$: the
#    function does not change, so a critical point stays critical, the loss is flat along
#    the line $\alpha \mapsto \theta(\alpha)$, the Hessian has exact null vectors, and the
#    split of the incoming weights has curvature $\alpha(1-\alpha)\,\xi^\top B \xi$
#    (docs/theory.md §21, (21.1)–(21.4)).
# 2. **Hessian surgery** (arXiv:2605.07790 as we read it; we could not read the paper). Step
#    along the $C-1$ spike eigenvectors of $H$ so that the per-class margins move towards
#    equal per-class accuracy, using the exact sensitivity $S = \nabla\mu\, V$ ((21.5)–(21.6)).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.experiments import derive_seeds
from hessref.experiments import hessian_surgery as surgery
from hessref.experiments import permutation_saddles as ps

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "10"
threadpool_limits(limits=1, user_api="blas")

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


# %% [markdown]
# ## 1. A critical point to float64 precision
#
# A tanh MLP 2-3-2 fitted by MSE to a noisy teacher, trained by GD and then polished with
# damped Newton steps on the exact $H$ (`permutation_saddles.critical_point`). Noise keeps the
# residuals $r_i = f_i - y_i$ nonzero, which matters below.

# %%
s = ps._FAST
sd = derive_seeds(0, "data", "init")
X, Y = ps.regression_data(s, sd["data"])
model = hr.MLP([2, 3, 2], "tanh")
theta = ps.critical_point(model, model.init(rng=sd["init"]), X, Y, s)
g = hr.gradient(model, theta, X, Y, loss="mse")
lam = np.linalg.eigvalsh(hr.hessian(model, theta, X, Y, loss="mse"))
print(f"|grad L| = {np.linalg.norm(g):.1e}; lambda_min = {lam[0]:.2e}, lambda_max = {lam[-1]:.3f}")
assert np.linalg.norm(g) < 1e-12 and lam[0] > 0  # a strict local minimum

# %% [markdown]
# ## 2. Duplicate a unit: the valley
#
# `embed(model, theta, layer, unit, alpha)` returns the 2-4-2 network and $\theta(\alpha)$. The loss
# is the same for every $\alpha$ (21.1), and by (21.2) the gradient is the original's with unit
# $j$'s incoming part split $\alpha$ / $1-\alpha$: zero here.

# %%
L0 = hr.loss(model, theta, X, Y, loss="mse")
alphas = np.linspace(-1.0, 2.0, 13 if FAST else 31)
rows = []
for a in alphas:
    wide, tw = ps.embed(model, theta, 1, 0, a)
    ev = np.linalg.eigvalsh(hr.hessian(wide, tw, X, Y, loss="mse"))
    gw = hr.gradient(wide, tw, X, Y, loss="mse")
    rows.append((hr.loss(wide, tw, X, Y, loss="mse") - L0, np.linalg.norm(gw), ev[0], ev))
dL = max(abs(r[0]) for r in rows)
print(f"largest |L(theta(alpha)) - L| = {dL:.1e}; largest |grad| = {max(r[1] for r in rows):.1e}")
assert dL <= 1e-12 * L0 and max(r[1] for r in rows) < 1e-11

# %% [markdown]
# ## 3. Null directions and negative curvature
#
# By (21.3), the direction $e(u)$ ($u$ on unit $j$'s outgoing column, $-u$ on the copy's) has
# $H e(u) = (Mu, -Mu)$ on the two units' incoming weights, with
# $M = s\sum_i \sigma'(z_{ij})\,\bar a_i r_i^\top$. The valley tangent $u = v_j$ is in $\ker M$ at
# a critical point, so it is an exact null vector. By (21.4) the split of the incoming weights has
# curvature $\alpha(1-\alpha)\xi^\top B\xi$ with $B = s\sum_i \sigma''(z_{ij})(v_j^\top r_i)\bar a_i\bar a_i^\top$:
# a negative eigenvalue of $\alpha(1-\alpha)B$ bounds $\lambda_{\min}(H)$ from above.

# %%
M, B = ps.split_matrices(model, theta, X, Y, 1, 0)
b = np.linalg.eigvalsh(B)
wide, tw = ps.embed(model, theta, 1, 0, 0.3)
Hw = hr.hessian(wide, tw, X, Y, loss="mse")
null = np.linalg.norm(Hw @ ps.valley_direction(wide, tw, 1, 0)) / np.abs(Hw).max()
print(f"singular values of M: {np.linalg.svd(M, compute_uv=False)}; |H e(v_j)|/|H| = {null:.1e}")
print(f"eigenvalues of B: {b}")
bound = [a * (1 - a) * (b[0] if a * (1 - a) > 0 else b[-1]) / (a**2 + (1 - a) ** 2) for a in alphas]
lmin = np.array([r[2] for r in rows])
assert null < 1e-12 and np.all(lmin <= np.array(bound) + 1e-12)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(alphas, lmin, "o-", label=r"$\lambda_{\min}(H(\theta(\alpha)))$ (exact)")
ax.plot(alphas, bound, "--", label=r"bound (21.4): $\alpha(1-\alpha)\lambda(B)/\|e\|^2$")
ax.axhline(0, color="0.6", lw=0.8)
ax.set(xlabel=r"split $\alpha$", ylabel="curvature", title="the duplicated unit's valley")
ax.legend(fontsize="small")
show(fig, "lambda_min_vs_alpha")

# %% [markdown]
# $B$ has eigenvalues of both signs here, so every point of the valley except $\alpha \in \{0, 1\}$ is a
# strict saddle — and at $\alpha \in \{0, 1\}$ too, by Theorem 21.5, because $M \ne 0$. The
# experiment `hessref reproduce permutation-saddles` measures the rates over seeds.
#
# ## 4. Hessian surgery: the exact spike-to-class sensitivity
#
# A 3-class mixture with class shares 0.6 / 0.3 / 0.1, so the per-class accuracies differ. The
# smooth margin $m_i = f_{i,y_i} - \log\sum_{c\ne y_i} e^{f_{i,c}}$ averaged per class gives
# $\mu_c$; its gradient comes from the per-sample Jacobians (21.6).

# %%
ss = surgery._FAST
sd = derive_seeds(1, "data", "init", "random")
Xs, ys, Xt, yt = surgery._split_data(ss, sd["data"])
net = hr.MLP([ss["input_dim"], ss["hidden"], 3], "tanh")
run = hr.train.train(net, net.init(rng=sd["init"]), Xs, ys, loss="cross_entropy",
                     lr=ss["learning_rate"], steps=ss["steps"])  # fmt: skip
th = run.theta
lam_s, U = np.linalg.eigh(hr.hessian(net, th, Xs, ys, loss="cross_entropy"))
V = U[:, ::-1][:, :2]  # the C − 1 = 2 spikes
S = surgery.class_margin_gradients(net, th, Xs, ys, 3) @ V
h = 1e-5


def mu(t):
    m, _ = surgery.margins(hr.outputs(net, t, Xs), ys)
    return (np.eye(3)[ys].T @ m) / np.bincount(ys, minlength=3)


S_fd = np.stack([(mu(th + h * v) - mu(th - h * v)) / (2 * h) for v in V.T], axis=1)
print(
    "S =\n",
    np.round(S, 4),
    f"\nmax |S - S_fd| / max |S| = {np.abs(S - S_fd).max() / np.abs(S).max():.1e}",
)
assert np.abs(S - S_fd).max() <= 1e-6 * np.abs(S).max()

# %% [markdown]
# ## 5. The constrained step and its nulls
#
# Target $\tau_c = \bar a - a_c$ (training accuracies), $s = S^+\tau$, $\delta = \rho\,Vs/\|Vs\|$.
# The same construction in two middle-of-spectrum eigenvectors and in two random directions is
# the null: a step of the same norm, built the same way, in a different subspace.

# %%
acc = surgery.class_accuracies(net, th, Xs, ys, 3)
grads = surgery.class_margin_gradients(net, th, Xs, ys, 3)
mid = len(lam_s) // 2
bases = {"spike": V, "bulk": U[:, mid : mid + 2],
         "random": np.linalg.qr(np.random.default_rng(0).normal(size=(len(th), 2)))[0]}  # fmt: skip
test_acc = {"before": surgery.class_accuracies(net, th, Xt, yt, 3)}
for name, Vb in bases.items():
    d = surgery.constrained_step(grads @ Vb, Vb, acc.mean() - acc, ss["step_norm"])
    test_acc[name] = surgery.class_accuracies(net, th + d, Xt, yt, 3)
for name, a in test_acc.items():
    print(
        f"{name:>7}: held-out per-class accuracy {np.round(a, 3)}, spread {a.max() - a.min():.3f}"
    )
assert all(np.isclose(np.linalg.norm(surgery.constrained_step(grads @ Vb, Vb, acc.mean() - acc, 0.5)), 0.5)
           for Vb in bases.values())  # fmt: skip

fig, ax = plt.subplots(figsize=(6, 3.5))
for i, (name, a) in enumerate(test_acc.items()):
    ax.bar(np.arange(3) + 0.2 * i - 0.3, a, width=0.2, label=name)
ax.set(xticks=range(3), xticklabels=["class 0 (60%)", "class 1 (30%)", "class 2 (10%)"],
       ylabel="held-out accuracy", ylim=(0, 1.05), title="one seed: before and after each step")  # fmt: skip
ax.legend(fontsize="small")
show(fig, "surgery")

# %% [markdown]
# One seed shows one outcome; `hessref reproduce hessian-surgery --seeds 20` gives the rates
# (how often the spike step narrows the spread, beats the bulk and random steps, keeps the mean
# accuracy). Read them before believing the picture above.
#
# ## Exercises
#
# 1. Repeat sections 1–3 with `activation="relu"` for the student network. What is $B$, and
#    what does (21.4) predict for the split direction? Check: `check_1(B)`.
# 2. From the eigenvalues of $B$ of section 3, for which $\alpha$ is the bound (21.4) negative?
#    Give the set of $\alpha$ in `alphas` where it is. Check: `check_2(mask)` with a boolean array.
# 3. Vary the step norm $\rho$ of section 5 over $[0.1, 2]$: where does the held-out mean accuracy
#    start to fall? Check: `check_3(rho, mean_change)` with your two arrays.

# %%


def check_1(B_relu):
    """Exercise 1: σ″ = 0 for ReLU (almost everywhere), so B vanishes."""
    ok = np.abs(np.asarray(B_relu)).max() == 0.0
    print("Exercise 1:", "right" if ok else "not yet: B should vanish exactly for ReLU; why?")


def check_2(mask):
    """Exercise 2: compare with the bound computed from B (not revealed)."""
    ok = np.array_equal(np.asarray(mask, bool), np.array(bound) < 0)
    print("Exercise 2:", "right" if ok else "not yet: the sign of α(1−α) times an eigenvalue of B")


def check_3(rho, mean_change):
    """Exercise 3: recompute your numbers with hessref and compare."""
    d = surgery.constrained_step(grads @ V, V, acc.mean() - acc, 1.0)
    base = surgery.class_accuracies(net, th, Xt, yt, 3).mean()
    ref = [surgery.class_accuracies(net, th + r * d, Xt, yt, 3).mean() - base for r in rho]
    ok = np.allclose(ref, mean_change, atol=1e-12)
    print("Exercise 3:", "right" if ok else "not yet: mean held-out accuracy after the spike step")
