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
# # 01 — Backprop by hand
#
# Every curvature quantity in hessref (Hessian, Gauss-Newton matrix, Hessian-vector
# products) is built on one forward pass and one backward pass. In this tutorial we
# write both by hand in NumPy for a small multi-layer perceptron (MLP), and then check
# our derivatives through three independent channels:
#
# 1. hessref's own `hr.gradient`,
# 2. **autograd**, an independent automatic-differentiation engine,
# 3. **finite differences** and a **Taylor-order test**, which need no derivative code at all.
#
# **The model.** Samples are rows of $X \in \mathbb{R}^{N\times d_0}$. For layers
# $l = 1, \dots, L$:
#
# $$Z_l = A_{l-1} W_l^\top + \mathbf{1} b_l^\top, \qquad A_0 = X, \qquad
#   A_l = \sigma(Z_l)\ (l < L), \qquad F = Z_L .$$
#
# $W_l$ has shape $(d_l, d_{l-1})$, the output layer is linear. All parameters live in
# one flat vector $\theta = [W_1.\mathrm{ravel}(), b_1, W_2.\mathrm{ravel}(), b_2, \dots]$
# (row-major), exactly the order of PyTorch's `parameters_to_vector` for
# `nn.Sequential(nn.Linear, act, ..., nn.Linear)`.
#
# **The loss.** Mean squared error $L(\theta) = \frac1N \sum_i \tfrac12 \lVert f_i - y_i\rVert^2$.

# %%
import os

import autograd
import autograd.numpy as anp
import matplotlib.pyplot as plt
import numpy as np

import hessref as hr

FAST = os.environ.get("HESSREF_FAST") == "1"  # smaller sizes for CI
TUTORIAL = "01"

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


rng = np.random.default_rng(0)

sizes = [3, 5, 4, 2]
model = hr.MLP(sizes, activation="tanh")
theta = model.init(rng)  # PyTorch's default nn.Linear initialisation
N = 8
X = rng.standard_normal((N, sizes[0]))
Y = rng.standard_normal((N, sizes[-1]))
print(model, "P =", model.num_params)

# %% [markdown]
# ## Unpacking θ
#
# Layer $l$ occupies $d_l d_{l-1}$ weight entries followed by $d_l$ biases, so
# $P = \sum_l d_l (d_{l-1} + 1)$. We slice θ ourselves and check against
# `model.unflatten`.


# %%
def unpack(theta, sizes):
    params, pos = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = theta[pos : pos + d_out * d_in].reshape(d_out, d_in)
        pos += d_out * d_in
        b = theta[pos : pos + d_out]
        pos += d_out
        params.append((W, b))
    assert pos == len(theta)
    return params


params = unpack(theta, sizes)
for (W, b), (W_hr, b_hr) in zip(params, model.unflatten(theta), strict=True):
    assert np.array_equal(W, W_hr) and np.array_equal(b, b_hr)
print([W.shape for W, _ in params])

# %% [markdown]
# ## Forward pass
#
# We keep every pre-activation $Z_l$ and activation $A_l$: the backward pass needs them.


# %%
def forward(params, X):
    A, cache = X, [X]
    for l, (W, b) in enumerate(params, start=1):
        Z = A @ W.T + b
        A = np.tanh(Z) if l < len(params) else Z
        cache.append((Z, A))
    return A, cache


def loss(theta):
    F, _ = forward(unpack(theta, sizes), X)
    return 0.5 * np.sum((F - Y) ** 2) / N


F, cache = forward(params, X)
assert np.allclose(F, hr.outputs(model, theta, X), rtol=1e-14, atol=1e-15)
assert np.isclose(loss(theta), hr.loss(model, theta, X, Y, loss="mse"), rtol=1e-14)
print("L(theta) =", loss(theta))

# %% [markdown]
# ## Backward pass
#
# Write $\delta_l = \partial L / \partial Z_l$ (an $N \times d_l$ matrix). The chain rule gives
#
# $$\delta_L = \tfrac1N (F - Y), \qquad
#   \delta_{l} = \sigma'(Z_{l}) \odot (\delta_{l+1} W_{l+1}), \qquad
#   \frac{\partial L}{\partial W_l} = \delta_l^\top A_{l-1}, \qquad
#   \frac{\partial L}{\partial b_l} = \mathbf{1}^\top \delta_l ,$$
#
# with $\tanh'(z) = 1 - \tanh^2(z)$. One backward pass costs about as much as the forward
# pass — this is why gradients are cheap.


