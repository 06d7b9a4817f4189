"""Compare another tool's numbers with hessref's exact reference and say where they differ.

:func:`compare` returns a :class:`ComparisonReport`; it never prints. The test is
normwise in the max norm, which is scale-aware and does not blow up on reference
entries that are (near) zero::

    passed  ⇔  max |theirs − reference| ≤ atol + rtol · max |reference|

(the Frobenius relative error ‖theirs − reference‖_F / ‖reference‖_F is reported too).
With ``model`` the worst entry is named (``"W2[3, 0]"``, a pair for matrices) and the
errors are summarised per parameter tensor; when the comparison fails the report
looks for the usual culprits (:mod:`hessref.oracle.diagnose`) and says which one fits: a
constant factor (missing 1/N, ``nn.MSELoss``'s 2/d_L), weight blocks stored (in, out)
(every one of them is named), a whole different convention, float32 precision.
Matrices get a symmetry defect and, for kinds that must be positive semi-definite
(G, Fisher), the minimum eigenvalue;
spectra are sorted and matched (also as a top-k or bottom-k subset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import eigvalsh

from hessref.core.mlp import MLP
from hessref.core.problem import check_model
from hessref.core.validation import as_float_array, check_positive_int
from hessref.oracle.conventions import Convention, get_convention
from hessref.oracle.diagnose import _Locator, _matches, explain_failure

Array = NDArray[np.float64]

KINDS = ("scalar", "vector", "matrix", "symmetric", "psd", "spectrum", "array")
_ALIASES = {
    "loss": "scalar",
    "gradient": "vector",
    "H": "symmetric",
    "hessian": "symmetric",
    "R": "symmetric",
    "residual": "symmetric",
    "G": "psd",
    "ggn": "psd",
    "gauss_newton": "psd",
    "fisher": "psd",
    "empirical_fisher": "psd",
    "eigenvalues": "spectrum",
    "jacobian": "array",
    "per_sample_gradients": "array",
}


@dataclass
class ComparisonReport:
    """Outcome of :func:`compare` (see the module docstring for the criterion).

    Attributes
    ----------
    kind : str
        One of ``KINDS``.
    shape : tuple of int
        Shape of ``theirs``.
    passed : bool
    rtol, atol, tolerance : float
        Tolerances and the resulting bound atol + rtol · max|reference| on the max error.
    max_abs_error : float
        max |theirs − reference| (inf if theirs has NaN/inf entries).
    max_rel_error : float
        max_abs_error / max |reference|.
    frobenius_rel_error : float
        ‖theirs − reference‖_F / ‖reference‖_F.
    worst_index : tuple of int or None
        Index (in ``theirs``) of the largest error.
    worst_location : str or None
        That index named by parameter (with ``model``), e.g. ``"(W2[0, 1], b1[3])"``.
    worst_theirs, worst_reference : float or None
        The two values at ``worst_index``.
    symmetry_defect : float or None
        Square matrices: max |A − Aᵀ| / max |A| of theirs.
    min_eigenvalue : float or None
        Kind ``"psd"``: smallest eigenvalue of (A + Aᵀ)/2 of theirs.
    best_scale : float or None
        ⟨theirs, reference⟩ / ⟨reference, reference⟩, the least-squares factor.
    block_errors : dict of str to float
        With ``model``: max error per parameter tensor (vectors) or tensor pair
        (matrices), only for blocks above the tolerance, largest first.
    transposed_blocks : list of str
        With ``model``, on failure: every weight tensor (``"W1"``, ``"W3"``) whose own
        entries match the reference only in transposed ((in, out) vs (out, in)) order.
    notes : list of str
        Diagnostics in words (likely causes, count mismatches, non-finite entries).
    """

    kind: str
    shape: tuple[int, ...]
    passed: bool
    rtol: float
    atol: float
    tolerance: float
    max_abs_error: float
    max_rel_error: float
    frobenius_rel_error: float
    worst_index: tuple[int, ...] | None = None
    worst_location: str | None = None
    worst_theirs: float | None = None
    worst_reference: float | None = None
    symmetry_defect: float | None = None
    min_eigenvalue: float | None = None
    best_scale: float | None = None
    block_errors: dict[str, float] = field(default_factory=dict)
    transposed_blocks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        lines = [
            f"{status}: {self.kind} of shape {self.shape} "
            f"(rtol={self.rtol:g}, atol={self.atol:g}; tolerance {self.tolerance:.3e})",
            f"  max abs error    {self.max_abs_error:.3e}",
            f"  max rel error    {self.max_rel_error:.3e}  (relative to max |reference|)",
            f"  Frobenius rel    {self.frobenius_rel_error:.3e}",
        ]
        if self.worst_index:  # None for empty arrays, () for scalars
            where = self.worst_location or str(self.worst_index)
            lines.append(
                f"  worst entry      {where} at index {self.worst_index}: "
                f"theirs {self.worst_theirs!r}, reference {self.worst_reference!r}"
            )
        if self.symmetry_defect is not None:
            lines.append(f"  symmetry defect  {self.symmetry_defect:.3e}  (max|A - A^T| / max|A|)")
        if self.min_eigenvalue is not None:
            lines.append(f"  min eigenvalue   {self.min_eigenvalue:.6e}  (of theirs, must be >= 0)")
        if self.best_scale is not None and not self.passed:
            lines.append(f"  best-fit scale   {self.best_scale:.12g}")
        if self.block_errors:
            lines.append("  blocks above tolerance (max abs error):")
            items = list(self.block_errors.items())
            lines += [f"    {name}: {err:.3e}" for name, err in items[:8]]
            if len(items) > 8:
                lines.append(f"    ... and {len(items) - 8} more")
        if self.transposed_blocks:
            lines.append(f"  transposed blocks {', '.join(self.transposed_blocks)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _their_array(theirs: ArrayLike) -> Array:
    """float64 copy of theirs; NaN/inf are allowed (they are a finding, not an input error)."""
    arr = np.asarray(theirs)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"theirs: expected a real numeric array, got dtype {arr.dtype}"
            + ("; pass np.real(x) if the imaginary part is zero" if arr.dtype.kind == "c" else "")
        )
    return arr.astype(np.float64)


def _resolve_kind(kind: str | None, ref: Array) -> str:
    if kind is None:
        if ref.ndim == 0:
            return "scalar"
        if ref.ndim == 1:
            return "vector"
        if ref.ndim == 2 and ref.shape[0] == ref.shape[1]:
            return "matrix"
        return "array"
    if kind in _ALIASES:
        return _ALIASES[kind]
    if kind not in KINDS:
        valid = ", ".join(repr(k) for k in (*KINDS, *_ALIASES))
        raise ValueError(f"kind: expected one of {valid}, got {kind!r}")
    return kind


def compare(
    theirs: ArrayLike,
    reference: ArrayLike,
    *,
    rtol: float = 1e-10,
    atol: float = 0.0,
    model: MLP | None = None,
    kind: str | None = None,
    convention: Convention | str | None = None,
    num_samples: int | None = None,
    reference_in_convention: bool = False,
) -> ComparisonReport:
    """Compare ``theirs`` with an exact ``reference`` and report how and where they differ.

    Parameters
    ----------
    theirs : array_like
        The numbers under test (NaN/inf entries are reported, not rejected).
    reference : array_like
        hessref's exact value, same shape (for ``kind="spectrum"`` theirs may be shorter:
        a top-k or bottom-k subset).
    rtol, atol : float
        Pass iff max|theirs − reference| ≤ atol + rtol · max|reference|.
    model : MLP, optional
        Names the worst entry and per-tensor blocks of parameter axes (axes of length
        P, or P' in ``convention``'s layout) and enables layout diagnostics.
    kind : str, optional
        ``"scalar"``, ``"vector"``, ``"matrix"``, ``"symmetric"``, ``"psd"``,
        ``"spectrum"``, ``"array"`` or an alias (``"H"``, ``"G"``, ``"R"``, ``"gradient"``,
        ``"empirical_fisher"``, ``"eigenvalues"``, ...). Default: inferred from the shape
        (a square matrix is ``"matrix"``: no PSD test).
    convention : Convention or preset name, optional
        ``theirs`` is laid out in this convention while ``reference`` is in hessref's;
        the reference is mapped with :func:`hessref.oracle.conventions.to_convention` (no loss
        scaling) and locations are reported with hessref names.
    num_samples : int, optional
        N of the data set; lets a failure with theirs = N × reference (or 1/N ×) be
        named as a missing (or extra) 1/N.
    reference_in_convention : bool
        ``reference`` is already in ``convention``'s layout (do not map it; only name
        locations through it).

    Returns
    -------
    ComparisonReport
        ``str(report)`` is a readable summary; ``bool(report)`` is ``report.passed``.

    Examples
    --------
    >>> import numpy as np
    >>> from hessref.core.mlp import MLP
    >>> model = MLP([2, 2], activation="identity")
    >>> ref = np.arange(6.0); bad = ref.copy(); bad[4] += 1e-6
    >>> report = compare(bad, ref, model=model)
    >>> report.passed, report.worst_location
    (False, 'b1[0]')
    """
    rtol, atol = _check_tol("rtol", rtol), _check_tol("atol", atol)
    if num_samples is not None:
        num_samples = check_positive_int("num_samples", num_samples)
    ref = as_float_array("reference", reference)
    A = _their_array(theirs)
    kind = _resolve_kind(kind, ref)
    loc = None
    if model is not None:
        model = check_model(model)
        loc = _Locator(model, None if convention is None else get_convention(convention))
        if convention is not None and not reference_in_convention:
            ref = _reference_in_convention(ref, model, loc, kind)
    elif convention is not None:
        raise ValueError("convention: needs model= as well, to know the parameter layout")
    if kind == "spectrum":
        return _compare_spectrum(A, ref, rtol, atol)
    _check_shapes(A, ref, kind, model, loc)
    return _compare_arrays(A, ref, kind, rtol, atol, loc, num_samples)


def _check_tol(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.floating))
        or not (np.isfinite(value) and value >= 0)
    ):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return float(value)


def _param_axes(kind: str, shape: tuple[int, ...], n: int) -> tuple[int, ...]:
    """Parameter axes of an array of ``kind``: both axes of square matrices, axis 0 of
    vectors, the last axis of other arrays (Jacobians (N, d_L, P), per-sample gradients).
    """
    if kind in ("matrix", "symmetric", "psd"):
        return (0, 1) if shape == (n, n) else ()
    if kind == "vector":
        return (0,) if shape == (n,) else ()
    if kind == "array" and len(shape) >= 1 and shape[-1] == n:
        return (len(shape) - 1,)
    return ()


def _reference_in_convention(ref: Array, model: MLP, loc: _Locator, kind: str) -> Array:
    for a in _param_axes(kind, ref.shape, model.num_params):
        ref = np.take(ref, loc.perm, axis=a)
    return ref


def _check_shapes(A: Array, ref: Array, kind: str, model: MLP | None, loc: _Locator | None) -> None:
    if A.shape != ref.shape:
        hint = ""
        if model is not None and loc is not None and A.size and ref.size:
            P, Pw = (
                model.num_params,
                sum(model.sizes[l] * model.sizes[l - 1] for l in range(1, model.num_layers + 1)),
            )
            if Pw in A.shape and P in ref.shape:
                hint = (
                    "; theirs looks bias-free: pass convention='loss_landscape' (or a "
                    "Convention with include_biases=False)"
                )
        if A.shape == ref.shape[::-1] and A.ndim == 2:
            hint = "; theirs is the transpose's shape: transpose it first"
        raise ValueError(f"theirs: expected shape {ref.shape} like reference, got {A.shape}{hint}")
    if kind == "scalar" and ref.ndim != 0 and ref.size != 1:
        raise ValueError(f"kind: 'scalar' needs a single number, got shape {ref.shape}")
    if kind in ("matrix", "symmetric", "psd") and (ref.ndim != 2 or ref.shape[0] != ref.shape[1]):
        raise ValueError(f"kind: {kind!r} needs a square matrix, got shape {ref.shape}")
    if kind == "vector" and ref.ndim != 1:
        raise ValueError(f"kind: 'vector' needs a 1-D array, got shape {ref.shape}")


def _errors(A: Array, ref: Array) -> tuple[Array, float, float, float, float]:
    """|A − ref| with non-finite entries as inf, max abs error, scale, max rel, Frobenius rel."""
    with np.errstate(invalid="ignore"):
        diff = np.abs(A - ref)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    tiny = np.finfo(np.float64).tiny
    with np.errstate(invalid="ignore", over="ignore"):
        frob = float(np.linalg.norm(A - ref) / max(float(np.linalg.norm(ref)), tiny))
    if not np.isfinite(frob):
        frob = np.inf
    return diff, max_abs, scale, max_abs / max(scale, tiny), frob


def _compare_arrays(
    A: Array,
    ref: Array,
    kind: str,
    rtol: float,
    atol: float,
    loc: _Locator | None,
    num_samples: int | None = None,
) -> ComparisonReport:
    diff, max_abs, scale, max_rel, frob = _errors(A, ref)
    tol = atol + rtol * scale
    report = ComparisonReport(
        kind, A.shape, bool(max_abs <= tol), rtol, atol, tol, max_abs, max_rel, frob
    )
    if scale == 0.0 and atol == 0.0 and max_abs > 0:
        report.notes.append(
            "the reference is exactly zero, so rtol cannot pass anything nonzero: "
            "pass an absolute tolerance atol"
        )
    finite = np.isfinite(A)
    if not finite.all():
        first = tuple(int(i) for i in np.argwhere(~finite)[0])
        report.notes.append(
            f"theirs has {int((~finite).sum())} NaN/inf entries (first at index {first})"
        )
        report.passed = False
    axes = () if loc is None else _param_axes(kind, A.shape, loc.size)
    if diff.size:
        w = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        report.worst_index = w
        report.worst_theirs, report.worst_reference = float(A[w]), float(ref[w])
        if loc is not None and axes:
            parts = [loc.name(w[a]) if a in axes else str(w[a]) for a in range(A.ndim)]
            report.worst_location = parts[0] if len(parts) == 1 else f"({', '.join(parts)})"
    if A.ndim == 2 and A.shape[0] == A.shape[1] and kind in ("matrix", "symmetric", "psd"):
        _matrix_diagnostics(report, A, kind, tol)
    if loc is not None and axes:
        report.block_errors = _block_errors(diff, axes, loc, tol)
    if not report.passed and finite.all():
        explain_failure(report, A, ref, tol, loc, axes, num_samples)
    return report


def _matrix_diagnostics(report: ComparisonReport, A: Array, kind: str, tol: float) -> None:
    if not np.isfinite(A).all():
        return
    amax = float(np.abs(A).max())
    defect = float(np.abs(A - A.T).max())
    report.symmetry_defect = defect / amax if amax > 0 else 0.0
    if kind in ("symmetric", "psd") and defect > tol:
        report.notes.append(
            f"theirs is not symmetric: max|A - A^T| = {defect:.3e} exceeds the tolerance"
        )
    if kind == "psd":
        lam = float(eigvalsh(0.5 * (A + A.T), subset_by_index=[0, 0])[0])
        report.min_eigenvalue = lam
        if lam < -tol:
            report.passed = False
            report.notes.append(
                f"theirs is not positive semi-definite: min eigenvalue {lam:.3e} < "
                f"-tolerance {-tol:.3e} (G and Fisher matrices are PSD)"
            )


def _block_errors(
    diff: Array, axes: tuple[int, ...], loc: _Locator, tol: float
) -> dict[str, float]:
    """Max error per parameter tensor (one axis) or tensor pair (two axes) above ``tol``."""
    other = tuple(a for a in range(diff.ndim) if a not in axes)
    D = diff.max(axis=other) if other else diff
    for ax in range(D.ndim):
        D = np.maximum.reduceat(D, loc.starts, axis=ax)
    names = loc.block_names()
    out = {}
    for idx in np.argwhere(D > tol):
        label = ", ".join(names[i] for i in idx)
        out[label if len(idx) == 1 else f"({label})"] = float(D[tuple(idx)])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def _compare_spectrum(A: Array, ref: Array, rtol: float, atol: float) -> ComparisonReport:
    if A.ndim != 1 or ref.ndim != 1:
        raise ValueError(
            f"kind: 'spectrum' needs 1-D eigenvalue arrays, got theirs {A.shape} and "
            f"reference {ref.shape}"
        )
    a, r, alignment, notes = _align_spectra(A, ref)
    diff, max_abs, _, _, frob = _errors(a, r)
    scale = float(np.abs(ref).max()) if ref.size else 0.0
    tol = atol + rtol * scale
    tiny = np.finfo(np.float64).tiny
    report = ComparisonReport(
        "spectrum",
        A.shape,
        bool(max_abs <= tol and alignment != "overflow"),
        rtol,
        atol,
        tol,
        max_abs,
        max_abs / max(scale, tiny),
        frob,
        notes=notes,
    )
    if not np.all(np.isfinite(A)):
        report.passed = False
        report.notes.append(f"theirs has {int((~np.isfinite(A)).sum())} NaN/inf eigenvalues")
    if diff.size:
        k = int(np.argmax(diff))
        offset = ref.size - a.size if alignment == "bottom" else 0
        report.worst_index = (k,)
        report.worst_location = f"eigenvalue #{k + offset} of the reference (descending order)"
        report.worst_theirs, report.worst_reference = float(a[k]), float(r[k])
    if not report.passed and np.all(np.isfinite(a)) and a.size == r.size:
        _explain_spectrum(report, a, r, tol)
    return report


def _align_spectra(A: Array, ref: Array) -> tuple[Array, Array, str, list[str]]:
    """Both sorted descending; a shorter theirs matched to the closer top-k or bottom-k."""
    notes = []
    if A.size >= 2 and np.all(np.isfinite(A)):
        if not (np.all(np.diff(A) <= 0) or np.all(np.diff(A) >= 0)):
            notes.append("theirs is not sorted; compared after sorting (descending)")
    a = np.sort(A)[::-1]
    r = np.sort(ref)[::-1]
    alignment = "full"
    if a.size != r.size:
        notes.append(f"count mismatch: theirs has {a.size} eigenvalues, the reference {r.size}")
    if a.size < r.size:
        top, bottom = r[: a.size], r[r.size - a.size :]
        if np.nanmax(np.abs(a - bottom), initial=0.0) < np.nanmax(np.abs(a - top), initial=0.0):
            r, alignment = bottom, "bottom"
        else:
            r, alignment = top, "top"
        notes.append(f"matched theirs as the {alignment}-{a.size} of the reference spectrum")
    elif a.size > r.size:
        a, alignment = a[: r.size], "overflow"
    return a, r, alignment, notes


def _explain_spectrum(report: ComparisonReport, a: Array, r: Array, tol: float) -> None:
    """Notes for a failed spectrum comparison: |λ| ordering, a constant factor."""
    if _matches(np.abs(a), np.sort(np.abs(r))[::-1][: a.size], tol) or _matches(
        np.sort(np.abs(a))[::-1], np.sort(np.abs(r))[::-1], tol
    ):
        report.notes.append("the magnitudes match: a sign convention or |λ| ordering issue?")
    rr = float(r @ r)
    if rr > 0:
        c = float(a @ r) / rr
        report.best_scale = c
        if abs(c - 1) > 1e-6 and _matches(a, c * r, tol * max(1.0, abs(c))):
            report.notes.append(
                f"theirs ≈ {c:.12g} × reference (a constant factor: reduction or loss scaling)"
            )
