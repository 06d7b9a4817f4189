"""Iterations to an ℓ1-stationarity target for SGD and SignSGD on noisy quadratics.

The measurement behind the ``sign-vs-sgd`` experiment (Tao, Yu, Zhang 2026,
arXiv:2605.06615: under sparse gradient noise SignSGD needs a factor ~d fewer
iterations than SGD). Everything here is exact or plain Monte Carlo on a quadratic

    f(x) = ½ xᵀ A x,   A = Q diag(h) Qᵀ,   stochastic gradient g = A x + σ ⊙ z,  z ~ N(0, I)

with Q = I (axis-aligned, A diagonal) or a Householder reflection mapping e₀ to a random
unit vector u (rotated: A = h₁I + (h₀ − h₁)uuᵀ is dense; the noise stays on the
coordinates). The bounds control the average-iterate quantity, so the number of
iterations to the target ε is

    T(ε) = min { T ≥ 1 : (1/T) Σ_{t<T} E‖∇f(x_t)‖₁ ≤ ε },

taken as the smallest over a grid of constant steps (each method tuned on its own grid).

- SGD on a diagonal A is a linear Gaussian recursion per coordinate, so E‖∇f(x_t)‖₁ is
  exact: x_i(t) ~ N(rᵗ x_i(0), η²σ_i²(1 − r^{2t})/(1 − r²)), r = 1 − ηh_i, and
  E|N(m, s²)| = s√(2/π) exp(−m²/2s²) + m·erf(m/(s√2)) (the folded normal).
- SignSGD (x ← x − η sign(g)), and SGD on the rotated A, by Monte Carlo: E is the mean
  over ``repeats`` independent runs.

The noise density of the bound is φ(σ) = ‖σ‖₁² / (d‖σ‖₂²) ∈ [1/d, 1] (1/d: one noisy
coordinate; 1: equal noise everywhere); the ℓ∞-type smoothness is L∞ = Σ_ij |A_ij|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps


@dataclass(frozen=True)
class NoisyQuadratic:
    """f(x) = ½xᵀAx with A = Q diag(h) Qᵀ, start ``x0``, per-coordinate noise std ``sigma``.

    ``w`` is None (Q = I) or the unit Householder vector of Q = I − 2wwᵀ. Arrays (d,).
    """

    h: np.ndarray
    x0: np.ndarray
    sigma: np.ndarray
    w: np.ndarray | None = None

    @property
    def d(self) -> int:
        """The dimension."""
        return int(self.h.size)

    def reflect(self, X: np.ndarray) -> np.ndarray:
        """Q X along the last axis (Q = I when ``w`` is None; Q is symmetric, Q² = I)."""
        if self.w is None:
            return X
        return X - 2.0 * (X @ self.w)[..., None] * self.w

    def grad(self, X: np.ndarray) -> np.ndarray:
        """∇f = A x for a batch X (..., d), in O(d) per point."""
        return self.reflect(self.h * self.reflect(X))

    def dense(self) -> np.ndarray:
        """A as a dense (d, d) matrix (for L∞ and the tests)."""
        return self.grad(np.eye(self.d))


def stiff_flat_problem(d: int, noise: str, scale: float) -> NoisyQuadratic:
    """The pilot design of ``sign-vs-sgd``: L∞ = Σh = 1, Δ and ‖∇f(x₀)‖₁ independent of d.

    One stiff coordinate h₀ = ½ starting at 0, d − 1 flat coordinates h = 1/(2(d − 1))
    starting at 1. ``noise="sparse"``: σ = (scale, 0, …, 0), all the noise on the stiff
    coordinate; ``"dense"``: σ_i = scale/d (the same ‖σ‖₁).
    """
    if d < 2:
        raise ValueError(f"d: expected at least 2 coordinates, got {d}")
    h = np.full(d, 1.0 / (2.0 * (d - 1)))
    h[0] = 0.5
    x0 = np.ones(d)
    x0[0] = 0.0
    if noise == "sparse":
        sigma = np.zeros(d)
        sigma[0] = scale
    elif noise == "dense":
        sigma = np.full(d, scale / d)
    else:
        raise ValueError(f"noise: expected 'sparse' or 'dense', got {noise!r}")
    return NoisyQuadratic(h, x0, sigma)


def rotated(problem: NoisyQuadratic, rng: np.random.Generator) -> NoisyQuadratic:
    """The same spectrum and noise with the stiff direction moved to a random unit u.

    Q is the Householder reflection with Q e₀ = u; the start is Q x₀ (same f value), the
    noise is unchanged (still on the coordinates), so A is dense and the noise is not
    aligned with A's eigenvectors.
    """
    u = rng.standard_normal(problem.d)
    u /= np.linalg.norm(u)
    w = np.zeros(problem.d)
    w[0] = 1.0
    w -= u
    w /= np.linalg.norm(w)
    moved = NoisyQuadratic(problem.h, problem.x0, problem.sigma, w)
    return NoisyQuadratic(problem.h, moved.reflect(problem.x0), problem.sigma, w)


def noise_density(sigma: np.ndarray) -> float:
    """φ(σ) = ‖σ‖₁² / (d‖σ‖₂²): 1/d for one noisy coordinate, 1 for equal noise."""
    sigma = np.abs(np.asarray(sigma, dtype=float))
    return float(sigma.sum() ** 2 / (sigma.size * (sigma**2).sum()))


def first_average_below(values: np.ndarray, eps: float, offset: int = 0, carry=None):
    """First T with (1/T) Σ_{t<T} values[t] ≤ eps, per row; a chunk of a longer series.

    Parameters
    ----------
    values : (n, m) array
        E‖∇f(x_t)‖₁ for t = offset … offset + m − 1, one row per step size.
    eps : float
    offset : int
        Index of the first column (earlier columns were in previous chunks).
    carry : (n,) array or None
        Σ_{t<offset} values[t] per row (None: zeros).

    Returns
    -------
    (T, carry) : (n,) float array with the first T (inf if none in this chunk) and the
    sums up to the end of the chunk.

    Examples
    --------
    >>> T, _ = first_average_below(np.array([[1.0, 0.0, 0.0, 0.0]]), 0.3)
    >>> T  # averages 1, 1/2, 1/3, 1/4: first ≤ 0.3 at T = 4
    array([4.])
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    carry = np.zeros(values.shape[0]) if carry is None else carry
    cum = carry[:, None] + np.cumsum(values, axis=1)
    T = offset + np.arange(1, values.shape[1] + 1)
    ok = cum <= eps * T
    first = np.where(ok.any(axis=1), T[np.argmax(ok, axis=1)], np.inf)
    return first.astype(float), cum[:, -1]


