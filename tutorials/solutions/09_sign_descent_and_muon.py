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
# # Solutions to tutorial 09 — Sign descent and Muon under sparse gradient noise
#
# Seeded runs on the tutorial's quadratic (fast mode: fewer steps and sizes); the answers
# are the printed numbers.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from hessref.experiments.sign_vs_sgd import best_run, curvature, quadratic_problem
from hessref.train import GradientNoise, Optimizer, polar_factor

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution09"
plt.rcParams["figure.constrained_layout.use"] = True
_here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
FIGURES = os.environ.get("HESSREF_FIGURES") or (_here and os.path.join(_here, "figures"))


def show(fig, name):
    """Show ``fig``; save it as FIGURES/{TUTORIAL}_{name}.png when FIGURES is set."""
    if FIGURES:
        os.makedirs(FIGURES, exist_ok=True)
        fig.savefig(os.path.join(FIGURES, f"{TUTORIAL}_{name}.png"), dpi=110, bbox_inches="tight")
    plt.show()


settings = {"steps": 150 if FAST else 300, "lrs": [1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}
n = 4 if FAST else 6


def race(rotate, opt, sparsity, sigma=0.3):
    qmodel, Xq, Yq, H = quadratic_problem(n, sigma, rotate, seed=0)
    return best_run(
        qmodel,
        qmodel.init(1),
        Xq,
        Yq,
        opt,
        GradientNoise(sigma, sparsity=sparsity),
        settings,
        seed=2,
        target=0.05,
    )[1], H


# %% [markdown]
# ## Exercise 1 — a rotated quadratic
#
# Rotation keeps the eigenvalues (so SGD, which only sees the spectrum and the noise
# covariance, should not change much) but raises $\sum|H_{ij}|$, the smoothness constant of
# sign descent.

# %%
print("Exercise 1")
for rotate in (False, True):
    row = {opt: race(rotate, opt, 1)[0] for opt in ("sgd", "sign", "muon")}
    H = race(rotate, "sgd", 1)[1]
    c = curvature(H)
    print(
        f"{'rotated' if rotate else 'axis-aligned'}: sum|H_ij| = {c['l1_smoothness']:.2f}, "
        f"lambda_max {c['lambda_max']:.3f}; final loss ratio (sparse noise) "
        + ", ".join(f"{k} {v:.2e}" for k, v in row.items())
    )

# %% [markdown]
# ## Exercise 2 — Muon is invariant to rotating the inputs
#
# If $G = U\Sigma V^\top$ then $GQ = U\Sigma (Q^\top V)^\top$ is an SVD too, so its polar factor is
# $U V^\top Q$.

# %%
print("Exercise 2")
rng = np.random.default_rng(0)
G = rng.standard_normal((4, 6))
Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
err = np.abs(polar_factor(G @ Q) - polar_factor(G) @ Q).max()
print(f"max |polar(G Q) - polar(G) Q| = {err:.1e}")
assert err < 1e-12

# %% [markdown]
# ## Exercise 3 — sign descent against the noise sparsity

# %%
print("Exercise 3")
d = n * n + n
ks = [1, 4, 16, d] if d > 16 else [1, 4, d]
finals = [race(False, "sign", k)[0] for k in ks]
for k, f in zip(ks, finals, strict=True):
    print(f"sparsity k = {k:3d}: sign descent final loss ratio {f:.2e}")
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.loglog(ks, finals, "o-")
ax.set(
    xlabel="nonzero noise coordinates k",
    ylabel="final loss / initial loss",
    title=f"sign descent, d = {d}, σ = 0.3",
)
show(fig, "sparsity")

# %% [markdown]
# ## Exercise 4 — momentum under dense noise
#
# Momentum averages the noisy gradients before the sign (or the polar factor) is taken, which
# can shrink the share of wrong signs.

# %%
print("Exercise 4")
for opt in ("sign", Optimizer("sign", momentum=0.9), "muon", Optimizer("muon", momentum=0.9)):
    name = opt if isinstance(opt, str) else f"{opt.name} + momentum 0.9"
    print(f"{name:22s}: final loss ratio under dense noise {race(False, opt, None)[0]:.2e}")
