"""Other tools' parameter layouts and loss scalings, and exact maps to and from hessref's.

hessref's flat layout is PyTorch's : θ = [W_1.ravel(), b_1, W_2.ravel(), ...]
with W_l of shape (d_l, d_{l-1}) row-major, and L = s Σ_i ℓ_i with ℓ = ½‖f − y‖² (MSE)
or −log softmax(f)_y, s = 1/N ("mean") or 1 ("sum"). Peer tools differ in four
independent ways, each a field of :class:`Convention`:

- ``param_order``: the order of the 2L tensors in their flat vector;
- ``weight_layout``: W stored (out, in) like PyTorch, or (in, out) like flax kernels
  and Sagun's code, so W_l[o, i] sits at i·d_l + o inside its block;
- ``include_biases``: loss-landscape style tools drop every 1-D parameter;
- ``reduction`` and ``loss_scale``: the scalar their loss is, relative to hessref's.

A layout change is a permutation (plus a selection when biases are dropped):
``perm = permutation(model, convention)`` has one entry per flat index of *their*
vector, ``perm[j]`` being the hessref index stored there. So::

    v_theirs = v[perm]                      M_theirs = M[np.ix_(perm, perm)]
    v[perm] = v_theirs                      M[np.ix_(perm, perm)] = M_theirs

which is what :func:`to_convention` and :func:`from_convention` do. Scalings are
separate (:func:`loss_factor`) because they depend on the quantity: the loss, its
gradient, H, G and R are linear in the loss (multiply by ``loss_factor``), the
Jacobian does not depend on it, and an empirical Fisher is quadratic in it.

PyTorch ``nn.Sequential`` state dicts (``"0.weight"``, ``"0.bias"``, ...) are converted
by :mod:`hessref.oracle.state_dict`; its functions are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.losses import REDUCTIONS, get_loss, reduction_scale
from hessref.core.mlp import MLP
from hessref.core.problem import check_model
from hessref.core.validation import as_float_array, check_choice, check_positive_int

# re-exported: these lived here in 0.1
from hessref.oracle.state_dict import from_npz as from_npz
from hessref.oracle.state_dict import from_state_dict as from_state_dict
from hessref.oracle.state_dict import to_state_dict as to_state_dict

Array = NDArray[np.float64]

PARAM_ORDERS = ("torch", "weights_then_biases", "sorted_names")
WEIGHT_LAYOUTS = ("out_in", "in_out")


@dataclass(frozen=True)
class Convention:
    """How another tool lays out parameters and scales its loss.

    Attributes
    ----------
    name : str
        Short label used in reports.
    param_order : str or tuple of str
        ``"torch"``: W1, b1, W2, b2, ... (registration order, hessref's);
        ``"weights_then_biases"``: W1, ..., WL, b1, ..., bL;
        ``"sorted_names"``: the tensor names (``weight_name``/``bias_name`` formatted)
        sorted as Python strings, which is how autograd's ``flatten`` and JAX pytrees
        order dict keys (so ``"W10"`` comes before ``"W2"``; use ``"/"`` between the
        levels of nested dicts, it sorts before every letter and digit);
        or an explicit tuple of hessref names (``"W1"``, ``"b1"``, ...) in their order.
    weight_layout : {"out_in", "in_out"}
        Each weight block flattened from W_l (d_l, d_{l-1}) (``"out_in"``, PyTorch) or
        from W_lᵀ (d_{l-1}, d_l) (``"in_out"``, flax ``Dense`` kernels, Sagun's code).
    include_biases : bool
        False for tools that skip biases (loss-landscape): their vectors have only the
        P_w = Σ_l d_l d_{l-1} weight entries and their matrices are the weight sub-block.
    reduction : {"mean", "sum"}
        Their per-sample weight s': 1/N or 1.
    loss_scale : float or "torch_mse"
        Their per-sample loss is ``loss_scale · ℓ_i``. ``"torch_mse"`` means
        ``nn.MSELoss``: (f − y)² summed (``"sum"``) or averaged (``"mean"``) over the
        d_L outputs, i.e. 2 (sum) or 2/d_L (mean) times ½‖f − y‖² for MSE, and 1 for
        cross-entropy (``nn.CrossEntropyLoss`` is hessref's ℓ).
    weight_name, bias_name : str
        ``str.format`` templates naming layer tensors, with fields ``l`` (1-based layer),
        ``i`` (0-based layer) and ``t`` (index 2(l−1) of the Linear in an
        ``nn.Sequential`` alternating Linear and activation modules).
    description : str
        Free text (which tool, caveats).
    """

    name: str
    param_order: str | tuple[str, ...] = "torch"
    weight_layout: str = "out_in"
    include_biases: bool = True
    reduction: str = "mean"
    loss_scale: float | str = 1.0
    weight_name: str = "W{l}"
    bias_name: str = "b{l}"
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.param_order, str):
            check_choice("param_order", self.param_order, PARAM_ORDERS)
        elif not (
            isinstance(self.param_order, tuple)
            and all(isinstance(n, str) for n in self.param_order)
        ):
            raise TypeError(
                f"param_order: expected one of {PARAM_ORDERS} or a tuple of tensor names "
                f"like ('W1', 'b1', ...), got {self.param_order!r}"
            )
        check_choice("weight_layout", self.weight_layout, WEIGHT_LAYOUTS)
        check_choice("reduction", self.reduction, REDUCTIONS)
        if isinstance(self.loss_scale, str):
            check_choice("loss_scale", self.loss_scale, ("torch_mse",))
        elif not (
            isinstance(self.loss_scale, (int, float))
            and not isinstance(self.loss_scale, bool)
            and np.isfinite(self.loss_scale)
            and self.loss_scale > 0
        ):
            raise ValueError(
                f"loss_scale: expected a positive finite number or 'torch_mse', "
                f"got {self.loss_scale!r}"
            )
        if not isinstance(self.include_biases, bool):
            raise TypeError(f"include_biases: expected a bool, got {self.include_biases!r}")
        for name in ("weight_name", "bias_name"):
            template = getattr(self, name)
            try:
                template.format(l=1, i=0, t=0)
            except (AttributeError, KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"{name}: expected a str.format template with fields l, i, t "
                    f"(e.g. 'W{{l}}' or '{{t}}.weight'), got {template!r} ({exc})"
                ) from None

    def summary(self) -> str:
        """One line describing the convention, e.g. for fixture metadata."""
        order = self.param_order if isinstance(self.param_order, str) else "explicit"
        return (
            f"{self.name}: order={order}, weights {self.weight_layout}, "
            f"biases {'included' if self.include_biases else 'excluded'}, "
            f"reduction={self.reduction}, loss_scale={self.loss_scale}"
        )


_TORCH_NAMES = {"weight_name": "{t}.weight", "bias_name": "{t}.bias"}

CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("hessref", description="hessref itself: the identity map"),
        Convention(
            "torch",
            loss_scale="torch_mse",
            **_TORCH_NAMES,
            description=(
                "PyTorch nn.Sequential + parameters_to_vector with nn.MSELoss / "
                "nn.CrossEntropyLoss (also curvlinops, PyHessian, BackPACK, "
                "hessian-eigenthings, torch.func on the flat vector)"
            ),
        ),
        Convention(
            "autograd_list",
            description="autograd flatten of a list [(W1, b1), ...] with W (out, in)",
        ),
        Convention(
            "autograd_dict",
            param_order="sorted_names",
            description=(
                "autograd flatten of a dict {'W1', 'b1', ...}: keys sorted as strings, "
                "so W1, W10, W11, W2, ..., b1, b10, ... (W (out, in))"
            ),
        ),
        Convention(
            "jax_dict",
            param_order="sorted_names",
            description="JAX pytree of a dict {'W1', 'b1', ...} (keys sorted, W (out, in))",
        ),
        Convention(
            "jax_flax",
            param_order="sorted_names",
            weight_layout="in_out",
            weight_name="Dense_{i}/kernel",
            bias_name="Dense_{i}/bias",
            description=(
                "flax.linen Dense layers Dense_0, Dense_1, ...: pytree keys sorted "
                "(Dense_10 before Dense_2; bias before kernel), kernel (in, out)"
            ),
        ),
        Convention(
            "sagun",
            weight_layout="in_out",
            description="Sagun's hessian-for-basicDL: list of (W, b) with W (in, out)",
        ),
        Convention(
            "loss_landscape",
            include_biases=False,
            **_TORCH_NAMES,
            description=(
                "loss-landscape Hessian eigenvalues: torch order without biases (every "
                "parameter with ndim <= 1 skipped); its per-batch sum of mean-loss HVPs "
                "is an extra factor (number of batches) not modelled here"
            ),
        ),
    )
}


def get_convention(convention: Convention | str) -> Convention:
    """Return ``convention`` itself, or the preset ``CONVENTIONS[convention]``.

    Raises
    ------
    ValueError
        Unknown preset name (the message lists them).
    TypeError
        Neither a :class:`Convention` nor a string.
    """
    if isinstance(convention, Convention):
        return convention
    if isinstance(convention, str):
        if convention not in CONVENTIONS:
            valid = ", ".join(repr(n) for n in CONVENTIONS)
            raise ValueError(f"convention: unknown preset {convention!r}; expected one of {valid}")
        return CONVENTIONS[convention]
    raise TypeError(
        f"convention: expected a hessref.oracle.conventions.Convention or a preset name, "
        f"got {type(convention).__name__}"
    )


def tensor_names(model: MLP, convention: Convention | str = "hessref") -> dict[str, str]:
    """Map hessref tensor names (``"W1"``, ``"b1"``, ...) to the convention's names.

    Examples
    --------
    >>> tensor_names(MLP([2, 3, 1]), "torch")
    {'W1': '0.weight', 'b1': '0.bias', 'W2': '2.weight', 'b2': '2.bias'}
    """
    model, conv = check_model(model), get_convention(convention)
    out = {}
    for l in range(1, model.num_layers + 1):
        fields = {"l": l, "i": l - 1, "t": 2 * (l - 1)}
        out[f"W{l}"] = conv.weight_name.format(**fields)
        out[f"b{l}"] = conv.bias_name.format(**fields)
    return out


def _tensor_order(model: MLP, conv: Convention) -> list[str]:
    """The hessref names of the tensors the convention stores, in its order."""
    names = model.parameter_names()
    if not conv.include_biases:
        names = [n for n in names if n.startswith("W")]
    if conv.param_order == "torch":
        return names
    if conv.param_order == "weights_then_biases":
        return [n for n in names if n[0] == "W"] + [n for n in names if n[0] == "b"]
    if conv.param_order == "sorted_names":
        theirs = tensor_names(model, conv)
        if len(set(theirs.values())) != len(theirs):
            raise ValueError(
                f"convention {conv.name!r}: weight_name/bias_name give duplicate names "
                f"{sorted(theirs.values())}; sorting needs distinct names"
            )
        return sorted(names, key=lambda n: theirs[n])
    order = list(conv.param_order)
    if sorted(order) != sorted(names):
        raise ValueError(
            f"convention {conv.name!r}: param_order must list each of {names} exactly once "
            f"for {model!r}, got {order}"
        )
    return order


def permutation(model: MLP, convention: Convention | str) -> NDArray[np.int64]:
    """Indices mapping hessref's flat order to another tool's.

    Parameters
    ----------
    model : MLP
    convention : Convention or preset name

    Returns
    -------
    perm : ndarray of int64, shape (P',)
        ``perm[j]`` is the hessref flat index stored at their flat index j; P' = P,
        or P_w = Σ_l d_l d_{l-1} when the convention excludes biases. ``v[perm]`` is
        hessref's vector in their order.

    Examples
    --------
    (in, out) storage of a 2×3 weight: their index i·d_out + o holds W[o, i] = θ[o·3 + i].

    >>> permutation(MLP([3, 2], activation="identity"), "sagun")
    array([0, 3, 1, 4, 2, 5, 6, 7])
    """
    model, conv = check_model(model), get_convention(convention)
    blocks = []
    for name in _tensor_order(model, conv):
        l = int(name[1:])
        if name[0] == "b":
            s = model.bias_slice(l)
            blocks.append(np.arange(s.start, s.stop))
            continue
        s = model.weight_slice(l)
        idx = np.arange(s.start, s.stop).reshape(model.sizes[l], model.sizes[l - 1])
        blocks.append((idx.T if conv.weight_layout == "in_out" else idx).ravel())
    return np.concatenate(blocks).astype(np.int64)


def _resolve_axes(name: str, A: Array, P: int, axes: Sequence[int] | None) -> tuple[int, ...]:
    if axes is None:
        if A.ndim == 1 or (A.ndim == 2 and A.shape[0] == A.shape[1]):
            axes = tuple(range(A.ndim))
        else:
            raise ValueError(
                f"{name}: expected a vector (P,) or a matrix (P, P), got shape {A.shape}; "
                "pass axes=(-1,) (e.g. for per-sample gradients (N, P) or a Jacobian "
                "(N, d_L, P)) to say which axes are parameter axes"
            )
    try:
        axes = tuple(sorted({int(a) % A.ndim for a in axes}))
    except (TypeError, ZeroDivisionError):
        raise ValueError(f"axes: expected a sequence of axis indices, got {axes!r}") from None
    for a in axes:
        if A.shape[a] != P:
            raise ValueError(
                f"{name}: expected length {P} along parameter axis {a}, got shape {A.shape}"
            )
    return axes


def to_convention(
    model: MLP, A: ArrayLike, convention: Convention | str, *, axes: Sequence[int] | None = None
) -> Array:
    """Re-order (and, without biases, restrict) a hessref vector or matrix into a convention.

    Parameters
    ----------
    model : MLP
    A : array_like
        Shape (P,) or (P, P) in hessref's layout; other shapes with ``axes``.
    convention : Convention or preset name
    axes : sequence of int, optional
        Parameter axes of ``A``; default: every axis of a vector or square matrix.

    Returns
    -------
    ndarray
        ``A`` indexed by :func:`permutation` along each parameter axis (a new array):
        ``v[perm]`` or ``M[np.ix_(perm, perm)]``. No loss scaling is applied (see
        :func:`loss_factor`).

    Examples
    --------
    >>> import numpy as np
    >>> model = MLP([3, 2], activation="identity")
    >>> to_convention(model, np.arange(8.0), "loss_landscape")
    array([0., 1., 2., 3., 4., 5.])
    """
    model, conv = check_model(model), get_convention(convention)
    A = as_float_array("A", A)
    axes = _resolve_axes("A", A, model.num_params, axes)
    perm = permutation(model, conv)
    for a in axes:
        A = np.take(A, perm, axis=a)
    return A


def from_convention(
    model: MLP,
    A: ArrayLike,
    convention: Convention | str,
    *,
    fill: float | None = None,
    axes: Sequence[int] | None = None,
) -> Array:
    """Inverse of :func:`to_convention`: their vector or matrix back in hessref's layout.

    Parameters
    ----------
    model : MLP
    A : array_like
        Shape (P',) or (P', P') in their layout (P' = P, or P_w without biases).
    convention : Convention or preset name
    fill : float, optional
        Value for the entries a bias-excluding convention does not carry (use 0.0 or
        ``np.nan``). Required in that case, because the missing entries are unknown:
        without it a ``ValueError`` is raised.
    axes : sequence of int, optional
        Parameter axes of ``A`` (default: every axis of a vector or square matrix).

    Returns
    -------
    ndarray
        Shape (P,) or (P, P) (P along each parameter axis), hessref's layout.
    """
    model, conv = check_model(model), get_convention(convention)
    perm = permutation(model, conv)
    A = as_float_array("A", A)
    axes = _resolve_axes("A", A, perm.size, axes)
    P = model.num_params
    if perm.size < P and fill is None:
        raise ValueError(
            f"fill: convention {conv.name!r} excludes biases, so {P - perm.size} of the "
            f"P = {P} hessref entries are unknown; pass fill=0.0 or fill=np.nan, or compare "
            "in their layout with to_convention(model, reference, convention)"
        )
    out_shape = tuple(P if a in axes else n for a, n in enumerate(A.shape))
    out = np.full(out_shape, np.nan if fill is None else float(fill))
    index = tuple(
        perm.reshape([-1 if b == a else 1 for b in axes]) if a in axes else slice(None)
        for a in range(A.ndim)
    )
    # one parameter axis: index is (..., perm, ...); two: np.ix_-style broadcast pair
    out[index] = A
    return out


def loss_factor(
    model: MLP,
    loss: str,
    convention: Convention | str,
    *,
    num_samples: int,
    reduction: str = "mean",
) -> float:
    """Factor c with L_theirs(θ) = c · L_hessref(θ; reduction).

    Their loss is L' = s' Σ_i c_ℓ ℓ_i (c_ℓ from ``loss_scale``, s' from their
    reduction), hessref's is L = s Σ_i ℓ_i, so c = c_ℓ s'/s. The same c maps the
    gradient, H, G and R (all linear in the loss); use :func:`per_sample_factor`
    c_ℓ for per-sample gradients and s' c_ℓ² Σ g_i g_iᵀ for an empirical Fisher.

    Examples
    --------
    ``nn.MSELoss()`` is 2/d_L times hessref's mean MSE; summed over N = 5 samples
    it is N · 2 times the mean:

    >>> import dataclasses
    >>> model = MLP([3, 4], activation="identity")
    >>> loss_factor(model, "mse", "torch", num_samples=5)
    0.5
    >>> torch_sum = dataclasses.replace(CONVENTIONS["torch"], reduction="sum")
    >>> loss_factor(model, "mse", torch_sum, num_samples=5)
    10.0
    """
    conv = get_convention(convention)
    check_choice("reduction", reduction, REDUCTIONS)
    N = check_positive_int("num_samples", num_samples)
    their_s = reduction_scale(conv.reduction, N)
    return per_sample_factor(model, loss, conv) * their_s / reduction_scale(reduction, N)


def per_sample_factor(model: MLP, loss: str, convention: Convention | str) -> float:
    """c_ℓ: their per-sample loss divided by hessref's ℓ_i (see :class:`Convention`)."""
    model, conv = check_model(model), get_convention(convention)
    get_loss(loss)
    if conv.loss_scale == "torch_mse":
        if loss != "mse":
            return 1.0
        # nn.MSELoss: Σ_c (f_c − y_c)² = 2ℓ (sum) or its mean over d_L outputs (mean)
        return 2.0 / model.sizes[-1] if conv.reduction == "mean" else 2.0
    return float(conv.loss_scale)


def torch_module_spec(torch_name: str) -> tuple[str, dict[str, float]]:
    """Split an activation's ``torch_name`` into the ``torch.nn`` class and its keyword arguments.

    ``"Tanh"`` → ``("Tanh", {})``; ``"Softplus(threshold=inf)"`` → ``("Softplus",
    {"threshold": inf})``, so ``getattr(nn, name)(**kwargs)`` builds the matching module
    (hessref's exact softplus has no threshold; ``nn.Softplus()`` is ``softplus_torch``).

    Examples
    --------
    >>> from hessref.core.activations import get_activation
    >>> torch_module_spec(get_activation("softplus").torch_name)
    ('Softplus', {'threshold': inf})
    >>> torch_module_spec(get_activation("softplus_torch").torch_name)
    ('Softplus', {})
    """
    if not isinstance(torch_name, str) or not torch_name:
        raise TypeError(f"torch_name: expected a non-empty str, got {torch_name!r}")
    name, _, rest = torch_name.partition("(")
    kwargs = {}
    for item in filter(None, (p.strip() for p in rest.rstrip(")").split(","))):
        key, _, value = item.partition("=")
        kwargs[key.strip()] = float(value)
    return name.strip(), kwargs
