"""Check another tool's curvature approximation against hessref's exact one, and name the mistake.

:func:`assert_approximation_close` compares their K-FAC (as Kronecker factors or as layer
blocks), EK-FAC, block-diagonal, diagonal, empirical Fisher or FGN with
:mod:`hessref.approx` on the same problem (docs/theory.md §19). When K-FAC differs it
tries the usual mistakes and names the one that fits:

- "factors swapped (A ⊗ B instead of B ⊗ A)": the input factor where the output factor
  belongs (or the Kronecker product taken the other way round, i.e. W treated as (in, out));
- "missing 1/N in A": Ā_l = Σ_i ã ãᵀ instead of (1/N) Σ_i ã ãᵀ (K-FAC × N);
- "looks like the empirical Fisher's K-FAC, not type-2": B_l from the true-label
  gradients instead of the loss Hessian factor (and the converse);
- "W and b treated as separate K-FAC blocks": the W–b cross terms of the joint
  [W | b] block are zero (curvlinops' default, BackPACK's per-tensor factors);
- a constant factor, named as in :mod:`hessref.oracle.diagnose` (1/N, d_L, N·d_L, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref import approx
from hessref.approx.structure import augmented_order
from hessref.core.mlp import MLP
from hessref.core.validation import as_float_array, check_choice
from hessref.oracle.diagnose import factor_note

Array = NDArray[np.float64]

APPROXIMATION_KINDS = (
    "kfac",
    "ekfac",
    "block_diagonal",
    "diagonal",
    "empirical_fisher",
    "fgn",
)


def _rel(theirs: Array, ours: Array) -> float:
    scale = np.abs(ours).max(initial=0.0)
    err = np.abs(theirs - ours).max(initial=0.0) if theirs.shape == ours.shape else np.inf
    return float(err / scale) if scale > 0 else float(err)


def _close(theirs: Array, ours: Array, rtol: float, atol: float) -> bool:
    if theirs.shape != ours.shape:
        return False
    return bool(
        np.abs(theirs - ours).max(initial=0.0) <= atol + rtol * np.abs(ours).max(initial=0.0)
    )


def _exact(kind: str, problem: tuple, loss: str, reduction: str, fisher_type: str):
    opts = {"loss": loss, "reduction": reduction}
    if kind in ("kfac", "ekfac"):
        return getattr(approx, kind)(*problem, fisher_type=fisher_type, **opts)
    return getattr(approx, kind)(*problem, **opts)


def _their_blocks(theirs, model: MLP, kind: str) -> list[Array]:
    """Their layer blocks (θ order) from a list of blocks, a dense (P, P) matrix or a diagonal."""
    L = model.num_layers
    slices = [model.layer_slice(l) for l in range(1, L + 1)]
    if isinstance(theirs, (list, tuple)):
        if len(theirs) != L:
            raise ValueError(f"theirs: expected {L} layer blocks, got {len(theirs)}")
        return [as_float_array(f"theirs[{l}]", b, ndim=2) for l, b in enumerate(theirs)]
    M = as_float_array("theirs", theirs, ndim=(1, 2))
    if M.ndim == 1:
        M = np.diag(M)
    if M.shape != (model.num_params,) * 2:
        raise ValueError(
            f"theirs: expected layer blocks, a (P, P) matrix or a (P,) diagonal with "
            f"P = {model.num_params} for {kind}, got shape {M.shape}"
        )
    return [M[s, s] for s in slices]


def _kfac_block(A: Array, B: Array, perm: NDArray[np.intp]) -> Array:
    K = np.kron(B, A)
    return K[np.ix_(perm, perm)]


def _swapped_blocks(A: Array, B: Array) -> list[Array]:
    """Blocks a swapped implementation produces.

    kron(A, B) as is, or mapped to θ order as if [W | b] were stored (in, out) with the
    bias row last.
    """
    d_out, d_aug = B.shape[0], A.shape[0]
    K = np.kron(A, B)  # index j·d_out + o
    o, i = np.divmod(np.arange(d_out * (d_aug - 1)), d_aug - 1)
    sigma = np.concatenate([i * d_out + o, (d_aug - 1) * d_out + np.arange(d_out)])
    return [K, K[np.ix_(sigma, sigma)]]


def _factor_mistakes(theirs_AB, ours: approx.KFAC, other_B: list[Array], N: int, rtol: float):
    """Per-layer names of factor-level mistakes (their (A_l, B_l) pairs given)."""
    found: list[set[str]] = []
    for (A, B), (A0, B0), B_other in zip(theirs_AB, ours.factors, other_B, strict=True):
        names = set()
        if _close(A, B0, rtol, 0.0) and _close(B, A0, rtol, 0.0):
            names.add(SWAPPED)
        if _close(A, N * A0, rtol, 0.0):
            names.add(MISSING_N)
        if _close(B, B_other, rtol, 0.0) and not _close(B, B0, rtol, 0.0):
            names.add(OTHER_TYPE)
        found.append(names)
    return found


def _block_mistakes(blocks, ours: approx.KFAC, other: list[Array], N: int, rtol: float):
    """Per-layer names of block-level mistakes (their layer blocks given)."""
    found: list[set[str]] = []
    for l, (T, (A0, B0)) in enumerate(zip(blocks, ours.factors, strict=True), start=1):
        names = set()
        if any(_close(T, S, rtol, 0.0) for S in _swapped_blocks(A0, B0)):
            names.add(SWAPPED)
        if _close(T, N * ours.layer_block(l), rtol, 0.0):
            names.add(MISSING_N)
        if _close(T, other[l - 1], rtol, 0.0):
            names.add(OTHER_TYPE)
        if _close(T, _separate_weight_and_bias(ours.layer_block(l), A0.shape[0] - 1), rtol, 0.0):
            names.add(SEPARATE)
        found.append(names)
    return found


def _separate_weight_and_bias(block: Array, d_in: int) -> Array:
    """The layer block with its W–b cross terms zeroed (W and b as separate K-FAC blocks)."""
    n_W = block.shape[0] - block.shape[0] // (d_in + 1)
    out = block.copy()
    out[:n_W, n_W:] = 0.0
    out[n_W:, :n_W] = 0.0
    return out


SWAPPED = "factors swapped (A ⊗ B instead of B ⊗ A)"
SEPARATE = (
    "W and b treated as separate K-FAC blocks (their W–b cross terms are zero; e.g. "
    "curvlinops' default separate_weight_and_bias=True, BackPACK's per-tensor factors): "
    "hessref's K-FAC is the joint [W | b] block B ⊗ Ā"
)
MISSING_N = "missing 1/N in A (Ā_l = Σ_i ã ãᵀ instead of (1/N) Σ_i ã ãᵀ: K-FAC × N)"
OTHER_TYPE = "{other}"


def _other_type_text(fisher_type: str) -> str:
    if fisher_type == "type-2":
        return (
            "looks like the empirical Fisher's K-FAC, not type-2 (B_l from the true-label "
            "gradients r_i instead of the loss Hessian factor B_i)"
        )
    return "looks like the type-2 (exact-GGN) K-FAC, not the empirical Fisher's"


def _name_mistakes(found: list[set[str]], failing: list[int], fisher_type: str) -> list[str]:
    """The mistakes that explain every failing layer, else per-layer ones."""
    common = set.intersection(*(found[l - 1] for l in failing)) if failing else set()
    text = {
        SWAPPED: SWAPPED,
        MISSING_N: MISSING_N,
        OTHER_TYPE: _other_type_text(fisher_type),
        SEPARATE: SEPARATE,
    }
    if common:
        return [text[n] for n in text if n in common]
    return [f"layer {l}: {text[n]}" for l in failing for n in text if n in found[l - 1]]


def _is_factor_list(theirs) -> bool:
    return isinstance(theirs, (list, tuple)) and all(
        isinstance(t, tuple) and len(t) == 2 for t in theirs
    )


def _kfac_notes(theirs, blocks, ours, problem, opts, fisher_type, failing) -> list[str]:
    other_type = "empirical" if fisher_type == "type-2" else "type-2"
    other = approx.kfac(*problem, fisher_type=other_type, **opts)
    N = np.asarray(problem[2]).shape[0]
    if _is_factor_list(theirs):
        pairs = [_pair(t, l) for l, t in enumerate(theirs)]
        found = _factor_mistakes(pairs, ours, [B for _, B in other.factors], N, 1e-8)
    else:
        found = _block_mistakes(blocks, ours, other.blocks, N, 1e-8)
    return _name_mistakes(found, failing, fisher_type)


def _scale_note(blocks: Sequence[Array], ours: Sequence[Array], model: MLP, N: int) -> list[str]:
    T = np.concatenate([b.ravel() for b in blocks])
    O = np.concatenate([b.ravel() for b in ours])
    if T.shape != O.shape or not np.vdot(O, O) > 0:
        return []
    c = float(np.vdot(T, O) / np.vdot(O, O))
    if abs(c - 1.0) > 1e-6 and _close(T, c * O, 1e-8, 0.0):
        return [factor_note(c, N, model.sizes[-1])]
    return []


def assert_approximation_close(
    theirs,
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    kind: str = "kfac",
    loss: str,
    reduction: str = "mean",
    fisher_type: str = "type-2",
    rtol: float = 1e-10,
    atol: float = 0.0,
) -> float:
    """Assert that their approximation equals hessref's exact one (docs/theory.md §19).

    Parameters
    ----------
    theirs
        For ``kind="kfac"``: a list of per-layer factor pairs ``(A_l, B_l)`` in hessref's
        convention (A_l (d_{l-1}+1)² input second moment with the bias last, B_l (d_l, d_l);
        block = B_l ⊗ A_l in augmented order, docs/theory.md (19.3)-(19.5)), or a list of
        layer blocks (n_l, n_l) in θ order, or the dense (P, P) matrix. Other kinds: layer
        blocks, a (P, P) matrix, or (``"diagonal"``) a (P,) vector.
    model, theta, X, y, loss, reduction
        The problem, as in :func:`hessref.gauss_newton`.
    kind : {"kfac", "ekfac", "block_diagonal", "diagonal", "empirical_fisher", "fgn"}
    fisher_type : {"type-2", "empirical", ...}
        Of K-FAC / EK-FAC.
    rtol, atol : float
        Per layer block: max|theirs − ours| ≤ atol + rtol · max|ours|.

    Returns
    -------
    float
        The largest per-layer relative error (when it passes).

    Raises
    ------
    AssertionError
        Naming the failing layers and the mistake that explains them (module docstring).
    """
    __tracebackhide__ = True
    check_choice("kind", kind, APPROXIMATION_KINDS)
    problem, opts = (model, theta, X, y), {"loss": loss, "reduction": reduction}
    ours = _exact(kind, problem, loss, reduction, fisher_type)
    if kind == "kfac" and _is_factor_list(theirs):
        perms = [augmented_order(B0.shape[0], A0.shape[0] - 1) for A0, B0 in ours.factors]
        blocks = [
            _kfac_block(*_pair(t, l), p) for l, (t, p) in enumerate(zip(theirs, perms, strict=True))
        ]
    else:
        blocks = _their_blocks(theirs, ours.model, kind)
    our_blocks = ours.blocks
    errors = [_rel(T, O) for T, O in zip(blocks, our_blocks, strict=True)]
    failing = [
        l
        for l, (T, O) in enumerate(zip(blocks, our_blocks, strict=True), start=1)
        if not _close(T, O, rtol, atol)
    ]
    if not failing:
        return max(errors)
    notes = (
        _kfac_notes(theirs, blocks, ours, problem, opts, fisher_type, failing)
        if kind == "kfac"
        else []
    )
    if not notes:  # a named K-FAC mistake already explains any constant factor
        notes = _scale_note(blocks, our_blocks, ours.model, np.asarray(X).shape[0])
    per_layer = ", ".join(f"layer {l}: {errors[l - 1]:.3e}" for l in failing)
    label = f"{kind} ({fisher_type})" if kind in ("kfac", "ekfac") else kind
    raise AssertionError(
        f"{label} differs from hessref's exact {kind} (max rel error per failing layer: "
        f"{per_layer}; tolerance rtol={rtol:g}, atol={atol:g})"
        + ("; " + "; ".join(notes) if notes else "; no known mistake fits")
    )


def _pair(t, l: int) -> tuple[Array, Array]:
    A, B = t
    return as_float_array(f"theirs[{l}][0] (A)", A, ndim=2), as_float_array(
        f"theirs[{l}][1] (B)", B, ndim=2
    )
