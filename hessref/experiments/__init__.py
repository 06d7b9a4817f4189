"""The papers' Hessian experiments, multi-seed, with declared verdict rules.

Layout
------
=======================  ===================================================================
module                   contents
=======================  ===================================================================
``framework``            :class:`Experiment`, :func:`register`, :func:`run_experiment`
                         (read its docstring to add an experiment)
``result``               :class:`ExperimentResult`, strict JSON (NaN/Infinity -> null)
``rules``                verdict rules (``Compare``, ``Ref``, ``Monotone``, ``AllOf``) and
                         ``Verdict`` (claim, source, role) with generated statements
``stats``                Wilson intervals, medians/IQR, seed ranges, the label of each role
``counting``             every outlier-counting rule side by side (``count_all``)
``figures``              drawing helpers for the figures experiments declare
``baselines``            outlier counts with margin; null baselines (init, shuffled labels)
``common``               THE mixture setting (:data:`MIXTURE`) and shared MLP steps
``demo``                 ``demo``: what ``hessref demo`` computes
``sagun2016``            ``data-complexity`` (Sagun, Bottou, LeCun 2016, arXiv:1611.07476)
``sagun2017``            ``bulk-vs-width``, ``hessian-split`` (Sagun et al. 2017,
                         arXiv:1706.04454)
``sagun2017_outliers``   ``init-vs-trained``, ``outliers-vs-classes`` (Sagun et al. 2017)
``batch_size``           ``small-vs-large-batch`` (Sagun et al. 2017, §4)
``sign_vs_sgd``          ``sign-vs-sgd`` (iterations to an ℓ1 target, factor-d slope)
``sign_descent``         the sign-descent quadratics, iterations to target, log-log slopes
``edge_of_stability``    ``edge-of-stability`` (Cohen et al. 2021, η below 2/λ_max(θ₀))
``papyan2020``           ``papyan-hierarchy`` (Papyan 2019/2020, terminal phase)
``random_matrix``        ``random-matrix`` (Marchenko–Pastur, BBP at α ≠ 1)
``factors``              ``data-vs-architecture`` (crossed design), ``sample-size``
``loss_activation``      ``loss-and-activation`` (ReLU/tanh + CE, ReLU + MSE)
``sagun2017_table1``     ``sagun2017-table1``: Sagun et al. 2017, App. A, Table 1, all 19 rows,
                         every counter next to the paper's printed count
``mnist1d``              ``mnist1d-outliers``, ``mnist1d-bulk-vs-width`` on MNIST-1D (only with
                         the optional package ``mnist1d``: ``pip install hessref[mnist1d]``)
``memorization_traces``  ``memorization-traces`` (layer-trace CUSUM; arXiv:2605.25674, read
                         as issue 23 states it)
``local_sgd_subspace``   ``local-sgd-subspace`` (Local-SGD gaps vs the top-k of H;
                         arXiv:2605.27739, read as issue 23 states it)
``approx_quality``       ``kfac-quality``: K-FAC, EK-FAC, Fisher variants, FGN vs the exact G
``permutation_saddles``  ``permutation-saddles`` (unit duplication; arXiv:1907.02911)
``hessian_surgery``      ``hessian-surgery`` (spike steps; arXiv:2605.07790 as issue 23 reads it)
=======================  ===================================================================

Other modules of this package (e.g. from other work streams) register more experiments
the same way; :func:`registry` lists them all.

Every module of this package is imported here, so a module that calls
:func:`~hessref.experiments.framework.register` at import time is registered
automatically (no edit of this file needed).

Quick use::

    from hessref.experiments import run_experiment
    res = run_experiment("outliers-vs-classes", fast=True, seeds=range(5))
    print(res.summary())           # rules with rates and Wilson 95% intervals
    res.per_seed[0]["counts"]["C = 2, K = C: trained H"]["count_ratio"]  # per seed
    res.tables["counting"]          # every counting rule: rates of "= C" and "within ±1"

``EXPERIMENTS[name]`` is the registered :class:`Experiment`; calling it as in 0.1,
``EXPERIMENTS[name](fast=True, rng=0)``, runs the single seed ``rng``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any

from hessref.experiments.common import MIXTURE
from hessref.experiments.framework import (
    Experiment,
    ExperimentResult,
    derive_seeds,
    get_experiment,
    register,
    registry,
    run_experiment,
)
from hessref.experiments.stats import parse_seeds, wilson_interval


def _discover() -> None:
    """Import every module of this package (their :func:`register` calls run)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")


_discover()


class _Registry(Mapping):
    """Read-only live view of the registered experiments, by name."""

    def __getitem__(self, name: str) -> Experiment:
        return get_experiment(name)

    def __iter__(self):
        return iter(registry())

    def __len__(self) -> int:
        return len(registry())


#: name → :class:`Experiment` (live view of the registry).
EXPERIMENTS: Mapping[str, Experiment] = _Registry()


def _single(name: str):
    def run(fast: bool = False, rng: Any = 0, progress=None) -> ExperimentResult:
        return get_experiment(name)(fast=fast, rng=rng, progress=progress)

    run.__name__ = name.replace("-", "_")
    run.__doc__ = f"Run the registered experiment {name!r} for the single seed ``rng``."
    return run


init_vs_trained = _single("init-vs-trained")
outliers_vs_classes = _single("outliers-vs-classes")
bulk_vs_width = _single("bulk-vs-width")
data_complexity = _single("data-complexity")
small_vs_large_batch = _single("small-vs-large-batch")
hessian_split = _single("hessian-split")

__all__ = [
    "EXPERIMENTS",
    "MIXTURE",
    "Experiment",
    "ExperimentResult",
    "bulk_vs_width",
    "data_complexity",
    "derive_seeds",
    "get_experiment",
    "hessian_split",
    "init_vs_trained",
    "outliers_vs_classes",
    "parse_seeds",
    "register",
    "registry",
    "run_experiment",
    "small_vs_large_batch",
    "wilson_interval",
]
