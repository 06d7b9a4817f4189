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

# %% [markdown]
# # 08 — The edge of stability, loss slices and layer-wise curvature
#
# So far we looked at the Hessian at one point. Here we watch it **during training**.
# Cohen et al. (2021, arXiv:2103.00065) observed that under full-batch gradient descent with
# step η the sharpness $\lambda_{\max}(H)$ rises during training ("progressive sharpening")
# until it reaches about $2/\eta$, and then *hovers there* while the loss keeps going down —
# the **edge of stability**. That is surprising, because on a quadratic $2/\eta$ is exactly
# the point where gradient descent stops converging.
#
# We will (1) check the quadratic statement exactly, (2) track the exact $\lambda_{\max}$
# along a real training run, (3) look at the loss along the sharpest direction, and
# (4) split the curvature by layer.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, plot, spectrum
from hessref.experiments.edge_of_stability import edge_crossing
from hessref.landscape import eigen_directions, loss_along, random_direction, slice_curvature
from hessref.layerwise import layer_curvature, layer_traces
from hessref.train import Tracking, TrainingDivergedError, train

FAST = os.environ.get("HESSREF_FAST") == "1"
threadpool_limits(limits=1, user_api="blas")  # small matrices: one BLAS thread is faster

# %% [markdown]
# ## 1. Gradient descent on a quadratic: stable iff $\lambda_{\max} < 2/\eta$
#
# For $q(x) = \tfrac12 (x - x^*)^\top A (x - x^*)$, one GD step multiplies the error along
# the eigenvector $u_i$ by $(1 - \eta\lambda_i)$. So the error along $u_1$ shrinks iff
# $|1 - \eta\lambda_{\max}| < 1$, i.e. $\lambda_{\max} < 2/\eta$, and otherwise grows by
# exactly $|1 - \eta\lambda_{\max}|$ per step. A linear model with MSE *is* such a quadratic,
# with $A = H$ constant, so we can check this with `train` itself.

# %%
rng = np.random.default_rng(0)
lin = hr.MLP([5, 2], activation="identity")
Xq, Yq = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
theta_q = lin.init(1)
Hq = hr.hessian(lin, theta_q, Xq, Yq)
lam_q, U_q = spectrum.eigenvalues(Hq, vectors=True)
theta_star = theta_q - np.linalg.solve(Hq, hr.gradient(lin, theta_q, Xq, Yq))
for factor in (0.95, 1.05):
    lr = factor * 2 / lam_q[0]
    run = train(lin, theta_q, Xq, Yq, loss="mse", lr=lr, steps=60, record_every=1)
    err = (run.recorded_thetas - theta_star) @ U_q[:, 0]  # error along the top eigenvector
    growth = np.abs(err[1:] / err[:-1])
    assert np.allclose(growth, abs(1 - lr * lam_q[0]), rtol=1e-6)
    print(
        f"lr = {factor} * 2/lambda_max: per-step factor along u_1 = {growth[-1]:.4f} "
        f"(|1 - lr*lambda_max| = {abs(1 - lr * lam_q[0]):.4f}), "
        f"loss {run.losses[0]:.3g} -> {run.losses[-1]:.3g}"
    )
try:
    train(lin, theta_q, Xq, Yq, loss="mse", lr=1.05 * 2 / lam_q[0], steps=3000)
except TrainingDivergedError as err:
    print("a longer run above 2/lambda_max:", str(err)[:60], "...")

# %% [markdown]
# ## 2. Tracking the exact sharpness during training
#
# Now a real network: a 64→h→10 tanh MLP on scikit-learn's 8×8 digits (a small real dataset,
# **not** MNIST), one-hot targets and MSE — the loss Cohen et al. used. `train(...,
# track=Tracking(every=20))` computes the exact $\lambda_{\max}(H(\theta_t))$ every 20 steps
# by Lanczos on the matrix-free Hessian, **warm-started** from the previous eigenvector
# (cheap, because $\theta$ moves little in 20 steps). The tracking has its own random seed,
# so it never changes the training trajectory.

