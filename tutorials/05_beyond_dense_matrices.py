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
# # 05 — Beyond dense matrices: HVPs, Lanczos, Hutchinson and SLQ
#
# A dense Hessian costs $8P^2$ bytes: 2 GB at $P = 16{,}000$, 8 TB at a million
# parameters ($8 \times 10^{12}$ bytes). Everything iterative only needs **products** $v \mapsto Hv$, which cost a
# small multiple of one gradient, $O(NP)$, by Pearlmutter's R-operator. hessref wraps them
# as SciPy `LinearOperator`s (`hessian_operator`, `ggn_operator`, `residual_operator`), and
# `hessref.spectrum` provides the matrix-free methods:
#
# | question | method | cost |
# |---|---|---|
# | a few extreme eigenvalues | Lanczos / ARPACK (`top_eigenpairs`) | tens to hundreds of HVPs |
# | trace | Hutchinson $\mathbb E[z^\top H z]$ (`hutchinson_trace`, `hutchpp_trace`) | one HVP per probe |
# | the whole spectral density | stochastic Lanczos quadrature (`slq_density`) | $m$ HVPs per probe |
#
# Plan: validate each method **against the exact answer** on a small model where the
# dense Hessian is cheap, then use them on a model where it is not.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np
from scipy.linalg import eigvalsh_tridiagonal
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, spectrum
from hessref.operators import hessian_operator
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "05"

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


# The matrices in one product are small (N × width); one BLAS thread is faster here than
# several competing ones, especially on a laptop that is busy with other things.
threadpool_limits(limits=1, user_api="blas")

# a small problem: 4-class Gaussian mixture, tanh MLP 10-16-16-4 (P = 516), trained briefly
X, y = data.gaussian_mixture(200, 4, 10, rng=0)
model = hr.MLP([10, 16, 16, 4], activation="tanh")
run = train(model, model.init(rng=1), X, y, loss="cross_entropy", lr=0.5, steps=300, stop_loss=1e-2)
theta = run.theta
P = model.num_params
H = hr.hessian(model, theta, X, y, loss="cross_entropy")
lam = spectrum.eigenvalues(H)  # exact, descending
print(f"P = {P}, trained {run.num_steps} steps to loss {run.losses[-1]:.3g}")
print("top exact eigenvalues:", np.round(lam[:5], 5), " lambda_min:", round(lam[-1], 5))

# %% [markdown]
# ## Hessian-vector products
#
# The operator never forms H, but its products are exact: they agree with the dense
# matrix to rounding error, for one vector or a block of vectors at once.

# %%
op = hessian_operator(model, theta, X, y, loss="cross_entropy")
rng = np.random.default_rng(2)
V = rng.standard_normal((P, 8))
err = np.abs(op @ V - H @ V).max() / np.abs(H @ V).max()
print(f"operator: {op!r}\nmax relative error of H V: {err:.1e}")
assert err < 1e-12

t = time.perf_counter()
op @ V[:, 0]
t_hvp = time.perf_counter() - t
t = time.perf_counter()
hr.hessian(model, theta, X, y, loss="cross_entropy")
t_dense = time.perf_counter() - t
print(f"one HVP {1e3 * t_hvp:.1f} ms, the dense H {1e3 * t_dense:.0f} ms (P = {P} columns)")

# %% [markdown]
# ## Lanczos for extreme eigenvalues
#
# Lanczos builds an orthonormal basis $Q_m$ of the Krylov space
# $\{v, Hv, \dots, H^{m-1}v\}$ in which H is tridiagonal, $Q_m^\top H Q_m = T_m$. The
# eigenvalues of $T_m$ (Ritz values) converge first at the **ends** of the spectrum, so a few
# dozen products reveal the outliers. `top_eigenpairs` also reports the residuals
# $\lVert Hv - \lambda v\rVert$, computed, not estimated.

# %%
top = spectrum.top_eigenpairs(op, 5, method="lanczos", rng=0)
bottom = spectrum.top_eigenpairs(op, 2, which="smallest", method="lanczos", rng=0)
print("Lanczos top-5:", np.round(top.values, 6), f"({top.num_matvecs} products)")
print("max residual:", f"{top.residuals.max():.1e}", " smallest:", np.round(bottom.values, 6))
assert np.allclose(top.values, lam[:5], rtol=1e-8, atol=0)
assert np.allclose(bottom.values, lam[::-1][:2], rtol=1e-8, atol=0)

