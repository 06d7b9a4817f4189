"""PyTorch ``nn.Sequential`` state dicts (``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...)
to and from ``(MLP, θ)``, without importing torch.

hessref's flat θ is PyTorch's ``parameters_to_vector`` order for
``nn.Sequential(Linear, act, ..., Linear)``, so these maps only rename and reshape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.mlp import MLP
from hessref.core.problem import check_model, check_theta
from hessref.core.validation import as_float_array, check_positive_int

Array = NDArray[np.float64]

_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


def _to_numpy(key: str, value: Any) -> Array:
    """Duck-typed tensor → float64 ndarray: ``detach().cpu().numpy()``, ``.numpy()`` or asarray."""
    if hasattr(value, "detach") and callable(value.detach):
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
    if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
        value = value.numpy()
    return as_float_array(f"state_dict[{key!r}]", value)


def from_state_dict(
    state_dict: Mapping[str, Any], activation: str, *, prefix: str = ""
) -> tuple[MLP, Array]:
    """Build ``(MLP, θ)`` from arrays named like a PyTorch ``nn.Sequential`` state dict.

    Parameters
    ----------
    state_dict : mapping of str to array-like
        Keys ``"<k>.weight"`` (shape (out, in)) and ``"<k>.bias"`` (shape (out,)) with
        integer module indices k in increasing order (any step: 0, 2, 4, ... for
        Linear/activation alternation). Values may be NumPy arrays, torch tensors
        (``.detach().cpu().numpy()`` is called, torch is never imported) or anything
        ``np.asarray`` accepts; they are converted to float64.
    activation : str
        Hidden activation (a state dict does not record it).
    prefix : str
        Only keys starting with ``prefix`` are read, with it removed (e.g. ``"net."``
        or a fixture's ``"state_dict/"``); other keys are ignored.

    Returns
    -------
    model : MLP
    theta : ndarray, shape (P,)

    Raises
    ------
    ValueError
        An unexpected key, a weight without its bias (or vice versa), a non-2-D weight,
        a bias of the wrong length or layers whose shapes do not chain; the message
        names the key.

    Examples
    --------
    >>> import numpy as np
    >>> sd = {"0.weight": np.ones((3, 2)), "0.bias": np.zeros(3),
    ...       "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)}
    >>> model, theta = from_state_dict(sd, "relu")
    >>> model, theta.shape
    (MLP([2, 3, 1], activation='relu'), (13,))
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict: expected a mapping of names to arrays, got {type(state_dict).__name__}"
        )
    entries = _layer_entries(state_dict, prefix)
    params, sizes = [], []
    for k in sorted(entries):
        for part in ("weight", "bias"):
            if part not in entries[k]:
                raise ValueError(
                    f"state_dict: missing key {prefix}{k}.{part!s} (every nn.Linear needs "
                    "both weight and bias; hessref models always have biases)"
                )
        wkey, W = entries[k]["weight"]
        bkey, b = entries[k]["bias"]
        W, b = _to_numpy(wkey, W), _to_numpy(bkey, b)
        if W.ndim != 2:
            raise ValueError(
                f"state_dict[{wkey!r}]: expected a 2-D (out, in) weight, got shape {W.shape}"
            )
        if b.shape != (W.shape[0],):
            raise ValueError(
                f"state_dict[{bkey!r}]: expected shape ({W.shape[0]},) to match "
                f"{wkey!r} of shape {W.shape}, got {b.shape}"
            )
        if sizes and W.shape[1] != sizes[-1]:
            raise ValueError(
                f"state_dict[{wkey!r}]: expected {sizes[-1]} input features (the previous "
                f"layer's output), got weight shape {W.shape}"
            )
        if not sizes:
            sizes.append(W.shape[1])
        sizes.append(W.shape[0])
        params.append((W, b))
    model = MLP(sizes, activation=activation)
    return model, model.flatten(params)


def _layer_entries(
    state_dict: Mapping[str, Any], prefix: str
) -> dict[int, dict[str, tuple[str, Any]]]:
    """Module index k → {"weight"/"bias": (full key, value)} of the keys under ``prefix``."""
    entries: dict[int, dict[str, tuple[str, Any]]] = {}
    for full_key, value in state_dict.items():
        if not isinstance(full_key, str):
            raise TypeError(f"state_dict: keys must be strings, got {full_key!r}")
        if not full_key.startswith(prefix):
            continue  # outside the selected prefix (only possible when prefix != "")
        key = full_key[len(prefix) :]
        m = _KEY.match(key)
        if m is None:
            raise ValueError(
                f"state_dict: unexpected key {full_key!r}; expected '<index>.weight' and "
                f"'<index>.bias' of an nn.Sequential of nn.Linear layers (prefix={prefix!r})"
            )
        entries.setdefault(int(m.group(1)), {})[m.group(2)] = (full_key, value)
    if not entries:
        raise ValueError(
            f"state_dict: no '<index>.weight'/'<index>.bias' entries found (prefix={prefix!r})"
        )
    return entries


def from_npz(path: str, activation: str, *, prefix: str = "") -> tuple[MLP, Array]:
    """:func:`from_state_dict` on the arrays of an ``.npz`` file (loaded without pickle)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return from_state_dict(arrays, activation, prefix=prefix)


def to_state_dict(model: MLP, theta: ArrayLike, *, index_step: int = 2) -> dict[str, Array]:
    """θ as a PyTorch ``nn.Sequential`` state dict of NumPy arrays (copies).

    Keys ``"{k}.weight"`` (d_l, d_{l-1}) and ``"{k}.bias"`` (d_l,) with k = index_step·(l−1):
    the default 2 matches ``nn.Sequential(nn.Linear, act, nn.Linear, act, ..., nn.Linear)``.
    Load into torch with ``{k: torch.from_numpy(v) for k, v in sd.items()}``.

    Examples
    --------
    >>> model = MLP([2, 3, 1]); sd = to_state_dict(model, model.init(rng=0))
    >>> {k: v.shape for k, v in sd.items()}
    {'0.weight': (3, 2), '0.bias': (3,), '2.weight': (1, 3), '2.bias': (1,)}
    """
    model = check_model(model)
    theta = check_theta(model, theta)
    step = check_positive_int("index_step", index_step)
    out = {}
    for l, (W, b) in enumerate(model.unflatten(theta), start=1):
        k = step * (l - 1)
        out[f"{k}.weight"] = W.copy()
        out[f"{k}.bias"] = b.copy()
    return out
