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
# # Solutions to tutorial 01 — Backprop by hand
#
# Each exercise is solved with code that runs (fast mode: `HESSREF_FAST=1`) and prints the
# numbers the answer rests on.

# %%
import os

import autograd
import autograd.numpy as anp
import matplotlib.pyplot as plt
import numpy as np

import hessref as hr

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution01"
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
N = 8
X = rng.standard_normal((N, sizes[0]))
Y = rng.standard_normal((N, sizes[-1]))


def unpack(theta, sizes):
    params, pos = [], 0
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = theta[pos : pos + d_out * d_in].reshape(d_out, d_in)
        pos += d_out * d_in
        params.append((W, theta[pos : pos + d_out]))
        pos += d_out
    return params


def backprop(theta, act, dact, output_delta, X=X):
    """Gradient by hand for any activation and any output error δ_L = output_delta(F)."""
    params = unpack(theta, sizes)
    A, Zs, As = X, [], [X]
    for l, (W, b) in enumerate(params, start=1):
        Z = A @ W.T + b
        A = act(Z) if l < len(params) else Z
        Zs.append(Z)
        As.append(A)
    delta, grads = output_delta(A), []
    for l in range(len(params), 0, -1):
        grads.append((delta.T @ As[l - 1], delta.sum(axis=0)))
        if l > 1:
            delta = dact(Zs[l - 2]) * (delta @ params[l - 1][0])
    return np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in grads[::-1]])


# %% [markdown]
# ## Exercise 1 — sigmoid
#
# Only the activation and its derivative change: $\sigma'(z) = \sigma(z)(1 - \sigma(z))$.
# The three channels are hessref, autograd and a central difference.

# %%
print("Exercise 1")
model = hr.MLP(sizes, activation="sigmoid")
theta = model.init(rng=0)


def sig(z):
    return 1 / (1 + np.exp(-z))


def dsig(z):
    return sig(z) * (1 - sig(z))


def loss_sigmoid(t):
    A = X
    for l, (W, b) in enumerate(unpack(t, sizes), start=1):
        Z = anp.dot(A, W.T) + b
        A = 1 / (1 + anp.exp(-Z)) if l < len(sizes) - 1 else Z
    return 0.5 * anp.sum((A - Y) ** 2) / N


g = backprop(theta, sig, dsig, lambda F: (F - Y) / N)
g_hr = hr.gradient(model, theta, X, Y, loss="mse")
g_ad = autograd.grad(loss_sigmoid)(theta)
v = rng.standard_normal(theta.size)
e = 1e-5
fd = (loss_sigmoid(theta + e * v) - loss_sigmoid(theta - e * v)) / (2 * e)
rel_hr = np.linalg.norm(g - g_hr) / np.linalg.norm(g_hr)
rel_ad = np.linalg.norm(g - g_ad) / np.linalg.norm(g_ad)
print(
    f"vs hessref {rel_hr:.1e}, vs autograd {rel_ad:.1e}, directional FD error {abs(fd - g @ v):.1e}"
)
assert rel_hr < 1e-12 and rel_ad < 1e-12 and abs(fd - g @ v) < 1e-8

# %% [markdown]
# ## Exercise 2 — softmax cross-entropy
#
# With $p = \mathrm{softmax}(f)$ and $\ell = -\log p_y = -f_y + \log\sum_c e^{f_c}$,
# $\partial\ell/\partial f_c = -[c = y] + e^{f_c}/\sum_{c'} e^{f_{c'}} = p_c - (E_y)_c$. The
# mean over N samples adds the factor $1/N$, so $\delta_L = \frac1N(\mathrm{softmax}(F) - E_y)$;
# the rest of the backward pass is unchanged.

# %%
print("Exercise 2")
model = hr.MLP(sizes, activation="tanh")
theta = model.init(rng=0)
labels = rng.integers(0, sizes[-1], N)


