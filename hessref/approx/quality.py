"""How close is an approximation to the exact matrix? (docs/theory.md (19.12))

:func:`quality` reports, for an approximation M̃ of an exact symmetric M (e.g. G from
``hr.gauss_newton``):

- the relative Frobenius error ‖M̃ − M‖_F / ‖M‖_F;
- the same per layer, on the diagonal blocks (n_l, n_l);
- the principal angles between the top-k eigenvectors of M̃ and of M (radians,
  ``scipy.linalg.subspace_angles``; 0 when the subspaces coincide);
- the quadratic model along M's top eigenvectors v_j: (v_jᵀ M̃ v_j − λ_j) / |λ_j|, the
  signed relative error of the curvature ½ t² vᵀMv that a second-order step would use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from hessref.approx.structure import Approximation
from hessref.core.mlp import MLP
from hessref.core.validation import as_float_array, check_positive_int

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Quality:
    """Result of :func:`quality` (see the module docstring for each field's formula).

    Attributes
    ----------
    relative_frobenius : float
    layer_errors : tuple of float
        Relative Frobenius error of each layer's diagonal block (nan if the exact block is 0).
    subspace_angles : ndarray (k,)
        Principal angles in radians, largest first (scipy's order).
    quadratic_errors : ndarray (k,)
        (v_jᵀ M̃ v_j − λ_j) / |λ_j| for the top-k eigenpairs (λ_j, v_j) of M.
    top_eigenvalues : ndarray (k,)
        λ_1 ≥ … ≥ λ_k of M.
    """

    relative_frobenius: float
    layer_errors: tuple[float, ...]
    subspace_angles: Array
    quadratic_errors: Array
    top_eigenvalues: Array


def _relative(M_tilde: Array, M: Array) -> float:
    ref = np.linalg.norm(M)
    return float(np.linalg.norm(M_tilde - M) / ref) if ref > 0 else float("nan")


def quality(
    approx: Approximation | ArrayLike, exact: ArrayLike, *, k: int = 5, model: MLP | None = None
) -> Quality:
    """Compare an approximation with the exact symmetric matrix (module docstring).

    Parameters
    ----------
    approx : Approximation or array_like (P, P)
    exact : array_like (P, P)
        The exact matrix, e.g. ``hr.gauss_newton(...)[0]``.
    k : int
        Number of top eigenvectors (clipped to P).
    model : MLP, optional
        Needed for the per-layer errors when ``approx`` is a plain array.
    """
    if isinstance(approx, Approximation):
        model = approx.model if model is None else model
        M_tilde = approx.dense()
    else:
        M_tilde = as_float_array("approx", approx, ndim=2)
    M = as_float_array("exact", exact, ndim=2)
    if M.shape != M_tilde.shape or M.shape[0] != M.shape[1]:
        raise ValueError(f"exact: expected a square matrix of shape {M_tilde.shape}, got {M.shape}")
    k = min(check_positive_int("k", k), M.shape[0])
    layers: tuple[float, ...] = ()
    if model is not None:
        slices = [model.layer_slice(l) for l in range(1, model.num_layers + 1)]
        layers = tuple(_relative(M_tilde[s, s], M[s, s]) for s in slices)
    lam, V = np.linalg.eigh(M)
    lam, V = lam[::-1][:k], V[:, ::-1][:, :k]
    _, V_tilde = np.linalg.eigh((M_tilde + M_tilde.T) / 2)
    angles = scipy.linalg.subspace_angles(V_tilde[:, ::-1][:, :k], V)
    curv = np.einsum("pj,pq,qj->j", V, M_tilde, V)
    floor = np.finfo(float).eps * max(abs(lam[0]), np.finfo(float).tiny)
    quad = (curv - lam) / np.maximum(np.abs(lam), floor)
    return Quality(_relative(M_tilde, M), layers, angles, quad, lam)
