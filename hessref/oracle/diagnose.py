"""Why a comparison failed: constant factors, transposed weight blocks, other layouts, float32.

Used by :func:`hessref.oracle.compare.compare` once the max-norm test has failed; each
helper appends plain-language notes to the :class:`~hessref.oracle.compare.ComparisonReport`.
The usual culprits in other tools are a missing or extra 1/N (sum vs mean reduction),
``nn.MSELoss``'s 2/d_L, weight blocks stored (in, out) instead of (out, in), a whole
different parameter order (sorted pytree keys) and float32 arithmetic.

Transposed blocks are found block by block: for a weight tensor W_l, the entries of
theirs whose parameter indices all lie in W_l (its slice of a vector, its diagonal
block of a matrix) depend on W_l's layout only, so each block is tested on its own and
every transposed block is named, however many there are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from hessref.core.mlp import MLP
from hessref.oracle.conventions import CONVENTIONS, Convention, permutation

if TYPE_CHECKING:  # pragma: no cover
    from hessref.oracle.compare import ComparisonReport

Array = NDArray[np.float64]


class _Locator:
    """Names flat indices of a (possibly re-laid-out) parameter vector."""

    def __init__(self, model: MLP, convention: Convention | None) -> None:
        self.model = model
        self.perm = (
            np.arange(model.num_params) if convention is None else permutation(model, convention)
        )
        names = model.parameter_names()
        tensor_of = np.empty(model.num_params, dtype=np.int64)
        for t, name in enumerate(names):
            l = int(name[1:])
            s = model.weight_slice(l) if name[0] == "W" else model.bias_slice(l)
            tensor_of[s] = t
        self.names = names
        self.tensor = tensor_of[self.perm]  # tensor id of each of their indices (contiguous runs)
        self.starts = np.flatnonzero(np.r_[True, self.tensor[1:] != self.tensor[:-1]])

    @property
    def size(self) -> int:
        return int(self.perm.size)

    def name(self, j: int) -> str:
        return self.model.locate(int(self.perm[j]))

    def block_names(self) -> list[str]:
        return [self.names[self.tensor[s]] for s in self.starts]


def _matches(A: Array, B: Array, tol: float) -> bool:
    return bool(np.abs(A - B).max(initial=0.0) <= tol)


def _take(ref: Array, q: NDArray[np.int64], axes: tuple[int, ...]) -> Array:
    for a in axes:
        ref = np.take(ref, q, axis=a)
    return ref


def explain_failure(
    report: ComparisonReport,
    A: Array,
    ref: Array,
    tol: float,
    loc: _Locator | None,
    axes: tuple[int, ...],
    num_samples: int | None = None,
) -> None:
    """Add notes naming the likely cause of a failure (scale, layout, precision)."""
    rr = float(np.vdot(ref, ref))
    if rr > 0:
        c = float(np.vdot(A, ref)) / rr
        report.best_scale = c
        scaled_tol = report.atol + report.rtol * abs(c) * float(np.abs(ref).max())
        if abs(c - 1.0) > 1e-6 and _matches(A, c * ref, scaled_tol):
            report.notes.append(_factor_note(c, loc, num_samples))
    if loc is not None and axes:
        _explain_layout(report, A, ref, tol, loc, axes)
    with np.errstate(over="ignore"):
        single = A.astype(np.float32).astype(np.float64)
    if np.array_equal(A, single) and report.max_rel_error < 1e-5:
        report.notes.append(
            "every entry of theirs is exactly representable in float32 and the error is "
            f"{report.max_rel_error:.1e} relative: computed or stored in float32?"
        )


def _factor_note(c: float, loc: _Locator | None, num_samples: int | None) -> str:
    """Words for theirs ≈ c × reference (see :func:`factor_note`)."""
    return factor_note(c, num_samples, None if loc is None else loc.model.sizes[-1])


#: the elementary factors a curvature value picks up, and what each one means
_PARTS = {
    "N": "a missing 1/N (N = {N}): theirs sums over the samples where the mean is expected",
    "1/N": "an extra 1/N (N = {N}): theirs averages over the samples where the sum is expected",
    "k": "a factor d_L = {k} (the number of outputs): theirs lacks a 1/d_L, or one side "
    "averages over the outputs and the other does not",
    "1/k": "an extra 1/d_L (d_L = {k}): theirs averages over the d_L outputs too (as "
    "nn.MSELoss(reduction='mean') does over all N·d_L entries)",
    "2": "a factor 2: ‖f − y‖² without hessref's ½",
    "1/2": "an extra ½",
}


def _factor_candidates(N: int | None, k: int | None) -> list[tuple[float, tuple[str, ...]]]:
    """(value, parts) for every product of at most one N-, d_L- and 2-factor."""
    n_opts = [((), 1.0)] + ([(("N",), N), (("1/N",), 1.0 / N)] if N and N > 1 else [])
    k_opts = [((), 1.0)] + ([(("k",), k), (("1/k",), 1.0 / k)] if k and k > 1 else [])
    two = [((), 1.0), (("2",), 2.0), (("1/2",), 0.5)]
    out = []
    for pn, vn in n_opts:
        for pk, vk in k_opts:
            for p2, v2 in two:
                if pn + pk + p2:
                    out.append((vn * vk * v2, pn + pk + p2))
    return out


def factor_note(c: float, num_samples: int | None, num_outputs: int | None) -> str:
    """Words for theirs ≈ c × reference, naming composite factors (N·d_L, 2/d_L, ...).

    Every product of N^{±1}, d_L^{±1} and 2^{±1} that equals c (to 1e-8) is named with
    its parts; when several fit (e.g. N = d_L) all simplest ones are listed. No fit: a
    hint to check the reduction and the loss scaling.

    Examples
    --------
    >>> factor_note(21.0, 7, 3).split(": ", 1)[1][:40]
    'a factor N·d_L = 21 = 7 × 3, i.e. a miss'
    """
    head = f"theirs ≈ {c:.12g} × reference (a constant factor)"
    fits = [
        parts
        for v, parts in _factor_candidates(num_samples, num_outputs)
        if np.isclose(c, v, rtol=1e-8)
    ]
    if fits:
        fewest = min(len(p) for p in fits)
        return f"{head}: " + " — or — ".join(
            _describe(p, num_samples, num_outputs) for p in fits if len(p) == fewest
        )
    hint = (
        "check the reduction (mean vs sum differ by N) and the loss scaling "
        "(nn.MSELoss is 2/d_L times hessref's mean ½‖f − y‖²)"
    )
    if num_outputs is not None:
        hint += f"; here d_L = {num_outputs}"
    return f"{head}: {hint}"


def _describe(parts: tuple[str, ...], N: int | None, k: int | None) -> str:
    text = [_PARTS[p].format(N=N, k=k) for p in parts]
    if set(parts) == {"N", "k"}:
        return f"a factor N·d_L = {N * k} = {N} × {k}, i.e. " + " and ".join(text)
    if set(parts) == {"1/N", "1/k"}:
        return f"an extra 1/(N·d_L) = 1/{N * k}, i.e. " + " and ".join(text)
    if set(parts) == {"2", "1/k"}:
        return "nn.MSELoss's 2/d_L (it is 2/d_L times hessref's mean ½‖f − y‖²): " + " and ".join(
            text
        )
    return " and ".join(text)


def _own_region(M: Array, idx: NDArray[np.int64], axes: tuple[int, ...]) -> Array:
    """The entries of M whose indices along every parameter axis lie in ``idx``."""
    for a in axes:
        M = np.take(M, idx, axis=a)
    return M


def _weight_blocks(loc: _Locator) -> list[tuple[str, int, NDArray[np.int64]]]:
    """(name, start, transposed flat order) of every weight block with d_out, d_in > 1."""
    out = []
    for start, name in zip(loc.starts, loc.block_names(), strict=True):
        l = int(name[1:])
        d_out, d_in = loc.model.sizes[l], loc.model.sizes[l - 1]
        if name[0] != "W" or d_out == 1 or d_in == 1:
            continue  # a vector-shaped W has the same flat order in both layouts
        block = np.arange(d_out * d_in).reshape(d_out, d_in)
        out.append((name, int(start), block.T.ravel()))
    return out


def transposed_blocks(
    A: Array, ref: Array, tol: float, loc: _Locator, axes: tuple[int, ...]
) -> dict[str, NDArray[np.int64]]:
    """Weight blocks of theirs whose own entries match the reference only in transposed order.

    Returns
    -------
    dict of str to ndarray
        hessref block name (``"W2"``) → the order q of its flat entries in theirs
        (theirs[start + j] holds reference[start + q[j]]), for every such block.
    """
    found = {}
    for name, start, q_T in _weight_blocks(loc):
        idx = start + np.arange(q_T.size)
        mine = _own_region(A, idx, axes)
        if _matches(mine, _own_region(ref, idx, axes), tol):
            continue
        for q in (q_T, np.argsort(q_T)):
            if _matches(mine, _own_region(ref, start + q, axes), tol):
                found[name] = q
                break
    return found


def _explain_layout(
    report: ComparisonReport,
    A: Array,
    ref: Array,
    tol: float,
    loc: _Locator,
    axes: tuple[int, ...],
) -> None:
    blocks = transposed_blocks(A, ref, tol, loc, axes)
    if blocks:
        report.transposed_blocks = list(blocks)
        q = np.arange(loc.size)
        starts = dict(zip(loc.block_names(), loc.starts, strict=True))
        for name, q_block in blocks.items():
            q[starts[name] : starts[name] + q_block.size] = starts[name] + q_block
        names = ", ".join(blocks)
        sizes = loc.model.sizes
        shapes = ", ".join(f"{n} ({sizes[int(n[1:])]}, {sizes[int(n[1:]) - 1]})" for n in blocks)
        what = (
            "theirs matches the reference"
            if _matches(A, _take(ref, q, axes), tol)
            else "other differences remain, but each block's own entries match the reference"
        )
        report.notes.append(
            f"{what} with the entries of {names} in transposed order ((in, out) instead "
            f"of (out, in) or vice versa; shapes (out, in): {shapes}): a weight-layout "
            f"mix-up in layer{'s' if len(blocks) > 1 else ''} {', '.join(n[1:] for n in blocks)}"
        )
        return
    _explain_convention(report, A, ref, tol, loc, axes)


def _explain_convention(
    report: ComparisonReport,
    A: Array,
    ref: Array,
    tol: float,
    loc: _Locator,
    axes: tuple[int, ...],
) -> None:
    """Note a whole preset convention that theirs matches (if it was declared in hessref's)."""
    model: MLP = loc.model
    n = loc.size
    if loc.size != model.num_params or not np.array_equal(loc.perm, np.arange(n)):
        return  # theirs was declared in a convention already
    for conv in CONVENTIONS.values():
        perm = permutation(model, conv)
        if perm.size == n and not np.array_equal(perm, np.arange(n)):
            if _matches(A, _take(ref, perm, axes), tol):
                report.notes.append(
                    f"theirs matches the reference in the {conv.name!r} layout "
                    f"({conv.summary()}): pass convention={conv.name!r} or convert with "
                    "hessref.oracle.conventions.from_convention"
                )
                return
