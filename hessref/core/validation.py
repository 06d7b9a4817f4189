"""Input checks for the public boundary: the one module every layer uses for them.

Public functions convert and check their inputs once, at the boundary, with the
helpers below (arrays, labels, and scalars: positive int, choice, bool and one real
scalar checker, :func:`check_real`, behind the positive / non-negative / probability
variants), and inner code trusts them. Messages name the argument, what was expected
and what was given, and say what to do instead. One exception policy: ``TypeError``
for a wrong kind of value (complex, object, string, float labels, ``'0.1'`` for a
number, 2.0 for an integer) and ``ValueError`` for a wrong shape, range or non-finite
entry. Real numeric input of any precision (float32, int)
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
    """Return ``value`` as int if it is an integer ≥ ``minimum``.

    Raises
    ------
    TypeError
        Not an integer (bool, float, str, ...), even if it looks like one (2.0, "3").
    ValueError
        An integer below ``minimum``.

    Examples
    --------
    >>> check_positive_int("k", 3)
    3
    >>> check_positive_int("k", 0)
    Traceback (most recent call last):
    ...
    ValueError: k: expected an integer >= 1, got 0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name}: expected an integer >= {minimum}, got {type(value).__name__} {value!r}"
        )
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(
    name: str,
    value: Any,
    minimum: float | None = None,
    strict: bool = False,
    *,
    maximum: float | None = None,
    what: str = "a finite number",
) -> float:
    """THE scalar checker: ``value`` as a finite float within optional bounds.

    Every real-scalar check of the package goes through here, so one input gets one
    answer everywhere: a wrong kind of value is a ``TypeError``, a real number that is
    not finite or out of range a ``ValueError``.

    Parameters
    ----------
    name : str
        Argument name used in messages.
    value : object
        int, float or a NumPy integer/float scalar (bool is refused).
    minimum, maximum : float, optional
        Bounds, inclusive unless ``strict`` (then both are exclusive).
    what : str
        How the message names the expected value ("a probability", ...).

    Raises
    ------
    TypeError
        Not a real number (bool, str such as ``'0.1'``, complex, array, None, ...).
    ValueError
        NaN/inf or outside the bounds.

    Examples
    --------
    >>> check_real("tol", 1e-8, minimum=0.0)
    1e-08
    >>> check_real("lr", "0.1")
    Traceback (most recent call last):
    ...
    TypeError: lr: expected a real number, got str '0.1'
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    low_ok = minimum is None or (out > minimum if strict else out >= minimum)
    high_ok = maximum is None or (out < maximum if strict else out <= maximum)
    if not (np.isfinite(out) and low_ok and high_ok):
        raise ValueError(
            f"{name}: expected {what}{_bounds(minimum, maximum, strict)}, got {value!r}"
        )
    return out


def _bounds(minimum: float | None, maximum: float | None, strict: bool) -> str:
    """`` > 0``, `` >= 0`` or `` in [0, 1]`` / `` in (0, 1)`` for the messages."""
    if minimum is not None and maximum is not None:
        left, right = ("(", ")") if strict else ("[", "]")
        return f" in {left}{minimum:g}, {maximum:g}{right}"
    if minimum is not None:
        return f" {'>' if strict else '>='} {minimum:g}"
    if maximum is not None:
        return f" {'<' if strict else '<='} {maximum:g}"
    return ""


def check_finite_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite real number (:func:`check_real`)."""
    return check_real(name, value)


def check_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number > 0 (:func:`check_real`).

    Examples
    --------
    >>> check_positive_float("lr", 0.1)
    0.1
    >>> check_positive_float("lr", 0)
    Traceback (most recent call last):
    ...
    ValueError: lr: expected a finite number > 0, got 0
    """
    return check_real(name, value, minimum=0.0, strict=True)


def check_nonnegative_float(name: str, value: Any) -> float:
    """Return ``value`` as float if it is a finite number ≥ 0 (:func:`check_real`)."""
    return check_real(name, value, minimum=0.0)


def check_probability(name: str, value: Any, *, open_interval: bool = False) -> float:
    """Return ``value`` as float if it lies in [0, 1] ((0, 1) if ``open_interval``)."""
    return check_real(
        name, value, minimum=0.0, maximum=1.0, strict=open_interval, what="a probability"
    )


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
