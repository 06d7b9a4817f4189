"""Outlier counts with their margin, and the null baselines every count is shown next to.

A count of outliers means little on its own: the ratio rule (largest λ_i/λ_{i+1} among
the top eigenvalues, :func:`hessref.spectrum.count_outliers`) ALWAYS returns some count,
so it may equal C by chance. Each count is therefore reported with

- its **margin**: the winning ratio divided by the runner-up ratio (1 = no preferred
  split; a clear bulk/outlier gap gives ≫ 1), and
- **null baselines**, the same rule applied to the Hessian (a) at initialisation — the
  inputs are still clustered, so this null carries class signal through the data and only
  controls for structure that needs no training; (b) after training on labels shuffled by
  a seeded permutation (same inputs, labels carry no class signal), trained to the SAME
  loss as the real run when the step budget allows (:func:`null_budget`; the loss reached
  is always reported); and (c) the **no-structure null** (:func:`unstructured_data`):
  unclustered Gaussian inputs with random labels, trained the same way — neither inputs
  nor labels carry class structure.

Functions here return flat dicts of JSON numbers, ready to merge into an experiment's
measured quantities with a prefix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hessref import spectrum
from hessref.experiments.rules import AllOf, Compare

#: Default margin a counted group must have over the runner-up split to be called real.
MIN_MARGIN = 1.25


def outlier_count(eigenvalues: ArrayLike, top: int, rule: str = "ratio") -> dict[str, Any]:
    """Outlier count of a spectrum with its winning score, runner-up and margin.

    Parameters
    ----------
    eigenvalues : array_like (P,)
    top : int
        Candidates: the ``top`` largest eigenvalues.
    rule : {"ratio", "gap", "threshold"}
        As in :func:`hessref.spectrum.count_outliers`.

    Returns
    -------
    dict
        ``count`` (None if the rule cannot be applied, e.g. fewer than 2 positive
        candidates for "ratio"), ``score`` (winning ratio or gap), ``runner_up`` (the
        second-best score), ``runner_up_count`` and ``margin`` = score / runner_up
        (NaN when undefined; for "threshold" always NaN).
    """
    nan = float("nan")
    try:
        c = spectrum.count_outliers(eigenvalues, rule=rule, top=top)
    except ValueError:
        return {
            "count": None,
            "score": nan,
            "runner_up": nan,
            "runner_up_count": None,
            "margin": nan,
        }
    score = c.details.get("score", nan)
    runner = c.details.get("runner_up_score")
    runner = nan if runner is None else float(runner)
    margin = score / runner if runner and runner > 0 and not math.isnan(runner) else nan
    return {
        "count": int(c.count),
        "score": float(score),
        "runner_up": runner,
        "runner_up_count": c.details.get("runner_up_count"),
        "margin": float(margin),
    }


def prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``{prefix + key: value}`` (to merge several counts into one measured dict)."""
    return {f"{prefix}{k}": v for k, v in values.items()}


def shuffled_labels(y: ArrayLike, seed: int) -> np.ndarray:
    """A seeded permutation of the labels ``y`` (same class counts, structure destroyed)."""
    y = np.asarray(y)
    return y[np.random.default_rng(seed).permutation(y.shape[0])]


#: The shuffled-label and no-structure nulls may take this many times the real run's
#: step budget to reach the real run's loss (memorising random labels is slower).
NULL_BUDGET_FACTOR = 5


def null_budget(max_steps: int, real_final_loss: float, target_loss: float) -> dict[str, Any]:
    """Training settings of a null run that must reach the loss the real run reached.

    Returns ``{"steps": NULL_BUDGET_FACTOR · max_steps, "stop_loss": max(real, target)}``:
    the null stops at the real run's final loss (never below the target), so both are
    compared at the same loss; whether it got there is reported by the caller.

    >>> null_budget(100, 0.004, 1e-3)
    {'steps': 500, 'stop_loss': 0.004}
    """
    return {
        "steps": int(NULL_BUDGET_FACTOR * max_steps),
        "stop_loss": float(max(real_final_loss, target_loss)),
    }


def unstructured_data(X: ArrayLike, y: ArrayLike, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The no-structure null: N(0, I) inputs of X's shape, labels a permutation of ``y``.

    Same N, d and class counts as the real data, standardised per feature like the
    mixture; no clusters in the inputs and no link between inputs and labels.
    """
    X = np.asarray(X)
    gen = np.random.default_rng(seed)
    Z = gen.standard_normal(X.shape)
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    return Z, shuffled_labels(y, int(gen.integers(2**31 - 1)))


def null_baselines(
    eigenvalues_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    train_to: Callable[[np.ndarray], tuple[np.ndarray, float]],
    theta0: np.ndarray,
    y: ArrayLike,
    shuffle_seed: int,
    top: int,
    rule: str = "ratio",
) -> dict[str, Any]:
    """Outlier counts of the two null baselines: at initialisation and shuffled labels.

    Parameters
    ----------
    eigenvalues_at : callable (theta, labels) -> (P,) eigenvalues
        The curvature spectrum (e.g. of the exact H) at ``theta`` for labels ``labels``.
    train_to : callable (labels) -> (theta, final_loss)
        The experiment's own training, from the same start, on the given labels.
    theta0 : (P,)
        The initialisation.
    y : (N,)
        The true labels.
    shuffle_seed : int
        Seed of the label permutation.
    top, rule
        As in :func:`outlier_count`.

    Returns
    -------
    dict
        ``init_*`` and ``shuffled_*`` count entries (see :func:`outlier_count`) and
        ``shuffled_final_loss`` (the loss the shuffled-label training reached).
    """
    y = np.asarray(y)
    init = outlier_count(eigenvalues_at(theta0, y), top, rule)
    y_shuffled = shuffled_labels(y, shuffle_seed)
    theta_s, loss_s = train_to(y_shuffled)
    shuffled = outlier_count(eigenvalues_at(theta_s, y_shuffled), top, rule)
    return {
        **prefixed("init_", init),
        **prefixed("shuffled_", shuffled),
        "shuffled_final_loss": float(loss_s),
    }


def count_rule(prefix: str, target: int, margin: float, suffix: str = "") -> AllOf:
    """The rule: count = target and margin ≥ margin, on the entry ``prefix``/``suffix``.

    The quantities read are ``f"{prefix}count{suffix}"`` and ``f"{prefix}margin{suffix}"``.
    """
    return AllOf(
        Compare(f"{prefix}count{suffix}", "==", target),
        Compare(f"{prefix}margin{suffix}", ">=", margin),
    )


def count_labels(prefix: str, what: str) -> dict[str, str]:
    """Phrases for the count entry ``prefix`` of the spectrum ``what``."""
    return {
        f"{prefix}count": f"the outlier count of {what}",
        f"{prefix}margin": f"the margin of {what}",
    }