# %%
def gradient_by_hand(theta):
    params = unpack(theta, sizes)
    F, cache = forward(params, X)
    delta = (F - Y) / N  # δ_L
    grads = []
    for l in range(len(params), 0, -1):
        A_prev = cache[l - 1] if l == 1 else cache[l - 1][1]
        W, _ = params[l - 1]
        grads.append((delta.T @ A_prev, delta.sum(axis=0)))
        if l > 1:
            Z_prev = cache[l - 1][0]
            delta = (1.0 - np.tanh(Z_prev) ** 2) * (delta @ W)
    grads.reverse()
    return np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads])


g = gradient_by_hand(theta)
g_hr = hr.gradient(model, theta, X, Y, loss="mse")
print("max |g_hand - g_hessref| =", np.abs(g - g_hr).max())
assert np.allclose(g, g_hr, rtol=1e-13, atol=1e-15)

# %% [markdown]
# ## Channel 2: autograd
#
# autograd differentiates Python code written with `autograd.numpy`. It shares nothing
# with our hand-written backward pass (or with hessref's engine), so agreement to
# rounding error is strong evidence that both are right.


# %%
def loss_autograd(theta):
    A = X
    params = unpack(theta, sizes)
    for l, (W, b) in enumerate(params, start=1):
        Z = anp.dot(A, W.T) + b
        A = anp.tanh(Z) if l < len(params) else Z
    return 0.5 * anp.sum((A - Y) ** 2) / N


g_ad = autograd.grad(loss_autograd)(theta)
rel = np.linalg.norm(g - g_ad) / np.linalg.norm(g_ad)
print(f"relative error hand vs autograd: {rel:.1e}")
assert rel < 1e-12

# %% [markdown]
# ## Channel 3: finite differences
#
# For a random direction $v$, the central difference
# $\frac{L(\theta + \varepsilon v) - L(\theta - \varepsilon v)}{2\varepsilon}$ approximates the
# directional derivative $\nabla L \cdot v$ with a **truncation** error $O(\varepsilon^2)$,
# but each loss value carries a **rounding** error of about $10^{-16} L$, which the division
# by $2\varepsilon$ amplifies to $O(10^{-16}/\varepsilon)$. The total error is smallest for
# steps between about $10^{-7}$ and $10^{-4}$ in float64: the classic V-shaped plot.

# %%
v = rng.standard_normal(model.num_params)
exact = g @ v
eps = np.logspace(-12, -1, 23)
fd_err = np.array([abs((loss(theta + e * v) - loss(theta - e * v)) / (2 * e) - exact) for e in eps])
best = eps[np.argmin(fd_err)]
print(f"best step {best:.0e}, error there {fd_err.min():.1e}, |grad . v| = {abs(exact):.2e}")
assert 1e-7 <= best <= 1e-3 and fd_err.min() < 1e-9 * max(1.0, abs(exact))

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(eps, fd_err, "o-")
ax.set(xlabel="step ε", ylabel="|central difference − ∇L·v|", title="Finite differences")
show(fig, "finite_differences")

# %% [markdown]
# ## The Taylor-order test
#
# A sharper check, which does not need to pick a step, looks at how remainders **shrink**.
# With $h = 2^{-k}$:
#
# $$r_1(h) = |L(\theta + hv) - L(\theta) - h\,\nabla L\cdot v| = O(h^2), \qquad
#   r_2(h) = |r_1\text{-expression} - \tfrac12 h^2\, v^\top H v| = O(h^3).$$
#
# On a log-log plot the slopes must be 2 and 3. A wrong gradient leaves $r_1 = O(h)$
# (slope 1); a wrong Hessian-vector product leaves $r_2 = O(h^2)$. We take $Hv$ from
# `hr.hvp` (Pearlmutter's exact R-operator, tutorial 05).

# %%
Hv = hr.hvp(model, theta, X, Y, v, loss="mse")
L0 = loss(theta)
hs = 2.0 ** -np.arange(1, 16)
r1 = np.array([abs(loss(theta + h * v) - L0 - h * (g @ v)) for h in hs])
r2 = np.array([abs(loss(theta + h * v) - L0 - h * (g @ v) - 0.5 * h**2 * (v @ Hv)) for h in hs])


def slope(h, r, keep):
    return np.polyfit(np.log(h[keep]), np.log(r[keep]), 1)[0]


