"""Test helpers for other tools' test suites: hessref as the exact answer.

:func:`assert_curvature_close` compares another tool's curvature quantity with hessref's
exact value for the same problem, in the other tool's layout and loss scaling, and
raises ``AssertionError`` carrying the :func:`hessref.oracle.compare.compare` report
(worst parameter entry, every transposed weight block, a missing or extra 1/N, a
``nn.MSELoss`` factor, float32 precision) when they differ.

:func:`catalogue_cases` yields hessref's built-in cases
(:func:`hessref.oracle.fixture_catalogue`) as :class:`OracleCase` objects, and this
module is a pytest plugin: with ``pytest_plugins = ["hessref.testing"]`` in a
``conftest.py`` every test taking an argument ``hessref_case`` runs once per case::

    pytest_plugins = ["hessref.testing"]                      # conftest.py

    def test_my_hessian(hessref_case):                        # test_mine.py
        hessref_case.check(my_hessian(*hessref_case.args), kind="H", convention="torch")

hessref itself never imports pytest: the plugin is one ``pytest_generate_tests`` hook.

:func:`assert_approximation_close` (from :mod:`hessref.oracle.approximations`) does the
same for curvature approximations (K-FAC, EK-FAC, Fisher variants, FGN; docs/theory.md
§19) and names the usual K-FAC mistakes (swapped factors, a missing 1/N in A, the
empirical instead of the type-2 factor). Both assertion helpers set
``__tracebackhide__``, so pytest shows the failing call, not hessref's internals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref.core.mlp import MLP
from hessref.oracle.approximations import (
    assert_approximation_close as assert_approximation_close,  # re-exported
)
from hessref.oracle.bundles import ReferenceBundle, in_convention, reference_bundle
from hessref.oracle.catalogue import FixtureCase, fixture_catalogue
from hessref.oracle.compare import ComparisonReport, compare
from hessref.oracle.conventions import Convention, get_convention
from hessref.oracle.traps import explain_traps

Array = NDArray[np.float64]

_MATRICES = ("H", "G", "R", "empirical_fisher")
KINDS = (
    "loss",
    "gradient",
    "per_sample_gradients",
    "jacobian",
    *_MATRICES,
    *(f"diag_{m}" for m in _MATRICES),
    *(f"trace_{m}" for m in _MATRICES),
    *(f"{m}_matvec" for m in _MATRICES),
    "eigenvalues_H",
    "eigenvalues_G",
)
_COMPARE_KIND = {"H": "symmetric", "R": "symmetric", "G": "psd", "empirical_fisher": "psd"}


def expected_value(
    bundle: ReferenceBundle,
    kind: str,
    convention: Convention | str = "hessref",
    vector: ArrayLike | None = None,
) -> tuple[Array, str]:
    """The exact value of ``kind`` in ``convention`` and the :func:`compare` kind.

    Parameters
    ----------
    bundle : ReferenceBundle
    kind : str
        One of :data:`KINDS`: ``"loss"``, ``"gradient"``, ``"per_sample_gradients"``
        (N, P), ``"jacobian"`` (N, d_L, P), a matrix ``"H"``, ``"G"``, ``"R"``,
        ``"empirical_fisher"`` (P, P), its diagonal ``"diag_<M>"`` (P,), trace
        ``"trace_<M>"``, product ``"<M>_matvec"`` with ``vector`` (P,) or (P, k) in the
        convention's layout, or ``"eigenvalues_H"`` / ``"eigenvalues_G"`` (descending).
    convention : Convention or preset name
        Their layout and loss scaling (:mod:`hessref.oracle.conventions`).
    vector : array_like, optional
        Required for ``"<M>_matvec"``.

    Returns
    -------
    value : ndarray
    compare_kind : str
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    conv = get_convention(convention)
    q = in_convention(bundle, conv)
    if kind.endswith("_matvec"):
        M = q[kind[: -len("_matvec")]]
        if vector is None:
            raise ValueError(f"vector: kind {kind!r} needs the vector (or matrix) multiplied")
        v = np.asarray(vector, dtype=np.float64)
        if v.shape[:1] != (M.shape[0],):
            raise ValueError(
                f"vector: expected shape ({M.shape[0]},) or ({M.shape[0]}, k), got {v.shape}"
            )
        return M @ v, "vector" if v.ndim == 1 else "array"
    if vector is not None:
        raise ValueError(f"vector: only used with the '<M>_matvec' kinds, not {kind!r}")
    if kind.startswith("diag_"):
        return np.diag(q[kind[5:]]).copy(), "vector"
    if kind.startswith("trace_"):
        return np.asarray(np.trace(q[kind[6:]])), "scalar"
    if kind.startswith("eigenvalues_"):
        return q[kind], "spectrum"
    return np.asarray(q[kind]), _COMPARE_KIND.get(kind, "array" if kind != "loss" else "scalar")


