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
# # Solutions to tutorial 07 — hessref as an oracle

# %%
import os

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import matplotlib.pyplot as plt
import numpy as np

import hessref as hr
from hessref.compare import compare
from hessref.oracle import reference_bundle

try:
    import torch
except ImportError:
    torch = None

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution07"
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
sizes = [4, 8, 8, 3]
model = hr.MLP(sizes, activation="tanh")
theta = model.init(rng)
N = 12 if FAST else 30
X = rng.standard_normal((N, sizes[0]))
y = rng.integers(0, sizes[-1], size=N)
ref = reference_bundle(model, theta, X, y, loss="cross_entropy")


def ce(A):
    logp = A - asp.logsumexp(A, axis=1, keepdims=True)
    return -anp.mean(logp[np.arange(N), y])


# %% [markdown]
# ## Exercise 1 — weights stored (in, out)
#
# A tool that keeps $W^\top$ (shape (d_in, d_out)) and computes `A @ W` flattens every weight
# block transposed. `compare` without a convention fails; with `convention="sagun"` (torch
# order, weights (in, out), biases kept) the same numbers pass.

# %%
print("Exercise 1")
shapes = [(d_in, d_out) for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True)]


def their_loss(flat):
    A, pos = X, 0
    for l, (d_in, d_out) in enumerate(shapes, start=1):
        W = anp.reshape(flat[pos : pos + d_in * d_out], (d_in, d_out))  # (in, out)
        pos += d_in * d_out
        b = flat[pos : pos + d_out]
        pos += d_out
        A = anp.dot(A, W) + b
        if l < len(shapes):
            A = anp.tanh(A)
    return ce(A)


flat_T = np.concatenate([np.concatenate([W.T.ravel(), b]) for W, b in model.unflatten(theta)])
H_T = autograd.hessian(their_loss)(flat_T)
naive = compare(H_T, ref.H, model=model, kind="H")
fixed = compare(H_T, ref.H, model=model, kind="H", convention="sagun")
print(
    f"without a convention: passed {naive.passed}; with convention='sagun': passed {fixed.passed}"
)
print("notes:", naive.notes[:2])
assert not naive.passed and fixed.passed

# %% [markdown]
# ## Exercise 2 — a Hessian without biases
#
# `loss_landscape` keeps only the weight rows and columns (torch order).

# %%
print("Exercise 2")
weights = np.concatenate(
    [np.arange(model.num_params)[model.weight_slice(l)] for l in range(1, len(sizes))]
)
H_w = ref.H[np.ix_(weights, weights)]
report = compare(H_w, ref.H, model=model, kind="H", convention="loss_landscape")
print(
    f"weight-only block {H_w.shape}: passed {report.passed}, max rel error {report.max_rel_error:.1e}"
)
assert report.passed

# %% [markdown]
# ## Exercise 3 — the empirical Fisher is not G
#
# $\frac1N\sum_i g_i g_i^\top$ uses the observed labels; G uses the model's own predictive
# distribution. `compare` reports whether they agree and the largest relative difference.

# %%
print("Exercise 3")
g = ref.per_sample_gradients  # (N, P)
EF = g.T @ g / N
assert np.allclose(EF, ref.empirical_fisher, rtol=1e-12, atol=1e-15)
report = compare(EF, ref.G, model=model, kind="G")
print(f"empirical Fisher vs G: passed {report.passed}, max rel error {report.max_rel_error:.2e}")
print("notes:", report.notes)
lam_EF, lam_G = np.linalg.eigvalsh(EF)[::-1], ref.eigenvalues_G
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.semilogy(np.arange(1, 21), np.clip(lam_G[:20], 1e-12, None), "o-", label="G (Gauss-Newton)")
ax.semilogy(np.arange(1, 21), np.clip(lam_EF[:20], 1e-12, None), "s--", label="empirical Fisher")
ax.set(xlabel="index i", ylabel="eigenvalue (log)", title="Empirical Fisher vs G")
ax.legend()
show(fig, "empirical_fisher_vs_G")

# %% [markdown]
# ## Exercise 4 — eigenvalues, all and top 3
#
# With PyTorch: `torch.linalg.eigvalsh` of `torch.func.hessian`. Without it, the same check runs
# on the autograd Hessian of exercise 1 mapped back to hessref's layout — the comparison is
# what matters.

# %%
print("Exercise 4")
if torch is not None:
    torch.set_default_dtype(torch.float64)
    H_tool = torch.from_numpy(H_T)  # the tool's Hessian; eigenvalues ignore the layout
    lam_theirs = torch.linalg.eigvalsh(H_tool).numpy()[::-1]
    source = "torch.linalg.eigvalsh"
else:
    lam_theirs = np.linalg.eigvalsh(H_T)[::-1]  # eigenvalues do not depend on the layout
    source = "numpy.linalg.eigvalsh (PyTorch not installed)"
full = compare(lam_theirs, ref.eigenvalues_H, kind="eigenvalues")
top3 = compare(lam_theirs[:3], ref.eigenvalues_H, kind="eigenvalues")
print(f"{source}: all eigenvalues pass {full.passed}; top 3 located in the spectrum {top3.passed}")
assert full.passed and top3.passed