# %% [markdown]
# ## What goes wrong without reorthogonalization: ghost eigenvalues
#
# In exact arithmetic the three-term recurrence keeps $Q_m$ orthonormal. In floating
# point, orthogonality is lost exactly when a Ritz value converges (Paige's theorem); the
# basis then "re-discovers" the converged eigenvector and the Ritz value appears **again**:
# a ghost copy. Full reorthogonalization (orthogonalizing every new vector against the
# whole basis) prevents this at $O(mP)$ memory. Below, λ_max is a simple eigenvalue, yet the
# unreorthogonalized run reports it several times.

# %%
m_steps = 80 if FAST else 120
rows = []
for reorth in (True, False):
    res = spectrum.lanczos(op, m_steps, rng=0, reorthogonalize=reorth)
    copies = int(np.sum(np.abs(res.nodes - lam[0]) < 1e-8 * lam[0]))
    rows.append((reorth, res, copies))
    print(f"reorthogonalize={reorth!s:5}: Ritz values within 1e-8 of lambda_max: {copies}")
assert rows[0][2] == 1  # with reorthogonalization: one copy, as it should be
assert rows[1][2] >= 2  # without: ghosts

# Ritz values after every step j: the eigenvalues of the leading j×j block T_j of T_m
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for reorth, res, _ in rows:
    ritz = [eigvalsh_tridiagonal(res.alpha[:j], res.beta[: j - 1]) for j in range(2, m_steps + 1)]
    near = [int(np.sum(np.abs(r - lam[0]) < 1e-8 * lam[0])) for r in ritz]
    axes[1].step(range(2, m_steps + 1), near, where="post", label=f"reorthogonalize={reorth}")
    if not reorth:
        for j, r in enumerate(ritz, start=2):
            axes[0].plot(np.full(r.size, j), r, ".", color="0.5", ms=3)
for e in lam[:5]:
    axes[0].axhline(e, color="C3", lw=0.6, ls="--")
axes[0].set(
    xlabel="Lanczos step j",
    ylabel="Ritz values (eigenvalues of T_j)",
    ylim=(lam[6], lam[0] + 0.1 * (lam[0] - lam[6])),
    title="Without reorthogonalization (red: exact top 5)",
)
axes[1].set(
    xlabel="Lanczos step j",
    ylabel="Ritz values within 1e-8 of λ_max",
    title=f"Copies of the simple eigenvalue λ_max: {rows[1][2]} without, {rows[0][2]} with reorth. at j = {m_steps}",
)
axes[1].yaxis.set_major_locator(plt.MaxNLocator(integer=True))
axes[1].legend()
show(fig, "lanczos_ghosts")

# %% [markdown]
# The quadrature **weights** stay roughly right without reorthogonalization (ghosts share
# the weight of their eigenvalue), which is why densities remain usable, but multiplicities
# cannot be read from the Ritz values.
#
# ## Hutchinson's trace estimator
#
# For a random $z$ with $\mathbb E[zz^\top] = I$ (e.g. Rademacher ±1 entries),
# $\mathbb E[z^\top H z] = \operatorname{tr} H$. One probe has variance
# $2(\lVert H\rVert_F^2 - \sum_i H_{ii}^2)$, averaging $n$ probes divides it by $n$.
# Hutch++ spends a third of its products on a low-rank sketch of the top eigenspace and
# estimates only the rest stochastically: it helps when a few large eigenvalues hold most of
# the Frobenius norm, and it can lose at a small budget when they do not (its random part
# then has only a third of the probes).
#
# One run's error is a single draw: a lucky or unlucky seed says little about which
# estimator is better. So we repeat both estimators over many seeds at the **same budget of
# products** and compare their spreads (standard deviations), next to each run's own
# standard error.

# %%
n_probes = 60 if FAST else 200
n_seeds = 10 if FAST else 20
est = spectrum.hutchinson_trace(op, n_probes, rng=3)
hpp = spectrum.hutchpp_trace(op, n_probes, rng=3)
exact_trace = np.trace(H)
predicted_sd = np.sqrt(2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2)) / n_probes)
print(f"exact tr H = {exact_trace:.5f}")
print(
    f"one run: Hutchinson ({est.num_matvecs} products) = {est.estimate:.5f} ± {est.stderr:.5f} "
    f"(predicted standard deviation {predicted_sd:.5f}); "
    f"Hutch++ ({hpp.num_matvecs} products) = {hpp.estimate:.5f} ± {hpp.stderr:.5f}"
)
assert abs(est.estimate - exact_trace) < 5 * predicted_sd

