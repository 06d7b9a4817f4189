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
# # Solutions to tutorial 08 — The edge of stability, loss slices and layer-wise curvature
#
# Seeded single runs (fast mode: fewer steps); the answers are the printed numbers.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data
from hessref.experiments.edge_of_stability import edge_crossing
from hessref.landscape import eigen_directions, loss_along
from hessref.layerwise import layer_curvature
from hessref.train import Tracking, TrainingDivergedError, train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution08"
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


N, hidden, steps = (150, 12, 300) if FAST else (300, 20, 2000)
X, labels = data.digits(N, rng=0)
Y = np.eye(10)[labels]
model = hr.MLP([64, hidden, 10], activation="tanh")
theta0 = model.init(rng=1)

# %% [markdown]
# ## Exercise 1 — η = 0.7
#
# With a larger step the threshold $2/\eta$ is lower. If the sharpness at initialisation is
# already above it, the first steps are unstable along the top direction: the loss can jump
# up before the sharpness falls below $2/\eta$ (or training diverges).

# %%
print("Exercise 1")
lr = 0.7
try:
    run = train(model, theta0, X, Y, loss="mse", lr=lr, steps=steps, track=Tracking(every=10))
    t = run.tracking
    print(
        f"2/eta = {2 / lr:.2f}; sharpness at init {t.top[0, 0]:.2f} "
        f"({'above' if t.top[0, 0] > 2 / lr else 'below'} 2/eta), min {t.top[:, 0].min():.2f}, "
        f"final {t.top[-1, 0]:.2f}"
    )
    print(
        "loss over the first 6 steps:", np.round(run.losses[:6], 4), f"final {run.losses[-1]:.4f}"
    )
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(t.steps, t.top[:, 0], label="sharpness λ_max")
    ax.axhline(2 / lr, color="k", ls="--", label="2/η")
    ax.set(xlabel="step", ylabel="λ_max(H)", title=f"η = {lr}")
    ax.legend()
    show(fig, "eta_07")
except TrainingDivergedError as err:
    print(f"eta = {lr}: training diverged ({err})")

# %% [markdown]
# ## Exercise 2 — the second and third eigenvalues

# %%
print("Exercise 2")
lr = 0.5
run = train(model, theta0, X, Y, loss="mse", lr=lr, steps=steps, track=Tracking(every=20, top_k=3))
t = run.tracking
last = t.top[len(t.top) // 2 :]  # second half of the run
for i in range(3):
    print(
        f"lambda_{i + 1} * eta/2 over the second half of the run: median {np.median(last[:, i]) * lr / 2:.3f}"
    )

# %% [markdown]
# ## Exercise 3 — how far is the slice a parabola?
#
# We compare the slice along $u_1$ with $L + \frac12\lambda_1\alpha^2$ and find the first |α|
# where they differ by more than 10% of the parabola's rise; then we compare that distance
# with the length $\eta\lVert\nabla L\rVert$ of one GD step.

# %%
print("Exercise 3")
theta_T = run.theta
vals, V = eigen_directions(model, theta_T, X, Y, k=1)
alphas = np.linspace(-3, 3, 121)
sl = loss_along(model, theta_T, X, Y, V[:, 0], alphas)
L0 = hr.loss(model, theta_T, X, Y, loss="mse")
parabola = L0 + 0.5 * vals[0] * alphas**2
off = np.abs(sl - parabola) > 0.1 * (parabola - L0)
reach = np.abs(alphas[off & (alphas != 0)]).min() if np.any(off & (alphas != 0)) else np.inf
step_len = lr * np.linalg.norm(hr.gradient(model, theta_T, X, Y, loss="mse"))
print(
    f"the slice leaves the parabola (10%) at |alpha| = {reach:.2f}; one GD step has length {step_len:.3f}"
)

# %% [markdown]
# ## Exercise 4 — layer shares of tr H before and after training

# %%
print("Exercise 4")
for name, th in (("init", theta0), ("trained", theta_T)):
    lc = layer_curvature(model, th, X, Y, top=1)
    share = lc.trace["H"] / lc.trace["H"].sum()
    print(
        f"{name:8s}: share of tr H per layer {np.round(share, 3)} (tr H = {lc.trace['H'].sum():.3f})"
    )

# %% [markdown]
# ## Exercise 5 — how often does the sharpness stay in the band?
#
# `hessref reproduce edge-of-stability --fast` does this over its seeds and reports it with
# intervals. The same measurement by hand, on a few initialisation seeds: the share of
# records after the first crossing of $2/\eta$ with $|\lambda_{\max}\eta/2 - 1| \le 0.1$.

# %%
print("Exercise 5")
for lr in (0.3, 0.5):
    shares = []
    for seed in (1, 2) if FAST else (1, 2, 3, 4, 5):
        r = train(
            model,
            model.init(rng=seed),
            X,
            Y,
            loss="mse",
            lr=lr,
            steps=steps,
            track=Tracking(every=20),
        )
        ratio = r.tracking.top[:, 0] * lr / 2
        first, _, crossed = edge_crossing(ratio)
        shares.append(np.mean(np.abs(ratio[first:] - 1) <= 0.1) if crossed else np.nan)
    print(
        f"eta = {lr}: share of records within ±10% of 2/eta after crossing, per seed: "
        f"{np.round(shares, 2)} (nan: no crossing within {steps} steps)"
    )