# %%
N, hidden, steps = (150, 12, 800) if FAST else (300, 20, 2000)
X, labels = data.digits(N, rng=0)
Y = np.eye(10)[labels]
model = hr.MLP([64, hidden, 10], activation="tanh")
theta0 = model.init(rng=1)
print(f"digits: N = {N}, MLP 64-{hidden}-10 tanh, P = {model.num_params}, {steps} GD steps")

runs = {}
for lr in (0.3, 0.5):
    runs[lr] = train(model, theta0, X, Y, loss="mse", lr=lr, steps=steps, track=Tracking(every=20))
    tr = runs[lr].tracking
    print(
        f"lr = {lr} (2/lr = {2 / lr:.2f}): sharpness {tr.sharpness[0]:.2f} at init, "
        f"min {tr.sharpness.min():.2f}, final {tr.sharpness[-1]:.2f}; "
        f"loss {runs[lr].losses[0]:.3f} -> {runs[lr].losses[-1]:.4f}; "
        f"{tr.matvecs.mean():.0f} Hessian-vector products per record"
    )

# an independent channel: the dense Hessian at the final point
tr = runs[0.5].tracking
dense_max = spectrum.eigenvalues(hr.hessian(model, runs[0.5].theta, X, Y))[0]
assert abs(tr.sharpness[-1] - dense_max) < 1e-8 * dense_max

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for lr, run in runs.items():
    t = run.tracking
    plot.plot_sharpness(
        t.steps,
        t.sharpness,
        lr=lr,
        losses=(np.arange(run.num_steps + 1), run.losses),
        label=f"η = {lr}",
        axes=axes,
    )
axes[0].set_title("sharpness (dashed: 2/η)")
plt.show()

# %% [markdown]
# What to look for in the numbers and the figure (they come from this run, so read them
# rather than trusting this text): at the edge of stability the sharpness, after the
# initial transient, rises until it reaches $2/\eta$ and then stays in a narrow band around
# it, while the loss keeps decreasing with small wiggles. A smaller η puts the threshold
# higher, so the sharpness may still be rising slowly (progressive sharpening) when the run
# ends. Let us measure how close to $2/\eta$ the η = 0.5
# run stays after it first gets there.

# %%
t = runs[0.5].tracking
ratio = t.sharpness * 0.5 / 2
# first record >= 2/η after one below it (the initial transient, where the sharpness
# drops, is skipped this way)
first, _, crossed = edge_crossing(ratio)
assert crossed, "no crossing in this run: try more steps"
band = np.mean(np.abs(ratio[first:] - 1) <= 0.1)
print(
    f"eta = 0.5: lambda_max first reaches 2/eta at step {t.steps[first]}; afterwards "
    f"lambda_max * eta/2 has median {np.median(ratio[first:]):.3f} and stays within ±10% "
    f"in {band:.0%} of the records; the loss fell by a factor "
    f"{runs[0.5].losses[t.steps[first]] / runs[0.5].losses[-1]:.1f} meanwhile"
)
print(
    "a quadratic with that sharpness would have multiplied its top-mode error by "
    f"|1 - eta*lambda| = {abs(1 - 0.5 * np.median(t.sharpness[first:])):.3f} per step instead"
)

# %% [markdown]
# ## 3. Loss slices: looking along the sharpest direction
#
# A **slice** is the loss on a line, $\ell(\alpha) = L(\theta + \alpha d)$. Its second
# derivative at 0 is exactly $d^\top H d$; along a unit eigenvector $u_i$ it is $\lambda_i$.
# `loss_along` evaluates slices (1-D or 2-D), `slice_curvature` gives $d^\top H d$ by one
# Hessian-vector product. We compare the top eigenvector with a random *filter-normalized*
# direction (Li et al. 2018, arXiv:1712.09913: each unit's random incoming weights scaled to
# the norm of its weights in θ).

