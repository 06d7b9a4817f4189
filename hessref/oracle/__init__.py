"""hessref as a reference oracle: exact bundles of derivatives, and fixture files.

:func:`reference_bundle` computes, for one model, θ, data and loss, every exact
quantity another tool may want to test (loss, gradient, H, G, R, empirical Fisher,
per-sample gradients, Jacobian, spectra, traces, smoothed densities) in float64 and
in hessref's layout; :func:`in_convention` re-expresses a bundle in another tool's
layout and loss scaling (:mod:`hessref.oracle.conventions`), and
:func:`hessref.oracle.compare.compare` says how far their numbers are from it.

:func:`write_fixture` stores a bundle with everything needed to recompute it (spec,
θ, X, y, the torch-named state dict, layout maps) in a self-describing ``.npz`` that
plain ``np.load(path, allow_pickle=False)`` reads, so a PyTorch or JAX project can
test against it in its own CI without installing hessref. :func:`fixture_catalogue`
is a small deterministic set of such cases (activations × losses × depths, both
reductions, ragged batch sizes) and :func:`write_catalogue` writes it.

Determinism: the fixture writer computes single-threaded and writes the zip archive
with fixed timestamps, sorted entries and no compression, so regenerating a fixture
with the same hessref, NumPy and SciPy builds gives identical arrays *and*
identical file bytes.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from hessref.core.dense import dense_curvature
from hessref.core.losses import reduction_scale
from hessref.core.mlp import MLP, backprop_seeds, forward
from hessref.core.problem import check_model, make_problem
from hessref.core.validation import as_float_array, check_dense_fits, check_positive_int
from hessref.oracle.conventions import (
    CONVENTIONS,
    Convention,
    get_convention,
    loss_factor,
    per_sample_factor,
    permutation,
    tensor_names,
    to_convention,
    to_state_dict,
)
from hessref.spectrum import eigenvalues, exact_density

Array = NDArray[np.float64]

FIXTURE_FORMAT = "hessref-oracle-fixture"
FIXTURE_FORMAT_VERSION = 1


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
    check_dense_fits("reference_bundle", P, 4 + 2 * eigenvectors)

    cache = forward(model, p.params, p.X)
    F = cache.F
    r = p.loss.gradient(F, p.y)
    N, k = F.shape
    J = backprop_seeds(model, p.params, cache, np.broadcast_to(np.eye(k), (N, k, k)))
    g = np.einsum("nk,nkp->np", r, J)  # g_i = J_iᵀ r_i, all samples at once
    EF = p.scale * (g.T @ g)
    EF = 0.5 * (EF + EF.T)
    H = dense_curvature(p, "hessian")
    G = dense_curvature(p, "ggn")
    R = dense_curvature(p, "residual")
    lam_H, V_H = _signed_eigh(H, eigenvectors)
    lam_G, V_G = _signed_eigh(G, eigenvectors)

    grid = dens_H = dens_G = None
    if density_grid is not None:
        grid = _density_grid(density_grid, density_sigma, lam_H, lam_G)
        dens_H = exact_density(lam_H, grid, density_sigma).density
        dens_G = exact_density(lam_G, grid, density_sigma).density

    return ReferenceBundle(
        model=model,
        theta=p.theta.copy(),
        X=p.X.copy(),
        y=p.y.copy(),
        loss_name=p.loss.name,
        reduction=reduction,
        scale=p.scale,
        loss=float(p.scale * p.loss.value(F, p.y).sum()),
        gradient=p.scale * g.sum(axis=0),
        outputs=F,
        output_gradients=r,
        jacobian=J,
        per_sample_gradients=g,
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
        density_grid=grid,
        density_sigma=density_sigma,
        density_H=dens_H,
        density_G=dens_G,
        layers=layer_map(model),
    )


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


# --- fixtures -----------------------------------------------------------------------------

_FORMULAS = {
    "model": "Z_l = A_{l-1} @ W_l.T + b_l, A_0 = X, A_l = act(Z_l) for l < L, F = Z_L",
    "theta": "[W_1.ravel(), b_1, W_2.ravel(), b_2, ...], W_l (d_l, d_{l-1}) row-major "
    "(= torch.nn.utils.parameters_to_vector of nn.Sequential(Linear, act, ..., Linear))",
    "loss_mse": "l_i = 0.5 * ||f_i - y_i||^2",
    "loss_cross_entropy": "l_i = -log softmax(f_i)[y_i]",
    "reduction": "L = s * sum_i l_i, s = 1/N (mean) or 1 (sum)",
    "gradient": "s * sum_i g_i",
    "per_sample_gradients": "g_i = grad_theta l_i = J_i^T r_i (unscaled), shape (N, P)",
    "output_gradients": "r_i = grad_f l_i (unscaled), shape (N, d_L)",
    "jacobian": "J_i = d f_i / d theta, shape (N, d_L, P)",
    "H": "Hessian of L, (P, P)",
    "G": "s * sum_i J_i^T (d^2 l_i / d f^2) J_i (Gauss-Newton, PSD)",
    "R": "s * sum_i sum_c r_ic * d^2 f_ic / d theta^2;  H = G + R",
    "empirical_fisher": "s * sum_i g_i g_i^T",
    "eigenvalues": "descending, scipy.linalg.eigh of the dense matrix",
    "eigenvectors": "columns, sign: largest-|entry| positive",
    "density": "rho(t) = (1/P) sum_j exp(-(t - lambda_j)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))",
    "torch_loss_factor": "nn.CrossEntropyLoss/nn.MSELoss(reduction) of the same net = "
    "torch/loss_factor * L; multiply gradient, H, G, R by it too (Jacobian unchanged)",
    "permutations": "perm/<convention>[j] = hessref flat index stored at their flat index j; "
    "theirs = v[perm], M[np.ix_(perm, perm)]",
}


def _hessref_version() -> str:
    try:
        from importlib.metadata import version

        return version("hessref")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def _fixture_arrays(bundle: ReferenceBundle, extra_spec: dict[str, Any]) -> dict[str, Any]:
    model = bundle.model
    N = bundle.X.shape[0]
    arrays: dict[str, Any] = {
        "spec/sizes": np.asarray(model.sizes, dtype=np.int64),
        "spec/activation": np.str_(model.activation.name),
        "spec/loss": np.str_(bundle.loss_name),
        "spec/reduction": np.str_(bundle.reduction),
        "spec/num_samples": np.int64(N),
        "theta": bundle.theta,
        "X": bundle.X,
        "y": bundle.y,
        "layout/names": np.asarray([p.name for p in bundle.layers]),
        "layout/torch_names": np.asarray([p.torch_name for p in bundle.layers]),
        "layout/starts": np.asarray([p.slice.start for p in bundle.layers], dtype=np.int64),
        "layout/stops": np.asarray([p.slice.stop for p in bundle.layers], dtype=np.int64),
        "layout/description": np.str_(_FORMULAS["theta"]),
        "torch/loss_factor": np.float64(
            loss_factor(
                model,
                bundle.loss_name,
                Convention("torch", reduction=bundle.reduction, loss_scale="torch_mse"),
                num_samples=N,
                reduction=bundle.reduction,
            )
        ),
    }
    for key, value in to_state_dict(model, bundle.theta).items():
        arrays[f"state_dict/{key}"] = value
    for name, conv in CONVENTIONS.items():
        arrays[f"perm/{name}"] = permutation(model, conv)
    for name, value in bundle.quantities().items():
        key = {
            "density_grid": "density/grid",
            "density_sigma": "density/sigma",
            "density_H": "density/H",
            "density_G": "density/G",
        }.get(name, name)
        arrays[key] = np.asarray(value, dtype=np.float64)
    meta = {
        "format": FIXTURE_FORMAT,
        "format_version": FIXTURE_FORMAT_VERSION,
        "hessref_version": _hessref_version(),
        "spec": {
            "sizes": list(model.sizes),
            "activation": model.activation.name,
            "torch_activation": model.activation.torch_name,
            "loss": bundle.loss_name,
            "reduction": bundle.reduction,
            "num_samples": N,
            "num_params": model.num_params,
            **extra_spec,
        },
        "layout": [
            {
                "name": p.name,
                "torch_name": p.torch_name,
                "start": p.slice.start,
                "stop": p.slice.stop,
                "shape": list(p.shape),
            }
            for p in bundle.layers
        ],
        "conventions": {name: conv.summary() for name, conv in CONVENTIONS.items()},
        "formulas": _FORMULAS,
        "keys": sorted([*arrays, "metadata"]),
    }
    arrays["metadata"] = np.str_(json.dumps(meta, sort_keys=True, indent=1))
    return arrays


def _write_npz(path: Path, arrays: dict[str, Any]) -> None:
    """A standard ``.npz`` with fixed timestamps and sorted entries (reproducible bytes)."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def _check_path(path: str | os.PathLike[str], overwrite: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    out = Path(path)
    if out.suffix != ".npz":
        raise ValueError(f"path: expected a file name ending in .npz, got {str(out)!r}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"path: {str(out)!r} exists; pass overwrite=True to replace it")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"path: directory {str(out.parent)!r} does not exist")
    return out


def write_fixture(
    path: str | os.PathLike[str],
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
    extra_spec: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a self-describing reference fixture ``.npz`` for one problem.

    The archive holds (keys; ``np.load(path, allow_pickle=False)`` reads all of them):

    - ``spec/sizes, spec/activation, spec/loss, spec/reduction, spec/num_samples``;
    - ``theta, X, y`` and ``state_dict/<k>.weight``, ``state_dict/<k>.bias`` (load into
      ``nn.Sequential(Linear, act, ..., Linear)``; float64);
    - ``layout/names, layout/torch_names, layout/starts, layout/stops,
      layout/description`` and ``perm/<convention>`` for every preset of
      :data:`hessref.oracle.conventions.CONVENTIONS`;
    - every quantity of :class:`ReferenceBundle`: ``loss, gradient, outputs,
      output_gradients, jacobian, per_sample_gradients, H, G, R, empirical_fisher,
      eigenvalues_H, eigenvalues_G, trace_H, trace_G, trace_R, trace_empirical_fisher``
      (and ``eigenvectors_*``, ``density/grid, density/sigma, density/H, density/G``
      when requested);
    - ``torch/loss_factor``: nn.CrossEntropyLoss / nn.MSELoss with the same reduction
      equals this factor times ``loss`` (so do their gradient and Hessian);
    - ``metadata``: a JSON string with the spec (plus ``extra_spec``), the layout,
      conventions, formulas of every quantity and the hessref version.

    Parameters
    ----------
    path : str or path-like
        Target file, ending in ``.npz``; its directory must exist.
    model, theta, X, y, loss, reduction, eigenvectors, density_grid, density_sigma
        As in :func:`reference_bundle`.
    extra_spec : dict, optional
        JSON-able entries added to ``metadata["spec"]`` (e.g. seed, batch size).
    overwrite : bool
        Replace an existing file (otherwise ``FileExistsError``).

    Returns
    -------
    Path
        The written file. Computation is single-threaded, so the arrays do not depend
        on the BLAS thread count; the bytes are reproducible (see module docstring).
    """
    out = _check_path(path, overwrite)
    extra = dict(extra_spec or {})
    try:
        json.dumps(extra)
    except TypeError as exc:
        raise TypeError(f"extra_spec: expected JSON-able values ({exc})") from None
    with threadpool_limits(limits=1, user_api="blas"):
        bundle = reference_bundle(
            model,
            theta,
            X,
            y,
            loss=loss,
            reduction=reduction,
            eigenvectors=eigenvectors,
            density_grid=density_grid,
            density_sigma=density_sigma,
        )
    _write_npz(out, _fixture_arrays(bundle, extra))
    return out


def load_fixture(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a fixture written by :func:`write_fixture` (without pickle).

    Returns
    -------
    dict
        Every stored array by key; 0-d entries become Python ``str``, ``int`` or
        ``float``, and ``"metadata"`` is the parsed JSON dict.

    Raises
    ------
    ValueError
        If the file is not a hessref oracle fixture.
    """
    with np.load(path, allow_pickle=False) as data:
        out: dict[str, Any] = {k: data[k] for k in data.files}
    if "metadata" not in out:
        raise ValueError(f"path: {str(path)!r} has no 'metadata' entry; not a hessref fixture")
    for key, value in out.items():
        if value.ndim == 0:
            out[key] = value.item()
    meta = json.loads(out["metadata"])
    if meta.get("format") != FIXTURE_FORMAT:
        raise ValueError(f"path: {str(path)!r} is not a {FIXTURE_FORMAT} file")
    out["metadata"] = meta
    return out


# --- the built-in catalogue -------------------------------------------------------------


@dataclass(frozen=True)
class FixtureCase:
    """One deterministic catalogue problem.

    θ is ``model.init`` and X ~ N(0, 1) (N, d_0) then targets (MSE: N(0, 1) of shape
    (N, d_L); cross-entropy: uniform labels) are drawn in that order from one
    ``np.random.default_rng(seed)``. ``batch_size`` does not change the reference:
    it is the batch size a consumer should iterate with; it leaves a ragged last batch.
    """

    name: str
    sizes: tuple[int, ...]
    activation: str
    loss: str
    reduction: str
    num_samples: int
    batch_size: int
    seed: int
    density_points: int = 201
    density_sigma: float = 0.02

    def build(self) -> tuple[MLP, Array, Array, NDArray]:
        """``(model, theta, X, y)`` of this case."""
        return random_problem(
            self.sizes, self.activation, self.loss, num_samples=self.num_samples, rng=self.seed
        )


def random_problem(
    sizes: list[int] | tuple[int, ...],
    activation: str,
    loss: str,
    *,
    num_samples: int,
    rng: int | np.random.Generator | None = None,
) -> tuple[MLP, Array, Array, NDArray]:
    """A seeded problem ``(model, theta, X, y)`` (draws as in :class:`FixtureCase`)."""
    model = MLP(sizes, activation=activation)
    N = check_positive_int("num_samples", num_samples)
    gen = np.random.default_rng(rng)
    theta = model.init(gen)
    X = gen.normal(size=(N, model.sizes[0]))
    k = model.sizes[-1]
    if loss == "mse":
        y = gen.normal(size=(N, k))
    elif loss == "cross_entropy":
        y = gen.integers(0, k, size=N)
    else:
        raise ValueError(f"loss: expected 'mse' or 'cross_entropy', got {loss!r}")
    return model, theta, X, y


def write_random_fixture(
    path: str | os.PathLike[str],
    *,
    sizes: list[int] | tuple[int, ...],
    activation: str,
    loss: str,
    num_samples: int,
    rng: int = 0,
    reduction: str = "mean",
    overwrite: bool = False,
) -> Path:
    """:func:`write_fixture` for :func:`random_problem` (what ``hessref oracle --out`` runs)."""
    model, theta, X, y = random_problem(sizes, activation, loss, num_samples=num_samples, rng=rng)
    return write_fixture(
        path,
        model,
        theta,
        X,
        y,
        loss=loss,
        reduction=reduction,
        extra_spec={"seed": rng} if isinstance(rng, int) else None,
        overwrite=overwrite,
    )


_ACTIVATIONS = ("identity", "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "gelu")
_DEPTHS = {1: (4, 6, 3), 2: (5, 7, 5, 3)}


def fixture_catalogue() -> list[FixtureCase]:
    """The built-in cases: 7 activations × 2 losses × 2 depths (mean), plus extras.

    Extras: sum reduction (tanh/MSE, relu/cross-entropy), an 11-layer net (names W10,
    W11 sort before W2: the dict-key pitfall), a single-output MSE net and PyTorch's
    thresholded softplus (``softplus_torch``). Sample
    counts 7 to 10 with batch sizes 3 or 4 (ragged last batches). Every case has
    P ≤ 100.

    Examples
    --------
    >>> cases = fixture_catalogue(); len(cases), cases[0].name
    (33, 'identity-mse-d1')
    """
    cases = []
    seed = 0
    for act in _ACTIVATIONS:
        for loss in ("mse", "cross_entropy"):
            for depth, sizes in _DEPTHS.items():
                N, batch = (7, 3) if depth == 1 else (10, 4)
                cases.append(
                    FixtureCase(f"{act}-{loss}-d{depth}", sizes, act, loss, "mean", N, batch, seed)
                )
                seed += 1
    cases += [
        FixtureCase("tanh-mse-d1-sum", (4, 6, 3), "tanh", "mse", "sum", 7, 3, seed, 201, 0.1),
        FixtureCase(
            "relu-cross_entropy-d2-sum", (5, 7, 5, 3), "relu", "cross_entropy", "sum", 10, 4,
            seed + 1, 201, 0.1,
        ),
        FixtureCase(
            "tanh-cross_entropy-d11", (3,) + (2,) * 10 + (3,), "tanh", "cross_entropy", "mean",
            9, 4, seed + 2,
        ),
        FixtureCase("sigmoid-mse-scalar", (3, 5, 1), "sigmoid", "mse", "mean", 8, 3, seed + 3),
        FixtureCase(
            "softplus_torch-mse-d1", (4, 6, 3), "softplus_torch", "mse", "mean", 7, 3, seed + 4,
        ),
    ]  # fmt: skip
    return cases


def write_catalogue(
    directory: str | os.PathLike[str],
    cases: list[FixtureCase | str] | None = None,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write fixtures ``<directory>/<case.name>.npz`` for ``cases`` (default: all).

    Parameters
    ----------
    directory : str or path-like
        Created if missing.
    cases : list of FixtureCase or case names, optional
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of Path, in case order.
    """
    known = {c.name: c for c in fixture_catalogue()}
    selected = []
    for case in known.values() if cases is None else cases:
        if isinstance(case, str):
            if case not in known:
                raise ValueError(
                    f"cases: unknown case {case!r}; see fixture_catalogue() for the names"
                )
            case = known[case]
        if not isinstance(case, FixtureCase):
            raise TypeError(f"cases: expected FixtureCase or name, got {type(case).__name__}")
        selected.append(case)
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in selected:
        model, theta, X, y = case.build()
        spec = {"case": case.name, "seed": case.seed, "batch_size": case.batch_size}
        paths.append(
            write_fixture(
                out_dir / f"{case.name}.npz",
                model,
                theta,
                X,
                y,
                loss=case.loss,
                reduction=case.reduction,
                density_grid=case.density_points,
                density_sigma=case.density_sigma,
                extra_spec=spec,
                overwrite=overwrite,
            )
        )
    return paths
