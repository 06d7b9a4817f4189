"""Elementwise activations with their first and second derivatives.

Each activation is defined in one place as the triple (σ, σ′, σ″) so that the
forward pass, backprop (σ′) and the Pearlmutter R-op (σ″, docs/theory.md §6) can
never disagree; the formulas are equations (2.1)-(2.8) of docs/theory.md §2.
All functions are stable for |z| up to 1e4 and beyond:
sigmoid-type terms use ``scipy.special.expit``, softplus uses ``logaddexp``,
and GELU uses the exact erf form via the normal CDF ``ndtr``.

ReLU and leaky ReLU are not differentiable at 0; hessref uses the convention
σ′(0) = 0 (ReLU; ``LEAKY_RELU_SLOPE`` for leaky ReLU) and σ″ = 0 everywhere, which is
what PyTorch's autograd does. Identities that depend on σ″ = 0 (docs/theory.md,
equation (5.5)) hold only away from the kinks.

``softplus`` is the exact log(1 + eᶻ); ``softplus_torch`` is PyTorch's ``nn.Softplus``
(threshold 20), which is z itself above 20. The two differ by < 2.1e-9 there, enough to
fail a 1e-10 comparison of Hessians when pre-activations exceed 20. So only
``softplus_torch`` has ``torch_name = "Softplus"``; exact softplus has no ``torch.nn``
module without a threshold, and its ``torch_name`` ``"Softplus(threshold=inf)"`` says so
(the constructor call that matches it in float64 up to overflow of eᶻ above ~709; parse
it with ``hessref.oracle.conventions.torch_module_spec``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, ndtr

Array = NDArray[np.float64]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)
LEAKY_RELU_SLOPE = 0.01  # PyTorch's nn.LeakyReLU default negative_slope
SOFTPLUS_TORCH_THRESHOLD = 20.0  # PyTorch's nn.Softplus default threshold


@dataclass(frozen=True)
class Activation:
    """An elementwise activation σ with its derivatives σ′ and σ″.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"tanh"``.
    f, df, d2f : callable
        σ(z), σ′(z) and σ″(z); each maps a float64 array to one of the same shape.
    smooth : bool
        True when σ is C² everywhere (finite-difference checks are valid).
    positively_homogeneous : bool
        True when σ(cz) = cσ(z) for c > 0 (ReLU rescaling symmetry, docs/theory.md (9.1)).
    torch_name : str
        The equivalent ``torch.nn`` module (``"Tanh"``), or its constructor call when the
        defaults differ (``"Softplus(threshold=inf)"``), for documentation and converters.
    """

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]
    d2f: Callable[[Array], Array]
    smooth: bool
    positively_homogeneous: bool
    torch_name: str


def _identity(z: Array) -> Array:
    return z


def _ones(z: Array) -> Array:
    return np.ones_like(z)


def _zeros(z: Array) -> Array:
    return np.zeros_like(z)


def _sech2(z: Array) -> Array:
    # sech²(z) = 4 e^{-2|z|} / (1 + e^{-2|z|})²: no overflow, and no cancellation of
    # 1 - tanh² (which loses all relative accuracy once tanh(z) rounds towards ±1)
    e = np.exp(-2.0 * np.abs(z))
    return 4.0 * e / (1.0 + e) ** 2


def _tanh_d1(z: Array) -> Array:
    return _sech2(z)


def _tanh_d2(z: Array) -> Array:
    return -2.0 * np.tanh(z) * _sech2(z)


def _sigmoid_d1(z: Array) -> Array:
    # s(1 - s) written as s(z) s(-z): no cancellation for large |z|
    return expit(z) * expit(-z)


def _sigmoid_d2(z: Array) -> Array:
    # s(1 - s)(1 - 2s) with 1 - 2s = -tanh(z/2), which keeps relative accuracy near z = 0
    return -expit(z) * expit(-z) * np.tanh(0.5 * z)


def _relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


def _relu_d1(z: Array) -> Array:
    return (z > 0).astype(np.float64)


def _leaky_relu(z: Array) -> Array:
    return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)


def _leaky_relu_d1(z: Array) -> Array:
    return np.where(z > 0, 1.0, LEAKY_RELU_SLOPE)


def _softplus(z: Array) -> Array:
    return np.logaddexp(0.0, z)


def _softplus_d2(z: Array) -> Array:
    return expit(z) * expit(-z)


def _softplus_torch(z: Array) -> Array:
    # PyTorch's nn.Softplus(beta=1, threshold=20): linear above the threshold
    return np.where(z > SOFTPLUS_TORCH_THRESHOLD, z, np.logaddexp(0.0, z))


def _softplus_torch_d1(z: Array) -> Array:
    return np.where(z > SOFTPLUS_TORCH_THRESHOLD, 1.0, expit(z))


def _softplus_torch_d2(z: Array) -> Array:
    return np.where(z > SOFTPLUS_TORCH_THRESHOLD, 0.0, expit(z) * expit(-z))


def _gaussian_pdf(z: Array) -> Array:
    return _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def _gelu(z: Array) -> Array:
    # exact GELU: z Φ(z) (PyTorch's approximate="none")
    return z * ndtr(z)


def _gelu_d1(z: Array) -> Array:
    return ndtr(z) + z * _gaussian_pdf(z)


def _gelu_d2(z: Array) -> Array:
    # d/dz [Φ + zφ] = φ + φ + z(-zφ) = φ (2 - z²)
    return _gaussian_pdf(z) * (2.0 - z * z)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", _identity, _ones, _zeros, True, True, "Identity"),
        Activation("tanh", np.tanh, _tanh_d1, _tanh_d2, True, False, "Tanh"),
        Activation("sigmoid", expit, _sigmoid_d1, _sigmoid_d2, True, False, "Sigmoid"),
        Activation("relu", _relu, _relu_d1, _zeros, False, True, "ReLU"),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_d1, _zeros, False, True, "LeakyReLU"),
        # no nn module is exact softplus; nn.Softplus() itself is softplus_torch (threshold 20)
        Activation(
            "softplus", _softplus, expit, _softplus_d2, True, False, "Softplus(threshold=inf)"
        ),
        Activation("gelu", _gelu, _gelu_d1, _gelu_d2, True, False, "GELU"),
        Activation(
            "softplus_torch",
            _softplus_torch,
            _softplus_torch_d1,
            _softplus_torch_d2,
            False,
            False,
            "Softplus",
        ),
    )
}


def get_activation(name: str) -> Activation:
    """Return the registered activation called ``name``.

    Parameters
    ----------
    name : str
        One of ``ACTIVATIONS`` (identity, tanh, sigmoid, relu, leaky_relu, softplus, gelu,
        softplus_torch).

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the valid names.

    Examples
    --------
    >>> import numpy as np
    >>> get_activation("gelu").d2f(np.array([0.0]))  # 2 φ(0)
    array([0.79788456])
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"activation: unknown activation {name!r}; expected one of: {valid}")
    return ACTIVATIONS[name]
