"""Exact reference bundles: every quantity another tool may test, for one problem.

:func:`reference_bundle` computes, for one model, θ, data and loss, the loss, gradient,
H, G, R, empirical Fisher, per-sample gradients, Jacobian, spectra, traces and smoothed
densities in float64 and in hessref's layout (:class:`ReferenceBundle`, with the index
map :func:`layer_map`); :func:`in_convention` re-expresses a bundle in another tool's
layout and loss scaling (:mod:`hessref.oracle.conventions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.dense import chunk_workspace_bytes, dense_curvatures
from hessref.core.kinds import Curvature
from hessref.core.losses import reduction_scale
from hessref.core.mlp import MLP, backprop_seeds, forward
from hessref.core.problem import check_model, make_problem
from hessref.core.validation import as_float_array, check_dense_fits, check_positive_int
from hessref.oracle.conventions import (
    Convention,
    get_convention,
    loss_factor,
    per_sample_factor,
    permutation,
    tensor_names,
    to_convention,
)
from hessref.spectrum import eigenvalues, exact_density

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ParameterInfo:
    """Where one parameter tensor lives in θ.

    Attributes
    ----------
    name : str
        hessref name, ``"W2"`` or ``"b2"``.
    torch_name : str
        Its key in the state dict of ``nn.Sequential(Linear, act, ...)``, e.g. ``"2.weight"``.
    layer : int
        1-based layer l.
    slice : slice
        Its entries θ[slice] (W_l row-major (out, in)).
    shape : tuple of int
        (d_l, d_{l-1}) or (d_l,).
    """

    name: str
    torch_name: str
    layer: int
    slice: slice
    shape: tuple[int, ...]


def layer_map(model: MLP) -> tuple[ParameterInfo, ...]:
    """The 2L parameter tensors of ``model`` in θ order.

    Examples
    --------
    >>> [(p.name, p.torch_name, p.slice.start, p.shape) for p in layer_map(MLP([2, 3, 1]))]
    [('W1', '0.weight', 0, (3, 2)), ('b1', '0.bias', 6, (3,)), ('W2', '2.weight', 9, (1, 3)), \
('b2', '2.bias', 12, (1,))]
    """
    model = check_model(model)
    torch = tensor_names(model, "torch")
    out = []
    for l in range(1, model.num_layers + 1):
        d_out, d_in = model.sizes[l], model.sizes[l - 1]
        out.append(ParameterInfo(f"W{l}", torch[f"W{l}"], l, model.weight_slice(l), (d_out, d_in)))
        out.append(ParameterInfo(f"b{l}", torch[f"b{l}"], l, model.bias_slice(l), (d_out,)))
    return tuple(out)


@dataclass(frozen=True)
class ReferenceBundle:
    """Exact reference quantities for one problem (all float64, hessref's layout).

    With s = 1/N ("mean") or 1 ("sum"), ℓ_i the per-sample loss, r_i = ∇_f ℓ_i and
    J_i = ∂f_i/∂θ:

    Attributes
    ----------
    model : MLP
    theta : ndarray (P,)
    X : ndarray (N, d_0)
    y : ndarray
        (N, d_L) float targets (MSE) or (N,) int labels (cross-entropy).
    loss_name, reduction : str
    scale : float
        s.
    loss : float
        L = s Σ_i ℓ_i.
    gradient : ndarray (P,)
        ∇L = s Σ_i g_i.
    outputs : ndarray (N, d_L)
        F, rows f_i.
    output_gradients : ndarray (N, d_L)
        r_i = ∇_f ℓ_i (not scaled by s).
    jacobian : ndarray (N, d_L, P)
        J_i.
    per_sample_gradients : ndarray (N, P)
        g_i = ∇_θ ℓ_i = J_iᵀ r_i (not scaled by s).
    H, G, R : ndarray (P, P)
        Hessian, Gauss-Newton s Σ J_iᵀ ∇²_f ℓ_i J_i and residual; H = G + R.
    empirical_fisher : ndarray (P, P)
        s Σ_i g_i g_iᵀ (1/N Σ for "mean", the plain sum for "sum"); PSD.
    eigenvalues_H, eigenvalues_G : ndarray (P,)
        Exact spectra (``scipy.linalg.eigh``), descending.
    eigenvectors_H, eigenvectors_G : ndarray (P, P) or None
        Orthonormal eigenvectors as columns, in the order of the eigenvalues, each
        signed so its largest-magnitude entry is positive (unique only for simple
        eigenvalues). None unless requested.
    trace_H, trace_G, trace_R, trace_empirical_fisher : float
        Exact traces (sums of diagonals).
    density_grid : ndarray (M,) or None
    density_sigma : float or None
    density_H, density_G : ndarray (M,) or None
        ρ(t) = (1/P) Σ_j φ_σ(t − λ_j) on the grid, φ_σ the N(0, σ²) density
        (:func:`hessref.spectrum.exact_density`, the kernel of its SLQ densities).
    layers : tuple of ParameterInfo
        The layer index map (see :func:`layer_map`).
    """

    model: MLP
    theta: Array
    X: Array
    y: NDArray
    loss_name: str
    reduction: str
    scale: float
    loss: float
    gradient: Array
    outputs: Array
    output_gradients: Array
    jacobian: Array
    per_sample_gradients: Array
    H: Array
    G: Array
    R: Array
    empirical_fisher: Array
    eigenvalues_H: Array
    eigenvalues_G: Array
    eigenvectors_H: Array | None
    eigenvectors_G: Array | None
    trace_H: float
    trace_G: float
    trace_R: float
    trace_empirical_fisher: float
    density_grid: Array | None
    density_sigma: float | None
    density_H: Array | None
    density_G: Array | None
    layers: tuple[ParameterInfo, ...]

    def quantities(self) -> dict[str, Any]:
        """The computed reference quantities by name (no inputs, no None entries)."""
        names = (
            "loss gradient outputs output_gradients jacobian per_sample_gradients H G R "
            "empirical_fisher eigenvalues_H eigenvalues_G eigenvectors_H eigenvectors_G "
            "trace_H trace_G trace_R trace_empirical_fisher density_grid density_sigma "
            "density_H density_G"
        ).split()
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def _check_sigma(sigma: Any) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating)):
        raise ValueError(f"density_sigma: expected a positive number, got {sigma!r}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"density_sigma: expected a positive finite number, got {sigma!r}")
    return float(sigma)


def _signed_eigh(M: Array, vectors: bool) -> tuple[Array, Array | None]:
    """Descending eigenvalues (and sign-normalised eigenvectors) of symmetric M."""
    if not vectors:
        return eigenvalues(M), None
    lam, V = eigenvalues(M, vectors=True)
    pivot = np.abs(V).argmax(axis=0)
    V *= np.sign(V[pivot, np.arange(V.shape[1])])
    return lam, V


def reference_bundle(
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    loss: str,
    reduction: str = "mean",
    eigenvectors: bool = False,
    density_grid: ArrayLike | int | None = None,
    density_sigma: float | None = None,
) -> ReferenceBundle:
    """Every exact reference quantity of one problem, in one call (see :class:`ReferenceBundle`).

    Parameters
    ----------
    model : MLP
    theta : array_like (P,)
    X : array_like (N, d_0)
    y : array_like
        MSE: float targets (N, d_L); cross-entropy: int labels (N,).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}
    eigenvectors : bool
        Also return eigenvectors of H and G (two more P×P arrays).
    density_grid : array_like (M,) or int, optional
        Points where the smoothed densities of H and G are evaluated; an int M asks for
        M equispaced points over [min λ − 4σ, max λ + 4σ] of both spectra.
    density_sigma : float, optional
        Gaussian kernel width σ; required with ``density_grid``.

    Returns
    -------
    ReferenceBundle

    Raises
    ------
    MemoryError
        Up front, if the P×P results would not fit in memory.

    Examples
    --------
    >>> import numpy as np
    >>> model = MLP([3, 4, 2], activation="tanh")
    >>> X = np.random.default_rng(0).normal(size=(5, 3)); y = np.array([0, 1, 1, 0, 1])
    >>> b = reference_bundle(model, model.init(rng=0), X, y, loss="cross_entropy")
    >>> b.H.shape, b.jacobian.shape, b.per_sample_gradients.shape
    ((26, 26), (5, 2, 26), (5, 26))
    >>> bool(np.allclose(b.H, b.G + b.R)), bool(np.isclose(b.trace_H, b.eigenvalues_H.sum()))
    (True, True)
    """
    p = make_problem(model, theta, X, y, loss, reduction)
    if not isinstance(eigenvectors, bool):
        raise TypeError(f"eigenvectors: expected a bool, got {eigenvectors!r}")
    if density_grid is not None:
        density_sigma = _check_sigma(density_sigma)
    elif density_sigma is not None:
        raise ValueError("density_sigma: given without density_grid; pass both or neither")
    model, P = p.model, p.model.num_params
    # H, G, R in one pass (their block sums live together, the eigenvectors come later)
    workspace = chunk_workspace_bytes(p, 3) - 2 * eigenvectors * 8 * P**2
    check_dense_fits("reference_bundle", P, 4 + 2 * eigenvectors, max(0, workspace))

    first = _first_order(p)
    H, G, R = dense_curvatures(p, (Curvature.H, Curvature.G, Curvature.R))
    lam_H, V_H = _signed_eigh(H, eigenvectors)
    lam_G, V_G = _signed_eigh(G, eigenvectors)
    dens: dict[str, Any] = {"density_grid": None, "density_H": None, "density_G": None}
    if density_grid is not None:
        grid = _density_grid(density_grid, density_sigma, lam_H, lam_G)
        dens["density_grid"] = grid
        dens["density_H"] = exact_density(lam_H, grid, density_sigma).density
        dens["density_G"] = exact_density(lam_G, grid, density_sigma).density
    EF = first.pop("empirical_fisher")
    return ReferenceBundle(
        model=model,
        theta=p.theta.copy(),
        X=p.X.copy(),
        y=p.y.copy(),
        loss_name=p.loss.name,
        reduction=reduction,
        scale=p.scale,
        **first,
        H=H,
        G=G,
        R=R,
        empirical_fisher=EF,
        eigenvalues_H=lam_H,
        eigenvalues_G=lam_G,
        eigenvectors_H=V_H,
        eigenvectors_G=V_G,
        trace_H=float(np.trace(H)),
        trace_G=float(np.trace(G)),
        trace_R=float(np.trace(R)),
        trace_empirical_fisher=float(np.trace(EF)),
        density_sigma=density_sigma,
        **dens,
        layers=layer_map(model),
    )


def _first_order(p: Any) -> dict[str, Any]:
    """Loss, gradient, outputs F, r_i = ∇_f ℓ_i, J_i, g_i = J_iᵀ r_i and s Σ g_i g_iᵀ."""
    cache = forward(p.model, p.params, p.X)
    F = cache.F
    r = p.loss.gradient(F, p.y)
    N, k = F.shape
    J = backprop_seeds(p.model, p.params, cache, np.broadcast_to(np.eye(k), (N, k, k)))
    g = np.einsum("nk,nkp->np", r, J)  # g_i = J_iᵀ r_i, all samples at once
    EF = p.scale * (g.T @ g)
    return {
        "loss": float(p.scale * p.loss.value(F, p.y).sum()),
        "gradient": p.scale * g.sum(axis=0),
        "outputs": F,
        "output_gradients": r,
        "jacobian": J,
        "per_sample_gradients": g,
        "empirical_fisher": 0.5 * (EF + EF.T),
    }


def _density_grid(grid: ArrayLike | int, sigma: float, lam_H: Array, lam_G: Array) -> Array:
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        M = check_positive_int("density_grid", grid, minimum=2)
        lo = min(lam_H[-1], lam_G[-1]) - 4 * sigma
        hi = max(lam_H[0], lam_G[0]) + 4 * sigma
        return np.linspace(lo, hi, M)
    t = as_float_array("density_grid", grid, ndim=1).copy()
    if t.size < 2 or np.any(np.diff(t) <= 0):
        raise ValueError(
            "density_grid: expected a strictly increasing 1-D grid of >= 2 points or an "
            f"int number of points, got {t.size} points"
            + ("" if t.size < 2 else " that are not strictly increasing")
        )
    return t


def in_convention(bundle: ReferenceBundle, convention: Convention | str) -> dict[str, Any]:
    """A bundle's quantities in another tool's layout and loss scaling.

    With c_ℓ = :func:`hessref.oracle.conventions.per_sample_factor`, s' their per-sample weight
    and c = c_ℓ s'/s (:func:`hessref.oracle.conventions.loss_factor`): loss, gradient, H, G, R
    are multiplied by c; per-sample gradients by c_ℓ; the empirical Fisher becomes
    s' c_ℓ² Σ g_i g_iᵀ; the Jacobian is only re-ordered. Vectors and matrices are
    re-ordered (and restricted, without biases) by :func:`hessref.oracle.conventions.to_convention`.
    Eigenvalues are recomputed from the converted H and G (descending), so they are
    those of the weight sub-block when biases are excluded.

    Returns
    -------
    dict
        Keys ``loss, gradient, per_sample_gradients, jacobian, H, G, R,
        empirical_fisher, eigenvalues_H, eigenvalues_G, loss_factor, permutation``.
    """
    conv = get_convention(convention)
    model, N = bundle.model, bundle.X.shape[0]
    c = loss_factor(model, bundle.loss_name, conv, num_samples=N, reduction=bundle.reduction)
    c_ell = per_sample_factor(model, bundle.loss_name, conv)
    s_theirs = reduction_scale(conv.reduction, N)
    out: dict[str, Any] = {"loss": c * bundle.loss, "loss_factor": c}
    out["permutation"] = permutation(model, conv)
    out["gradient"] = c * to_convention(model, bundle.gradient, conv)
    out["per_sample_gradients"] = c_ell * to_convention(
        model, bundle.per_sample_gradients, conv, axes=(-1,)
    )
    out["jacobian"] = to_convention(model, bundle.jacobian, conv, axes=(-1,))
    for name in ("H", "G", "R"):
        out[name] = c * to_convention(model, getattr(bundle, name), conv)
    ef_factor = s_theirs * c_ell**2 / bundle.scale
    out["empirical_fisher"] = ef_factor * to_convention(model, bundle.empirical_fisher, conv)
    out["eigenvalues_H"] = eigenvalues(out["H"])
    out["eigenvalues_G"] = eigenvalues(out["G"])
    return out
