"""Layer-wise curvature: the diagonal layer blocks of H, G and R.

Layer l owns the contiguous slice θ_l = [W_l.ravel(), b_l] of θ (P_l = d_l(d_{l−1} + 1)
entries). Its diagonal block of a curvature matrix M ∈ {H, G, R} is
M_ll = E_lᵀ M E_l, with E_l the P × P_l matrix that embeds θ_l into θ. This module
gives, per layer:

- **exact** traces tr M_ll and top eigenvalues of M_ll from the dense matrices
  (:func:`layer_curvature`; small P only);
- **matrix-free** Hutchinson estimates of tr M_ll with standard errors
  (:func:`layer_traces`): one Rademacher vector z per probe is split by a block mask
  into z_l = E_l E_lᵀ z, and z_lᵀ M z_l = (E_lᵀz)ᵀ M_ll (E_lᵀz), so each layer gets an
  unbiased estimate; all layers and probes are one (P, L·n) operator product;
- **matrix-free** top eigenvalues of M_ll (:func:`layer_top_eigenvalues`) by ARPACK on
  the block operator v ↦ E_lᵀ M E_l v (ARPACK's restarts recover repeated eigenvalues,
  e.g. the d_L-fold ones of the last layer's MSE block (1/N) I_{d_L} ⊗ ÃᵀÃ, which a
  single-vector Lanczos run returns only once).

Σ_l tr M_ll = tr M, since the diagonal blocks cover the diagonal. Per-layer Hessian
traces are used, e.g., to locate where a network memorizes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import LinearOperator

from hessref import spectrum
from hessref.core.dense import hessian
from hessref.core.ggn import gauss_newton
from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP
from hessref.core.validation import check_positive_int
from hessref.operators import ggn_operator, hessian_operator, residual_operator

Array = NDArray[np.float64]

__all__ = [
    "LayerCurvature",
    "LayerTraces",
    "layer_curvature",
    "layer_top_eigenvalues",
    "layer_traces",
]

#: The 0.2 names of the three kinds (the values of :class:`~hessref.core.kinds.Curvature`).
MATRICES = tuple(kind.value for kind in Curvature)
_OPERATORS = {
    Curvature.H: hessian_operator,
    Curvature.G: ggn_operator,
    Curvature.R: residual_operator,
}


@dataclass(frozen=True)
class LayerCurvature:
    """Exact per-layer curvature (rows: layers 1..L).

    Attributes
    ----------
    sizes : ndarray of int (L,)
        P_l, parameters per layer.
    trace : dict str -> ndarray (L,)
        tr M_ll for M = "H", "G", "R".
    top : dict str -> ndarray (L, k)
        The k largest eigenvalues of M_ll, descending (k ≤ min P_l).
    """

    sizes: NDArray[np.int64]
    trace: dict[str, Array]
    top: dict[str, Array]


@dataclass(frozen=True)
class LayerTraces:
    """Hutchinson estimates of tr M_ll (rows: layers 1..L).

    Attributes
    ----------
    estimate, stderr : ndarray (L,)
        Mean of z_lᵀ M z_l over the probes, and its standard error (sample std with
        ddof = 1, over √n).
    samples : ndarray (L, n)
        The individual z_lᵀ M z_l.
    num_matvecs : int
        Operator columns used (L·n).
    """

    estimate: Array
    stderr: Array
    samples: Array
    num_matvecs: int


def layer_curvature(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    top: int = 1,
) -> LayerCurvature:
    """Exact traces and top-``top`` eigenvalues of every diagonal layer block of H, G, R.

    Builds H (:func:`hessref.hessian`) and G, R (:func:`hessref.gauss_newton`) densely,
    so P must be small enough for P × P matrices.
    """
    H = hessian(model, theta, X, y, loss=loss, reduction=reduction)
    G, R = gauss_newton(model, theta, X, y, loss=loss, reduction=reduction)
    L = model.num_layers
    sizes = np.array(
        [model.layer_slice(l).stop - model.layer_slice(l).start for l in range(1, L + 1)],
        dtype=np.int64,
    )
    top = check_positive_int("top", top)
    if top > sizes.min():
        raise ValueError(f"top: expected 1 <= top <= min_l P_l = {sizes.min()}, got {top}")
    traces, tops = {}, {}
    for name, M in (("H", H), ("G", G), ("R", R)):
        blocks = [M[model.layer_slice(l), model.layer_slice(l)] for l in range(1, L + 1)]
        traces[name] = np.array([np.trace(B) for B in blocks])
        tops[name] = np.array([spectrum.eigenvalues(B)[:top] for B in blocks])
    return LayerCurvature(sizes, traces, tops)


def _kind(kind: Any, matrix: Any, function: str) -> Curvature:
    """The curvature kind from ``kind=``, or from the deprecated ``matrix=`` (with a warning)."""
    if matrix is not None:
        warnings.warn(
            f"{function}: matrix= is deprecated, use kind= (a hessref.core.kinds.Curvature, "
            "or 'H', 'G', 'R'); it will be removed in a later release",
            DeprecationWarning,
            stacklevel=3,
        )
        return Curvature.parse(matrix, argument="matrix")
    return Curvature.parse(kind, argument="kind")


def _operator(kind: Curvature, model, theta, X, y, loss, reduction, batch_size):
    return _OPERATORS[kind](
        model, theta, X, y, loss=loss, reduction=reduction, batch_size=batch_size
    )


def layer_traces(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    num_probes: int,
    *,
    kind: Curvature | str = Curvature.H,
    loss: str = "mse",
    reduction: str = "mean",
    rng: Any = None,
    batch_size: int | None = None,
    matrix: str | None = None,
) -> LayerTraces:
    """Hutchinson estimates of tr M_ll for every layer, matrix-free (see module docstring).

    Parameters
    ----------
    num_probes : int
        n ≥ 1 Rademacher probes (each used for every layer).
    kind : Curvature or {"H", "G", "R"}
        Which matrix M (:class:`hessref.core.kinds.Curvature`; the 0.2 names
        ``"hessian"``, ``"ggn"``, ``"residual"`` are accepted too).
    rng : None, int or Generator
    batch_size : int, optional
        Data rows per operator chunk (memory), as for :func:`hessref.hessian_operator`.
    matrix : str, optional
        Deprecated name of ``kind`` (DeprecationWarning).

    Returns
    -------
    LayerTraces
        Unbiased per layer; for a single probe ``stderr`` is NaN.
    """
    kind = _kind(kind, matrix, "layer_traces")
    op = _operator(kind, model, theta, X, y, loss, reduction, batch_size)
    n = check_positive_int("num_probes", num_probes)
    P, L = model.num_params, model.num_layers
    gen = np.random.default_rng(rng)
    Z = gen.integers(0, 2, size=(P, n)).astype(np.float64) * 2.0 - 1.0
    masked = np.zeros((P, L * n))
    for l in range(1, L + 1):
        s = model.layer_slice(l)
        masked[s, (l - 1) * n : l * n] = Z[s]
    MZ = op @ masked
    samples = np.einsum("pj,pj->j", masked, MZ).reshape(L, n)
    stderr = samples.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.full(L, np.nan)
    return LayerTraces(samples.mean(axis=1), stderr, samples, L * n)


def layer_top_eigenvalues(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    k: int = 1,
    *,
    kind: Curvature | str = Curvature.H,
    loss: str = "mse",
    reduction: str = "mean",
    rng: Any = 0,
    batch_size: int | None = None,
    matrix: str | None = None,
) -> Array:
    """The k largest eigenvalues of every diagonal block M_ll, matrix-free; shape (L, k).

    ARPACK (:func:`hessref.spectrum.top_eigenpairs`, tol 1e-12) on
    the P_l × P_l operator v ↦ E_lᵀ M E_l v; requires k < min_l P_l. ``kind`` and the
    deprecated ``matrix`` as for :func:`layer_traces`.
    """
    kind = _kind(kind, matrix, "layer_top_eigenvalues")
    op = _operator(kind, model, theta, X, y, loss, reduction, batch_size)
    k = check_positive_int("k", k)
    out = []
    for l in range(1, model.num_layers + 1):
        s = model.layer_slice(l)
        block = _BlockOperator(op, s)
        if k >= block.shape[0]:
            raise ValueError(f"k: expected k < P_{l} = {block.shape[0]}, got {k}")
        out.append(spectrum.top_eigenpairs(block, k, tol=1e-12, rng=rng).values)
    return np.array(out)


class _BlockOperator(LinearOperator):
    """E_lᵀ M E_l for the slice s of θ, as a symmetric float64 LinearOperator."""

    def __init__(self, op: LinearOperator, s: slice) -> None:
        n = s.stop - s.start
        super().__init__(dtype=np.float64, shape=(n, n))
        self.op, self.s = op, s

    def _matmat(self, V: Array) -> Array:
        full = np.zeros((self.op.shape[0], V.shape[1]))
        full[self.s] = V
        return (self.op @ full)[self.s]

    def _matvec(self, v: Array) -> Array:
        return self._matmat(v.reshape(-1, 1))[:, 0]

    def _adjoint(self) -> _BlockOperator:
        return self