seeds = range(100, 100 + n_seeds)
errors = {
    "Hutchinson": np.array(
        [spectrum.hutchinson_trace(op, n_probes, rng=s).estimate for s in seeds]
    ),
    "Hutch++": np.array([spectrum.hutchpp_trace(op, n_probes, rng=s).estimate for s in seeds]),
}
sd = {}
for name, values in errors.items():
    err = values - exact_trace
    sd[name] = err.std(ddof=1)
    print(
        f"{name:10s} over {n_seeds} seeds: mean error {err.mean():+.5f} ± "
        f"{sd[name] / np.sqrt(n_seeds):.5f}, standard deviation {sd[name]:.5f}"
    )
k = n_probes // 3  # the sketch's rank in Hutch++
tail = np.sum(lam[k:] ** 2) / np.sum(lam**2)
better = "better" if sd["Hutch++"] < sd["Hutchinson"] else "worse"
print(
    f"At {n_probes} products Hutch++ is {better} than Hutchinson here (spread ratio "
    f"{sd['Hutch++'] / sd['Hutchinson']:.2f}). Its sketch removes the top {k} eigenvalues, which "
    f"leaves {tail:.0%} of ||H||_F^2 for its {n_probes - 2 * k} random probes: the predicted spread "
    f"ratio is about sqrt(3 x {tail:.2f}) = {np.sqrt(3 * tail):.2f}, below 1 only if that share is < 1/3."
)

# %% [markdown]
# ## Stochastic Lanczos quadrature (SLQ)
#
# The spectral density $\phi(t) = \frac1P\sum_i \delta(t-\lambda_i)$ satisfies
# $\frac1P\operatorname{tr} f(H) = \int f\,d\phi$. For a unit probe $v$, $m$ Lanczos steps give
# a Gauss quadrature rule: nodes $\mu_k$ (Ritz values) and weights $\tau_k = S_{1k}^2$, the
# squared **first** entries of $T_m$'s eigenvectors, with
#
# $$\sum_k \tau_k \mu_k^j = v^\top H^j v \quad \text{exactly for } 0 \le j \le 2m - 1 .$$
#
# Averaging rules over random probes and smoothing with a Gaussian gives SLQ. First the
# exact moment identity:

# %%
v = rng.standard_normal(P)
v /= np.linalg.norm(v)
m_q = 8
rule = spectrum.lanczos(H, m_q, v0=v)
w = v.copy()
for j in range(2 * m_q + 1):
    quad, exact_moment = rule.weights @ rule.nodes**j, v @ w  # w = H^j v
    if j < 2 * m_q:
        assert np.isclose(quad, exact_moment, rtol=1e-9, atol=1e-14 * lam[0] ** j), j
    w = H @ w
print(
    f"moments j = 0..{2 * m_q - 1} exact; at j = {2 * m_q}: quadrature {quad:.6e} vs {exact_moment:.6e}"
)

# %%
sigma = 0.002
grid = np.linspace(lam[-1] - 0.01, lam[0] + 0.01, 600)
slq = spectrum.slq_density(op, m=40, num_probes=10, sigma=sigma, grid=grid, rng=4)
exact = spectrum.exact_density(lam, grid, sigma)
mass = np.trapezoid(slq.density, grid)
l1 = np.trapezoid(np.abs(slq.density - exact.density), grid)
print(f"SLQ mass {mass:.4f}, L1 distance to the exact smoothed density {l1:.3f}")
assert abs(mass - 1) < 1e-3

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.semilogy(grid, exact.density + 1e-6, label="exact (eigh + same kernel)")
ax.semilogy(grid, slq.density + 1e-6, "--", label="SLQ: 10 probes × 40 steps")
ax.set(
    xlabel="eigenvalue", ylabel="density (log)", ylim=(1e-3, None), title="Spectral density of H"
)
ax.legend()
show(fig, "slq_density")

