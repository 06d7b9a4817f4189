"""Summary statistics of a real spectrum, with ONE documented zero tolerance.

Every "% negative", "number of zero eigenvalues" or "rank" reported by hessref comes
from :func:`spectrum_statistics`, which uses the relative tolerance

    ZERO_RTOL = 1e-10:  λ counts as zero when |λ| ≤ ZERO_RTOL · max_i |λ_i|.

Why 1e-10: a dense symmetric eigensolver returns eigenvalues with absolute errors of
order P · ε · ‖A‖₂ (ε ≈ 2.2e-16); for the P ≤ 10⁴ matrices hessref handles this is
≤ 2.2e-12 · ‖A‖₂, so 1e-10 sits two orders above rounding noise and far below any
curvature we interpret. A separate, explicitly named ``near_zero`` cutoff (a bulk
concentration measure, e.g. |λ| < 1e-3 · max|λ|) is reported with its cutoff value, so
the two are never confused. Nothing here knows where the spectrum came from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: Relative tolerance below which an eigenvalue counts as zero (see the module docstring).
ZERO_RTOL = 1e-10

#: Default relative cutoff of the "near-zero share" (bulk concentration), |λ| < cutoff·max|λ|.
NEAR_ZERO_RTOL = 1e-3


def zero_tolerance(eigenvalues: ArrayLike, rtol: float = ZERO_RTOL) -> float:
    """The absolute zero tolerance ``rtol · max|λ|`` of a spectrum (0 for an all-zero one)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    return float(rtol * np.abs(lam).max()) if lam.size else 0.0


def spectrum_statistics(
    eigenvalues: ArrayLike,
    top: int = 10,
    near_zero: float = NEAR_ZERO_RTOL,
    rtol: float = ZERO_RTOL,
) -> dict[str, Any]:
    """Inertia, extremes, trace and near-zero share of a real spectrum.

    With τ = rtol · max|λ| (the zero tolerance) and c = near_zero · max|λ|:

    - ``num_negative`` = #{λ < −τ}, ``num_zero`` = #{|λ| ≤ τ}, ``num_positive`` = #{λ > τ}
      (they sum to P), and ``fraction_negative`` = num_negative / P;
    - ``fraction_near_zero`` = #{|λ| < c} / P (bulk concentration at its stated cutoff);
    - ``lambda_max``, ``lambda_min``, ``trace`` = Σλ, ``top`` = the ``top`` largest.

    Parameters
    ----------
    eigenvalues : array_like (P,)
        Real eigenvalues, any order, P ≥ 1, finite.
    top : int
        How many of the largest eigenvalues to return (clipped to P).
    near_zero : float
        Relative cutoff c/max|λ| of the near-zero share, in (0, 1).
    rtol : float
        Relative zero tolerance (default :data:`ZERO_RTOL`; keep the default so numbers
        are comparable across reports).

    Returns
    -------
    dict
        The numbers above plus ``num_params`` (P), ``zero_tolerance`` (τ),
        ``zero_rtol``, ``near_zero_rtol`` and ``near_zero_cutoff`` (c).

    Examples
    --------
    >>> s = spectrum_statistics([2.0, 1.0, 1e-14, -0.5], top=2)
    >>> s["num_positive"], s["num_zero"], s["num_negative"], s["top"]
    (2, 1, 1, [2.0, 1.0])
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())[::-1]
    if lam.size == 0 or not np.all(np.isfinite(lam)):
        raise ValueError(
            f"eigenvalues: expected a non-empty array of finite values, got {lam.size} values"
            + ("" if lam.size == 0 else " with NaN or inf")
        )
    for arg, value in (("near_zero", near_zero), ("rtol", rtol)):
        if not 0.0 < float(value) < 1.0:
            raise ValueError(f"{arg}: expected a relative tolerance in (0, 1), got {value!r}")
    if int(top) < 1:
        raise ValueError(f"top: expected a positive integer, got {top!r}")
    P = lam.size
    scale = float(np.abs(lam).max())
    tau = rtol * scale
    cutoff = near_zero * scale
    neg = int(np.sum(lam < -tau))
    pos = int(np.sum(lam > tau))
    return {
        "num_params": P,
        "lambda_max": float(lam[0]),
        "lambda_min": float(lam[-1]),
        "trace": float(lam.sum()),
        "num_positive": pos,
        "num_zero": P - pos - neg,
        "num_negative": neg,
        "fraction_negative": neg / P,
        "fraction_near_zero": float(np.mean(np.abs(lam) < cutoff)),
        "zero_rtol": float(rtol),
        "zero_tolerance": tau,
        "near_zero_rtol": float(near_zero),
        "near_zero_cutoff": cutoff,
        "top": [float(v) for v in lam[: int(top)]],
    }
