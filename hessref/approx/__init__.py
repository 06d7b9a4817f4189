"""Exact-arithmetic versions of the common curvature approximations (docs/theory.md §19).

Each function has ``hr.gauss_newton``'s signature ``(model, theta, X, y, *, loss=,
reduction=)`` plus its options, validates its inputs the same way, and returns an
:class:`~hessref.approx.structure.Approximation` with ``.dense()``, ``.matvec``,
``.as_operator()``, ``.blocks`` / ``.layer_block(l)`` and ``.inverse(damping)``.

>>> import numpy as np, hessref as hr
>>> from hessref import approx
>>> model = hr.MLP([3, 4, 3], activation="tanh"); theta = model.init(rng=0)
>>> X = np.random.default_rng(1).normal(size=(8, 3)); y = np.arange(8) % 3
>>> G, _ = hr.gauss_newton(model, theta, X, y, loss="cross_entropy")
>>> Gb = approx.block_diagonal(model, theta, X, y, loss="cross_entropy")
>>> s = model.layer_slice(2)
>>> bool(np.allclose(Gb.layer_block(2), G[s, s], rtol=1e-12, atol=0))
True
"""

from hessref.approx.fisher import block_diagonal, diagonal, empirical_fisher, fgn, mc_fisher
from hessref.approx.kfac import KFAC, ekfac, kfac
from hessref.approx.quality import Quality, quality
from hessref.approx.seeds import FISHER_TYPES
from hessref.approx.structure import (
    Approximation,
    BlockDiagonalApproximation,
    DenseApproximation,
    DiagonalApproximation,
    KroneckerEigenApproximation,
    augmented_order,
)

__all__ = [
    "FISHER_TYPES",
    "KFAC",
    "Approximation",
    "BlockDiagonalApproximation",
    "DenseApproximation",
    "DiagonalApproximation",
    "KroneckerEigenApproximation",
    "Quality",
    "augmented_order",
    "block_diagonal",
    "diagonal",
    "ekfac",
    "empirical_fisher",
    "fgn",
    "kfac",
    "mc_fisher",
    "quality",
]
