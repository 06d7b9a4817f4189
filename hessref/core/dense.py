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
ā_{l-1}[n,i]), so the whole matrix costs about 2·N·P² flops in large BLAS calls.
The Gauss-Newton part G keeps M_L = s A, drops the σ″ terms of M and term 2 (then
M_m = T_{L,m}ᵀ s A T_{L,m} and term 1 is Σ J_mᵀ s A J_l); the residual R = H − G keeps
exactly the dropped terms (M_L = 0). Samples are processed in chunks that bound the
workspace, so memory stays close to the P×P result.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.mlp import MLP, ForwardCache, forward
from hessref.core.problem import Problem, check_model, make_problem
from hessref.core.rop import MODES
from hessref.core.validation import as_float_array, check_choice, check_dense_fits

Array = NDArray[np.float64]

_WORKSPACE_BYTES = 64 * 2**20  # per-chunk bound for the largest (N_chunk, ·) intermediate


def symmetrize_(M: Array, block: int = 512) -> Array:
    """Replace square M by (M + Mᵀ)/2 in place, block by block (no P×P temporary)."""
    n = M.shape[0]
    for i in range(0, n, block):
        i1 = min(i + block, n)
        M[i:i1, i:i1] = 0.5 * (M[i:i1, i:i1] + M[i:i1, i:i1].T)
        for j in range(i1, n, block):
            j1 = min(j + block, n)
            avg = 0.5 * (M[i:i1, j:j1] + M[j:j1, i:i1].T)
            M[i:i1, j:j1] = avg
            M[j:j1, i:i1] = avg.T
    return M


def _add_block(out: Array, model: MLP, m: int, l: int, block: Array) -> None:
    """Add ``block`` (q, j, o, i) over Ŵ_m[q, j] × Ŵ_l[o, i] into the θ-ordered ``out``.

    θ stores layer l as W_l[o, i] at o·d_in + i followed by b_l[o], so the augmented
    index i = d_in (the bias) moves to the end of the layer's block. ``block`` may
    have fewer j entries than d_{m-1} + 1 (then it has no bias rows).
    """
    dm, dl = model.sizes[m - 1], model.sizes[l - 1]
    wm, bm = model.weight_slice(m), model.bias_slice(m)
    wl, bl = model.weight_slice(l), model.bias_slice(l)
    q, o = block.shape[0], block.shape[2]
    out[wm, wl] += block[:, :dm, :, :dl].reshape(q * dm, o * dl)
    out[wm, bl] += block[:, :dm, :, dl].reshape(q * dm, o)
    if block.shape[1] > dm:
        out[bm, wl] += block[:, dm, :, :dl].reshape(q, o * dl)
        out[bm, bl] += block[:, dm, :, dl]


def _output_curvature(problem: Problem, cache: ForwardCache, mode: str) -> tuple[list, list]:
    """δ_m (N, d_m) and M_m (N, d_m, d_m) for m = 1..L (index m-1), by backprop."""
    params, loss, s = problem.params, problem.loss, problem.scale
    F, y = cache.F, problem.y
    N, k = F.shape
    delta = s * loss.gradient(F, y)
    M = s * loss.hessian(F, y) if mode != "residual" else np.zeros((N, k, k))
    deltas, Ms = [delta], [M]
    for m in range(len(params) - 1, 0, -1):
        W = params[m][0]  # W_{m+1} (d_{m+1}, d_m)
        d_next, d_m = W.shape
        dsig = cache.dsigma[m - 1]
        # Wᵀ M W for every sample with two GEMMs: (N·d_next, d_next) @ W, then again
        MW = (M.reshape(N * d_next, d_next) @ W).reshape(N, d_next, d_m)
        M = (MW.transpose(0, 2, 1).reshape(N * d_m, d_next) @ W).reshape(N, d_m, d_m)
        M *= dsig[:, :, None] * dsig[:, None, :]
        g = delta @ W
        if mode != "ggn":
            idx = np.arange(d_m)
            M[:, idx, idx] += cache.d2sigma[m - 1] * g
        delta = g * dsig
        deltas.append(delta)
        Ms.append(M)
    return deltas[::-1], Ms[::-1]


def _augment(a: Array) -> Array:
    return np.hstack([a, np.ones((a.shape[0], 1))])


