"""The built-in catalogue of deterministic oracle problems, and seeded random problems.

:func:`fixture_catalogue` is a small fixed set of cases (activations × losses × depths,
both reductions, ragged batch sizes, a deep net whose tensor names sort badly);
:func:`write_catalogue` writes them as fixture files (:mod:`hessref.oracle.fixtures`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hessref.core.mlp import MLP
from hessref.core.validation import check_positive_int
from hessref.oracle.fixtures import write_fixture

Array = NDArray[np.float64]


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
    placement: str = ""

    def build(self) -> tuple[MLP, Array, Array, NDArray]:
        """``(model, theta, X, y)`` of this case (``placement`` then edits θ and X, see below).

        ``placement="kink"``: X[0] = 0 and b_1[:2] = 0, so sample 0's first two hidden
        pre-activations are exactly 0 (0·w + 0 has no rounding): a ReLU / leaky-ReLU kink,
        where σ′(0) is a convention. ``placement="above20"``: b_1[0] = 20.5, so hidden unit 1
        sees pre-activations just above PyTorch's softplus threshold 20 (most samples),
        where exact and thresholded softplus differ most (~e^-20, about 1e-10 relative in H).
        """
        model, theta, X, y = random_problem(
            self.sizes, self.activation, self.loss, num_samples=self.num_samples, rng=self.seed
        )
        b1 = model.bias_slice(1)
        if self.placement == "kink":
            X[0] = 0.0
            theta[b1.start : b1.start + 2] = 0.0
        elif self.placement == "above20":
            theta[b1.start] = 20.5
        return model, theta, X, y


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


# softplus_torch last, so the seeds and names of the older cases do not move
_ACTIVATIONS = (
    "identity",
    "tanh",
    "sigmoid",
    "relu",
    "leaky_relu",
    "softplus",
    "gelu",
    "softplus_torch",
)
_DEPTHS = {1: (4, 6, 3), 2: (5, 7, 5, 3)}
#: cases placed on the traps of other tools' conventions (FixtureCase.build, placement)
_TRAPS = (
    ("leaky_relu", "mse", "kink"),
    ("relu", "cross_entropy", "kink"),
    ("softplus", "mse", "above20"),
    ("softplus_torch", "cross_entropy", "above20"),
)


def fixture_catalogue() -> list[FixtureCase]:
    """The built-in cases: 8 activations × 2 losses × 2 depths (mean), plus extras.

    Extras: sum reduction (tanh/MSE, relu/cross-entropy), an 11-layer net (names W10,
    W11 sort before W2: the dict-key pitfall), a single-output MSE net, and four cases
    on other tools' traps: exact ReLU / leaky-ReLU kinks (``*-kink``) and softplus
    pre-activations above 20 (``*-above20``). Sample
    counts 7 to 10 with batch sizes 3 or 4 (ragged last batches). Every case has
    P ≤ 100.

    Examples
    --------
    >>> cases = fixture_catalogue(); len(cases), cases[0].name
    (40, 'identity-mse-d1')
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
            "relu-cross_entropy-d2-sum",
            (5, 7, 5, 3),
            "relu",
            "cross_entropy",
            "sum",
            10,
            4,
            seed + 1,
            201,
            0.1,
        ),
        FixtureCase(
            "tanh-cross_entropy-d11",
            (3,) + (2,) * 10 + (3,),
            "tanh",
            "cross_entropy",
            "mean",
            9,
            4,
            seed + 2,
        ),
        FixtureCase("sigmoid-mse-scalar", (3, 5, 1), "sigmoid", "mse", "mean", 8, 3, seed + 3),
    ]
    return cases + _trap_cases(seed + 4)


def _trap_cases(seed: int) -> list[FixtureCase]:
    """Cases on other tools' traps: exact kinks and softplus pre-activations above 20."""
    return [
        FixtureCase(
            f"{act}-{loss}-d1-{where}",
            (4, 6, 3),
            act,
            loss,
            "mean",
            7,
            3,
            seed + i,
            placement=where,
        )
        for i, (act, loss, where) in enumerate(_TRAPS)
    ]


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
