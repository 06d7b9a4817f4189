"""Small- vs large-batch solutions (Sagun et al. 2017, arXiv:1706.04454, §4, Figs. 4, 7, 8).

Registered experiment ``small-vs-large-batch``, an MLP analogue of the paper's convnet
on scikit-learn's 8×8 digits (NOT MNIST or CIFAR), with held-out test data:

- from one initialisation, minibatch SGD with the same step and step count for each
  batch size of a sweep; per batch size the training and test loss and the exact
  spectrum of H (λ_max, outlier count with margin);
- LB → SB: small-batch SGD continued from the largest-batch endpoint;
- the full-batch training loss on the straight lines SB–LB and LB–(LB → SB). The
  **barrier** is max_{α∈[0,1]} L(α) − max(L(0), L(1)), reported RELATIVE TO THAT
  HIGHER ENDPOINT LOSS; the **random-direction baseline** is the relative rise
  (max_{α∈[0,1]} L(θ_SB + α d) − L(θ_SB)) / L(θ_SB) along a random direction d of the
  same length ‖θ_LB − θ_SB‖, which says what "flat" means at that distance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import hessref as hr
from hessref import data
from hessref.experiments.baselines import count_rule, outlier_count
from hessref.experiments.common import spectrum_of
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Compare, Monotone, Ref, Verdict
from hessref.landscape import interpolate_loss
from hessref.train import train


def _sgd(model, start, X, y, s, batch, seed):
    return train(
        model, start, X, y, loss=s["loss"], lr=s["learning_rate"], steps=s["steps"],
        batch_size=batch, rng=seed,
    )  # fmt: skip


def _line(model, a, b, X, y, s) -> tuple[float, list[float]]:
    """(relative barrier on [0, 1], the loss at ``s["alphas"]``) of the line a → b."""
    alphas = np.asarray(s["alphas"])
    L = interpolate_loss(model, a, b, X, y, loss=s["loss"], alphas=alphas)
    inside = L[(alphas >= 0) & (alphas <= 1)]
    high = max(L[np.argmin(np.abs(alphas))], L[np.argmin(np.abs(alphas - 1))])
    return float((inside.max() - high) / high), [float(v) for v in L]


def _random_rise(model, theta, length, X, y, s, seed) -> float:
    """Relative loss rise along a random direction of norm ``length`` from ``theta``."""
    d = np.random.default_rng(seed).standard_normal(theta.size)
    d *= length / np.linalg.norm(d)
    alphas = np.linspace(0.0, 1.0, 21)
    L = interpolate_loss(model, theta, theta + d, X, y, loss=s["loss"], alphas=alphas)
    return float((L.max() - L[0]) / L[0])


def _measure(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init", "sgd", "continue", "direction")
    Xa, ya = data.digits(s["samples"] + s["test_samples"], rng=sd["data"])
    X, y, Xt, yt = Xa[: s["samples"]], ya[: s["samples"]], Xa[s["samples"] :], ya[s["samples"] :]
    model = hr.MLP([64, *s["hidden"], 10], s["activation"])
    theta0 = model.init(sd["init"])
    init = outlier_count(spectrum_of(model, theta0, X, y, s["loss"]), s["top"], s["outlier_rule"])
    keys = ("lambda_max", "train_loss", "test_loss", "count")  # the first list is plotted
    out: dict[str, Any] = {k: [] for k in keys}
    out.update(init_count=init["count"], init_margin=init["margin"])
    out["margin"] = []
    ends = []
    for i, B in enumerate(s["batch_sizes"]):
        res = _sgd(model, theta0, X, y, s, B, sd["sgd"] + i)
        ends.append(res.theta)
        ev = spectrum_of(model, res.theta, X, y, s["loss"])
        c = outlier_count(ev, s["top"], s["outlier_rule"])
        test = float(hr.loss(model, res.theta, Xt, yt, loss=s["loss"]))
        progress(f"batch {B}: train {res.losses[-1]:.3g}, test {test:.3g}, λ_max {ev[0]:.3g}")
        values = {"lambda_max": float(ev[0]), "train_loss": float(res.losses[-1]),
                  "test_loss": test, "count": c["count"], "margin": c["margin"]}  # fmt: skip
        for key, v in values.items():
            out[key].append(v)
    cont = _sgd(model, ends[-1], X, y, s, s["batch_sizes"][0], sd["continue"])
    sb, lb = ends[0], ends[-1]
    out["barrier_sb_lb"], out["line_sb_lb"] = _line(model, sb, lb, X, y, s)
    out["barrier_lb_continued"], out["line_lb_continued"] = _line(model, lb, cont.theta, X, y, s)
    out["distance"] = float(np.linalg.norm(lb - sb))
    out["random_rise"] = _random_rise(model, sb, out["distance"], X, y, s, sd["direction"])
    out["continued_train_loss"] = float(cont.losses[-1])
    out["continued_test_loss"] = float(hr.loss(model, cont.theta, Xt, yt, loss=s["loss"]))
    for key in ("train_loss", "test_loss", "lambda_max", "count", "margin"):
        out[f"{key}_small"], out[f"{key}_large"] = out[key][0], out[key][-1]
    out["sharpness_ratio"] = out["lambda_max_large"] / out["lambda_max_small"]
    return out


def _rules(s: dict) -> list[Verdict]:
    b = s["max_barrier"]
    smaller = (
        ("large batch is sharper", "lambda_max_small", "lambda_max_large"),
        ("line flatter than random", "barrier_sb_lb", "random_rise"),
        ("small batch: lower test loss", "test_loss_small", "test_loss_large"),
        ("LB→SB lowers test loss", "continued_test_loss", "test_loss_large"),
    )
    return [
        *(Verdict(name, Compare(a, "<", Ref(c))) for name, a, c in smaller),
        Verdict("λ_max increases with batch size", Monotone("lambda_max", along="the batch size")),
        Verdict("same outlier count", Compare("count_large", "==", Ref("count_small"))),
        Verdict("small batch: count = C", count_rule("", 10, s["min_margin"], "_small")),
        Verdict("large batch: count = C", count_rule("", 10, s["min_margin"], "_large")),
        Verdict("null: init H count = C", count_rule("init_", 10, s["min_margin"])),
        Verdict("no barrier SB–LB", Compare("barrier_sb_lb", "<=", b)),
        Verdict("no barrier LB–(LB→SB)", Compare("barrier_lb_continued", "<=", b)),
    ]


_LABELS = {
    "lambda_max_small": "λ_max at the smallest batch",
    "lambda_max_large": "λ_max at the largest batch",
    "sharpness_ratio": "λ_max(large batch) / λ_max(small batch)",
    "count_small": "the outlier count at the smallest batch",
    "count_large": "the outlier count at the largest batch",
    "margin_small": "the margin at the smallest batch",
    "margin_large": "the margin at the largest batch",
    "init_count": "the outlier count of H at initialisation",
    "init_margin": "the margin of H at initialisation",
    "barrier_sb_lb": "the SB–LB barrier / the higher endpoint loss",
    "barrier_lb_continued": "the LB–(LB→SB) barrier / the higher endpoint loss",
    "random_rise": "the relative loss rise along a random direction of the same length",
    "train_loss_small": "the training loss at the smallest batch",
    "train_loss_large": "the training loss at the largest batch",
    "test_loss_small": "the test loss at the smallest batch",
    "test_loss_large": "the test loss at the largest batch",
    "continued_test_loss": "the test loss after LB→SB",
    "distance": "‖θ_LB − θ_SB‖",
    "lambda_max": "λ_max for each batch size",
}

_COMMON = {
    "dataset": "sklearn digits 8x8 (NOT MNIST)",
    "activation": "relu",
    "loss": "cross_entropy",
    "optimizer": "minibatch SGD, constant step",
    "top": 40,
    "outlier_rule": "ratio",
    "min_margin": 1.25,
    "max_barrier": 0.1,
    "alphas": [float(a) for a in np.linspace(-0.5, 1.5, 41)],
}

register(
    Experiment(
        name="small-vs-large-batch",
        paper="Sagun et al. 2017 (arXiv:1706.04454), §4, Figs. 4, 7, 8",
        claim="large batches give larger outliers with the same count; the line between "
        "small- and large-batch solutions shows no barrier",
        fast={**_COMMON, "samples": 200, "test_samples": 200, "hidden": [10],
              "learning_rate": 0.5, "steps": 300, "batch_sizes": [10, 50, 200]},
        full={**_COMMON, "samples": 500, "test_samples": 500, "hidden": [20],
              "learning_rate": 0.5, "steps": 1000, "batch_sizes": [10, 50, 250, 500]},
        measure=_measure,
        rules=_rules,
        quantities=_LABELS,
        setting_text=lambda s: (
            f"{s['dataset']}, N = {s['samples']} (+ {s['test_samples']} held out), MLP 64-"
            f"{'-'.join(map(str, s['hidden']))}-10 {s['activation']}, {s['loss']}; SGD step "
            f"{s['learning_rate']}, {s['steps']} steps per run, batch sizes {s['batch_sizes']}; "
            f"barrier threshold {s['max_barrier']} of the higher endpoint loss"
        ),
    )
)  # fmt: skip
