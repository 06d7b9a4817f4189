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
# # Solutions to tutorial 10 — Permutation saddles and Hessian surgery

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.experiments import derive_seeds
from hessref.experiments import hessian_surgery as surgery
from hessref.experiments import permutation_saddles as ps

threadpool_limits(limits=1, user_api="blas")
TUTORIAL = "solution10"
_here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
FIGURES = os.environ.get("HESSREF_FIGURES") or (_here and os.path.join(_here, "figures"))


def show(fig, name):
    """Show ``fig``; save it as FIGURES/{TUTORIAL}_{name}.png when FIGURES is set."""
    if FIGURES:
        os.makedirs(FIGURES, exist_ok=True)
        fig.savefig(os.path.join(FIGURES, f"{TUTORIAL}_{name}.png"), dpi=110, bbox_inches="tight")
    plt.show()


s = ps._FAST
sd = derive_seeds(0, "data", "init")
X, Y = ps.regression_data(s, sd["data"])

# %% [markdown]
# ## Exercise 1 — ReLU: B = 0
#
# σ″ = 0 wherever ReLU is differentiable, so B = 0 and (21.4) gives zero curvature along the
# split: the bound says nothing; negative curvature, if any, comes from M (Theorem 21.5).

# %%
print("Exercise 1")
relu = hr.MLP([2, 3, 2], "relu")
th = ps.critical_point(relu, relu.init(rng=sd["init"]), X, Y, s)
_, B = ps.split_matrices(relu, th, X, Y, 1, 0)
print("max |B| for ReLU:", np.abs(B).max())
assert np.abs(B).max() == 0.0

# %% [markdown]
# ## Exercise 2 — where the bound is negative
#
# With B indefinite (eigenvalues b_min < 0 < b_max), α(1−α) > 0 on (0, 1) pairs with b_min and
# α(1−α) < 0 outside [0, 1] pairs with b_max: negative everywhere except α ∈ {0, 1}.

# %%
print("Exercise 2")
model = hr.MLP([2, 3, 2], "tanh")
theta = ps.critical_point(model, model.init(rng=sd["init"]), X, Y, s)
_, B = ps.split_matrices(model, theta, X, Y, 1, 0)
b = np.linalg.eigvalsh(B)
alphas = np.linspace(-1.0, 2.0, 13)
mask = np.array([a * (1 - a) * (b[0] if a * (1 - a) > 0 else b[-1]) < 0 for a in alphas])
print("eigenvalues of B:", b, "\nnegative bound at alpha =", alphas[mask])

# %% [markdown]
# ## Exercise 3 — step norm against mean accuracy

# %%
print("Exercise 3")
ss = surgery._FAST
sd = derive_seeds(1, "data", "init", "random")
Xs, ys, Xt, yt = surgery._split_data(ss, sd["data"])
net = hr.MLP([ss["input_dim"], ss["hidden"], 3], "tanh")
th = hr.train.train(
    net,
    net.init(rng=sd["init"]),
    Xs,
    ys,
    loss="cross_entropy",
    lr=ss["learning_rate"],
    steps=ss["steps"],
).theta
lam, U = np.linalg.eigh(hr.hessian(net, th, Xs, ys, loss="cross_entropy"))
V = U[:, ::-1][:, :2]
acc = surgery.class_accuracies(net, th, Xs, ys, 3)
grads = surgery.class_margin_gradients(net, th, Xs, ys, 3)
d = surgery.constrained_step(grads @ V, V, acc.mean() - acc, 1.0)
base = surgery.class_accuracies(net, th, Xt, yt, 3).mean()
rhos = np.linspace(0.1, 2.0, 8)
mean_change, spread = [], []
for rho in rhos:
    a = surgery.class_accuracies(net, th + rho * d, Xt, yt, 3)
    mean_change.append(a.mean() - base)
    spread.append(a.max() - a.min())
    print(f"rho = {rho:.2f}: mean change {mean_change[-1]:+.3f}, spread {spread[-1]:.3f}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(rhos, spread, "o-", label="held-out spread (max − min class accuracy)")
ax.plot(rhos, mean_change, "s--", label="change in held-out mean accuracy")
ax.axhline(0.0, color="grey", lw=0.8)
ax.set_xlabel("step norm ρ along the spike step")
ax.legend(fontsize=9)
show(fig, "step_norm")