def folded_normal_mean(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """E|N(m, s²)| = s√(2/π) exp(−m²/2s²) + m·erf(m/(s√2)); |m| where s = 0."""
    safe = np.where(s > 0, s, 1.0)
    value = safe * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * (m / safe) ** 2)
    value = value + m * special.erf(m / (safe * np.sqrt(2.0)))
    return np.where(s > 0, value, np.abs(m))


def sgd_expected_l1(problem: NoisyQuadratic, lrs: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Exact E‖∇f(x_t)‖₁ of SGD on a DIAGONAL problem, (len(lrs), len(t)).

    Coordinates with equal (h, x₀, σ) are evaluated once and weighted by their count.
    """
    if problem.w is not None:
        raise ValueError("problem: the closed form needs a diagonal A (w is None)")
    rows, counts = np.unique(
        np.stack([problem.h, problem.x0, problem.sigma], 1), axis=0, return_counts=True
    )
    eta = np.asarray(lrs, dtype=float)[:, None, None]
    h, x0, sig = (rows[:, k][None, :, None] for k in range(3))
    r = 1.0 - eta * h  # (n, u, 1); |r| < 1 is checked by the caller
    tt = np.asarray(t, dtype=float)[None, None, :]
    power = r**tt
    mean = power * x0
    var = eta**2 * sig**2 * (1.0 - power * power) / (1.0 - r**2)
    e_abs = folded_normal_mean(mean, np.sqrt(var))
    return np.einsum("u,nut->nt", counts * rows[:, 0], e_abs)


def _stable(problem: NoisyQuadratic, lrs) -> np.ndarray:
    """The steps of ``lrs`` with η·h_max < 2 (GD on the quadratic is stable, docs/theory.md §15)."""
    lrs = np.asarray(lrs, dtype=float)
    return lrs[lrs * problem.h.max() < 2.0]


def sgd_iterations_exact(problem, lrs, eps, max_steps, chunk=8192) -> tuple[float, float]:
    """(T, best step) of SGD from the exact expectation; T = inf if not within max_steps."""
    lrs = _stable(problem, lrs)
    carry, t0 = None, 0
    while t0 < max_steps:
        t = np.arange(t0, min(t0 + chunk, max_steps))
        first, carry = first_average_below(sgd_expected_l1(problem, lrs, t), eps, t0, carry)
        if np.isfinite(first).any():
            return float(first.min()), float(lrs[int(np.argmin(first))])
        t0 = int(t[-1]) + 1
    return float("inf"), float("nan")


def iterations_monte_carlo(
    problem, method, lrs, eps, max_steps, repeats, rng
) -> tuple[float, float]:
    """(T, best step) with E‖∇f(x_t)‖₁ estimated by the mean over ``repeats`` runs.

    All steps and repeats run as one (n, repeats, d) array; the loop stops at the first
    T reached by any step (no other step can reach it earlier).
    """
    lrs = np.asarray(lrs, dtype=float) if method == "sign" else _stable(problem, lrs)
    eta = lrs[:, None, None]
    X = np.broadcast_to(problem.x0, (lrs.size, repeats, problem.d)).copy()
    noisy = np.flatnonzero(problem.sigma)  # draw noise only where σ_i > 0
    carry = np.zeros(lrs.size)
    for t in range(max_steps):
        G = problem.grad(X)
        carry += np.abs(G).sum(-1).mean(-1)
        if (carry <= eps * (t + 1)).any():  # first T = t + 1 (see first_average_below)
            return float(t + 1), float(lrs[int(np.argmax(carry <= eps * (t + 1)))])
        G[..., noisy] += problem.sigma[noisy] * rng.standard_normal((*X.shape[:2], noisy.size))
        X -= eta * (np.sign(G) if method == "sign" else G)
    return float("inf"), float("nan")


def loglog_slope(x, y, level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of log y on log x with its t-interval (n − 2 dof).

    Returns (slope, low, high); NaNs when fewer than 3 finite positive points.

    Examples
    --------
    >>> s, lo, hi = loglog_slope([1, 10, 100], [3, 30, 300])
    >>> round(s, 12), round(hi - lo, 12)
    (1.0, 0.0)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 3:
        return float("nan"), float("nan"), float("nan")
    lx, ly = np.log(x[ok]), np.log(y[ok])
    n = lx.size
    sxx = ((lx - lx.mean()) ** 2).sum()
    slope = float(((lx - lx.mean()) * (ly - ly.mean())).sum() / sxx)
    resid = ly - ly.mean() - slope * (lx - lx.mean())
    se = np.sqrt((resid**2).sum() / (n - 2) / sxx)
    half = float(sps.t.ppf(0.5 + level / 2, n - 2) * se)
    return slope, slope - half, slope + half
