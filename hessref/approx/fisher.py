"""Dense, block-diagonal and diagonal approximations of G and H (docs/theory.md (19.8)-(19.11)).

- :func:`empirical_fisher`  s Σ_i ∇ℓ_i ∇ℓ_iᵀ at the true labels;
- :func:`mc_fisher`         s Σ_i (1/T) Σ_t ∇ℓ(f_i, ỹ_t) ∇ℓ(f_i, ỹ_t)ᵀ, ỹ_t ∼ p(· | f_i),
                             unbiased for G;
- :func:`fgn`               the true-vs-rest part of G under cross-entropy (19.9);
- :func:`block_diagonal`    the exact per-layer blocks of G or H;
- :func:`diagonal`          the exact diagonal of G or H.

G-based results come from the per-sample rows g_{i,m} = J_iᵀ S_{i,m} of
:mod:`hessref.approx.seeds`; H-based ones from exact Hessian-vector products (the R-op).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.approx.seeds import make_seeds
from hessref.approx.structure import (
    BlockDiagonalApproximation,
    DenseApproximation,
    DiagonalApproximation,
)
from hessref.core.derivatives import hvp
from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP
from hessref.core.problem import make_problem

Array = NDArray[np.float64]


def _second_moment(model, theta, X, y, loss, reduction, fisher_type, **options) -> tuple:
    seeds = make_seeds(model, theta, X, y, loss, reduction, fisher_type, **options)
    Gam = seeds.gradients
    return seeds.problem.model, seeds.problem.scale * (Gam.T @ Gam)


def empirical_fisher(
    model: MLP, theta: ArrayLike, X: ArrayLike, y: ArrayLike, *, loss="mse", reduction="mean"
) -> DenseApproximation:
    """Empirical Fisher s Σ_i ∇ℓ_i ∇ℓ_iᵀ (s = 1/N or 1), gradients at the true labels (19.8).

    Arguments as in :func:`hessref.gauss_newton`. Not an unbiased estimate of G: its
    seeds are the residuals r_i, whose second moment is not A_i.
    """
    m, F = _second_moment(model, theta, X, y, loss, reduction, "empirical")
    return DenseApproximation(m, F, "empirical Fisher")


def mc_fisher(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss="mse",
    reduction="mean",
    num_samples: int = 1,
    rng=None,
) -> DenseApproximation:
    """Monte-Carlo Fisher with ``num_samples`` labels per sample drawn from the model (19.8).

    Cross-entropy: c ∼ softmax(f_i); MSE: ỹ ∼ N(f_i, I). E[result] = G exactly (y is
    only validated, the labels are the model's). Same ``rng`` seed, same bits.
    """
    m, F = _second_moment(
        model, theta, X, y, loss, reduction, "mc", num_samples=num_samples, rng=rng
    )
    return DenseApproximation(m, F, f"Monte-Carlo Fisher ({num_samples} samples)")


def fgn(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss="cross_entropy",
    reduction="mean",
) -> DenseApproximation:
    """FGN: s Σ_i J_iᵀ A_i^FGN J_i with A_i^FGN = q/(1−q) (e_y − p)(e_y − p)ᵀ, q = p_y (19.9).

    The Fisher of the true-vs-rest Bernoulli model; G − FGN ⪰ 0, and FGN = G when
    d_L = 2 (docs/theory.md (19.9)). Cross-entropy only.
    """
    m, F = _second_moment(model, theta, X, y, loss, reduction, "fgn")
    return DenseApproximation(m, F, "FGN (true vs rest)")


def _hessian_columns(model, theta, X, y, loss, reduction, columns: slice) -> Array:
    """H[:, columns] by exact R-op products with the unit vectors of ``columns``."""
    P = model.num_params
    E = np.zeros((P, columns.stop - columns.start))
    E[columns, :] = np.eye(columns.stop - columns.start)
    return hvp(model, theta, X, y, E, loss=loss, reduction=reduction)


def block_diagonal(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss="mse",
    reduction="mean",
    curvature="G",
) -> BlockDiagonalApproximation:
    """The exact layer-diagonal blocks of G (default) or H, zero between layers (19.11).

    ``curvature`` accepts "G"/"H" (or the mode names, :class:`hessref.core.kinds.Curvature`).
    G blocks: s Σ g_{i,m}[l] g_{i,m}[l]ᵀ from the factor rows; H blocks: R-op products.
    """
    kind = _kind(curvature)
    p = make_problem(model, theta, X, y, loss, reduction)
    sl = [p.model.layer_slice(l) for l in range(1, p.model.num_layers + 1)]
    if kind is Curvature.G:
        Gam = make_seeds(p.model, p.theta, p.X, p.y, loss, reduction, "type-2").gradients
        blocks = [p.scale * (Gam[:, s].T @ Gam[:, s]) for s in sl]
    else:
        blocks = [_hessian_columns(p.model, p.theta, p.X, p.y, loss, reduction, s)[s] for s in sl]
        blocks = [(b + b.T) / 2 for b in blocks]  # exact H is symmetric; remove rounding asymmetry
    return BlockDiagonalApproximation(p.model, blocks, f"block-diagonal {kind.symbol}")


def diagonal(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss="mse",
    reduction="mean",
    curvature="G",
) -> DiagonalApproximation:
    """The exact diagonal of G (default: s Σ g_{i,m}², no P×P matrix) or of H (R-op)."""
    kind = _kind(curvature)
    p = make_problem(model, theta, X, y, loss, reduction)
    if kind is Curvature.G:
        Gam = make_seeds(p.model, p.theta, p.X, p.y, loss, reduction, "type-2").gradients
        d = p.scale * np.einsum("rp,rp->p", Gam, Gam)
    else:
        d = np.concatenate(
            [
                np.diag(_hessian_columns(p.model, p.theta, p.X, p.y, loss, reduction, s)[s])
                for s in (p.model.layer_slice(l) for l in range(1, p.model.num_layers + 1))
            ]
        )
    return DiagonalApproximation(p.model, d, f"diagonal {kind.symbol}")


def _kind(curvature) -> Curvature:
    kind = Curvature.parse(curvature, argument="curvature")
    if kind is Curvature.R:
        raise ValueError("curvature: expected 'G' or 'H' for an approximation, got 'R'")
    return kind
