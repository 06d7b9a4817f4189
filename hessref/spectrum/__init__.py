"""Spectra of symmetric matrices and operators: exact, extreme, traces and densities.

Generic linear algebra; nothing here knows about MLPs. Every function accepts a
dense symmetric float64 array, and the matrix-free ones also accept any
``scipy.sparse.linalg.LinearOperator`` of dtype float64 (e.g.
``hessref.operators.hessian_operator``) or a scipy sparse matrix.

==============================  ====================================================
``eigenvalues``                 all eigenvalues (descending) of a dense matrix, ``eigh``
                                (module ``dense``)
``top_eigenpairs``              k largest/smallest *algebraic* eigenpairs: ARPACK
                                (``which='LA'``/``'SA'``, never ``'LM'``), Lanczos
                                with full reorthogonalization, or block Lanczos on
                                (P, b) blocks; residuals ‖Av − λv‖ (modules
                                ``eigenpairs``, ``block``)
``lanczos``                     m Lanczos steps: tridiagonal T_m, Gauss quadrature
                                nodes μ_k and weights τ_k = (first entry of T's
                                eigenvector k)² (module ``lanczos_kernel``, which also holds
                                the one Lanczos kernel every method here uses)
``hutchinson_trace``            tr A ≈ mean zᵀAz over Rademacher z (module ``trace``)
``hutchpp_trace``               Hutch++ (Meyer, Musco, Musco, Woodruff 2021)
``slq_density``                 stochastic Lanczos quadrature density (module ``density``)
``exact_density``               the same smoothed density from exact eigenvalues
``gaussian_kernel``             the smoothing kernel g_σ of both densities
``count_outliers``              outliers by largest gap, largest ratio or threshold
                                (module ``outliers``)
==============================  ====================================================

Conventions: eigenvalues are returned in descending order except where stated
(Lanczos nodes are ascending, as quadrature nodes usually are). Every random
function takes ``rng`` (None, int or Generator; ``np.random.default_rng(rng)``);
the same seed gives bit-identical results. ``num_matvecs`` counts every column
the operator was applied to, residual checks included.
"""

from __future__ import annotations

from hessref.spectrum.dense import eigenvalues
from hessref.spectrum.density import SpectralDensity, exact_density, gaussian_kernel, slq_density
from hessref.spectrum.eigenpairs import Eigenpairs, top_eigenpairs
from hessref.spectrum.lanczos_kernel import LanczosResult, lanczos
from hessref.spectrum.outliers import OutlierCount, count_outliers
from hessref.spectrum.trace import TraceEstimate, hutchinson_trace, hutchpp_trace

__all__ = [
    "Eigenpairs",
    "LanczosResult",
    "OutlierCount",
    "SpectralDensity",
    "TraceEstimate",
    "count_outliers",
    "eigenvalues",
    "exact_density",
    "gaussian_kernel",
    "hutchinson_trace",
    "hutchpp_trace",
    "lanczos",
    "slq_density",
    "top_eigenpairs",
]