def softmax_delta(F):
    p = np.exp(F - F.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p - np.eye(sizes[-1])[labels]) / N


g = backprop(theta, np.tanh, lambda z: 1 - np.tanh(z) ** 2, softmax_delta)
g_hr = hr.gradient(model, theta, X, labels, loss="cross_entropy")
rel = np.linalg.norm(g - g_hr) / np.linalg.norm(g_hr)
print(f"cross-entropy gradient by hand vs hessref: {rel:.1e}")
assert rel < 1e-12

# %% [markdown]
# ## Exercise 3 — finite differences in float32
#
# Casting θ alone is not enough: NumPy promotes `float32 op float64` to float64, so with
# float64 `X` and `Y` the whole loss is still computed in float64. We cast every array. The
# rounding error of a float32 loss is about $\varepsilon_{32} L \approx 6\times10^{-8} L$, so
# the optimum step, which scales like $\varepsilon^{1/3}$ (balance $h^2$ truncation against
# $\varepsilon/h$ rounding), moves up by about $(6\times10^{-8}/10^{-16})^{1/3} \approx 800$ times up to
# constants, and the best error grows by many orders of magnitude: compare the printed values.

# %%
print("Exercise 3")
model = hr.MLP(sizes, activation="tanh")
theta = model.init(rng=0)
v = rng.standard_normal(theta.size)


def make_loss(dtype):
    Xd, Yd = X.astype(dtype), Y.astype(dtype)

    def loss(t):
        A = Xd
        for l, (W, b) in enumerate(unpack(t.astype(dtype), sizes), start=1):
            Z = A @ W.T + b
            A = np.tanh(Z) if l < len(sizes) - 1 else Z
        return 0.5 * np.sum((A - Yd) ** 2) / dtype(N)

    return loss


exact = hr.gradient(model, theta, X, Y, loss="mse") @ v
only_theta = make_loss(np.float64)(theta.astype(np.float32))
print(f"casting theta only: loss dtype {np.asarray(only_theta).dtype} (promoted back)")
eps = np.logspace(-9, -0.5, 35)
fig, ax = plt.subplots(figsize=(5.5, 3.8))
for dtype in (np.float64, np.float32):
    loss = make_loss(dtype)
    th, vv = theta.astype(dtype), v.astype(dtype)
    assert np.asarray(loss(th)).dtype == dtype
    err = np.array(
        [
            abs(float(loss(th + dtype(e) * vv) - loss(th - dtype(e) * vv)) / (2 * e) - exact)
            for e in eps
        ]
    )
    best = eps[np.argmin(err)]
    print(f"{dtype.__name__}: best step {best:.1e}, smallest error {err.min():.1e}")
    ax.loglog(eps, err, "o-", ms=3, label=f"{dtype.__name__}: best step {best:.0e}")
ax.set(xlabel="step ε", ylabel="|central difference − ∇L·v|", title="float64 vs float32")
ax.legend()
show(fig, "float32_fd")

# %% [markdown]
# ## Exercise 4 — a wrong Hessian-vector product
#
# With $2Hv$ the second-order remainder keeps the term $-\frac12 h^2 v^\top H v$, which is
# $O(h^2)$: the slope drops from 3 to 2.

# %%
print("Exercise 4")
loss = make_loss(np.float64)
Hv = hr.hvp(model, theta, X, Y, v, loss="mse")
g = hr.gradient(model, theta, X, Y, loss="mse")
L0 = loss(theta)
hs = 2.0 ** -np.arange(1, 14)
r2_bad = np.array(
    [abs(loss(theta + h * v) - L0 - h * (g @ v) - 0.5 * h**2 * (v @ (2 * Hv))) for h in hs]
)
slope = np.polyfit(np.log(hs[4:]), np.log(r2_bad[4:]), 1)[0]
print(f"slope of r2 with 2·Hv: {slope:.2f} (expect 2)")
assert abs(slope - 2) < 0.1
