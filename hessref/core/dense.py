"""The exact dense Hessian H = ∇²L (P × P) and its parts G, R, from layer-pair block formulas.

The derivation is docs/theory.md §7, equations (7.1)-(7.4).

Write Ŵ_l = [W_l | b_l] and ā_{l-1} = [a_{l-1}, 1], so that z_l = Ŵ_l ā_{l-1}. Per sample,
with ψ = s ℓ (s = 1/N or 1), δ_m = ∂ψ/∂z_m, M_m = ∇²_{z_m} ψ (upper layers fixed),
T_{m,l} = ∂z_m/∂z_l (T_{l,l} = I) and S_{m-1,l} = ∂a_{m-1}/∂z_l = D_{m-1} T_{m-1,l}:

    M_L = s A,   M_m = D_m W_{m+1}ᵀ M_{m+1} W_{m+1} D_m + diag(σ″(z_m) ⊙ W_{m+1}ᵀ δ_{m+1})

and for l ≤ m the block of H between Ŵ_m[q, j] and Ŵ_l[o, i] is

    H[(m,q,j), (l,o,i)] = Σ_n  (M_m T_{m,l})[q,o] ā_{m-1}[j] ā_{l-1}[i]         (term 1)
                             + δ_m[q] S_{m-1,l}[j,o] ā_{l-1}[i]   (l < m, j ≠ bias)  (term 2)

Each term is ONE matrix product whose inner dimension is the number of samples N
(e.g. term 1 = X₁ᵀY₁ with X₁[n,(q,o)] = (M_m T_{m,l})[n,q,o], Y₁[n,(j,i)] = ā_{m-1}[n,j]
ā_{l-1}[n,i]). Three facts cut the flops below the 2·N·P² of a plain product:

* diagonal blocks (m = l): M_m and ā ā ᵀ are symmetric per sample, so only q ≤ o and
  j ≤ i are computed (a quarter of the block's GEMM) and expanded by symmetry;
* adjacent pairs (m = l + 1): S_{l,l} = D_l is diagonal, so term 2 only reaches the
  entries j = o and costs a GEMM of size N·d_m·(d_{l-1}+1)·d_l;
* blocks above the diagonal are transposes of those below, never computed.

The Gauss-Newton part G keeps M_L = s A, drops the σ″ terms of M and term 2 (then
M_m = T_{L,m}ᵀ s A T_{L,m} and term 1 is Σ J_mᵀ s A J_l); the residual R = H − G keeps
exactly the dropped terms (M_L = 0, so the pairs m = L have no term 1). Samples are
processed in chunks that bound the workspace; the block sums accumulate across
chunks in GEMM order (the first chunk's GEMM writes them in place) and are written into
the θ-ordered result once. Every product goes through NumPy's BLAS: a second BLAS
library (SciPy's) would run a second thread pool whose idle threads spin on the
cores the first one needs, making two threads slower than one. G and R are computed
in one pass sharing the forward pass and T_{m,l}.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.backward import backward_deltas, loss_at
from hessref.core.kinds import Curvature
from hessref.core.mlp import MLP, ForwardCache, forward
from hessref.core.problem import Problem, check_model, make_problem
from hessref.core.validation import as_float_array, check_dense_fits

Array = NDArray[np.float64]

_WORKSPACE_BYTES = 64 * 2**20  # per-chunk bound for the largest (N_chunk, ·) intermediate
_TILE = 256  # rows per tile when expanding/mirroring blocks (bounded temporaries)


def _output_curvatures(problem: Problem, cache: ForwardCache, kinds: tuple) -> tuple[list, list]:
    """δ_m (N, d_m) for m = 1..L (index m-1) and, per kind, the list of M_m (N, d_m, d_m).

    δ_m and g_m come from the one backward pass (:func:`backward_deltas`), s A from the
    loss evaluated once at F: both are shared by every kind. G alone needs no δ (None).
    """
    only_g = all(kind == Curvature.G for kind in kinds)
    deltas, gs = (None, None) if only_g else backward_deltas(problem, cache)
    sA = problem.scale * loss_at(problem, cache).hessian()  # M_L = s A (N, k, k)
    return deltas, [_curvature_recursion(problem.params, cache, gs, sA, kind) for kind in kinds]


def _curvature_recursion(params: list, cache: ForwardCache, gs: list, sA: Array, kind) -> list:
    """M_m for m = 1..L (docs/theory.md (7.1)): M_L = s A (0 for R), then
    M_m = D_m W_{m+1}ᵀ M_{m+1} W_{m+1} D_m + diag(σ″(z_m) ⊙ g_m) (σ″ term dropped for G).
    """
    N, k = sA.shape[:2]
    M = sA if kind != Curvature.R else np.zeros((N, k, k))
    Ms = [M]
    for m in range(len(params) - 1, 0, -1):
        W = params[m][0]  # W_{m+1} (d_{m+1}, d_m)
        d_next, d_m = W.shape
        dsig = cache.dsigma[m - 1]
        # Wᵀ M W for every sample with two GEMMs: (N·d_next, d_next) @ W, then again
        MW = (M.reshape(N * d_next, d_next) @ W).reshape(N, d_next, d_m)
        M = (MW.transpose(0, 2, 1).reshape(N * d_m, d_next) @ W).reshape(N, d_m, d_m)
        M *= dsig[:, :, None] * dsig[:, None, :]
        if kind != Curvature.G:
            idx = np.arange(d_m)
            M[:, idx, idx] += cache.d2sigma[m - 1] * gs[m - 1]
        Ms.append(M)
    return Ms[::-1]


def _augment(a: Array) -> Array:
    return np.hstack([a, np.ones((a.shape[0], 1))])


def _split(view: Array, shape: tuple[int, ...]) -> Array:
    """``view`` reshaped to ``shape`` WITHOUT a copy (raises if that is impossible)."""
    out = view.view()
    out.shape = shape
    return out


def _gemm_accumulate(C: Array, A: Array, B: Array, first: bool) -> None:
    """C = Aᵀ B (``first``) or C += Aᵀ B, for C (a, b), A (N, a), B (N, b) C-ordered.

    Aᵀ is a transposed view (BLAS reads it as is, nothing is copied). The first
    sample chunk writes C directly; later chunks add a temporary of C's size.
    """
    if first:
        np.matmul(A.T, B, out=C)
    else:
        C += A.T @ B


def _put_block(out: Array, model: MLP, m: int, l: int, block: Array) -> None:
    """Write ``block`` (q, j, o, i) over Ŵ_m[q, j] × Ŵ_l[o, i] into the θ-ordered ``out``.

    θ stores layer l as W_l[o, i] at o·d_in + i followed by b_l[o], so the augmented
    index i = d_in (the bias) goes to the end of the layer's block. ``block`` may be
    any strided view (a transposed GEMM result): the reordering is this one copy.
    """
    dm, dl, q, o = model.sizes[m - 1], model.sizes[l - 1], model.sizes[m], model.sizes[l]
    wm, bm = model.weight_slice(m), model.bias_slice(m)
    wl, bl = model.weight_slice(l), model.bias_slice(l)
    _split(out[wm, wl], (q, dm, o, dl))[...] = block[:, :dm, :, :dl]
    _split(out[wm, bl], (q, dm, o))[...] = block[:, :dm, :, dl]
    _split(out[bm, wl], (q, o, dl))[...] = block[:, dm, :, :dl]
    out[bm, bl] = block[:, dm, :, dl]


def _pair_index(n: int) -> NDArray[np.intp]:
    """(n, n) map (a, b) ↦ position of (min(a, b), max(a, b)) in ``np.triu_indices(n)``."""
    idx = np.empty((n, n), dtype=np.intp)
    rows, cols = np.triu_indices(n)
    idx[rows, cols] = np.arange(rows.size)
    idx[cols, rows] = np.arange(rows.size)
    return idx


def _diagonal_gemm(C: Array, Ms: list[Array], abar: Array, first: bool) -> None:
    """C += Σ_n M[n, q, o] ā[n, j] ā[n, i] for q ≤ o, j ≤ i, for each M in ``Ms``.

    M (N, d, d) and ā āᵀ (N, e, e) are symmetric per sample, so the diagonal layer
    block needs only these entries: a quarter of the GEMM flops of the full block.
    C has shape (len(Ms)·d(d+1)/2, e(e+1)/2); the matrices of ``Ms`` share one GEMM.
    """
    qi, oi = np.triu_indices(Ms[0].shape[1])
    ji, ii = np.triu_indices(abar.shape[1])
    X = Ms[0][:, qi, oi] if len(Ms) == 1 else np.hstack([M[:, qi, oi] for M in Ms])
    _gemm_accumulate(C, X, abar[:, ji] * abar[:, ii], first)


def _expand_diagonal(out: Array, model: MLP, l: int, C: Array) -> None:
    """Write the diagonal block of layer l, in θ order, from the ``_diagonal_gemm`` sums C.

    Entry ((q, j), (o, i)) is E[pair(q, o), j, i] with E = C expanded over (j, i);
    written one row q at a time. Both triangles read the same entry: exactly symmetric.
    """
    d, e1 = model.sizes[l], model.sizes[l - 1]
    pq, pj = _pair_index(d), _pair_index(e1 + 1)
    E = np.take(C, pj.ravel(), axis=1).reshape(-1, e1 + 1, e1 + 1)  # (pair(q, o), j, i)
    ws, bs = model.weight_slice(l), model.bias_slice(l)
    ww, wb = _split(out[ws, ws], (d, e1, d, e1)), _split(out[ws, bs], (d, e1, d))
    bw, bb = _split(out[bs, ws], (d, d, e1)), out[bs, bs]
    for q in range(d):
        F = E[pq[q]].transpose(1, 0, 2)  # (j, o, i)
        ww[q], wb[q] = F[:e1, :, :e1], F[:e1, :, e1]
        bw[q], bb[q] = F[e1, :, :e1], F[e1, :, e1]


def _mirror(out: Array, model: MLP) -> None:
    """Fill the blocks above the diagonal with the transposes of those below, tile by tile."""
    for l in range(2, model.num_layers + 1):
        rows = model.layer_slice(l)
        for r in range(rows.start, rows.stop, _TILE):
            r1 = min(r + _TILE, rows.stop)
            out[: rows.start, r:r1] = out[r:r1, : rows.start].T


def _propagate(cache: ForwardCache, params: list, m: int, l: int, T: Array | None) -> tuple:
    """S_{m-1,l} = D_{m-1} T_{m-1,l} (N, d_{m-1}, d_l) and T_{m,l} = W_m S_{m-1,l} (N, d_m, d_l).

    ``T`` is T_{m-1,l}, None for the identity at m − 1 = l. There S_{l,l} = D_l is
    diagonal: T_{l+1,l} = W_{l+1} D_l is a column scaling (no GEMM), and S is returned as
    None (the adjacent pair's term 2 reads σ′(z_l) directly).
    """
    Wm = params[m - 1][0]
    if T is None:  # T[n, q, o] = W_m[q, o] σ′(z_l)[n, o]: the values of W_m D_l exactly,
        # laid out (n, o, q) like the GEMM result below, so the products downstream see
        # the same memory order (and give the same bits)
        dsig = cache.dsigma[m - 2]
        T = np.empty((dsig.shape[0], *Wm.T.shape))  # C order (n, o, q)
        np.multiply(Wm.T[None, :, :], dsig[:, :, None], out=T)
        return None, T.transpose(0, 2, 1)
    dsig = cache.dsigma[m - 2][:, :, None]
    N, d_l = dsig.shape[0], T.shape[2]
    S = dsig * T
    # T_{m,l} = W_m S_{m-1,l}: (N·d_l, d_{m-1}) @ W_mᵀ, then back to (N, d_m, d_l)
    T = (S.transpose(0, 2, 1).reshape(N * d_l, -1) @ Wm.T).reshape(N, d_l, -1)
    return S, T.transpose(0, 2, 1)


def _add_pair(
    buf: Array, modes: tuple, curv: tuple, m: int, l: int, S: Array, T: Array, first: bool
) -> None:
    """Add terms 1 and 2 of the block (m, l), m > l, to ``buf[k]`` (q·o, j·i) per mode k.

    ``first``: this is the first sample chunk (term 1 overwrites the zero-filled sums).
    """
    deltas, Ms, abar, dsigma = curv
    N, K, L = T.shape[0], len(modes), len(Ms[0])
    d_m, d_l, dm1, dl1 = T.shape[1], T.shape[2], abar[m - 1].shape[1], abar[l - 1].shape[1]
    Y1 = (abar[m - 1][:, :, None] * abar[l - 1][:, None, :]).reshape(N, -1)
    for k, kind in enumerate(modes):
        if not (kind == Curvature.R and m == L):  # there M_L = 0: no term 1
            _gemm_accumulate(buf[k], np.matmul(Ms[k][m - 1], T).reshape(N, -1), Y1, first)
    with_t2 = [k for k in range(K) if modes[k] != Curvature.G]
    if not with_t2:
        return
    X2 = (deltas[m - 1][:, :, None] * abar[l - 1][:, None, :]).reshape(N, -1)
    if m == l + 1:  # S_{l,l} = D_l is diagonal: only the entries j = o, a strided view
        term2 = (X2.T @ dsigma[l - 1]).reshape(d_m, dl1, d_l).transpose(0, 2, 1)  # (q, j, i)
        s = buf.strides
        for k in with_t2:
            view = np.lib.stride_tricks.as_strided(
                buf[k], (d_m, d_l, dl1), (s[1] * d_l, s[1] + s[2] * dl1, s[2]), writeable=True
            )
            view += term2
    else:
        term2 = (S.reshape(N, -1).T @ X2).reshape(dm1 - 1, d_l, d_m, dl1)  # (j, o, q, i)
        for k in with_t2:
            _split(buf[k], (d_m, d_l, dm1, dl1))[:, :, : dm1 - 1] += term2.transpose(2, 1, 0, 3)


def _accumulate_chunk(
    pairs: dict, diags: list, problem: Problem, modes: tuple, first: bool
) -> None:
    """Add one data chunk's contribution to the block sums of every mode (``first``: the
    first chunk, whose products overwrite the zero-filled sums).

    ``pairs[(m, l)]`` (K, d_m·d_l, d̄_{m-1}·d̄_{l-1}) holds the blocks m > l in GEMM
    order (q, o, j, i); ``diags[l - 1]`` the compressed diagonal sums of all K modes.
    """
    model, params = problem.model, problem.params
    cache = forward(model, params, problem.X, second_order=modes != (Curvature.G,))
    deltas, Ms = _output_curvatures(problem, cache, modes)  # δ_m is the same in every mode
    abar = [_augment(a) for a in cache.A]  # ā_0 .. ā_{L-1}
    curv = (deltas, Ms, abar, cache.dsigma)
    for l in range(1, model.num_layers + 1):
        _diagonal_gemm(diags[l - 1], [M[l - 1] for M in Ms], abar[l - 1], first)
        T = None  # T_{m,l}; None stands for the identity at m = l
        for m in range(l + 1, model.num_layers + 1):
            S, T = _propagate(cache, params, m, l, T)
            _add_pair(pairs[(m, l)], modes, curv, m, l, S, T, first)


def _bytes_per_sample(model: MLP) -> int:
    """Workspace of one sample in :func:`_accumulate_chunk`: three (d+1)² and three d² arrays."""
    sizes = model.sizes
    return 8 * 3 * (max(sizes[:-1]) + 1) ** 2 + 8 * 3 * max(sizes[1:]) ** 2


def _chunk_rows(problem: Problem) -> int:
    """Samples per chunk so the per-chunk workspace stays within ``_WORKSPACE_BYTES``."""
    return max(1, _WORKSPACE_BYTES // _bytes_per_sample(problem.model))


def chunk_workspace_bytes(problem: Problem, num_modes: int = 1) -> int:
    """Peak bytes besides the results (docs/theory.md (7.4)), for the memory check.

    One sample chunk (the per-sample arrays of :func:`_bytes_per_sample`, its forward
    cache and the δ_m, M_m of every layer: N_chunk · Σ_m d_m (d_m + 3) floats) plus the
    off-diagonal block sums, at most P²/2 floats per mode, plus (with more than one
    chunk) the product that a later chunk adds to the largest sum.
    """
    model = problem.model
    rows = min(_chunk_rows(problem), problem.num_samples)
    per_layer = sum(d * (d + 3) for d in model.sizes)
    block_sums = 8 * num_modes * model.num_params**2 // 2
    return (
        rows * (_bytes_per_sample(model) + 8 * per_layer)
        + block_sums
        + _addend_bytes(model, num_modes, problem.num_samples > rows)
    )


def _addend_bytes(model: MLP, num_modes: int, several_chunks: bool) -> int:
    """Bytes of the largest temporary Aᵀ B that :func:`_gemm_accumulate` adds (0 if one chunk)."""
    if not several_chunks:
        return 0
    pairs, diags = _sum_shapes(model, num_modes)
    return 8 * max(a * b for a, b in [*pairs.values(), *diags])


def _sum_shapes(model: MLP, num_modes: int) -> tuple[dict, list]:
    """Shapes of the block sums: per mode (d_m·d_l, d̄_{m-1}·d̄_{l-1}) for each pair m > l,
    and the compressed diagonal sums of all modes (K·d(d+1)/2, e(e+1)/2) per layer.
    """
    sizes, L = model.sizes, model.num_layers
    aug = [d + 1 for d in sizes]
    pairs = {
        (m, l): (sizes[m] * sizes[l], aug[m - 1] * aug[l - 1])
        for l in range(1, L + 1)
        for m in range(l + 1, L + 1)
    }
    diags = [
        (num_modes * d * (d + 1) // 2, e * (e + 1) // 2)
        for d, e in zip(sizes[1:], aug[:-1], strict=True)
    ]
    return pairs, diags


def dense_curvatures(problem: Problem, modes: tuple[Curvature | str, ...]) -> list[Array]:
    """Dense M ∈ {H, G, R} for each of ``modes`` in ONE pass over the data; each (P, P)
    and exactly symmetric. Each M has its own block sums (H is accumulated, not G + R).

    ``modes`` are :class:`~hessref.core.kinds.Curvature` members or any spelling
    :meth:`Curvature.parse` accepts ("H"/"hessian", "G"/"ggn", "R"/"residual").

    Over sample chunks, the blocks m > l are summed in GEMM order and the diagonal
    blocks as their symmetric-compressed sums (module docstring), the first chunk's
    GEMMs writing them in place; then each block is written once into the θ-ordered result and
    the blocks above the diagonal are copied as transposes. The modes share the
    forward pass, T_{m,l}, S and the ā ā products. Workspace: the off-diagonal block
    sums (≤ P²/2 per mode) plus one sample chunk.
    """
    modes = tuple(Curvature.parse(mode, argument="mode") for mode in modes)
    model, K = problem.model, len(modes)
    sizes, L = model.sizes, model.num_layers
    aug = [d + 1 for d in sizes]
    pair_shapes, diag_shapes = _sum_shapes(model, K)
    pairs = {key: np.zeros((K, *shape)) for key, shape in pair_shapes.items()}
    diags = [np.zeros(shape) for shape in diag_shapes]
    for index, chunk in enumerate(problem.chunks(_chunk_rows(problem))):
        _accumulate_chunk(pairs, diags, chunk, modes, first=index == 0)
    outs = [np.empty((model.num_params, model.num_params)) for _ in modes]
    for l in range(1, L + 1):
        for k, part in enumerate(np.split(diags[l - 1], K)):
            _expand_diagonal(outs[k], model, l, part)
    for (m, l), buf in pairs.items():
        shape = (sizes[m], sizes[l], aug[m - 1], aug[l - 1])
        for k in range(K):
            _put_block(outs[k], model, m, l, _split(buf[k], shape).transpose(0, 2, 1, 3))
    for out in outs:
        _mirror(out, model)
    return outs


def dense_curvature(problem: Problem, mode: Curvature | str) -> Array:
    """Dense M ∈ {H, G, R} (a Curvature or its spelling), shape (P, P), symmetric.

    Any other ``mode`` raises (a typo must not return zeros).
    """
    return dense_curvatures(problem, (mode,))[0]


def curvature_matrices(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    kinds: tuple[Curvature | str, ...] = (Curvature.H, Curvature.G, Curvature.R),
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> tuple[Array, ...]:
    """Exact dense H, G and/or R in ONE pass over the data, e.g. ``H, G, R = ...``.

    What :func:`hessian` and :func:`~hessref.core.ggn.gauss_newton` give, for several
    kinds at once: the kinds share the forward pass, the backward pass, T_{m,l} and the
    ā ā products, and each kind keeps its own block sums (H is accumulated, not formed
    as G + R). Arguments as in :func:`hessian`; ``kinds`` are Curvature members or
    their spellings ("H", "G", "R", "hessian", ...).

    Returns
    -------
    tuple of ndarray, each (P, P), symmetric, in the order of ``kinds``.

    Raises
    ------
    MemoryError
        Up front, if ``len(kinds)`` P×P float64 results would not fit.

    Examples
    --------
    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([3, 4, 2], activation="tanh")
    >>> X = np.random.default_rng(0).normal(size=(6, 3)); y = np.array([0, 1, 1, 0, 1, 0])
    >>> H, G, R = curvature_matrices(model, model.init(rng=0), X, y, loss="cross_entropy")
    >>> bool(np.allclose(H, G + R, rtol=0, atol=1e-15))
    True
    """
    kinds = tuple(Curvature.parse(kind, argument="kinds") for kind in kinds)
    p = make_problem(model, theta, X, y, loss, reduction)
    P, K = p.model.num_params, len(kinds)
    check_dense_fits("curvature_matrices", P, K, chunk_workspace_bytes(p, K))
    return tuple(dense_curvatures(p, kinds))


def hessian(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str = "mse",
    reduction: str = "mean",
) -> Array:
    """Exact Hessian H = ∇²L(θ), shape (P, P), symmetric.

    Parameters
    ----------
    model : MLP
    theta : array_like, shape (P,)
    X : array_like, shape (N, d_0)
    y : array_like
        MSE: float targets (N, d_L). Cross-entropy: int labels (N,) in [0, d_L).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}

    Raises
    ------
    MemoryError
        Up front, if P×P float64 would not fit in available memory (use
        :func:`hessref.hessian_operator` instead).

    Examples
    --------
    Linear model with MSE: H_WW = (1/N) I_k ⊗ XᵀX (R = 0, docs/theory.md §5).

    >>> import numpy as np, hessref as hr
    >>> model = hr.MLP([2, 2], activation="identity")
    >>> X = np.array([[1.0, 2.0], [3.0, -1.0]]); Y = np.zeros((2, 2))
    >>> H = hr.hessian(model, model.init(rng=0), X, Y)
    >>> np.allclose(H[:4, :4], np.kron(np.eye(2), X.T @ X) / 2)
    True
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    check_dense_fits("hessian", p.model.num_params, 1, chunk_workspace_bytes(p, 1))
    return dense_curvature(p, Curvature.H)


def layer_block(model: MLP, M: ArrayLike, l: int, m: int) -> Array:
    """The (l, m) layer block of a P×P curvature matrix (1-based layers).

    Rows are layer l's parameters [W_l.ravel(), b_l], columns layer m's, so
    ``layer_block(model, H, l, m)`` has shape (d_l(d_{l-1}+1), d_m(d_{m-1}+1)).
    Returns a view of M when M is already finite float64 (other real dtypes are
    converted first; complex, object, string and NaN/inf entries are refused).
    """
    model = check_model(model)
    M = as_float_array("M", M, ndim=2)
    P = model.num_params
    if M.shape != (P, P):
        raise ValueError(f"M: expected a ({P}, {P}) matrix for {model!r}, got shape {M.shape}")
    return M[model.layer_slice(l), model.layer_slice(m)]
