"""Spectral densities: stochastic Lanczos quadrature and the exact smoothed density."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from hessref.core.validation import as_float_array, check_positive_int, check_real
from hessref.spectrum._operator import BLOCK_ELEMENTS, Operator, rademacher
from hessref.spectrum.dense import eigenvalues
from hessref.spectrum.lanczos_kernel import LanczosKernel, ritz

Array = NDArray[np.float64]

_SLQ_BASIS_BYTES = 256 * 2**20  # Lanczos bases held at once by slq_density (fixed: reproducible)


@dataclass(frozen=True)
class SpectralDensity:
    """A Gaussian-smoothed spectral density φ_σ(t) = Σ_k w_k g_σ(t − μ_k) on a grid.

    Attributes
    ----------
    grid : ndarray (num_points,)
    density : ndarray (num_points,)
        φ_σ on the grid; integrates to ≈ 1 when the grid covers the spectrum ± a few σ.
    nodes : ndarray (n_probes, m)
        Quadrature nodes per probe, ascending (for :func:`exact_density`: one row
        holding the P eigenvalues). A probe whose Lanczos run stopped early at an
        invariant subspace after s < m steps is padded with nodes 0 and weights 0,
        which leaves every moment Σ w μ^j and the density unchanged.
    weights : ndarray (n_probes, m)
        Quadrature weights per probe; each row sums to 1.
    sigma : float
        Standard deviation of the Gaussian kernel.
    """

    grid: Array
    density: Array
    nodes: Array
    weights: Array
    sigma: float


def gaussian_kernel(t: ArrayLike, sigma: float) -> Array:
    """g_σ(t) = exp(−t²/(2σ²)) / (σ√(2π)): a normal density with standard deviation σ.

    Examples
    --------
    >>> float(gaussian_kernel(0.0, 1.0))  # 1/sqrt(2 pi)
    0.3989422804014327
    """
    t = np.asarray(t, dtype=np.float64)
    return np.exp(-0.5 * (t / sigma) ** 2) / (sigma * np.sqrt(2.0 * np.pi))


def _smooth(grid: Array, nodes: Array, weights: Array, sigma: float) -> Array:
    """Σ_k w_k g_σ(t − μ_k) on the grid, in chunks of nodes (memory O(grid · chunk))."""
    nodes, weights = nodes.ravel(), weights.ravel()
    keep = weights != 0.0
    nodes, weights = nodes[keep], weights[keep]
    out = np.zeros_like(grid)
    chunk = max(1, BLOCK_ELEMENTS // max(1, grid.size))
    for start in range(0, nodes.size, chunk):
        mu = nodes[start : start + chunk]
        out += gaussian_kernel(grid[:, None] - mu[None, :], sigma) @ weights[start : start + chunk]
    return out


def _check_grid(grid: ArrayLike) -> Array:
    arr = as_float_array("grid", grid, ndim=1)
    if arr.size < 2 or np.any(np.diff(arr) <= 0):
        raise ValueError(
            f"grid: expected a strictly increasing 1-D array of >= 2 points, got {arr.size} "
            "points" + ("" if arr.size < 2 else " that are not strictly increasing")
        )
    return arr


def slq_density(
    A: Any,
    m: int = 80,
    num_probes: int = 10,
    sigma: float | None = None,
    grid: ArrayLike | None = None,
    num_points: int = 1000,
    rng: Any = None,
    reorthogonalize: bool = True,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature estimate of the smoothed spectral density.

    φ_σ(t) = (1/P) Σ_i g_σ(t − λ_i) ≈ (1/n) Σ_probes Σ_k τ_k g_σ(t − μ_k)
    (docs/theory.md §13): each probe is
    v = z/‖z‖ with z Rademacher (E[vᵀf(A)v] = tr f(A)/P), and m Lanczos steps
    (:func:`~hessref.spectrum.lanczos`) give its quadrature nodes μ_k and weights τ_k.
    The probes run in lockstep, so each step applies A to all of them at once (one
    matmat).

    Kernel: g_σ(t) = exp(−t²/(2σ²)) / (σ√(2π)), so ``sigma`` is the STANDARD DEVIATION.
    Ghorbani et al. (2019) quote the VARIANCE s² = 1e-5·max(1, λmax − λmin); their
    setting is ``sigma = sqrt(1e-5 * max(1, lmax - lmin))``. Papyan's σ is set in
    coordinates mapped to [−1, 1]; multiply it by (λmax − λmin)/2 to use it here.

    Defaults (documented rule): the spectral range is estimated from the Ritz values as
    [min_probes (μ_1 − |β_m S_{m,1}|), max_probes (μ_m + |β_m S_{m,m}|)] (the range
    estimate of Papyan 2018, arXiv:1811.07062). Then σ = 0.01·(λmax − λmin) (or
    0.01·max(1, |λ|) if the range is a point) and the grid is ``num_points`` equispaced points on
    [λmin − 5σ, λmax + 5σ], so the density integrates to 1 up to ~1e-6 (no
    renormalization is applied: a grid that misses part of the spectrum shows as lost mass).

    Memory: with reorthogonalization the bases take 8·P·m bytes per probe; probes are
    processed in groups of at most 256 MiB of basis, and a basis larger than that is
    kept in a temporary file and read back in blocks (memory stays about 256 MiB plus
    the operator's own, at the cost of re-reading the basis twice per step).
    ``reorthogonalize=False`` needs O(P) per probe (ghost nodes then appear, the
    density stays usable).

    Parameters
    ----------
    A : ndarray (P, P) symmetric, sparse matrix or LinearOperator (dtype float64)
    m : int
        Lanczos steps per probe (≥ 1; capped at P). Ghorbani et al. use 80.
    num_probes : int
        ≥ 1.
    sigma : float, optional
        Kernel standard deviation > 0.
    grid : array_like, optional
        Strictly increasing evaluation points; overrides ``num_points``.
    num_points : int
        Grid size when ``grid`` is None (≥ 2).
    rng : None, int or Generator
    reorthogonalize : bool

    Returns
    -------
    SpectralDensity
        ``nodes`` and ``weights`` of shape (num_probes, min(m, P)).

    Examples
    --------
    >>> A = np.diag(np.linspace(-1.0, 1.0, 50))
    >>> d = slq_density(A, m=20, num_probes=4, rng=0)
    >>> d.weights.shape, bool(np.allclose(d.weights.sum(axis=1), 1.0))
    ((4, 20), True)
    >>> round(float(np.trapezoid(d.density, d.grid)), 6)
    1.0
    """
    op = Operator("A", A)
    P = op.P
    m = min(check_positive_int("m", m), P)
    n = check_positive_int("num_probes", num_probes)
    if sigma is not None:
        sigma = check_real("sigma", sigma, minimum=0.0, strict=True)
    if grid is not None:
        grid = _check_grid(grid)
    else:
        num_points = check_positive_int("num_points", num_points, minimum=2)
    V0 = rademacher(np.random.default_rng(rng), (n, P)) / np.sqrt(P)
    nodes, weights, lo, hi = _gauss_rules(op, V0, m, bool(reorthogonalize))
    if sigma is None:
        width = hi - lo
        sigma = 0.01 * (width if width > 0 else max(1.0, abs(hi)))
    if grid is None:
        grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, num_points)
    density = _smooth(grid, nodes, weights, sigma) / n
    return SpectralDensity(grid, density, nodes, weights, float(sigma))


