"""The objects every approximation returns: dense, block-diagonal, diagonal, Kronecker-eigen.

All share one interface (docs/theory.md §19):

- ``dense()``            the (P, P) matrix in θ order;
- ``matvec(v)``, ``matmat(V)``, ``as_operator()``   products (a float64 scipy LinearOperator);
- ``layer_block(l)``, ``blocks``   the (n_l, n_l) diagonal block of layer l = (W_l, b_l), θ order;
- ``inverse(damping)``   (M + λ I)⁻¹ as a LinearOperator, exact for the approximation's own form.

A layer block in θ order lists W_l row-major, then b_l. Kronecker factors live in the
*augmented* order of the matrix [W_l | b_l] (d_l, d_{l-1} + 1), row-major: index
o·(d_{l-1} + 1) + j, where j = d_{l-1} is the bias column. :func:`augmented_order` is the
permutation between the two (docs/theory.md (19.3)).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.linalg import LinearOperator

from hessref.core.mlp import MLP
from hessref.core.validation import as_float_array, check_nonnegative_float

Array = NDArray[np.float64]


def augmented_order(d_out: int, d_in: int) -> NDArray[np.intp]:
    """Permutation π with ``block_θ = K[π][:, π]`` for K in augmented [W | b] order.

    θ-local index t < d_out·d_in is W[o, i] with (o, i) = divmod(t, d_in), which sits at
    o·(d_in + 1) + i in the augmented order; t = d_out·d_in + o is b[o], at
    o·(d_in + 1) + d_in (docs/theory.md (19.3)).

    Examples
    --------
    >>> augmented_order(2, 2).tolist()   # W[0,0] W[0,1] W[1,0] W[1,1] b[0] b[1]
    [0, 1, 3, 4, 2, 5]
    """
    o, i = np.divmod(np.arange(d_out * d_in), d_in)
    weights = o * (d_in + 1) + i
    biases = np.arange(d_out) * (d_in + 1) + d_in
    return np.concatenate([weights, biases]).astype(np.intp)


class Approximation:
    """Base class: a symmetric P×P curvature approximation of an MLP (see module docstring)."""

    name = "approximation"

    def __init__(self, model: MLP) -> None:
        self.model = model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} of {self.model!r}>"

    @property
    def shape(self) -> tuple[int, int]:
        """(P, P)."""
        P = self.model.num_params
        return (P, P)

    def dense(self) -> Array:
        """The approximation as a dense (P, P) float64 matrix in θ order."""
        raise NotImplementedError

    def layer_block(self, layer: int) -> Array:
        """Diagonal block of layer ``layer`` (1-based), shape (n_l, n_l), θ order."""
        s = self.model.layer_slice(layer)
        return self.dense()[s, s]

    @property
    def blocks(self) -> list[Array]:
        """``[layer_block(1), ..., layer_block(L)]``."""
        return [self.layer_block(l) for l in range(1, self.model.num_layers + 1)]

    def matmat(self, V: ArrayLike) -> Array:
        """M V for V of shape (P, K)."""
        return self.dense() @ self._check(V, ndim=2)

    def matvec(self, v: ArrayLike) -> Array:
        """M v for v of shape (P,)."""
        return self.matmat(self._check(v, ndim=1)[:, None])[:, 0]

    def as_operator(self) -> LinearOperator:
        """A float64 ``scipy.sparse.linalg.LinearOperator`` applying M."""
        return _operator(self.shape, self.matmat)

    def inverse(self, damping: float) -> LinearOperator:
        """(M + λ I)⁻¹ as a LinearOperator (Cholesky of the dense matrix here)."""
        lam = check_nonnegative_float("damping", damping)
        factor = scipy.linalg.cho_factor(self.dense() + lam * np.eye(self.shape[0]))
        return _operator(self.shape, lambda V: scipy.linalg.cho_solve(factor, V))

    def _check(self, V: ArrayLike, ndim: int) -> Array:
        V = as_float_array("V", V, ndim=ndim)
        if V.shape[0] != self.shape[0]:
            raise ValueError(f"V: expected {self.shape[0]} rows (P), got shape {V.shape}")
        return V


def _operator(shape: tuple[int, int], matmat) -> LinearOperator:
    return LinearOperator(
        shape, matvec=lambda v: matmat(v.reshape(-1, 1))[:, 0], matmat=matmat, dtype=np.float64
    )


class DenseApproximation(Approximation):
    """An approximation held as a dense symmetric (P, P) matrix (Fisher variants, FGN)."""

    def __init__(self, model: MLP, matrix: Array, name: str) -> None:
        super().__init__(model)
        self.matrix = matrix
        self.name = name

    def dense(self) -> Array:
        """See :class:`Approximation`."""
        return self.matrix.copy()


class BlockDiagonalApproximation(Approximation):
    """Per-layer blocks ``blocks[l-1]`` (n_l, n_l) in θ order; zero between layers."""

    def __init__(self, model: MLP, blocks: Sequence[Array], name: str) -> None:
        super().__init__(model)
        self._blocks = [np.asarray(b, dtype=np.float64) for b in blocks]
        self.name = name

    def layer_block(self, layer: int) -> Array:
        """See :class:`Approximation`."""
        self.model._check_layer(layer)
        return self._blocks[layer - 1].copy()

    def dense(self) -> Array:
        """See :class:`Approximation`."""
        out = np.zeros(self.shape)
        for l in range(1, self.model.num_layers + 1):
            s = self.model.layer_slice(l)
            out[s, s] = self.layer_block(l)
        return out

    def _apply_blocks(self, V: Array, apply) -> Array:
        out = np.empty_like(V)
        for l in range(1, self.model.num_layers + 1):
            s = self.model.layer_slice(l)
            out[s] = apply(l, V[s])
        return out

    def matmat(self, V: ArrayLike) -> Array:
        """See :class:`Approximation`."""
        V = self._check(V, ndim=2)
        return self._apply_blocks(V, lambda l, Vl: self._blocks[l - 1] @ Vl)

    def inverse(self, damping: float) -> LinearOperator:
        """Blockwise (M_l + λ I)⁻¹ by Cholesky: the exact inverse of a block-diagonal matrix."""
        lam = check_nonnegative_float("damping", damping)
        factors = [scipy.linalg.cho_factor(b + lam * np.eye(len(b))) for b in self._blocks]
        return _operator(
            self.shape,
            lambda V: self._apply_blocks(
                V, lambda l, Vl: scipy.linalg.cho_solve(factors[l - 1], Vl)
            ),
        )


class DiagonalApproximation(Approximation):
    """A diagonal approximation ``diag(d)``, d of shape (P,)."""

    def __init__(self, model: MLP, diagonal: Array, name: str) -> None:
        super().__init__(model)
        self.diagonal = diagonal
        self.name = name

    def dense(self) -> Array:
        """See :class:`Approximation`."""
        return np.diag(self.diagonal)

    def layer_block(self, layer: int) -> Array:
        """See :class:`Approximation`."""
        return np.diag(self.diagonal[self.model.layer_slice(layer)])

    def matmat(self, V: ArrayLike) -> Array:
        """See :class:`Approximation`."""
        return self.diagonal[:, None] * self._check(V, ndim=2)

    def inverse(self, damping: float) -> LinearOperator:
        """diag(1 / (d + λ)); ``ValueError`` if some d_j + λ = 0 (pass damping > 0)."""
        lam = check_nonnegative_float("damping", damping)
        shifted = self.diagonal + lam
        if np.any(shifted == 0):
            raise ValueError(
                f"damping: diag + {lam:g} has {int(np.sum(shifted == 0))} zero entries, so the "
                "inverse does not exist; pass damping > 0"
            )
        inv = 1.0 / shifted
        return _operator(self.shape, lambda V: inv[:, None] * V)


class KroneckerEigenApproximation(BlockDiagonalApproximation):
    """Per layer, Q_l diag(Λ_l) Q_lᵀ with Q_l = U_B ⊗ U_A in augmented order (K-FAC, EK-FAC).

    ``eigen[l-1] = (U_B (d_l, d_l), U_A (d_{l-1}+1, d_{l-1}+1), Λ (d_l, d_{l-1}+1))``; the
    product with V (augmented, reshaped to (d_l, d_{l-1}+1)) is U_B [(U_Bᵀ V U_A) ⊙ Λ] U_Aᵀ
    (docs/theory.md (19.6)).
    """

    def __init__(self, model: MLP, eigen: Sequence[tuple[Array, Array, Array]], name: str):
        self.eigen = list(eigen)
        super().__init__(model, [self._block(l) for l in range(1, model.num_layers + 1)], name)

    def _block(self, layer: int) -> Array:
        U_B, U_A, Lam = self.eigen[layer - 1]
        Q = np.kron(U_B, U_A)
        K = (Q * Lam.ravel()) @ Q.T
        perm = augmented_order(U_B.shape[0], U_A.shape[0] - 1)
        return K[np.ix_(perm, perm)]

    def _apply_grid(self, l: int, Vl: Array, grid: Array) -> Array:
        U_B, U_A, _ = self.eigen[l - 1]
        d_out, d_aug = U_B.shape[0], U_A.shape[0]
        perm = augmented_order(d_out, d_aug - 1)
        Vaug = np.empty_like(Vl)
        Vaug[perm] = Vl
        T = Vaug.T.reshape(-1, d_out, d_aug)  # one (d_out, d_aug) matrix per column
        T = U_B @ ((U_B.T @ T @ U_A) * grid) @ U_A.T
        return T.reshape(-1, d_out * d_aug).T[perm]

    def matmat(self, V: ArrayLike) -> Array:
        """See :class:`Approximation`."""
        V = self._check(V, ndim=2)
        return self._apply_blocks(V, lambda l, Vl: self._apply_grid(l, Vl, self.eigen[l - 1][2]))

    def inverse(self, damping: float) -> LinearOperator:
        """Q diag(1 / (Λ + λ)) Qᵀ per layer: exact for the Kronecker-eigen form (19.7)."""
        lam = check_nonnegative_float("damping", damping)
        grids = [1.0 / (Lam + lam) for _, _, Lam in self.eigen]
        return _operator(
            self.shape,
            lambda V: self._apply_blocks(V, lambda l, Vl: self._apply_grid(l, Vl, grids[l - 1])),
        )