def _accumulate_chunk(out: Array, problem: Problem, mode: str) -> None:
    """Add one data chunk's contribution to every block (m ≥ l) of ``out`` (lower part)."""
    model, params = problem.model, problem.params
    L, N = model.num_layers, problem.num_samples
    cache = forward(model, params, problem.X, second_order=mode != "ggn")
    deltas, Ms = _output_curvature(problem, cache, mode)
    abar = [_augment(a) for a in cache.A]  # ā_0 .. ā_{L-1}
    for l in range(1, L + 1):
        d_l, dl1 = model.sizes[l], model.sizes[l - 1] + 1
        T = None  # T_{m,l} (N, d_m, d_l); None stands for the identity at m = l
        S = None  # S_{m-1,l} = ∂a_{m-1}/∂z_l (N, d_{m-1}, d_l)
        for m in range(l, L + 1):
            d_m, dm1 = model.sizes[m], model.sizes[m - 1] + 1
            if m > l:
                dsig = cache.dsigma[m - 2][:, :, None]
                S = dsig * np.eye(d_l) if T is None else dsig * T
                Wm = params[m - 1][0]
                # T_{m,l} = W_m S_{m-1,l}: (N·d_l, d_{m-1}) @ W_mᵀ, then back to (N, d_m, d_l)
                T = (S.transpose(0, 2, 1).reshape(N * d_l, -1) @ Wm.T).reshape(N, d_l, d_m)
                T = T.transpose(0, 2, 1)
            X1 = Ms[m - 1] if T is None else np.matmul(Ms[m - 1], T)
            Y1 = abar[m - 1][:, :, None] * abar[l - 1][:, None, :]
            term1 = (X1.reshape(N, -1).T @ Y1.reshape(N, -1)).reshape(d_m, d_l, dm1, dl1)
            _add_block(out, model, m, l, term1.transpose(0, 2, 1, 3))  # (q, j, o, i)
            if m > l and mode != "ggn":
                X2 = deltas[m - 1][:, :, None] * abar[l - 1][:, None, :]
                term2 = (X2.reshape(N, -1).T @ S.reshape(N, -1)).reshape(d_m, dl1, dm1 - 1, d_l)
                _add_block(out, model, m, l, term2.transpose(0, 2, 3, 1))  # j ≠ bias


def _bytes_per_sample(model: MLP) -> int:
    """Workspace of one sample in :func:`_accumulate_chunk`: three (d+1)² and three d² arrays."""
    sizes = model.sizes
    return 8 * 3 * (max(sizes[:-1]) + 1) ** 2 + 8 * 3 * max(sizes[1:]) ** 2


def _chunk_rows(problem: Problem) -> int:
    """Samples per chunk so the per-chunk workspace stays within ``_WORKSPACE_BYTES``."""
    return max(1, _WORKSPACE_BYTES // _bytes_per_sample(problem.model))


def chunk_workspace_bytes(problem: Problem) -> int:
    """Peak bytes of the chunk intermediates (docs/theory.md (7.4)), for the memory check.

    Besides the per-sample arrays counted by :func:`_bytes_per_sample`, a chunk holds its
    forward cache and the δ_m, M_m of every layer (N_chunk · Σ_m d_m (d_m + 3) floats).
    """
    model = problem.model
    rows = min(_chunk_rows(problem), problem.num_samples)
    per_layer = sum(d * (d + 3) for d in model.sizes)
    return rows * (_bytes_per_sample(model) + 8 * per_layer)


def dense_curvature(problem: Problem, mode: str) -> Array:
    """Dense M ∈ {H, G, R} (mode "hessian", "ggn" or "residual"), shape (P, P), symmetric.

    Blocks m ≥ l are accumulated over sample chunks by the formulas of the module
    docstring (docs/theory.md (7.1)-(7.3)); the blocks above the diagonal are their
    transposes. Any other ``mode`` raises ``ValueError``.
    """
    check_choice("mode", mode, MODES)
    model = problem.model
    P = model.num_params
    out = np.zeros((P, P))
    for chunk in problem.chunks(_chunk_rows(problem)):
        _accumulate_chunk(out, chunk, mode)
    for l in range(1, model.num_layers + 1):
        rows = model.layer_slice(l)
        out[: rows.start, rows] = out[rows, : rows.start].T  # blocks above the diagonal
        symmetrize_(out[rows, rows])  # diagonal blocks: equal to their transposes up to rounding
    return out


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
    check_dense_fits("hessian", p.model.num_params, 1, chunk_workspace_bytes(p))
    return dense_curvature(p, "hessian")


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
