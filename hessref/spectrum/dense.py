"""All eigenvalues of a dense symmetric matrix (LAPACK ``eigh``)."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from hessref.spectrum._operator import as_dense_symmetric

Array = NDArray[np.float64]


def eigenvalues(
    A: ArrayLike, vectors: bool = False, blas_threads: int | None = 1
) -> Array | tuple[Array, Array]:
    """All eigenvalues of a dense symmetric matrix, in descending order.

    Uses ``scipy.linalg.eigh`` (LAPACK, symmetric). For a LinearOperator use
    :func:`~hessref.spectrum.top_eigenpairs` or :func:`~hessref.spectrum.slq_density`.

    Parameters
    ----------
    A : array_like (P, P)
        Symmetric up to rounding (max|A − Aᵀ| ≤ 1e-10·max|A|).
    vectors : bool
        Also return the unit eigenvectors.
    blas_threads : int or None
        BLAS threads for the LAPACK call; 1 by default because at these sizes a
        threaded ``eigh`` on a small shared CPU is several times slower
        (docs/theory.md §18). None keeps the library's setting.

    Returns
    -------
    values : ndarray (P,)
        λ_1 ≥ … ≥ λ_P.
    V : ndarray (P, P), only if ``vectors``
        ``V[:, i]`` is the eigenvector of ``values[i]``.

    Examples
    --------
    >>> eigenvalues([[2.0, 1.0], [1.0, 2.0]])
    array([3., 1.])
    """
    arr = as_dense_symmetric("A", A)
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        if vectors:
            values, V = scipy.linalg.eigh(arr, check_finite=False)
            return values[::-1].copy(), V[:, ::-1].copy()
        values = scipy.linalg.eigh(arr, eigvals_only=True, check_finite=False)
    return values[::-1].copy()
