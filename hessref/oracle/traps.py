"""Activation conventions that make an exact comparison fail, named in the failure message.

Other tools implement a few activations differently from hessref (docs/theory.md §2),
and the differences are invisible on most inputs:

- **kinks**: at a pre-activation of exactly 0, JAX's ``leaky_relu`` has slope 1
  (``where(x >= 0, x, slope·x)``) where hessref and PyTorch use the negative slope
  (0.01), and some ReLUs take σ′(0) = 1 where hessref takes 0;
- **GELU**: ``jax.nn.gelu`` defaults to the tanh approximation
  0.5 z (1 + tanh(√(2/π)(z + 0.044715 z³))); hessref's ``gelu`` is the exact z Φ(z)
  (PyTorch's default ``approximate="none"``);
- **softplus**: PyTorch's ``nn.Softplus`` is linear above its threshold 20 (σ′ = 1,
  σ″ = 0 there) and differs from the exact softplus by about e^{-20} ≈ 2e-9: a
  1e-10-level failure that is a convention, not rounding noise (hessref's
  ``softplus_torch`` is PyTorch's).

:func:`explain_traps` recomputes the reference under each alternative that applies to the
problem and adds a note naming the one theirs matches (or, for kinks and large softplus
inputs, that the problem sits on such a point).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from hessref.core.activations import SOFTPLUS_TORCH_THRESHOLD, Activation, get_activation
from hessref.core.mlp import MLP, forward

Array = NDArray[np.float64]

_C = np.sqrt(2.0 / np.pi)
_A = 0.044715


def _gelu_tanh_parts(z: Array) -> tuple[Array, Array, Array]:
    u = _C * (z + _A * z**3)
    return np.tanh(u), _C * (1.0 + 3.0 * _A * z**2), 6.0 * _A * _C * z  # t, u′, u″


def _gelu_tanh(z: Array) -> Array:
    return 0.5 * z * (1.0 + _gelu_tanh_parts(z)[0])


def _gelu_tanh_d1(z: Array) -> Array:
    t, du, _ = _gelu_tanh_parts(z)
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * du


def _gelu_tanh_d2(z: Array) -> Array:
    # d/dz of ½(1 + t) + ½ z (1 − t²) u′, with t′ = (1 − t²) u′
    t, du, d2u = _gelu_tanh_parts(z)
    return (1.0 - t * t) * (du + 0.5 * z * (d2u - 2.0 * t * du * du))


def _slope_one_at_zero(base: Activation) -> Activation:
    """``base`` with σ′(0) = 1 (the kink taken from the right: JAX's leaky_relu)."""
    return Activation(
        f"{base.name} (σ′(0) = 1)",
        base.f,
        lambda z: np.where(z == 0, 1.0, base.df(z)),
        base.d2f,
        False,
        True,
        base.torch_name,
    )


GELU_TANH = Activation(
    "gelu (tanh approximation)", _gelu_tanh, _gelu_tanh_d1, _gelu_tanh_d2, True, False, "GELU"
)


def _with_activation(model: MLP, activation: Activation) -> MLP:
    alt = copy.copy(model)
    alt.activation = activation
    return alt


def _hidden_preactivations(model: MLP, theta: Array, X: Array) -> list[Array]:
    return forward(model, model.unflatten(theta), X).Z[:-1]


def alternatives(model: MLP, theta: Array, X: Array) -> list[tuple[MLP, str, str | None]]:
    """(model with the other tool's activation, what a match means, a hint if none) here."""
    name = model.activation.name
    Z = _hidden_preactivations(model, theta, X)
    out = []
    zeros = sum(int(np.count_nonzero(z == 0)) for z in Z)
    if name in ("relu", "leaky_relu") and zeros:
        hint = (
            f"{zeros} hidden pre-activation(s) are exactly 0 (a kink of {name}): σ′ there is a "
            "convention (hessref: the left slope; JAX's leaky_relu: 1)"
        )
        out.append(
            (
                _with_activation(model, _slope_one_at_zero(model.activation)),
                _kink(name, zeros),
                hint,
            )
        )
    if name == "gelu":
        out.append((_with_activation(model, GELU_TANH), _GELU_TEXT, None))
    above = sum(int(np.count_nonzero(z > SOFTPLUS_TORCH_THRESHOLD)) for z in Z)
    if name in ("softplus", "softplus_torch") and above:
        other = "softplus_torch" if name == "softplus" else "softplus"
        hint = (
            f"{above} hidden pre-activation(s) exceed PyTorch's softplus threshold 20, where "
            "thresholded and exact softplus differ by ~e^-20: not rounding noise"
        )
        out.append((_with_activation(model, get_activation(other)), _softplus(name, above), hint))
    return out


def _kink(name: str, zeros: int) -> str:
    slope = "0.01 (PyTorch's negative_slope)" if name == "leaky_relu" else "0"
    return (
        f"kink convention: {zeros} hidden pre-activation(s) are exactly 0, and theirs matches "
        f"σ′(0) = 1 there (JAX's leaky_relu: where(x >= 0, x, slope·x)) where hessref's "
        f"{name} uses σ′(0) = {slope}; the derivative at a kink is a convention — move the "
        "inputs off the kink or adopt one convention on both sides"
    )


_GELU_TEXT = (
    "GELU convention: theirs matches the tanh approximation 0.5 z (1 + tanh(√(2/π)(z + "
    "0.044715 z³))) (jax.nn.gelu's default approximate=True, nn.GELU(approximate='tanh')); "
    "hessref's gelu is the exact z Φ(z) (nn.GELU(), jax.nn.gelu(approximate=False))"
)


def _softplus(name: str, above: int) -> str:
    if name == "softplus":
        what = (
            "theirs matches PyTorch's thresholded softplus (nn.Softplus, threshold 20: "
            "σ(z) = z, σ′ = 1, σ″ = 0 above it), not hessref's exact softplus"
        )
        fix = "compare with activation='softplus_torch'"
    else:
        what = "theirs matches the exact softplus (no threshold), not PyTorch's thresholded one"
        fix = "compare with activation='softplus'"
    return (
        f"softplus threshold: {above} hidden pre-activation(s) exceed 20 and {what}. "
        f"The difference is ~e^-20 relative: a convention, not rounding noise — do not "
        f"loosen rtol; {fix}"
    )


def explain_traps(
    report, theirs: Array, model: MLP, theta: Array, X: Array, expected_for: Callable
) -> list[str]:
    """Put a note first in ``report.notes`` for each alternative convention theirs matches.

    ``expected_for(alt_model)`` returns the reference recomputed with ``alt_model`` in the
    same kind and convention as the failed comparison. Returns the notes added.
    """
    added, hints = [], []
    for alt, text, hint in alternatives(model, theta, X):
        expected = np.asarray(expected_for(alt), dtype=np.float64)
        bound = report.atol + report.rtol * float(np.abs(expected).max(initial=0.0))
        if expected.shape == theirs.shape and np.abs(theirs - expected).max(initial=0.0) <= bound:
            added.append(text)
        elif hint is not None:
            hints.append(hint)
    report.notes[:0] = added
    report.notes.extend(hints)
    return added + hints