# fit where the remainder is well above rounding (|L| * 1e-16 * a safety factor)
ok1, ok2 = r1 > 1e-12 * abs(L0), r2 > 1e-12 * abs(L0)
s1, s2 = slope(hs, r1, ok1), slope(hs, r2, ok2)
print(f"slopes: first-order remainder {s1:.2f} (expect 2), second-order {s2:.2f} (expect 3)")
assert abs(s1 - 2) < 0.1 and abs(s2 - 3) < 0.15

# the same test with a deliberately wrong gradient: the slope drops to 1
g_bad = 1.05 * g  # a 5% scale error, e.g. a wrong 1/N
r1_bad = np.array([abs(loss(theta + h * v) - L0 - h * (g_bad @ v)) for h in hs])
s_bad = slope(hs, r1_bad, hs <= 2.0**-9)  # small h: the O(h) error term dominates
print(f"slope with a wrong gradient: {s_bad:.2f} (expect 1)")
assert abs(s_bad - 1) < 0.1

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(hs, r1, "o-", label="r₁ (slope 2)")
ax.loglog(hs, r2, "s-", label="r₂ (slope 3)")
ax.loglog(hs, r1_bad, "^--", label="r₁ with a wrong gradient (slope 1)")
ax.set(xlabel="h", ylabel="remainder", title="Taylor-order test")
ax.legend()
show(fig, "taylor_test")

# %% [markdown]
# ## A slow, independent channel for the Hessian
#
# `hessref.core.textbook` computes H (and its split $G + R$) the way one derives it on paper:
# one sample at a time, carrying $\partial z_l/\partial\theta$ and
# $\partial^2 z_l/\partial\theta^2$ through the second-order chain rule of docs/theory.md §8
# ("The textbook second-order chain rule"), equations (8.1)-(8.3). It shares no code with
# the fast layer-pair engine behind `hr.hessian`, so a bug in one is very unlikely to be
# repeated, identically, in the other: agreement to rounding error checks both, entry by entry
# (not only along one direction $v$, as the Taylor test above does). It is deliberately slow
# and refuses large problems, which is fine for a check on a model this small.

# %%
import time

from hessref.core.textbook import textbook_curvature

t0 = time.perf_counter()
H_fast = hr.hessian(model, theta, X, Y, loss="mse")
t_fast = time.perf_counter() - t0
t0 = time.perf_counter()
H_book, _, _ = textbook_curvature(model, theta, X, Y, loss="mse")
t_book = time.perf_counter() - t0
rel_H = np.linalg.norm(H_book - H_fast) / np.linalg.norm(H_fast)
print(f"||H_textbook - H_fast|| / ||H_fast|| = {rel_H:.1e}")
print(f"time: textbook {1e3 * t_book:.1f} ms, hr.hessian {1e3 * t_fast:.1f} ms")
assert rel_H < 1e-12 and np.allclose(H_fast @ v, Hv, rtol=1e-12, atol=1e-14)

# %% [markdown]
# ## A warning about ReLU
#
# Finite differences and Taylor tests assume a smooth loss. ReLU has kinks: a step
# $\theta \pm \varepsilon v$ may move some pre-activation across 0, and the difference quotient
# then mixes two linear pieces. Near a trained solution this produces spurious, even
# $O(1)$, errors. Check ReLU networks with autograd (or at points whose pre-activations
# are far from 0), never with finite differences alone.
#
# ## Exercises
#
# 1. Switch the activation to `"sigmoid"` (σ′ = σ(1 − σ)) and update `gradient_by_hand`.
#    Check it with all three channels.
# 2. Replace the loss by softmax cross-entropy: show that $\delta_L = \frac1N(\mathrm{softmax}(F) - E_y)$
#    with $E_y$ the one-hot labels, and compare with `hr.gradient(..., loss="cross_entropy")`.
# 3. Repeat the finite-difference plot in float32. Casting θ alone changes nothing: `X` and
#    `Y` are float64, and NumPy promotes `θ32 + X` back to float64 (check `loss(theta32).dtype`).
#    Cast **every** array — θ, v, X and Y — to `np.float32` (write a `loss32` that uses `X32`,
#    `Y32`), confirm that the loss is a `float32`, and redraw the V. Where is the best step
#    now, and why (float32 rounds at about $6\times10^{-8}$ instead of $10^{-16}$)?
# 4. Make `r2` fail on purpose by passing `2 * Hv`. Which slope do you see?
