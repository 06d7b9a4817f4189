"""K-FAC and EK-FAC for hessref's MLPs, in exact arithmetic (docs/theory.md (19.4)-(19.7)).

For layer l, with ã_{l-1,i} = [a_{l-1,i}; 1] and δ_{l,i,m} the seed S_{i,m} backpropagated
to the pre-activation z_l, the exact layer block in augmented order is

    M_l = s Σ_i Σ_m (δ_{l,i,m} δ_{l,i,m}ᵀ) ⊗ (ã_{l-1,i} ã_{l-1,i}ᵀ)          (19.4)

and K-FAC replaces the mean of the Kronecker products by the product of means,

    M_l ≈ B_l ⊗ Ā_l,   B_l = s Σ_i Σ_m δ δᵀ,   Ā_l = (1/N) Σ_i ã ãᵀ        (19.5)

so Ā_l always carries 1/N and the reduction (s = 1/N or 1) sits in B_l. EK-FAC keeps
the eigenbasis Q_l = U_B ⊗ U_A of K-FAC and refits the eigenvalues to the exact
diagonal of M_l in that basis (19.6).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.approx.seeds import Seeds, make_seeds
from hessref.approx.structure import KroneckerEigenApproximation
from hessref.core.mlp import MLP

Array = NDArray[np.float64]


def _augment(a: Array) -> Array:
    return np.hstack([a, np.ones((a.shape[0], 1))])


def layer_factors(seeds: Seeds, layer: int) -> tuple[Array, Array, Array, Array]:
    """(Ā_l, B_l, D_l, Ã_l): the K-FAC factors and the rows they are built from.

    Ã_l (N·M, d_{l-1}+1) repeats each sample's ã M times; D_l (N·M, d_l) holds the
    δ_{l,i,m}, read off the bias slice of the backpropagated seeds (∂(s·f)/∂b_l = δ_l).
    """
    p = seeds.problem
    N, M, _ = seeds.S.shape
    D = seeds.gradients[:, p.model.bias_slice(layer)]
    A_in = _augment(seeds.cache.A[layer - 1])
    A_bar = A_in.T @ A_in / N
    B = p.scale * (D.T @ D)
    return A_bar, B, D, np.repeat(A_in, M, axis=0)


class KFAC(KroneckerEigenApproximation):
    """K-FAC: per layer B_l ⊗ Ā_l (augmented order), mapped into θ order.

    Attributes
    ----------
    factors : list of (A_l, B_l)
        Ā_l (d_{l-1}+1, d_{l-1}+1), the input second moment with the bias column last,
        and B_l (d_l, d_l), the backpropagated output-factor second moment (19.5).
    fisher_type : str
    """

    def __init__(self, model: MLP, factors: list[tuple[Array, Array]], fisher_type: str):
        self.factors = factors
        self.fisher_type = fisher_type
        eigen = []
        for A_bar, B in factors:
            alpha, U_A = np.linalg.eigh(A_bar)
            beta, U_B = np.linalg.eigh(B)
            eigen.append((U_B, U_A, np.outer(beta, alpha)))
        super().__init__(model, eigen, f"kfac ({fisher_type})")


def _check_kfac_options(fisher_type: str) -> None:
    if fisher_type == "fgn":
        raise ValueError(
            "fisher_type: K-FAC supports 'type-2', 'mc' and 'empirical'; "
            "for the FGN use hessref.approx.fgn"
        )


def kfac(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    fisher_type: str = "type-2",
    num_samples: int = 1,
    rng=None,
) -> KFAC:
    """K-FAC of G (docs/theory.md (19.5)): per layer B_l ⊗ Ā_l, cross-layer blocks zero.

    Parameters
    ----------
    model, theta, X, y, loss, reduction
        As in :func:`hessref.gauss_newton`.
    fisher_type : {"type-2", "mc", "empirical"}
        Seeds of B_l (docs/theory.md (19.2)): the loss Hessian factor (all d_L columns,
        K-FAC of the exact G), ``num_samples`` Monte-Carlo labels drawn with ``rng``, or
        the true label's gradient (K-FAC of the empirical Fisher).

    Returns
    -------
    KFAC
        ``.factors``, ``.dense()``, ``.matvec``, ``.blocks``, ``.inverse(damping)``.

    Examples
    --------
    A linear model under MSE: B = s N I = I (mean), so K-FAC is exact (19.10).

    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([3, 2], activation="identity")
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(6, 3)); Y = rng.normal(size=(6, 2))
    >>> theta = model.init(rng=1)
    >>> K = kfac(model, theta, X, Y)
    >>> np.allclose(K.factors[0][1], np.eye(2))
    True
    >>> G, _ = hr.gauss_newton(model, theta, X, Y)
    >>> bool(np.abs(K.dense() - G).max() < 1e-12)
    True
    """
    _check_kfac_options(fisher_type)
    seeds = make_seeds(model, theta, X, y, loss, reduction, fisher_type, num_samples, rng)
    factors = []
    for l in range(1, seeds.problem.model.num_layers + 1):
        A_bar, B, _, _ = layer_factors(seeds, l)
        factors.append((A_bar, B))
    return KFAC(seeds.problem.model, factors, fisher_type)


def _refit(seeds: Seeds, layer: int) -> tuple[Array, Array, Array]:
    """(U_B, U_A, Λ) with Λ[o, j] = (Qᵀ M_l Q)_{(o,j),(o,j)} = s Σ (U_Bᵀδ)_o² (U_Aᵀã)_j² (19.6)."""
    A_bar, B, D, A_rep = layer_factors(seeds, layer)
    _, U_A = np.linalg.eigh(A_bar)
    _, U_B = np.linalg.eigh(B)
    Lam = seeds.problem.scale * ((D @ U_B) ** 2).T @ ((A_rep @ U_A) ** 2)
    return U_B, U_A, Lam


def ekfac(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
    fisher_type: str = "type-2",
    num_samples: int = 1,
    rng=None,
) -> KroneckerEigenApproximation:
    """EK-FAC (docs/theory.md (19.6)): K-FAC's eigenbasis, eigenvalues refitted exactly.

    Per layer Q_l diag(Λ_l) Q_lᵀ with Q_l = U_B ⊗ U_A from the K-FAC factors and Λ_l the
    diagonal of the exact layer block M_l (of the same ``fisher_type``) in that basis, so
    ‖EK-FAC_l − M_l‖_F ≤ ‖K-FAC_l − M_l‖_F (19.7). Arguments as in :func:`kfac`.
    """
    _check_kfac_options(fisher_type)
    seeds = make_seeds(model, theta, X, y, loss, reduction, fisher_type, num_samples, rng)
    eigen = [_refit(seeds, l) for l in range(1, seeds.problem.model.num_layers + 1)]
    return KroneckerEigenApproximation(seeds.problem.model, eigen, f"ekfac ({fisher_type})")
