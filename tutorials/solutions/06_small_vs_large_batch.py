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
# # Solutions to tutorial 06 — Small vs large batch
#
# Single seeded runs: the answers are the printed numbers of this run.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data, spectrum
from hessref.landscape import interpolate_loss
from hessref.train import train

FAST = os.environ.get("HESSREF_FAST") == "1"
TUTORIAL = "solution06"
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


N, steps = (200, 300) if FAST else (400, 600)
lr, small, large = 0.5, 10, N // 2
X, y = data.digits(N, rng=0)
model = hr.MLP([64, 20, 10], activation="relu")
theta0 = model.init(rng=1)


def solve(batch, seed, start=theta0):
    run = train(
        model, start, X, y, loss="cross_entropy", lr=lr, steps=steps, batch_size=batch, rng=seed
    )
    lam_max = spectrum.eigenvalues(hr.hessian(model, run.theta, X, y, loss="cross_entropy"))[0]
    return run.theta, lam_max


# %% [markdown]
# ## Exercise 1 — three minibatch orders

# %%
print("Exercise 1")
ratios, solutions = [], {}
for seed in (2, 12, 22):
    (th_s, l_s), (th_l, l_l) = solve(small, seed), solve(large, seed + 1)
    solutions[seed] = (th_s, th_l)
    ratios.append(l_l / l_s)
    print(f"seed {seed}: lambda_max small {l_s:.4f}, large {l_l:.4f}, ratio {ratios[-1]:.2f}")
print(f"ratio > 1 in {sum(r > 1 for r in ratios)} of {len(ratios)} seeds")

# %% [markdown]
# ## Exercise 2 — a random direction of the same length
#
# A random direction from θ_SB of length $\lVert\theta_{LB} - \theta_{SB}\rVert$ leaves the low-loss
# region: the loss curves up in most directions. The SB–LB line is special because both of
# its ends are solutions. Compare the printed losses at the far end of each line.

# %%
print("Exercise 2")
th_s, th_l = solutions[2]
rng = np.random.default_rng(0)
direction = rng.standard_normal(th_s.size)
direction *= np.linalg.norm(th_l - th_s) / np.linalg.norm(direction)
alphas = np.linspace(0, 1, 21)
line = interpolate_loss(model, th_s, th_l, X, y, loss="cross_entropy", alphas=alphas)
rand = interpolate_loss(model, th_s, th_s + direction, X, y, loss="cross_entropy", alphas=alphas)
print(
    f"loss at alpha = 1: SB–LB line {line[-1]:.2e}, random direction {rand[-1]:.2e} "
    f"({rand[-1] / line[-1]:.0f}x)"
)
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.semilogy(alphas, line, label="θ_SB → θ_LB")
ax.semilogy(alphas, rand, "--", label="θ_SB → random point at the same distance")
ax.set(xlabel="α", ylabel="full training loss (log)", title="Interpolation line vs a random line")
ax.legend()
show(fig, "random_direction")

# %% [markdown]
# ## Exercise 3 — the edge of stability
#
# On a quadratic, gradient descent with step η diverges along directions with $\lambda > 2/\eta$.
# Minibatch SGD is noisier, but the same bound is the natural scale.

# %%
print("Exercise 3")
for seed in solutions:
    th_s, th_l = solutions[seed]
    for name, th in (("small", th_s), ("large", th_l)):
        lam = spectrum.eigenvalues(hr.hessian(model, th, X, y, loss="cross_entropy"))[0]
        print(
            f"seed {seed} {name:5s} batch: lambda_max {lam:.4f} = {lam / (2 / lr):.3f} x (2/eta = {2 / lr:g})"
        )

# %% [markdown]
# ## Exercise 4 — curvature along the line, exactly
#
# $\frac{d^2}{d\alpha^2}L(\theta_{SB} + \alpha d) = d^\top H(\theta_{SB} + \alpha d)\, d$ with $d = \theta_{LB} - \theta_{SB}$.
# A second difference of the loss along the line estimates the same number, but with ReLU a
# step can cross kinks, so we show it for several steps.

# %%
print("Exercise 4")
th_s, th_l = solutions[2]
d = th_l - th_s
exact = d @ hr.hvp(model, th_s, X, y, d, loss="cross_entropy")
print(f"d^T H d at alpha = 0: {exact:.6e}")
for h in (1e-1, 1e-2, 1e-3, 1e-4):
    L = interpolate_loss(model, th_s, th_l, X, y, loss="cross_entropy", alphas=[-h, 0.0, h])
    fd = (L[0] - 2 * L[1] + L[2]) / h**2
    print(
        f"second difference with step {h:.0e}: {fd:.6e} (relative error {abs(fd - exact) / abs(exact):.1e})"
    )
