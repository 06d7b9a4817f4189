"""Curvature-matrix products by Pearlmutter's R-op, batched over samples and directions.

For K directions V (P, K), one forward pass of directional derivatives and one
second-order backward pass (docs/theory.md §6, equations (6.1)-(6.5)) give H V, G V or
R V exactly. The directional derivatives are written Rdir{·} and named ``dir_*`` in the
code (``dir_z``, ``dir_a``, ``dir_delta``), never ``R``: R is the residual matrix.

Forward, with Rdir{·} the directional derivative along v = {V_l, c_l}::

    Rdir{z_l} = V_l a_{l-1} + W_l Rdir{a_{l-1}} + c_l,     Rdir{a_l} = σ′(z_l) ⊙ Rdir{z_l}

Backward, with δ_l = ∂ℓ/∂z_l and g_l = W_{l+1}ᵀ δ_{l+1}::

    Rdir{δ_L} = A Rdir{z_L}
    Rdir{δ_l} = σ″(z_l) ⊙ Rdir{z_l} ⊙ g_l + σ′(z_l) ⊙ (V_{l+1}ᵀ δ_{l+1} + W_{l+1}ᵀ Rdir{δ_{l+1}})
    (Hv)_{W_l} = Σ_i s [Rdir{δ_l} a_{l-1}ᵀ + δ_l Rdir{a_{l-1}}ᵀ],   (Hv)_{b_l} = Σ_i s Rdir{δ_l}

where s is the per-sample weight (1/N or 1). Every term is linear in either
A Rdir{z_L} (the Gauss-Newton path) or δ (the residual path), so the same code gives

- ``Curvature.H`` (mode "hessian"): all terms (H v);
- ``Curvature.G`` ("ggn"): Rdir{δ_L} = A Rdir{z_L} propagated by σ′ and W only (G v,
  Schraudolph 2002);
- ``Curvature.R`` ("residual"): Rdir{δ_L} = 0 and the three δ-carrying terms only
  (R v = H v − G v).

δ_l and g_l come from :func:`hessref.core.backward.backward_deltas` (the one δ recursion),
A Rdir{z_L} from the loss evaluated once at F (:func:`hessref.core.backward.loss_at`).

Arrays are laid out (N, K, d) so that every step is one GEMM over all samples
and directions together; no Python loop runs over samples or directions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hessref.core.backward import backward_deltas, loss_at
from hessref.core.kinds import Curvature
from hessref.core.mlp import ForwardCache, forward
from hessref.core.problem import Problem

Array = NDArray[np.float64]
#: the 0.2 mode names, the values of :class:`~hessref.core.kinds.Curvature`
MODES = tuple(kind.value for kind in Curvature)

__all__ = ["MODES", "backward_deltas", "curvature_matmat"]


def _split_directions(problem: Problem, V: Array) -> list[tuple[Array, Array]]:
    """(P, K) → per layer (V_l (K, d_l, d_{l-1}), c_l (K, d_l))."""
    model, K = problem.model, V.shape[1]
    blocks = []
    for l in range(1, model.num_layers + 1):
        d_out, d_in = model.sizes[l], model.sizes[l - 1]
        Vw = V[model.weight_slice(l)].T.reshape(K, d_out, d_in)
        Vb = V[model.bias_slice(l)].T
        blocks.append((Vw, Vb))
    return blocks


def _forward_r(
    problem: Problem, cache: ForwardCache, dirs: list[tuple[Array, Array]], K: int
) -> tuple[list[Array | None], list[Array | None]]:
    """Forward R pass: Rdir{z_l} (N, K, d_l) for l = 1..L and Rdir{a_l} for l = 0..L-1.

    Entries are None while identically zero (directions that do not touch layers 1..l).
    """
    N = problem.num_samples
    dir_z: list[Array | None] = []
    dir_a: list[Array | None] = [None]
    for l, (W, _) in enumerate(problem.params, start=1):
        Vw, Vb = dirs[l - 1]
        a_prev, dir_a_prev = cache.A[l - 1], dir_a[l - 1]
        touches_w, touches_b = Vw.any(), Vb.any()
        dir_zl = None
        if touches_w:
            # V_l a_{l-1} for all K directions as one GEMM: (N, d_in) @ (d_in, K·d_out)
            dir_zl = (a_prev @ Vw.reshape(K * W.shape[0], -1).T).reshape(N, K, -1)
        if dir_a_prev is not None:
            # W_l Rdir{a_{l-1}}: (N·K, d_in) @ (d_in, d_out)
            term = (dir_a_prev.reshape(N * K, -1) @ W.T).reshape(N, K, -1)
            dir_zl = term if dir_zl is None else np.add(dir_zl, term, out=dir_zl)
        if touches_b:
            dir_zl = np.broadcast_to(Vb, (N, *Vb.shape)).copy() if dir_zl is None else dir_zl + Vb
        dir_z.append(dir_zl)
        if l < len(problem.params):
            dir_a.append(None if dir_zl is None else dir_zl * cache.dsigma[l - 1][:, None, :])
    return dir_z, dir_a


def curvature_matmat(
    problem: Problem,
    V: Array,
    mode: Curvature | str = Curvature.H,
    cache: ForwardCache | None = None,
) -> Array:
    """Return M V for M ∈ {H, G, R} of ``problem`` (one data chunk), V of shape (P, K).

    Parameters
    ----------
    problem : Problem
        Validated model, θ, data chunk and loss; ``problem.scale`` weights each sample.
    V : ndarray, shape (P, K)
        Directions, float64.
    mode : Curvature or str
        H, G or R: a :class:`~hessref.core.kinds.Curvature`, or any spelling
        :meth:`Curvature.parse` accepts ("H", "hessian", "G", "ggn", "R", "residual").
        Anything else raises (a typo must not return zeros).
    cache : ForwardCache, optional
        A forward pass of ``problem`` with ``second_order=True``, to reuse across calls.

    Returns
    -------
    ndarray, shape (P, K)
        Σ_i s M_i V over the samples of the chunk.
    """
    kind = Curvature.parse(mode, argument="mode")
    model, params = problem.model, problem.params
    L = model.num_layers
    N, K = problem.num_samples, V.shape[1]
    if cache is None:
        cache = forward(model, params, problem.X, second_order=True)
    dirs = _split_directions(problem, V)
    want_ggn = kind in (Curvature.H, Curvature.G)
    want_res = kind in (Curvature.H, Curvature.R)
    dir_z, dir_a = _forward_r(problem, cache, dirs, K)

    out = np.zeros((K, model.num_params))  # (K, P) layout: rows are contiguous per direction
    s = problem.scale
    # δ_l and g_l enter only the residual terms; G V never needs them
    deltas, gs = backward_deltas(problem, cache) if want_res else ([None] * L, [None] * L)
    dir_delta = None
    if want_ggn and dir_z[-1] is not None:
        # Rdir{δ_L} = s A Rdir{z_L}, from the loss evaluated once at this F
        dir_delta = s * loss_at(problem, cache).hessian_matvec(dir_z[-1])
    for l in range(L, 0, -1):
        W = params[l - 1][0]
        Vw = dirs[l - 1][0]
        d_out, d_in = W.shape
        ws, bs = model.weight_slice(l), model.bias_slice(l)
        a_prev, dir_a_prev = cache.A[l - 1], dir_a[l - 1]
        if dir_delta is not None:
            # Σ_i Rdir{δ_l} a_{l-1}ᵀ for all K as one GEMM: (K·d_out, N) @ (N, d_in), and
            # row-major (o, i) is exactly θ's layout of W_l
            gW = dir_delta.reshape(N, K * d_out).T @ a_prev
            out[:, ws] = gW.reshape(K, d_out * d_in)
            out[:, bs] = dir_delta.sum(axis=0)
        if want_res and dir_a_prev is not None:
            # Σ_i δ_l Rdir{a_{l-1}}ᵀ as one GEMM: (d_out, N) @ (N, K·d_in)
            gW = (deltas[l - 1].T @ dir_a_prev.reshape(N, K * d_in)).reshape(d_out, K, d_in)
            out[:, ws] += gW.transpose(1, 0, 2).reshape(K, d_out * d_in)
        if l == 1:
            break
        dir_delta = _backward_step(
            cache, l, W, Vw, deltas[l - 1], dir_delta, dir_z[l - 2], want_res, gs[l - 2]
        )
    return out.T


def _backward_step(
    cache: ForwardCache,
    l: int,
    W: Array,
    Vw: Array,
    delta: Array | None,
    dir_delta: Array | None,
    dir_z_prev: Array | None,
    want_res: bool,
    g: Array | None,
) -> Array | None:
    """Rdir{δ_{l-1}} from Rdir{δ_l} (docs/theory.md (6.3)), None if identically zero.

    Rdir{δ_{l-1}} = σ″ ⊙ Rdir{z_{l-1}} ⊙ (W_lᵀ δ_l) + σ′ ⊙ (V_lᵀ δ_l + W_lᵀ Rdir{δ_l});
    without ``want_res`` only the Gauss-Newton term σ′ ⊙ W_lᵀ Rdir{δ_l} is kept
    (then ``delta`` and ``g`` are None).
    """
    N, d_in = cache.A[0].shape[0], W.shape[1]
    K = Vw.shape[0]
    new = None
    if dir_delta is not None:
        new = (dir_delta.reshape(N * K, -1) @ W).reshape(N, K, d_in)
    if want_res and Vw.any():
        # V_lᵀ δ_l for every direction: (N, d_out) @ (d_out, K·d_in)
        vt_delta = (delta @ Vw.transpose(1, 0, 2).reshape(-1, K * d_in)).reshape(N, K, d_in)
        new = vt_delta if new is None else np.add(new, vt_delta, out=new)
    if new is not None:
        new *= cache.dsigma[l - 2][:, None, :]
    if want_res and dir_z_prev is not None:
        curv = dir_z_prev * (cache.d2sigma[l - 2] * g)[:, None, :]
        new = curv if new is None else np.add(new, curv, out=new)
    return new
