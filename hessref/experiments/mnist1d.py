"""Outliers and bulk on a real 10-class dataset: MNIST-1D (Greydanus 2020).

Registered experiments (only when the optional package ``mnist1d`` is installed,
``pip install hessref[mnist1d]``; otherwise they are absent from the registry and
:data:`MISSING` says why):

- ``mnist1d-outliers``: "outliers = C" at C = 10 (Sagun et al. 2017, §3.1 and Fig. 2;
  Papyan 2019) on real class structure: a 40 → 30 → 30 → 10 ReLU MLP trained by
  full-batch GD on N MNIST-1D signals; the exact H's top eigenvalues counted by the
  three counters of Table 1 (gap, ratio, elbow threshold c·λ_1), each as "within ±1
  of C" and "= C"; the primary counter (ratio) is fixed before the run. Null: the same
  counter on H at initialisation (controls for outliers that come from the network's
  outputs, not from training on the classes; expected to fail).
- ``mnist1d-bulk-vs-width``: Sagun et al. 2017, Fig. 3 (1000 MNIST samples, 784 → h →
  10) with MNIST-1D in place of MNIST: 40 → h → 10, same data, step and step count for
  every h; the top eigenvalues should stay put while the near-zero share grows with P.

MNIST-1D is generated procedurally (:func:`hessref.data.mnist1d`, no download).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data
from hessref.experiments.counting import count_all, count_quantities, count_sensitivity
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Monotone, Verdict
from hessref.spectrum import count_outliers, eigenvalues
from hessref.spectrum.statistics import spectrum_statistics
from hessref.train import train

#: Whether the optional generator is installed (the experiments register only then).
AVAILABLE = importlib.util.find_spec("mnist1d") is not None
#: Why the MNIST-1D experiments are missing when they are.
MISSING = (
    "the MNIST-1D experiments (mnist1d-outliers, mnist1d-bulk-vs-width) need the optional "
    "package 'mnist1d': pip install hessref[mnist1d]"
)
SAGUN = "Sagun et al. 2017 (arXiv:1706.04454)"
SOURCE_OUTLIERS = "Sagun et al. 2017, §3.1 and Fig. 2 (on MNIST-1D, not the paper's data)"
SOURCE_BULK = "Sagun et al. 2017, Fig. 3 (on MNIST-1D, not MNIST)"
COUNTERS = ("gap", "ratio", "heur")
PRIMARY = "ratio"


def counts(top: np.ndarray, relative_threshold: float) -> dict[str, int]:
    """Gap, ratio and elbow-threshold (c·λ_1) counts of the top eigenvalues (descending)."""
    cut = relative_threshold * float(top[0])
    return {
        "gap": count_outliers(top, rule="gap").count,
        "ratio": count_outliers(top, rule="ratio").count,
        "heur": count_outliers(top, rule="threshold", threshold=cut).count,
    }


def _spectrum(model, theta, X, y) -> np.ndarray:
    with threadpool_limits(limits=1, user_api="blas"):
        return eigenvalues(hr.hessian(model, theta, X, y, loss="cross_entropy"))


# ---------------------------------------------------------------------------- outliers
def _measure_outliers(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init")
    X, y = data.mnist1d(s["samples"], rng=sd["data"])
    model = hr.MLP([X.shape[1], *s["hidden"], 10], s["activation"])
    theta0 = model.init(sd["init"])
    res = train(
        model,
        theta0,
        X,
        y,
        loss="cross_entropy",
        lr=s["learning_rate"],
        steps=s["max_steps"],
        stop_loss=s["target_loss"],
    )
    ev = _spectrum(model, res.theta, X, y)
    ev0 = _spectrum(model, theta0, X, y)
    top = s["top"]
    trained, init = counts(ev[:top], s["relative_threshold"]), counts(ev0[:top], 0.25)
    accuracy = float(np.mean(np.argmax(hr.outputs(model, res.theta, X), axis=1) == y))
    progress(
        f"P = {model.num_params}, {res.num_steps} steps, loss {res.losses[-1]:.3g}, "
        f"train accuracy {accuracy:.3f}, counts {trained}, at init {init}"
    )
    return {
        **trained,
        **{f"init_{c}": v for c, v in init.items()},
        "num_params": model.num_params,
        "steps": int(res.num_steps),
        "final_loss": float(res.losses[-1]),
        "train_accuracy": accuracy,
        "reached_target": bool(res.losses[-1] <= s["target_loss"]),
        "top_eigenvalues": [float(v) for v in ev[:top]],
        # every counting rule of hessref.experiments.counting (Tukey fence included), for
        # the report's side-by-side and sensitivity tables; the rules above read the counts
        "counts": {
            "trained H": count_quantities(count_all(ev, 10, top=top)),
            "H at init (null)": count_quantities(count_all(ev0, 10, top=top)),
        },
        "sensitivity": {"trained H": asdict(count_sensitivity(ev, 10, top=top))},
    }


_TEXT = {
    "gap": "the largest-gap count",
    "ratio": "the largest-ratio count",
    "heur": "the elbow-threshold count (cutoff c·λ_1)",
}


def _near(q: str, C: int) -> AllOf:
    return AllOf(Compare(q, ">=", C - 1), Compare(q, "<=", C + 1))


def _rules_outliers(s: dict) -> list[Verdict]:
    C = 10
    claim = "the number of outliers of the trained H equals the number of classes C = 10"
    rules = []
    for c in COUNTERS:
        primary = " (the primary counter, fixed before the run)" if c == PRIMARY else ""
        rules.append(
            Verdict(
                f"{c}: count within ±1 of C",
                _near(c, C),
                f"{claim}, tested as {_TEXT[c]} within ±1 of C{primary}",
                source=SOURCE_OUTLIERS,
                paper_value="C",
            )
        )
        rules.append(
            Verdict(
                f"{c}: count = C",
                Compare(c, "==", C),
                f"{claim}, tested as {_TEXT[c]} = C exactly{primary}",
                source=SOURCE_OUTLIERS,
                paper_value="C",
            )
        )
    rules.append(
        Verdict(
            "null, H at init: ratio count within ±1 of C",
            _near("init_ratio", C),
            "null (expected to fail): before training the same counter should not find C "
            "outliers; a pass means the count comes from the architecture, not the classes",
            source=SOURCE_OUTLIERS,
            role="null",
        )
    )
    return rules


_OUT_FULL = {
    "dataset": "MNIST-1D (mnist1d.make_dataset, default arguments)",
    "samples": 1000,
    "hidden": [30, 30],
    "activation": "relu",
    # 0.5, not 0.1: at 0.1 seed 0 ended at loss 0.011 after 6000 steps, above the target;
    # at 0.5 it reaches loss 1e-3 (4535 steps); chosen before any other seed was run
    "learning_rate": 0.5,
    "max_steps": 6000,
    "target_loss": 1e-3,
    "top": 60,
    "relative_threshold": 0.25,
}
_OUT_FAST = {**_OUT_FULL, "samples": 200, "hidden": [12, 12], "max_steps": 600, "top": 30}


# ------------------------------------------------------------------------ bulk vs width
def _measure_bulk(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init")
    X, y = data.mnist1d(s["samples"], rng=sd["data"])
    tops, near_zero, loss, params = [], [], [], []
    for h in s["widths"]:
        model = hr.MLP([X.shape[1], h, 10], s["activation"])
        res = train(
            model,
            model.init(sd["init"]),
            X,
            y,
            loss="cross_entropy",
            lr=s["learning_rate"],
            steps=s["steps"],
        )
        st = spectrum_statistics(
            _spectrum(model, res.theta, X, y), top=s["compare_top"], near_zero=s["near_zero"]
        )
        progress(f"h = {h}: P = {model.num_params}, loss {res.losses[-1]:.3g}")
        tops.append(st["top"])
        near_zero.append(st["fraction_near_zero"])
        loss.append(float(res.losses[-1]))
        params.append(model.num_params)
    t = np.array(tops)
    return {
        "fraction_near_zero": near_zero,
        "num_params": params,
        "final_loss": loss,
        "top_eigenvalues": tops,
        "top_spread": float((t.max(axis=0) / t.min(axis=0)).max()),
        "lambda_max_spread": float(t[:, 0].max() / t[:, 0].min()),
        "loss_spread": float(max(loss) / min(loss)),
    }


_BULK_FULL = {
    "dataset": "MNIST-1D (mnist1d.make_dataset, default arguments)",
    "samples": 1000,
    "widths": [20, 40, 80],
    "activation": "relu",
    "learning_rate": 0.1,
    "steps": 2000,
    "compare_top": 10,
    "max_top_spread": 2.0,
    "near_zero": 1e-3,
}
_BULK_FAST = {**_BULK_FULL, "samples": 200, "widths": [8, 16, 32], "steps": 300}


def _rules_bulk(s: dict) -> list[Verdict]:
    return [
        Verdict(
            "top eigenvalues stable across widths",
            Compare("top_spread", "<=", s["max_top_spread"]),
            "with the data fixed, wider networks keep the top eigenvalues in place "
            f"(tested as: each of the top {s['compare_top']} varies by at most a factor "
            f"{s['max_top_spread']} over the widths)",
            source=SOURCE_BULK,
        ),
        Verdict(
            "near-zero share grows with P",
            Monotone("fraction_near_zero", along="the width"),
            "extra parameters add (near-)zero eigenvalues: the share with |λ| below "
            f"{s['near_zero']}·max|λ| grows with the width",
            source=SOURCE_BULK,
        ),
    ]


def _register() -> None:
    register(
        Experiment(
            name="mnist1d-outliers",
            paper=f"{SAGUN}, §3.1 and Fig. 2, on MNIST-1D",
            claim=f"the trained H has C = 10 outliers on a real 10-class dataset "
            f"(primary counter: {PRIMARY})",
            fast=_OUT_FAST,
            full=_OUT_FULL,
            measure=_measure_outliers,
            rules=_rules_outliers,
            quantities={
                **{c: f"{_TEXT[c]} of the trained H" for c in COUNTERS},
                **{f"init_{c}": f"{_TEXT[c]} of H at initialisation" for c in COUNTERS},
                "final_loss": "the final training loss",
                "train_accuracy": "the training accuracy",
                "steps": "the GD steps taken",
            },
            setting_text=lambda s: (
                f"{s['dataset']}, N = {s['samples']}; MLP 40-{'-'.join(map(str, s['hidden']))}"
                f"-10 {s['activation']}, PyTorch-default init, mean CE; full-batch GD, step "
                f"{s['learning_rate']}, to loss ≤ {s['target_loss']} (≤ {s['max_steps']} "
                f"steps); counters on the top {s['top']} eigenvalues of the exact H, elbow "
                f"cutoff {s['relative_threshold']}·λ_1; primary counter: {PRIMARY}"
            ),
        )
    )
    register(
        Experiment(
            name="mnist1d-bulk-vs-width",
            paper=f"{SAGUN}, Fig. 3, with MNIST-1D in place of MNIST",
            claim="with the data fixed, wider nets keep the top eigenvalues and add near-zero ones",
            fast=_BULK_FAST,
            full=_BULK_FULL,
            measure=_measure_bulk,
            rules=_rules_bulk,
            quantities={
                "top_spread": "the largest max/min ratio over widths of the i-th top "
                "eigenvalue (i ≤ compare_top)",
                "lambda_max_spread": "the max/min ratio of λ_max over widths",
                "loss_spread": "the max/min ratio of the final loss over widths",
                "fraction_near_zero": "the near-zero share by width",
            },
            setting_text=lambda s: (
                f"{s['dataset']}, N = {s['samples']}, 40-h-10 {s['activation']}, mean CE, "
                f"h in {s['widths']}, {s['steps']} GD steps of {s['learning_rate']}; "
                f"near-zero cutoff {s['near_zero']}·max|λ|"
            ),
        )
    )


if AVAILABLE:
    _register()
