"""Random-matrix theory behind "bulk + outliers" (Sagun et al. 2017, arXiv:1706.04454, App. B).

For a linear model f(x) = W x + b (K outputs) with mean MSE on N samples, the Hessian does
not depend on θ or the targets. In hessref's layout θ = [W.ravel() (row-major, K×M), b]::

    H = [[ I_K ⊗ XᵀX/N ,  I_K ⊗ x̄ ],
         [ I_K ⊗ x̄ᵀ    ,  I_K     ]]      (x̄ = Xᵀ1/N, shape (M, 1))

i.e. I_K ⊗ (XᵀX/N) on the weights (the identity factor comes *first*: weight W[k, j]
sits at index k·M + j). Equivalently, after reordering θ output by output, H = I_K ⊗ S̃
with S̃ = X̃ᵀX̃/N and X̃ = [X, 1]. For i.i.d. standard Gaussian inputs E[x̃x̃ᵀ] = I_{M+1},
so each copy of S̃ is a sample second-moment matrix with identity population and
α = (M+1)/N; its spectrum follows Marchenko–Pastur (MP):

    density  ρ_α(x) = √((b − x)(x − a)) / (2π α x)   on [a, b] = [(1 − √α)², (1 + √α)²],
    plus an atom of mass 1 − 1/α at 0 when α > 1.

The constant feature 1 is not Gaussian, but it changes S̃ by a rank-one term relative to
a fully Gaussian design, which moves the empirical CDF by at most 1/(M+1) (interlacing).

**MP CDF, closed form** (our derivation, checked against numerical quadrature in
tests/test_random_matrix.py): with r(x) = √((b − x)(x − a)),

    ∫ r(x)/x dx = r(x) + (a+b)/2 · arcsin((2x − a − b)/(b − a))
                  − √(ab) · arcsin(((a + b)x − 2ab)/(x(b − a))),

so F(x) = (1 − 1/α)₊ + [A(x) − A(a)] / (2πα) for a ≤ x ≤ b, where A is the
antiderivative above (A(b) − A(a) = π((a+b)/2 − √(ab)) gives the bulk mass min(1, 1/α));
:func:`mp_cdf` evaluates A(x) − A(a) in a cancellation-free form.

**Spiked model (BBP)**: population covariance I + (ℓ − 1)uuᵀ. If ℓ > 1 + √α the top sample
eigenvalue converges to ℓ(1 + α/(ℓ − 1)), outside the bulk; otherwise to the edge (1+√α)²
(Baik, Ben Arous, Péché 2005, arXiv:math/0403022; Baik & Silverstein 2006,
arXiv:math/0408165). Above the threshold its fluctuations are Gaussian, √N(λ − ρ(ℓ)) →
N(0, 2ℓ²(1 − α/(ℓ−1)²)) (Paul 2007); at the edge they are Tracy–Widom on the scale of
Johnstone (2001) given by :func:`edge_scale`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha: expected a finite ratio M/N > 0, got {alpha}")
    return alpha


def mp_edges(alpha: float) -> tuple[float, float]:
    """Support [a, b] = [(1 − √α)², (1 + √α)²] of the MP bulk (unit variance)."""
    s = np.sqrt(_check_alpha(alpha))
    return float((1 - s) ** 2), float((1 + s) ** 2)


def mp_density(x: ArrayLike, alpha: float) -> Array:
    """Continuous part of the MP law, ρ_α(x) = √((b − x)(x − a)) / (2π α x) on [a, b].

    Integrates to min(1, 1/α); the atom (1 − 1/α)₊ at 0 is not included.
    """
    a, b = mp_edges(alpha)
    x = np.asarray(x, dtype=float)
    inside = (x > a) & (x < b)
    xi = np.where(inside, x, 0.5 * (a + b))
    return np.where(inside, np.sqrt((b - xi) * (xi - a)) / (2 * np.pi * alpha * xi), 0.0)


def _asin_sqrt(s: Array, one_minus_s: Array) -> Array:
    """arcsin(√s) from s and an exactly computed 1 − s: accurate at both ends (s → 0, 1)."""
    s, t = np.clip(s, 0, 1), np.clip(one_minus_s, 0, 1)
    return np.where(s <= 0.5, np.arcsin(np.sqrt(s)), 0.5 * np.pi - np.arcsin(np.sqrt(t)))


def _bulk_integral(x: Array, a: float, b: float) -> Array:
    """A(x) − A(a) for a ≤ x ≤ b, x > 0 (module docstring), without cancellation.

    With arcsin(t) + π/2 = 2 arcsin(√((1 + t)/2)), the exact (1 + t₁)/2 = (x − a)/(b − a),
    (1 + t₂)/2 = b(x − a)/(x(b − a)) and their complements (b − x)/(b − a),
    a(b − x)/(x(b − a)), no term loses digits as x → a or x → b (where each arcsin
    alone has an infinite slope).
    """
    r = np.sqrt(np.clip((b - x) * (x - a), 0, None))
    w = x * (b - a)
    t1 = _asin_sqrt((x - a) / (b - a), (b - x) / (b - a))
    t2 = _asin_sqrt(b * (x - a) / w, a * (b - x) / w)
    return r + (a + b) * t1 - 2 * np.sqrt(a * b) * t2


def mp_cdf(x: ArrayLike, alpha: float) -> Array:
    """MP cumulative distribution F_α(x), atom at 0 included, closed form (module docstring)."""
    alpha = _check_alpha(alpha)
    a, b = mp_edges(alpha)
    x = np.asarray(x, dtype=float)
    atom = max(0.0, 1 - 1 / alpha)
    xi = np.clip(x, max(a, 1e-300), b)
    bulk = np.where(x <= a, 0.0, _bulk_integral(xi, a, b) / (2 * np.pi * alpha))
    bulk = np.where(x >= b, min(1.0, 1 / alpha), np.minimum(bulk, min(1.0, 1 / alpha)))
    return np.where(x >= 0, atom, 0.0) + bulk


def kolmogorov_distance(eigenvalues: ArrayLike, alpha: float) -> float:
    """sup_x |F_emp(x) − F_α(x)| for the empirical CDF of ``eigenvalues``.

    The sup is attained at a jump of either CDF: compare F_α(λ) with F_emp(λ) and the left
    limits F_α(λ⁻) with F_emp(λ⁻) (they differ only at the atom 0). Eigenvalues within
    1e-9·max|λ| of 0 are set to exactly 0, the atom.
    """
    ev = np.sort(np.asarray(eigenvalues, dtype=float))
    ev = np.where(np.abs(ev) <= 1e-9 * np.abs(ev).max(), 0.0, ev)
    n = ev.size
    F = mp_cdf(ev, alpha)
    # at a tie (the atom) the empirical CDF jumps once: use the last index of each value
    hi = np.searchsorted(ev, ev, side="right") / n
    lo = np.searchsorted(ev, ev, side="left") / n
    F_left = F - np.where(ev == 0, max(0.0, 1 - 1 / alpha), 0.0)
    return float(max(np.max(np.abs(hi - F)), np.max(np.abs(F_left - lo))))


def bbp_threshold(alpha: float) -> float:
    """Critical population spike ℓ_c = 1 + √α."""
    return 1 + np.sqrt(_check_alpha(alpha))


def spike_location(spike: float, alpha: float) -> float:
    """Limit of the top sample eigenvalue: ℓ(1 + α/(ℓ − 1)) above ℓ_c, the edge (1+√α)² below."""
    if spike <= bbp_threshold(alpha):
        return mp_edges(alpha)[1]
    return float(spike * (1 + alpha / (spike - 1)))


def spike_std(spike: float, alpha: float, num_samples: int) -> float:
    """Asymptotic std of the outlier above ℓ_c: ℓ √(2(1 − α/(ℓ−1)²)/N) (Paul 2007)."""
    return float(spike * np.sqrt(2 * (1 - alpha / (spike - 1) ** 2) / num_samples))


def edge_scale(dim: int, num_samples: int) -> float:
    """Tracy–Widom scale of λ_max(XᵀX/N) at the edge (Johnstone 2001), X (N, M):
    (√N + √M)(1/√N + 1/√M)^{1/3} / N.
    """
    n, m = float(num_samples), float(dim)
    return float((np.sqrt(n) + np.sqrt(m)) * (1 / np.sqrt(n) + 1 / np.sqrt(m)) ** (1 / 3) / n)


def spiked_inputs(num_samples: int, dim: int, spike: float = 1.0, rng=None) -> Array:
    """X (N, M), rows i.i.d. N(0, I + (ℓ − 1) u uᵀ) with u a uniformly random unit vector."""
    if spike <= 0:
        raise ValueError(f"spike: expected a population variance ℓ > 0, got {spike}")
    gen = np.random.default_rng(rng)
    Z = gen.standard_normal((num_samples, dim))
    u = gen.standard_normal(dim)
    u /= np.linalg.norm(u)
    return Z + (np.sqrt(spike) - 1) * np.outer(Z @ u, u)


def linear_mse_hessian(X: ArrayLike, num_outputs: int) -> Array:
    """Closed-form H of mean MSE for ``MLP([M, K], "identity")`` in hessref's layout.

    H = [[I_K ⊗ XᵀX/N, I_K ⊗ x̄], [I_K ⊗ x̄ᵀ, I_K]], shape (K(M+1), K(M+1)).
    """
    X = np.asarray(X, dtype=float)
    N, _ = X.shape
    eye = np.eye(num_outputs)
    xbar = X.mean(axis=0)[:, None]
    top = np.hstack([np.kron(eye, X.T @ X / N), np.kron(eye, xbar)])
    bottom = np.hstack([np.kron(eye, xbar.T), eye])
    return np.vstack([top, bottom])