def assert_curvature_close(
    theirs: ArrayLike,
    model: MLP,
    theta: ArrayLike,
    X: ArrayLike,
    y: ArrayLike,
    *,
    kind: str,
    loss: str,
    reduction: str = "mean",
    convention: Convention | str = "hessref",
    rtol: float = 1e-10,
    atol: float = 0.0,
    vector: ArrayLike | None = None,
    bundle: ReferenceBundle | None = None,
) -> ComparisonReport:
    """Assert that another tool's ``kind`` equals hessref's exact value for this problem.

    Passes iff max|theirs − exact| ≤ atol + rtol · max|exact| (see
    :func:`hessref.oracle.compare.compare`), with exact = hessref's value of ``kind``
    re-expressed in ``convention``'s layout and loss scaling (:func:`expected_value`).

    Parameters
    ----------
    theirs : array_like
        Their value, in their layout (vectors (P,), matrices (P, P), ...).
    model, theta, X, y
        The problem, as in :func:`hessref.oracle.reference_bundle` (θ in hessref's layout).
    kind : str
        What ``theirs`` is (see :func:`expected_value`).
    loss : {"mse", "cross_entropy"}
    reduction : {"mean", "sum"}
        The reduction of the loss, theirs and hessref's: it replaces
        ``convention.reduction`` (so ``convention="torch"`` with ``reduction="sum"`` is
        ``nn.MSELoss(reduction="sum")``).
    convention : Convention or preset name
        E.g. ``"torch"`` for ``nn.Sequential`` + ``parameters_to_vector`` with
        ``nn.MSELoss`` / ``nn.CrossEntropyLoss``.
    rtol, atol : float
    vector : array_like, optional
        The vector of a ``"<M>_matvec"`` product, in their layout.
    bundle : ReferenceBundle, optional
        A precomputed ``reference_bundle`` of this very problem (saves recomputing).

    Returns
    -------
    ComparisonReport
        When it passes (for logging the error reached).

    Raises
    ------
    AssertionError
        With the comparison report when they differ.

    Examples
    --------
    >>> import numpy as np
    >>> model = MLP([2, 3, 2], activation="tanh"); theta = model.init(rng=0)
    >>> X = np.ones((4, 2)); y = np.array([0, 1, 1, 0])
    >>> b = reference_bundle(model, theta, X, y, loss="cross_entropy", reduction="sum")
    >>> _ = assert_curvature_close(b.H, model, theta, X, y, kind="H", loss="cross_entropy",
    ...                            reduction="sum", bundle=b)
    >>> assert_curvature_close(4 * b.H, model, theta, X, y, kind="H", loss="cross_entropy")
    Traceback (most recent call last):
    ...
    AssertionError: H ('hessref' convention) differs from hessref's exact value: ...
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not hessref's internals
    conv = dataclasses.replace(get_convention(convention), reduction=reduction)
    if bundle is None:
        bundle = reference_bundle(model, theta, X, y, loss=loss, reduction=reduction)
    else:
        _check_bundle(bundle, theta, loss, reduction)
    expected, ckind = expected_value(bundle, kind, conv, vector)
    report = compare(
        theirs,
        expected,
        rtol=rtol,
        atol=atol,
        model=bundle.model if ckind != "spectrum" else None,
        kind=ckind,
        convention=conv if ckind != "spectrum" else None,
        num_samples=bundle.X.shape[0],
        reference_in_convention=True,
    )
    if not report.passed:
        _explain_traps(report, theirs, bundle, kind, conv, vector)
        raise AssertionError(
            f"{kind} ({conv.name!r} convention) differs from hessref's exact value: "
            f"{_headline(report)}\n{report}"
        )
    return report


def _explain_traps(
    report: ComparisonReport,
    theirs: ArrayLike,
    bundle: ReferenceBundle,
    kind: str,
    conv: Convention,
    vector: ArrayLike | None,
) -> None:
    """Name an activation convention theirs matches (kinks, GELU, softplus threshold)."""

    def expected_for(alt: MLP) -> Array:
        b = reference_bundle(
            alt, bundle.theta, bundle.X, bundle.y, loss=bundle.loss_name, reduction=bundle.reduction
        )
        return expected_value(b, kind, conv, vector)[0]

    try:
        arr = np.asarray(theirs, dtype=np.float64)
    except (TypeError, ValueError):
        return  # compare has already reported what is wrong with theirs
    explain_traps(report, arr, bundle.model, bundle.theta, bundle.X, expected_for)


def _headline(report: ComparisonReport) -> str:
    """One line: the worst entry, transposed blocks and the first diagnostic note."""
    parts = [f"max rel error {report.max_rel_error:.3e}"]
    if report.worst_location:
        parts.append(f"worst at {report.worst_location}")
    if report.transposed_blocks:
        parts.append(f"transposed blocks: {', '.join(report.transposed_blocks)}")
    if report.notes:
        parts.append(report.notes[0])
    return "; ".join(parts)


def _check_bundle(bundle: ReferenceBundle, theta: ArrayLike, loss: str, reduction: str) -> None:
    if not isinstance(bundle, ReferenceBundle):
        raise TypeError(f"bundle: expected a ReferenceBundle, got {type(bundle).__name__}")
    theta = np.asarray(theta, dtype=np.float64)
    if (
        bundle.loss_name != loss
        or bundle.reduction != reduction
        or not np.array_equal(bundle.theta, theta)
    ):
        raise ValueError(
            "bundle: computed for another problem (loss, reduction or theta differ); "
            "pass bundle=None to recompute"
        )


@dataclass
class OracleCase:
    """One catalogue problem, ready for another tool's test.

    Attributes
    ----------
    case : FixtureCase
        The catalogue entry (name, sizes, activation, loss, reduction, N, batch size, seed).
    model : MLP
    theta : ndarray (P,)
        hessref's (= PyTorch's ``parameters_to_vector``) layout.
    X : ndarray (N, d_0)
    y : ndarray
        (N, d_L) float targets (MSE) or (N,) int labels (cross-entropy).
    """

    case: FixtureCase
    model: MLP
    theta: Array
    X: Array
    y: NDArray
    _bundle: ReferenceBundle | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """Case name, e.g. ``'tanh-mse-d1'``."""
        return self.case.name

    @property
    def loss(self) -> str:
        """``'mse'`` or ``'cross_entropy'``."""
        return self.case.loss

    @property
    def reduction(self) -> str:
        """``'mean'`` or ``'sum'``."""
        return self.case.reduction

    @property
    def args(self) -> tuple[MLP, Array, Array, NDArray]:
        """``(model, theta, X, y)``."""
        return self.model, self.theta, self.X, self.y

    @property
    def bundle(self) -> ReferenceBundle:
        """The exact :class:`ReferenceBundle` (computed once, with the case's density grid)."""
        if self._bundle is None:
            self._bundle = reference_bundle(
                *self.args,
                loss=self.loss,
                reduction=self.reduction,
                density_grid=self.case.density_points,
                density_sigma=self.case.density_sigma,
            )
        return self._bundle

    def batches(self) -> Iterator[tuple[Array, NDArray]]:
        """``(X_b, y_b)`` minibatches of ``case.batch_size`` in order (the last one ragged)."""
        B = self.case.batch_size
        for start in range(0, self.X.shape[0], B):
            yield self.X[start : start + B], self.y[start : start + B]

    def expected(
        self,
        kind: str,
        convention: Convention | str = "hessref",
        vector: ArrayLike | None = None,
    ) -> tuple[Array, str]:
        """:func:`expected_value` of this case, with the case's reduction in ``convention``."""
        conv = dataclasses.replace(get_convention(convention), reduction=self.reduction)
        return expected_value(self.bundle, kind, conv, vector)

    def check(self, theirs: ArrayLike, **kwargs: Any) -> ComparisonReport:
        """:func:`assert_curvature_close` on this case (``kind=``, ``convention=``, ...)."""
        __tracebackhide__ = True
        return assert_curvature_close(
            theirs,
            *self.args,
            loss=self.loss,
            reduction=self.reduction,
            bundle=self.bundle,
            **kwargs,
        )

    def __str__(self) -> str:
        return self.name


def catalogue_cases(names: list[str] | None = None) -> list[OracleCase]:
    """The catalogue cases (all, or those named) as :class:`OracleCase` objects.

    Examples
    --------
    >>> cases = catalogue_cases(["tanh-mse-d1"]); cases[0].name, cases[0].X.shape
    ('tanh-mse-d1', (7, 4))
    >>> [len(Xb) for Xb, _ in cases[0].batches()]
    [3, 3, 1]
    """
    known = {c.name: c for c in fixture_catalogue()}
    if names is None:
        names = list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"names: unknown case(s) {unknown}; see hessref.oracle.fixture_catalogue()"
        )
    return [OracleCase(known[n], *known[n].build()) for n in names]


def pytest_generate_tests(metafunc: Any) -> None:
    """Pytest hook: parametrize every test argument named ``hessref_case`` over the catalogue."""
    if "hessref_case" in metafunc.fixturenames:
        cases = catalogue_cases()
        metafunc.parametrize("hessref_case", cases, ids=[c.name for c in cases])
