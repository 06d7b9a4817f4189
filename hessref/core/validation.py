"""Input checks for the public boundary: the one module every layer uses for them.

Public functions convert and check their inputs once, at the boundary, with the
helpers below (arrays, labels, and scalars: positive int, positive / non-negative
finite float, probability, choice, bool), and inner code trusts them. Messages
name the argument, what was expected and what was given, and say what to do
instead. Errors are ``TypeError`` for a wrong kind of value (complex, object,
string, float labels) and ``ValueError`` for a wrong shape,
range or non-finite entry. Real numeric input of any precision (float32, int)
is converted to float64; there is no float32 mode.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def as_float_array(name: str, value: ArrayLike, ndim: int | tuple[int, ...] | None = None) -> Array:
    """Convert ``value`` to a finite float64 array, or raise a clear error.

    Parameters
    ----------
    name : str
        Argument name used in messages.
    value : array_like
        Real numbers (bool, int or float of any width).
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.

    Raises
    ------
    TypeError
        Complex, object, string or otherwise non-real input.
    ValueError
        Wrong number of dimensions, or NaN/inf entries.

    Examples
    --------
    >>> as_float_array("X", [[1, 2]], ndim=2).dtype
    dtype('float64')
    >>> as_float_array("X", [1.0, float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: X: expected finite values, got 1 NaN/inf entries (first at index (1,)); ...
    """
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(
            f"{name}: expected real float64 values, got complex dtype {arr.dtype}; "
            "pass the real part explicitly (e.g. np.real(x)) if the imaginary part is zero"
        )
    if kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}: expected finite values, got {int(bad.sum())} NaN/inf entries "
            f"(first at index {first}); remove or impute them"
        )
    return arr


def as_int_labels(
    name: str, value: ArrayLike, num_samples: int, num_classes: int
) -> NDArray[np.int64]:
    """Check integer class labels of shape (N,) in ``[0, num_classes)``.

    Raises
    ------
    TypeError
        Float, bool, complex or object labels (one-hot targets included).
    ValueError
        Wrong shape or labels out of range.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        hint = (
            "; for one-hot targets use labels = Y.argmax(axis=1)"
            if arr.ndim == 2
            else "; convert with y.astype(int) if they are whole numbers"
        )
        raise TypeError(
            f"{name}: cross_entropy expects integer class labels of shape ({num_samples},), "
            f"got dtype {arr.dtype} with shape {arr.shape}{hint}"
        )
    if arr.shape != (num_samples,):
        raise ValueError(
            f"{name}: cross_entropy expects integer labels of shape ({num_samples},) "
            f"(one per row of X), got shape {arr.shape}"
        )
    if num_samples and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name}: labels must lie in [0, {num_classes}) for d_L = {num_classes} outputs, "
            f"got values in [{arr.min()}, {arr.max()}]"
        )
    return arr.astype(np.int64, copy=False)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected one of {valid}, got {value!r}")
    return value


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``value`` as int if it is an integer ≥ ``minimum``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _real_scalar(name: str, value: Any, expected: str) -> float:
    """``value`` as a finite float if it is a real number (not bool), else ``ValueError``."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not ok or not np.isfinite(value):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return float(value)


def check_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite real number, else raise ``ValueError``."""
    return _real_scalar(name, value, "a finite real number")


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number > 0, else raise ``ValueError``.

    Examples
    --------
    >>> check_positive_float("lr", 0.1)
    0.1
    >>> check_positive_float("lr", 0)
    Traceback (most recent call last):
    ...
    ValueError: lr: expected a finite number > 0, got 0
    """
    out = _real_scalar(name, value, "a finite number > 0")
    if out <= 0:
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return out


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number ≥ 0, else raise ``ValueError``."""
    out = _real_scalar(name, value, "a finite number >= 0")
    if out < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return out


def check_probability(name: str, value: Any, *, open_interval: bool = False) -> float:
    """Return ``value`` as float if it lies in [0, 1] ((0, 1) if ``open_interval``)."""
    want = "a probability in (0, 1)" if open_interval else "a probability in [0, 1]"
    out = _real_scalar(name, value, want)
    if not (0 < out < 1 if open_interval else 0 <= out <= 1):
        raise ValueError(f"{name}: expected {want}, got {value!r}")
    return out


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (numpy bools included), else raise ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def available_memory_bytes() -> int:
    """Memory the process can still allocate: MemAvailable on Linux, else physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - non-Linux
        pass
    try:  # pragma: no cover - non-Linux
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 2**63 - 1


def check_dense_fits(
    what: str, num_params: int, num_matrices: int = 1, workspace_bytes: int = 0
) -> None:
    """Refuse an exact P×P request that cannot fit in memory, before allocating it.

    Needs ``num_matrices`` P×P float64 results, one more P×P for assembly (symmetrization
    and the transposed blocks), and ``workspace_bytes`` for the per-chunk intermediates of
    the block formulas (docs/theory.md, equation (7.4)).

    Raises
    ------
    MemoryError
        With the bytes needed (results and workspace separately) and a pointer to the
        matrix-free operators.
    """
    matrices = (num_matrices + 1) * 8 * num_params**2
    needed = matrices + workspace_bytes
    available = available_memory_bytes()
    if needed > available:
        raise MemoryError(
            f"{what}: an exact result for P = {num_params} parameters needs about "
            f"{needed / 2**30:.1f} GiB ({needed} bytes: {num_matrices} P×P float64 "
            f"matrices plus one for assembly, {matrices} bytes, and {workspace_bytes} bytes "
            f"of chunk workspace), but only {available / 2**30:.1f} GiB is available. "
            "Use the matrix-free hessref.hessian_operator / ggn_operator / residual_operator "
            "with hessref.spectrum instead."
        )


def check_real(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    """Return ``value`` as a finite float, optionally ≥ ``minimum`` (> if ``strict``).

    Raises
    ------
    TypeError
        Not a real number (bool, str, complex, array...).
    ValueError
        NaN/inf or below the bound.

    Examples
    --------
    >>> check_real("tol", 1e-8, minimum=0.0)
    1e-08
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    low_ok = minimum is None or (value > minimum if strict else value >= minimum)
    if not np.isfinite(value) or not low_ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name}: expected a finite number{bound}, got {value}")
    return value