# %%
theta_T = runs[0.5].theta
vals, V = eigen_directions(model, theta_T, X, Y, k=2)
d_rand = random_direction(model, theta_T, rng=3, filter_normalized=True)
d_rand /= np.linalg.norm(d_rand)
alphas = np.linspace(-1.0, 1.0, 41)
slices = {
    "top eigenvector u_1": loss_along(model, theta_T, X, Y, V[:, 0], alphas),
    "random (filter-normalized, unit)": loss_along(model, theta_T, X, Y, d_rand, alphas),
}
# the slice's curvature at 0: closed form = λ_1, and a finite difference of the slice itself
h = 1e-3
fd = loss_along(model, theta_T, X, Y, V[:, 0], [-h, 0.0, h])
fd2 = (fd[0] - 2 * fd[1] + fd[2]) / h**2
exact = slice_curvature(model, theta_T, X, Y, V[:, 0])
assert abs(exact - vals[0]) < 1e-8 * vals[0] and abs(fd2 - exact) < 1e-4 * exact
print(
    f"curvature of the slice along u_1: {exact:.6f} (lambda_1 = {vals[0]:.6f}, finite "
    f"difference {fd2:.6f}); along the random direction: "
    f"{slice_curvature(model, theta_T, X, Y, d_rand):.4f}"
)

grid = np.linspace(-0.6, 0.6, 13 if FAST else 25)
plane = loss_along(model, theta_T, X, Y, V, grid)
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, values in slices.items():
    plot.plot_loss_slice(alphas, values, label=name, ax=axes[0])
axes[0].set_yscale("log")
plot.plot_loss_slice(grid, plane, ax=axes[1])
axes[1].set_title("plane of u_1 (α) and u_2 (β)")
plt.show()

# %% [markdown]
# ## 4. Curvature per layer
#
# Layer $l$ owns the slice $\theta_l = (W_l, b_l)$ of θ, and the diagonal block $H_{ll}$ of
# the Hessian. Per-layer traces $\operatorname{tr} H_{ll}$ (summing to $\operatorname{tr} H$)
# tell which layer carries the curvature. `layer_curvature` computes them exactly from the
# dense $H$, $G$ and $R$; `layer_traces` estimates them **matrix-free** with Hutchinson
# probes masked to each layer ($z_l^\top H z_l$ with $z_l$ the layer's part of a Rademacher
# vector), with standard errors.

# %%
exact = layer_curvature(model, theta_T, X, Y, top=1)
est = layer_traces(model, theta_T, X, Y, 100 if FAST else 300, rng=0)
for l in range(model.num_layers):
    print(
        f"layer {l + 1} (P_l = {exact.sizes[l]}): tr H_ll = {exact.trace['H'][l]:.4f} "
        f"(G {exact.trace['G'][l]:.4f}, R {exact.trace['R'][l]:.2e}); "
        f"Hutchinson {est.estimate[l]:.4f} ± {est.stderr[l]:.4f}; "
        f"lambda_max(H_ll) = {exact.top['H'][l, 0]:.4f}"
    )
    assert abs(est.estimate[l] - exact.trace["H"][l]) < 5 * est.stderr[l]
assert np.isclose(exact.trace["H"].sum(), np.trace(hr.hessian(model, theta_T, X, Y)))

# %% [markdown]
# ## Exercises
#
# 1. Run the tracking with η = 0.7. Where does the sharpness start relative to $2/\eta$,
#    and what happens in the first steps? (Look at the loss too.)
# 2. Use `Tracking(every=20, top_k=3)`. Do the second and third eigenvalues also approach
#    $2/\eta$, or only the first?
# 3. Take the slice along $u_1$ with a larger range of α. How far must you go before the
#    loss stops looking like the parabola $L + \tfrac12 \lambda_1 \alpha^2$? Compare with the
#    step length $\eta\,\lVert\nabla L\rVert$ of one GD step.
# 4. Repeat section 4 at initialization (`theta0`) and compare the share of each layer in
#    $\operatorname{tr} H$ before and after training.
# 5. `hessref reproduce edge-of-stability --fast` runs the multi-seed experiment: how often,
#    over seeds, does the sharpness stay within the band for each η?
