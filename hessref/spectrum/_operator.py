"""Input handling shared by the spectrum functions: the validated, counting operator.

Every matrix-free function wraps its input in :class:`Operator` once; inner code
trusts it. Scalar and array checks come from :mod:`hessref.core.validation`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from hessref.core.validation import as_float_array

Array = NDArray[np.float64]

SYMMETRY_RTOL = 1e-10  # max|A - Aᵀ| allowed, relative to max|A|
BLOCK_ELEMENTS = 2**22  # float64 entries per probe block (32 MiB) in matmat-based estimators


def check_symmetric(name: str, A: Any) -> None:
    """Raise unless max|A − Aᵀ| ≤ 1e-10 · max|A| (block by block: no P×P temporary)."""
    n = A.shape[0]
    scale = worst = 0.0
    for i in range(0, n, 512):
        rows = A[i : i + 512]
        scale = max(scale, float(np.abs(rows).max()))
        worst = max(worst, float(np.abs(rows - A[:, i : i + 512].T).max()))
    if worst > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name}: expected a symmetric matrix, but max|A - A.T| = {worst:.3g} exceeds "
            f"{SYMMETRY_RTOL:g} * max|A| = {SYMMETRY_RTOL * scale:.3g}; symmetrize with "
            "(A + A.T) / 2 if the asymmetry is rounding"
        )


def as_dense_symmetric(name: str, A: Any) -> Array:
    """A non-empty, finite, symmetric float64 ndarray, or a clear error."""
    if isinstance(A, spla.LinearOperator) or scipy.sparse.issparse(A):
        raise TypeError(
            f"{name}: expected a dense symmetric ndarray, got {type(A).__name__}; for a "
            "matrix-free operator use top_eigenpairs (extreme eigenvalues) or slq_density "
            "(the whole spectrum's density), or build the dense matrix first"
        )
    arr = as_float_array(name, A, ndim=2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square matrix, got shape {arr.shape}")
    check_symmetric(name, arr)
    return arr


def _as_sparse_symmetric(name: str, A: Any) -> Any:
    if A.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real sparse matrix, got dtype {A.dtype}")
    A = scipy.sparse.csr_array(A, dtype=np.float64)
    if not np.all(np.isfinite(A.data)):
        raise ValueError(f"{name}: expected finite values, got NaN/inf entries")
    if A.shape[0] == A.shape[1] and A.nnz:
        asym, scale = abs(A - A.T).max(), abs(A).max()
        if asym > SYMMETRY_RTOL * scale:
            raise ValueError(f"{name}: expected a symmetric matrix, but max|A - A.T| = {asym:.3g}")
    return A


def all_finite(Y: Array) -> bool:
    """The spectrum layer's non-finite scan of a product (skipped for self-checking operators)."""
    return bool(np.isfinite(Y).all())


class Operator:
    """A validated square symmetric operator that counts the columns it is applied to.

    Accepts a dense symmetric array, a scipy sparse matrix or a float64
    ``LinearOperator`` (whose symmetry is the caller's promise).

    Every product is scanned for NaN/inf once: here, unless the operator declares
    ``checks_output = True`` (an attribute, read with ``getattr`` so that this layer
    imports nothing from the engine; :class:`hessref.operators.CurvatureOperator` sets it,
    since it scans each product's sum itself and raises on NaN/inf).
    """

    def __init__(self, name: str, A: Any) -> None:
        self.name = name
        self.num_matvecs = 0
        if isinstance(A, spla.LinearOperator):
            dtype = np.dtype(A.dtype) if A.dtype is not None else None
            if dtype != np.float64:
                raise TypeError(
                    f"{name}: expected a LinearOperator of dtype float64, got dtype {dtype}; "
                    "construct it with dtype=np.float64 (SciPy otherwise infers the dtype "
                    "from a trial product)"
                )
            self._A: Any = A
        elif scipy.sparse.issparse(A):
            self._A = _as_sparse_symmetric(name, A)
        else:
            arr = as_float_array(name, A, ndim=2)
            if arr.shape[0] == arr.shape[1]:
                check_symmetric(name, arr)
            self._A = arr
        shape = self._A.shape
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty square (P, P) operator, got {shape}")
        self.P = int(shape[0])
        # one scan per product: trust only an explicit True (not any truthy attribute)
        self.scans = getattr(self._A, "checks_output", False) is not True

    def matmat(self, X: Array) -> Array:
        """A @ X for X of shape (P, b), returned as a float64 (P, b) array."""
        self.num_matvecs += X.shape[1]
        Y = np.asarray(self._A @ X, dtype=np.float64).reshape(self.P, X.shape[1])
        if self.scans and not all_finite(Y):
            raise ValueError(f"{self.name}: the operator returned NaN/inf values")
        return Y

    def matvec(self, x: Array) -> Array:
        """A @ x for x of shape (P,)."""
        return self.matmat(x.reshape(-1, 1))[:, 0]


def unit_start_vector(name: str, v: ArrayLike, P: int) -> Array:
    """A user start vector of shape (P,), checked and normalized to ‖v‖ = 1."""
    arr = as_float_array(name, v, ndim=1)
    if arr.shape != (P,):
        raise ValueError(f"{name}: expected shape ({P},) to match A, got {arr.shape}")
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        raise ValueError(f"{name}: expected a nonzero start vector, got all zeros")
    return arr / norm


def rademacher(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
    """Independent ±1 entries with probability ½ each, as float64."""
    return rng.integers(0, 2, size=shape, dtype=np.int8).astype(np.float64) * 2.0 - 1.0
