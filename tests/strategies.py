"""Shared hypothesis strategies: small MLP problems (architecture, activation, loss, data).

A drawn :class:`Case` is a complete, valid input for the dense engine
(``hr.hessian(case.model, case.theta, case.X, case.y, **case.kwargs)``). Sizes are
kept small (depth 1-4, widths 1-8, N <= 12, so P <= 288) because the tests form
dense P×P matrices and their eigendecompositions.

All data are continuous random draws (θ from the PyTorch-default init, optionally
scaled by a continuous factor in [0.2, 3]; X standard normal; MSE targets standard normal), so ReLU pre-activations
are almost surely nonzero; :func:`cases` additionally rejects the (measure-zero)
draws with a hidden pre-activation within ``KINK_MARGIN`` of a kink, because the
piecewise-linear identities of docs/theory.md (5.5) and (9.1) hold only away from kinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import hessref as hr
from hessref.core.mlp import forward

ACTIVATION_NAMES: tuple[str, ...] = tuple(hr.ACTIVATIONS)
#: σ″ = 0 off the kinks: f is piecewise affine in each layer's (W_l, b_l).
PIECEWISE_LINEAR: tuple[str, ...] = ("identity", "relu", "leaky_relu")
#: σ(cz) = cσ(z) for c > 0: one rescaling symmetry per hidden unit (docs/theory.md (9.1)).
POSITIVELY_HOMOGENEOUS: tuple[str, ...] = tuple(
    name for name, act in hr.ACTIVATIONS.items() if act.positively_homogeneous
)
SMOOTH_NONLINEAR: tuple[str, ...] = ("tanh", "sigmoid", "softplus", "gelu")
LOSSES: tuple[str, ...] = ("mse", "cross_entropy")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")
KINK_MARGIN = 1e-8
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
#: multiplier of the PyTorch-default init, drawn from a continuous range
PARAMETER_SCALES = st.floats(min_value=0.2, max_value=3.0, allow_nan=False)


@dataclass(frozen=True)
class Case:
    """One drawn problem: model, parameters, data, loss and reduction."""

    model: hr.MLP
    theta: np.ndarray
    X: np.ndarray
    y: np.ndarray
    loss: str
    reduction: str

    @property
    def kwargs(self) -> dict[str, str]:
        """``loss=`` and ``reduction=`` keywords for the engine's functions."""
        return {"loss": self.loss, "reduction": self.reduction}

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @property
    def scale(self) -> float:
        """s = 1/N (mean) or 1 (sum): L = s Σ_i ℓ_i."""
        return 1.0 / self.N if self.reduction == "mean" else 1.0

    def __repr__(self) -> str:  # shown by hypothesis on failure
        return (
            f"Case({self.model!r}, loss={self.loss!r}, reduction={self.reduction!r}, "
            f"N={self.N}, |theta|={np.linalg.norm(self.theta):.3g})"
        )


def hidden_preactivations(model: hr.MLP, theta: np.ndarray, X: np.ndarray) -> list[np.ndarray]:
    """Z_l for the hidden layers l = 1..L-1."""
    return forward(model, model.unflatten(theta), X).Z[:-1]


def away_from_kinks(model: hr.MLP, theta: np.ndarray, X: np.ndarray) -> bool:
    """True when every hidden pre-activation is at least KINK_MARGIN away from 0."""
    return all(np.min(np.abs(Z)) > KINK_MARGIN for Z in hidden_preactivations(model, theta, X))


@st.composite
def architectures(
    draw: st.DrawFn,
    *,
    min_depth: int = 1,
    max_depth: int = 4,
    max_width: int = 8,
    min_outputs: int = 1,
    max_outputs: int | None = None,
) -> list[int]:
    """Layer sizes [d_0, ..., d_L] with L in [min_depth, max_depth] and widths in 1..max_width."""
    depth = draw(st.integers(min_depth, max_depth))
    widths = draw(st.lists(st.integers(1, max_width), min_size=depth, max_size=depth))
    k = draw(st.integers(min_outputs, max_outputs or max_width))
    return [*widths, k]


@st.composite
def cases(
    draw: st.DrawFn,
    *,
    losses: tuple[str, ...] = LOSSES,
    activations: tuple[str, ...] = ACTIVATION_NAMES,
    reductions: tuple[str, ...] = REDUCTIONS,
    min_depth: int = 1,
    max_depth: int = 4,
    max_width: int = 8,
    min_samples: int = 1,
    max_samples: int = 12,
    balanced_classes: bool = False,
) -> Case:
    """A random small problem.

    Parameters
    ----------
    balanced_classes : bool
        Cross-entropy only: N = C·n_c with every one of the C = d_L classes present
        exactly n_c times (Papyan's balanced setting, docs/theory.md §10).
    """
    loss = draw(st.sampled_from(losses))
    activation = draw(st.sampled_from(activations))
    reduction = draw(st.sampled_from(reductions))
    min_outputs = 2 if loss == "cross_entropy" else 1
    sizes = draw(
        architectures(
            min_depth=min_depth, max_depth=max_depth, max_width=max_width, min_outputs=min_outputs
        )
    )
    k = sizes[-1]
    if balanced_classes:
        per_class = draw(st.integers(1, max(1, max_samples // k)))
        N = per_class * k
    else:
        N = draw(st.integers(min_samples, max_samples))
    rng = np.random.default_rng(draw(SEEDS))
    model = hr.MLP(sizes, activation=activation)
    # a continuous parameter scale: < 1 is the near-linear regime, > 1 reaches saturated /
    # large-logit regimes the default init does not
    theta = draw(PARAMETER_SCALES) * model.init(rng)
    X = rng.standard_normal((N, sizes[0]))
    if loss == "mse":
        y = rng.standard_normal((N, k))
    elif balanced_classes:
        y = rng.permutation(np.repeat(np.arange(k), N // k))
    else:
        y = rng.integers(0, k, size=N)
    assume(away_from_kinks(model, theta, X))
    return Case(model, theta, X, y, loss, reduction)