# %% [markdown]
# ## A model too large for a dense Hessian
#
# Now the same tools on scikit-learn's 8×8 handwritten digits (64 inputs, 10 classes — a
# small real dataset, **not** MNIST) with a 64→100→100→10 tanh MLP: $P = 17{,}610$, so the
# dense H would take 2.5 GB (in fast mode the model is smaller). hessref refuses such requests up front when they do not
# fit in memory; the operators need only a few vectors of length P.

# %%
width, n_samples, steps = (32, 300, 150) if FAST else (100, 800, 300)
Xd, yd = data.digits(n_samples, rng=0)
big = hr.MLP([64, width, width, 10], activation="tanh")
run = train(big, big.init(rng=5), Xd, yd, loss="cross_entropy", lr=0.1, steps=steps)
Pb = big.num_params
print(
    f"P = {Pb}: dense H would need {8 * Pb**2 / 2**30:.1f} GiB; "
    f"trained {run.num_steps} steps, loss {run.losses[-1]:.3f}"
)
op_big = hessian_operator(big, run.theta, Xd, yd, loss="cross_entropy")

t = time.perf_counter()
top_big = spectrum.top_eigenpairs(op_big, 12, rng=0)  # ARPACK, which='LA'
print(f"top 12 eigenvalues ({top_big.num_matvecs} products, {time.perf_counter() - t:.1f} s):")
print(np.round(top_big.values, 4), " max residual", f"{top_big.residuals.max():.1e}")
trace_big = spectrum.hutchpp_trace(op_big, 60, rng=0)
print(
    f"tr H ≈ {trace_big.estimate:.3f} (Hutch++, 60 products); "
    f"sum of the top 12 = {top_big.values.sum():.3f}"
)
t = time.perf_counter()
dens_big = spectrum.slq_density(op_big, m=50, num_probes=4, rng=0)
print(f"SLQ density: {time.perf_counter() - t:.1f} s")
# the top of the SLQ range must reach λ_max found by ARPACK (Ritz values never exceed λ_max)
assert dens_big.nodes.max() <= top_big.values[0] * (1 + 1e-8)
assert np.all(top_big.residuals <= 1e-6 * top_big.values[0])

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.semilogy(dens_big.grid, dens_big.density + 1e-8)
ax1.set(
    xlabel="eigenvalue",
    ylabel="density (log)",
    ylim=(1e-4, None),
    title=f"SLQ density, digits MLP (P = {Pb})",
)
ax2.plot(np.arange(1, 13), top_big.values, "o")
ax2.set(xlabel="index", ylabel="λ_i", title="Top 12 eigenvalues (Lanczos / ARPACK)")
show(fig, "digits_model")

g, rho = dens_big.grid, dens_big.density
near = np.abs(g) < 0.05 * top_big.values[0]
print(
    f"SLQ mass within ±5% of lambda_max around zero: {np.trapezoid(rho[near], g[near]):.0%}; "
    f"negative mass: {np.trapezoid(rho[g < 0], g[g < 0]):.0%}; "
    f"mass above half of lambda_max: {np.trapezoid(rho[g > 0.5 * g.max()], g[g > 0.5 * g.max()]):.2%}"
)

# %% [markdown]
# What to look for in the density: how much mass sits in a narrow bulk around zero, how much
# is negative, and how thin the tail of large eigenvalues is (the printed shares). Whether
# that tail separates into exactly C = 10 outliers depends on the data and on how far
# training went — tutorial 03 counts outliers carefully, on exact spectra.
#
# ## Exercises
#
# 1. Plot the error of the Lanczos estimate of λ_max against the number of steps, with and
#    without reorthogonalization. When do ghosts appear?
# 2. Measure the empirical variance of the Hutchinson estimate over 200 seeds with 1 probe
#    each and compare it with $2(\lVert H\rVert_F^2 - \sum_i H_{ii}^2)$. What happens with
#    Gaussian probes ($2\lVert H\rVert_F^2$)?
# 3. Use `ggn_operator` and `residual_operator` on the digits model: where do the outliers
#    and the negative eigenvalues come from?
# 4. Ghorbani et al. smooth with a Gaussian of **variance** $10^{-5}\max(1, \lambda_{\max} - \lambda_{\min})$.
#    Convert it to hessref's `sigma` (a standard deviation) and redo the SLQ plot.