def _gauss_rules(op: Operator, V0: Array, m: int, reorthogonalize: bool) -> tuple:
    """Gauss rules of the n probes V0 (n, P): nodes (n, m), weights (n, m), range lo, hi.

    Probes run in lockstep groups whose bases hold at most ``_SLQ_BASIS_BYTES``; if one
    basis alone is larger, the bases go to a temporary file and are read back in
    blocks, so the memory stays within about that budget plus the operator's own. The
    range is [min (μ_1 − bound_1), max (μ_m + bound_m)] over probes, with the Ritz
    bounds of :func:`~hessref.spectrum.lanczos_kernel.ritz`.
    """
    n, P = V0.shape
    nodes, weights = np.zeros((n, m)), np.zeros((n, m))
    lo, hi = np.inf, -np.inf
    spill = None  # in memory: groups of probes whose bases fit the budget
    group = max(1, _SLQ_BASIS_BYTES // (8 * m * P)) if reorthogonalize else n
    if reorthogonalize and 8 * m * P > _SLQ_BASIS_BYTES:  # one basis alone is too big
        group = max(1, _SLQ_BASIS_BYTES // (8 * 4 * P))  # q, q_prev, r and a read block
        spill = max(1, _SLQ_BASIS_BYTES // (2 * 8 * group * P))
    for g0 in range(0, n, group):
        V = V0[g0 : g0 + group]
        run = LanczosKernel(op, V, m, reorthogonalize, spill_rows=spill).run(m)
        for i, s in enumerate(run.steps):
            mu, S, bound = ritz(run.alpha[i, :s], run.beta[i, : s - 1], run.beta[i, s - 1])
            nodes[g0 + i, :s], weights[g0 + i, :s] = mu, S[0] ** 2
            lo, hi = min(lo, mu[0] - bound[0]), max(hi, mu[-1] + bound[-1])
    return nodes, weights, lo, hi


def exact_density(
    eigenvalues_or_matrix: ArrayLike, grid: ArrayLike, sigma: float
) -> SpectralDensity:
    """The smoothed density φ_σ(t) = (1/P) Σ_i g_σ(t − λ_i) from exact eigenvalues.

    Same kernel as :func:`slq_density` (``sigma`` is the standard deviation), so the
    two are directly comparable on the same grid.

    Parameters
    ----------
    eigenvalues_or_matrix : array_like (P,) or (P, P)
        Eigenvalues, or a dense symmetric matrix (diagonalized with :func:`eigenvalues`).
    grid : array_like (num_points,)
        Strictly increasing.
    sigma : float
        Kernel standard deviation > 0.

    Returns
    -------
    SpectralDensity
        ``nodes`` (1, P) the eigenvalues ascending, ``weights`` (1, P) all 1/P.

    Examples
    --------
    >>> d = exact_density([0.0, 1.0], grid=[0.0, 0.5, 1.0], sigma=1.0)
    >>> d.density.round(4)
    array([0.3205, 0.3521, 0.3205])
    """
    if isinstance(eigenvalues_or_matrix, spla.LinearOperator):
        raise TypeError(
            "eigenvalues_or_matrix: expected eigenvalues or a dense matrix, got a "
            "LinearOperator; use slq_density for matrix-free operators"
        )
    arr = np.asarray(eigenvalues_or_matrix)
    if arr.ndim == 2:
        lam = eigenvalues(arr)[::-1]  # type: ignore[index]
    else:
        lam = np.sort(as_float_array("eigenvalues_or_matrix", arr, ndim=1))
        if lam.size == 0:
            raise ValueError("eigenvalues_or_matrix: expected at least one eigenvalue")
    grid = _check_grid(grid)
    sigma = check_real("sigma", sigma, minimum=0.0, strict=True)
    w = np.full(lam.size, 1.0 / lam.size)
    return SpectralDensity(
        grid, _smooth(grid, lam, w, sigma), lam[None, :].copy(), w[None, :], sigma
    )
