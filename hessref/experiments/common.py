"""Shared settings and measurement steps of the MLP experiments.

:data:`MIXTURE` is THE mixture setting (the demo's and the experiments'; defined once):
a C-class Gaussian mixture in d dimensions (class means ~ N(0, separation² I), within-
class std ``spread``, globally standardised), an MLP d→hidden→K with biases, mean loss,
full-batch GD with constant step until ``target_loss`` (or ``max_steps``), and outlier
counting by ``outlier_rule`` among the ``top`` largest eigenvalues, a count being called
a real group only when its margin (winning ratio / runner-up ratio) is ≥ ``min_margin``.
The counting rules are those of docs/theory.md §14. The full values scale the setting
of Sagun et al. 2017 (arXiv:1706.04454, App. A: 100-dimensional clusters, 100→30→30→k)
down to d = 20 so the exact H stays small; the fast values are sized for CI.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data
from hessref.core.kinds import Curvature
from hessref.experiments.baselines import (
    null_budget,
    outlier_count,
    prefixed,
    shuffled_labels,
    unstructured_data,
)
from hessref.experiments.framework import Progress
from hessref.spectrum import eigenvalues
from hessref.spectrum.statistics import spectrum_statistics
from hessref.train import TrainResult, train

MIXTURE_FULL: dict[str, Any] = {
    "classes": 3,
    "input_dim": 20,
    "samples": 600,
    "separation": 3.0,
    "spread": 1.0,
    "means": "normal",
    "standardize": True,
    "hidden": [30, 30],
    "activation": "relu",
    "loss": "cross_entropy",
    "learning_rate": 0.5,
    "max_steps": 2000,
    "target_loss": 1e-3,
    "top": 60,
    "outlier_rule": "ratio",
    "min_margin": 1.25,
    "near_zero": 1e-3,
}

MIXTURE_FAST: dict[str, Any] = {
    **MIXTURE_FULL,
    "input_dim": 8,
    "samples": 150,
    "hidden": [12, 12],
    "max_steps": 1000,
    "top": 40,
}

#: The mixture setting by mode.
MIXTURE = {"fast": MIXTURE_FAST, "full": MIXTURE_FULL}


def mixture_text(s: dict) -> str:
    """One sentence restating the mixture settings ``s`` (no results)."""
    return (
        f"{s['classes']}-class Gaussian mixture, d = {s['input_dim']}, N = {s['samples']}, "
        f"separation {s['separation']}; MLP {s['input_dim']}-"
        f"{'-'.join(map(str, s['hidden']))}-K {s['activation']}, {s['loss']}; full-batch GD, "
        f"step {s['learning_rate']}, to loss ≤ {s['target_loss']} (≤ {s['max_steps']} steps); "
        f"{s['outlier_rule']} rule among the top {s['top']}, margin ≥ {s['min_margin']}"
    )


def mixture_data(s: dict, seed: int, classes: int | None = None, samples: int | None = None):
    """(X, y) of the mixture in ``s`` (optionally another C or N), seeded by ``seed``."""
    return data.gaussian_mixture(
        s["samples"] if samples is None else samples,
        s["classes"] if classes is None else classes,
        s["input_dim"],
        separation=s["separation"],
        spread=s["spread"],
        means=s["means"],
        standardize=s["standardize"],
        rng=seed,
    )


def targets(y: np.ndarray, loss: str, outputs: int) -> np.ndarray:
    """Labels for ``loss``: integer labels for cross-entropy, one-hot (N, K) for MSE."""
    if loss == "cross_entropy":
        return y
    return np.eye(outputs)[y]


def train_gd(model: hr.MLP, theta0, X, y, s: dict, progress: Progress, label: str) -> TrainResult:
    """Full-batch GD with the settings ``s`` (step, max steps, target loss)."""
    res = train(
        model,
        theta0,
        X,
        targets(y, s["loss"], model.sizes[-1]),
        loss=s["loss"],
        lr=s["learning_rate"],
        steps=s["max_steps"],
        stop_loss=s["target_loss"],
    )
    progress(f"{label}: {res.num_steps} GD steps, loss {res.losses[-1]:.3g}")
    return res


def spectrum_of(
    model: hr.MLP, theta, X, y, loss: str, kind: Curvature | str = Curvature.H, *, which=None
) -> np.ndarray:
    """All eigenvalues (descending) of the exact H, G or R (``kind``, a Curvature) at ``theta``.

    ``which=`` is the deprecated name of ``kind``.
    """
    if which is not None:
        warnings.warn("spectrum_of: which= is deprecated, use kind=", DeprecationWarning, 2)
        kind = which
    kind = Curvature.parse(kind, argument="kind")
    Y = targets(y, loss, model.sizes[-1])
    with threadpool_limits(limits=1, user_api="blas"):
        if kind is Curvature.H:
            return eigenvalues(hr.hessian(model, theta, X, Y, loss=loss))
        G, R = hr.gauss_newton(model, theta, X, Y, loss=loss)
        return eigenvalues(G if kind is Curvature.G else R)


def count_entry(prefix: str, ev: np.ndarray, s: dict) -> dict[str, Any]:
    """Outlier count with margin, spectrum statistics and the top candidates, keys prefixed."""
    st = spectrum_statistics(ev, top=1, near_zero=s["near_zero"])
    keep = ("lambda_max", "lambda_min", "fraction_negative", "fraction_near_zero")
    return {
        **prefixed(prefix, outlier_count(ev, s["top"], s["outlier_rule"])),
        **{f"{prefix}{k}": st[k] for k in keep},
        # the candidates every counting rule reads (hessref.experiments.counting.count_all)
        f"{prefix}top_candidates": [float(v) for v in ev[: s["top"]]],
    }


def _nulls(model, theta0, X, y, s: dict, real_loss: float, seed: int, progress) -> dict:
    """The shuffled-label and no-structure nulls, each trained to the real run's loss.

    Keys ``shuffled_*`` / ``unstructured_*``: the count entries, ``*_final_loss``,
    ``*_steps`` and ``*_reached`` (whether the null reached the real run's loss within
    :func:`~hessref.experiments.baselines.null_budget`).
    """
    budget = null_budget(s["max_steps"], real_loss, s["target_loss"])
    runs = {
        "shuffled_": (X, shuffled_labels(y, seed)),
        "unstructured_": unstructured_data(X, y, seed + 1),
    }
    out: dict[str, Any] = {}
    for prefix, (Xn, yn) in runs.items():
        sn = dict(s, max_steps=budget["steps"], target_loss=budget["stop_loss"])
        rn = train_gd(model, theta0, Xn, yn, sn, progress, f"null {prefix[:-1]}")
        out.update(count_entry(prefix, spectrum_of(model, rn.theta, Xn, yn, s["loss"]), s))
        out[f"{prefix}final_loss"] = float(rn.losses[-1])
        out[f"{prefix}steps"] = int(rn.num_steps)
        out[f"{prefix}reached"] = bool(rn.losses[-1] <= budget["stop_loss"])
    return out


def fit_and_count(
    s: dict,
    seed_data: int,
    seed_init: int,
    progress: Progress,
    classes: int | None = None,
    outputs: int | None = None,
    samples: int | None = None,
    shuffle_seed: int | None = None,
    extra: Callable[..., dict] | None = None,
) -> dict[str, Any]:
    """Train on the mixture and count outliers of H, with the two null baselines.

    Returns flat measured quantities: ``count``/``margin``/... of the trained H (prefix
    ``""``), ``init_*`` (H at initialisation), ``shuffled_*`` and ``unstructured_*`` (the
    nulls of :func:`_nulls`, if ``shuffle_seed`` is given), ``final_loss``, ``steps``,
    ``reached_target``, ``num_params``, and ``top_eigenvalues`` (the top of trained H).
    ``extra(model, theta0, theta, X, y)`` may add more quantities.
    """
    C = s["classes"] if classes is None else classes
    K = C if outputs is None else outputs
    X, y = mixture_data(s, seed_data, C, samples)
    model = hr.MLP([s["input_dim"], *s["hidden"], K], s["activation"])
    theta0 = model.init(seed_init)
    res = train_gd(model, theta0, X, y, s, progress, f"C = {C}, K = {K}")
    ev = spectrum_of(model, res.theta, X, y, s["loss"])
    out = {
        "num_params": model.num_params,
        "steps": res.num_steps,
        "final_loss": float(res.losses[-1]),
        "reached_target": bool(res.losses[-1] <= s["target_loss"]),
        **count_entry("", ev, s),
        **count_entry("init_", spectrum_of(model, theta0, X, y, s["loss"]), s),
        "top_eigenvalues": [float(v) for v in ev[: s["top"]]],
    }
    if shuffle_seed is not None:
        out.update(_nulls(model, theta0, X, y, s, float(res.losses[-1]), shuffle_seed, progress))
    if extra is not None:
        out.update(extra(model, theta0, res.theta, X, y))
    return out
