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
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.experiments import derive_seeds
from hessref.experiments import hessian_surgery as surgery
from hessref.experiments import permutation_saddles as ps

threadpool_limits(limits=1, user_api="blas")
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
th = hr.train.train(net, net.init(rng=sd["init"]), Xs, ys, loss="cross_entropy",
                    lr=ss["learning_rate"], steps=ss["steps"]).theta  # fmt: skip
lam, U = np.linalg.eigh(hr.hessian(net, th, Xs, ys, loss="cross_entropy"))
V = U[:, ::-1][:, :2]
acc = surgery.class_accuracies(net, th, Xs, ys, 3)
grads = surgery.class_margin_gradients(net, th, Xs, ys, 3)
d = surgery.constrained_step(grads @ V, V, acc.mean() - acc, 1.0)
base = surgery.class_accuracies(net, th, Xt, yt, 3).mean()
for rho in np.linspace(0.1, 2.0, 8):
    a = surgery.class_accuracies(net, th + rho * d, Xt, yt, 3)
    print(f"rho = {rho:.2f}: mean change {a.mean() - base:+.3f}, spread {a.max() - a.min():.3f}")
