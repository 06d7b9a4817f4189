"""Self-describing reference fixture files (``.npz``) and how to read them back.

:func:`write_fixture` stores a bundle (:func:`hessref.oracle.bundles.reference_bundle`)
with everything needed to recompute it (spec, θ, X, y, the torch-named state dict,
layout maps) in a ``.npz`` that plain ``np.load(path, allow_pickle=False)`` reads, so a
PyTorch or JAX project can test against it in its own CI without installing hessref;
:func:`load_fixture` reads one back.

Determinism: the writer computes single-threaded and writes the zip archive with fixed
timestamps, sorted entries and no compression, so regenerating a fixture with the same
hessref, NumPy and SciPy builds gives identical arrays *and* identical file bytes.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from hessref.core.mlp import MLP
from hessref.oracle.bundles import ReferenceBundle, reference_bundle
from hessref.oracle.conventions import (
    CONVENTIONS,
    Convention,
    loss_factor,
    permutation,
    to_state_dict,
)

FIXTURE_FORMAT = "hessref-oracle-fixture"
FIXTURE_FORMAT_VERSION = 1


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
    """Every archive entry: inputs and layout, the quantities, and the metadata JSON."""
    arrays = _input_arrays(bundle)
    for name, value in bundle.quantities().items():
        key = {
            "density_grid": "density/grid",
            "density_sigma": "density/sigma",
            "density_H": "density/H",
            "density_G": "density/G",
        }.get(name, name)
        arrays[key] = np.asarray(value, dtype=np.float64)
    meta = _metadata(bundle, extra_spec, sorted([*arrays, "metadata"]))
    arrays["metadata"] = np.str_(json.dumps(meta, sort_keys=True, indent=1))
    return arrays


def _input_arrays(bundle: ReferenceBundle) -> dict[str, Any]:
    """Spec, θ, X, y, layout, torch state dict, loss factor and permutations."""
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
    return arrays


def _metadata(bundle: ReferenceBundle, extra_spec: dict[str, Any], keys: list[str]) -> dict:
    """The JSON metadata: format, versions, spec, layout, conventions, formulas, keys."""
    model, N = bundle.model, bundle.X.shape[0]
    return {
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
        "keys": keys,
    }


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
