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
# # Solutions to tutorial 05 — Beyond dense matrices

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.linalg import eigvalsh_tridiagonal
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, spectrum
from hessref.operators import ggn_operator, hessian_operator, residual_operator
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution05"
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


# the tutorial's small problem
X, y = data.gaussian_mixture(200, 4, 10, rng=0)
model = hr.MLP([10, 16, 16, 4], activation="tanh")
run = train(model, model.init(rng=1), X, y, loss="cross_entropy", lr=0.5, steps=300, stop_loss=1e-2)
H = hr.hessian(model, run.theta, X, y, loss="cross_entropy")
lam = spectrum.eigenvalues(H)
op = hessian_operator(model, run.theta, X, y, loss="cross_entropy")

# %% [markdown]
# ## Exercise 1 — Lanczos error against the number of steps
#
# The largest Ritz value of $T_j$ approaches λ_max from below in both runs. Without
# reorthogonalization the error curve looks the same; the damage is elsewhere: once λ_max has
# converged (error at rounding level), orthogonality is lost and a **second** copy starts
# to form. We mark where the number of copies first rises.

# %%
print("Exercise 1")
m = 60 if FAST else 120
fig, ax = plt.subplots(figsize=(6, 4))
for reorth in (True, False):
    res = spectrum.lanczos(op, m, rng=0, reorthogonalize=reorth)
    tops, copies = [], []
    for j in range(1, m + 1):
        ritz = eigvalsh_tridiagonal(res.alpha[:j], res.beta[: j - 1]) if j > 1 else res.alpha[:1]
        tops.append(abs(ritz.max() - lam[0]) / lam[0])
        copies.append(int(np.sum(np.abs(ritz - lam[0]) < 1e-8 * lam[0])))
    converged = next(j for j, e in enumerate(tops, start=1) if e < 1e-8)
    ghost = next((j for j, c in enumerate(copies, start=1) if c >= 2), None)
    print(
        f"reorthogonalize={reorth}: lambda_max converged (1e-8) at step {converged}; "
        f"first ghost at step {ghost}"
    )
    ax.semilogy(range(1, m + 1), np.maximum(tops, 1e-17), label=f"reorthogonalize={reorth}")
    if ghost:
        ax.axvline(ghost, color="C3", ls=":", label=f"first ghost copy (step {ghost})")
ax.set(
    xlabel="Lanczos step j",
    ylabel="relative error of the top Ritz value",
    title="Convergence of λ_max",
)
ax.legend()
show(fig, "lanczos_error")

# %% [markdown]
# ## Exercise 2 — the variance of a single Hutchinson probe
#
# For Rademacher probes $\operatorname{Var}(z^\top H z) = 2(\lVert H\rVert_F^2 - \sum_i H_{ii}^2)$; for
# Gaussian probes $2\lVert H\rVert_F^2$. Rademacher probes never pay for the diagonal.

# %%
print("Exercise 2")
n = 1000
rng = np.random.default_rng(0)
one = spectrum.hutchinson_trace(op, 1, rng=0)  # the library's one-probe estimate
Z_rad = rng.choice([-1.0, 1.0], size=(H.shape[0], n))
Z_gauss = rng.standard_normal((H.shape[0], n))
pred_rad = 2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2))
pred_gauss = 2 * np.sum(H**2)
print(f"one Rademacher probe from hutchinson_trace: {one.estimate:.4f} (tr H = {np.trace(H):.4f})")
for name, Z, pred in (("Rademacher", Z_rad, pred_rad), ("Gaussian", Z_gauss, pred_gauss)):
    values = np.einsum("pk,pk->k", Z, op @ Z)  # z^T H z for each probe
    var = values.var(ddof=1)
    print(
        f"{name:10s}: empirical variance over {n} probes {var:.5f}, predicted {pred:.5f} "
        f"(ratio {var / pred:.2f}); mean {values.mean():.4f}"
    )

# %% [markdown]
# ## Exercise 3 — G and R of the digits model
#
# The outliers at the top should come from G (R is small after training), and the negative
# eigenvalues can only come from R (G ⪰ 0).

# %%
print("Exercise 3")
width, n_samples, steps = (16, 200, 100) if FAST else (100, 800, 300)
Xd, yd = data.digits(n_samples, rng=0)
big = hr.MLP([64, width, width, 10], activation="tanh")
rb = train(big, big.init(rng=5), Xd, yd, loss="cross_entropy", lr=0.1, steps=steps)
ops = {
    "H": hessian_operator(big, rb.theta, Xd, yd, loss="cross_entropy"),
    "G": ggn_operator(big, rb.theta, Xd, yd, loss="cross_entropy"),
    "R": residual_operator(big, rb.theta, Xd, yd, loss="cross_entropy"),
}
ends = {}
for name, A in ops.items():
    top = spectrum.top_eigenpairs(A, 3, method="lanczos", rng=0).values
    bottom = spectrum.top_eigenpairs(A, 1, which="smallest", method="lanczos", rng=0).values
    ends[name] = (top, bottom[0])
    print(f"{name}: top-3 {np.round(top, 4)}, smallest {bottom[0]:+.2e}")
print(
    f"lambda_max(H) {ends['H'][0][0]:.4f} vs lambda_max(G) {ends['G'][0][0]:.4f}; "
    f"lambda_min(H) {ends['H'][1]:+.2e} >= lambda_min(R) {ends['R'][1]:+.2e}: "
    f"{ends['H'][1] >= ends['R'][1] - 1e-10}; lambda_min(G) {ends['G'][1]:+.1e} (PSD)"
)

# %% [markdown]
# ## Exercise 4 — Ghorbani et al.'s kernel width
#
# A Gaussian of **variance** $s^2 = 10^{-5}\max(1, \lambda_{\max} - \lambda_{\min})$ has the standard
# deviation $\sigma = \sqrt{s^2}$, which is what `sigma` means in hessref.

# %%
print("Exercise 4")
sigma = np.sqrt(1e-5 * max(1.0, lam[0] - lam[-1]))
print(f"sigma = sqrt(1e-5 * max(1, {lam[0] - lam[-1]:.4f})) = {sigma:.2e}")
grid = np.linspace(lam[-1] - 0.01, lam[0] + 0.01, 600)
slq = spectrum.slq_density(op, m=40, num_probes=10, sigma=sigma, grid=grid, rng=4)
exact = spectrum.exact_density(lam, grid, sigma)
fig, ax = plt.subplots(figsize=(6, 3.8))
ax.semilogy(grid, exact.density + 1e-6, label="exact")
ax.semilogy(grid, slq.density + 1e-6, "--", label="SLQ")
ax.set(xlabel="eigenvalue", ylabel="density (log)", ylim=(1e-3, None), title=f"σ = {sigma:.1e}")
ax.legend()
show(fig, "ghorbani_sigma")
