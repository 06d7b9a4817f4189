"""Small- vs large-batch solutions at matched training loss (Sagun et al. 2017, §4).

Registered experiment ``small-vs-large-batch``, an MLP analogue of the paper's convnet
on scikit-learn's 8×8 digits (NOT MNIST or CIFAR), with held-out test data.

Design (issue 21): every batch size of the sweep trains from ONE initialisation with the
same constant step until the full-batch training loss first reaches ``target_loss``
(at most ``max_steps`` steps), so sharpness and outliers are compared AT MATCHED LOSS
(cross-entropy curvature shrinks as the loss falls; comparing after a fixed step count
confounds batch size with the loss reached). Each run records the steps it took and the
loss it reached. Then:

- the **connected-basin test** (Sagun et al. 2017 §4.1, the headline): small-batch SGD
  continued from the large-batch solution for ``continue_steps`` steps (LB → SB); the
  straight line LB — (LB → SB) must show no barrier;
- the straight line SB — LB between the two solutions trained from the same
  initialisation, reported as its own rule (Sagun, Bottou, LeCun 2016 show such a line
  for GD vs SGD from one start); it is NOT the connected-basin test.

The **barrier** of a line a → b is max_{α∈[0,1]} L(α) − max(L(0), L(1)), relative to
that higher endpoint loss; the **random-direction baseline** is the relative rise
(max_{α∈[0,1]} L(θ_SB + αd) − L(θ_SB))/L(θ_SB) along a random d of length ‖θ_LB − θ_SB‖.
Outliers are counted by every rule of :mod:`hessref.experiments.counting` (target C = 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import hessref as hr
from hessref import data
from hessref.experiments import figures
from hessref.experiments.common import spectrum_of
from hessref.experiments.counting import count_all, count_is, count_quantities
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Monotone, Ref, Verdict
from hessref.landscape import interpolate_loss
from hessref.train import train

CLASSES = 10


@dataclass(frozen=True)
class BatchRun:
    """One batch size trained to the target loss (or the step budget)."""

    batch: int
    steps: int
    train_loss: float
    reached: bool
    test_loss: float
    lambda_max: float
    counts: dict[str, Any]


@dataclass(frozen=True)
class BatchSeed:
    """One seed: the runs (smallest batch first), the lines and the continuation."""

    runs: list[BatchRun]
    small: BatchRun
    large: BatchRun
    matched: bool
    lambda_max: list[float]
    sharpness_ratio: float
    init_counts: dict[str, Any]
    continued_steps: int
    continued_train_loss: float
    continued_test_loss: float
    barrier_lb_continued: float
    barrier_sb_lb: float
    random_rise: float
    random_rise_continued: float
    distance: float
    line_lb_continued: list[float]
    line_sb_lb: list[float]


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


def _counts(ev: np.ndarray, s: dict) -> dict[str, Any]:
    return count_quantities(count_all(ev, CLASSES, top=s["top"], margin=s["min_margin"]))


def _run(model, theta0, X, y, Xt, yt, batch: int, s: dict, seed: int) -> tuple[BatchRun, Any]:
    """SGD at batch size ``batch`` until the full-batch loss ≤ target (or the budget)."""
    res = train(
        model,
        theta0,
        X,
        y,
        loss=s["loss"],
        lr=s["learning_rate"],
        steps=s["max_steps"],
        batch_size=batch,
        rng=seed,
        stop_loss=s["target_loss"],
    )
    ev = spectrum_of(model, res.theta, X, y, s["loss"])
    run = BatchRun(
        batch=int(batch),
        steps=int(res.num_steps),
        train_loss=float(res.losses[-1]),
        reached=bool(res.losses[-1] <= s["target_loss"]),
        test_loss=float(hr.loss(model, res.theta, Xt, yt, loss=s["loss"])),
        lambda_max=float(ev[0]),
        counts=_counts(ev, s),
    )
    return run, res.theta


def _measure(s: dict, seed: int, progress: Progress) -> BatchSeed:
    sd = derive_seeds(seed, "data", "init", "sgd", "continue", "direction", "direction2")
    Xa, ya = data.digits(s["samples"] + s["test_samples"], rng=sd["data"])
    X, y, Xt, yt = Xa[: s["samples"]], ya[: s["samples"]], Xa[s["samples"] :], ya[s["samples"] :]
    model = hr.MLP([64, *s["hidden"], 10], s["activation"])
    theta0 = model.init(sd["init"])
    runs, ends = [], []
    for i, B in enumerate(s["batch_sizes"]):
        run, theta = _run(model, theta0, X, y, Xt, yt, B, s, sd["sgd"] + i)
        runs.append(run)
        ends.append(theta)
        progress(
            f"batch {B}: {run.steps} steps, train {run.train_loss:.3g}, λ_max {run.lambda_max:.3g}"
        )
    cont = train(
        model,
        ends[-1],
        X,
        y,
        loss=s["loss"],
        lr=s["learning_rate"],
        steps=s["continue_steps"],
        batch_size=s["batch_sizes"][0],
        rng=sd["continue"],
    )
    b_cont, line_cont = _line(model, ends[-1], cont.theta, X, y, s)
    b_sl, line_sl = _line(model, ends[0], ends[-1], X, y, s)
    dist = float(np.linalg.norm(ends[-1] - ends[0]))
    return BatchSeed(
        runs=runs,
        small=runs[0],
        large=runs[-1],
        matched=all(r.reached for r in runs),
        lambda_max=[r.lambda_max for r in runs],
        sharpness_ratio=runs[-1].lambda_max / runs[0].lambda_max,
        init_counts=_counts(spectrum_of(model, theta0, X, y, s["loss"]), s),
        continued_steps=int(cont.num_steps),
        continued_train_loss=float(cont.losses[-1]),
        continued_test_loss=float(hr.loss(model, cont.theta, Xt, yt, loss=s["loss"])),
        barrier_lb_continued=b_cont,
        barrier_sb_lb=b_sl,
        random_rise=_random_rise(model, ends[0], dist, X, y, s, sd["direction"]),
        random_rise_continued=_random_rise(
            model, ends[-1], float(np.linalg.norm(cont.theta - ends[-1])), X, y, s, sd["direction2"]
        ),
        distance=dist,
        line_lb_continued=line_cont,
        line_sb_lb=line_sl,
    )


_S17 = "Sagun et al. 2017 (arXiv:1706.04454)"
_S17_LINE = "Sagun et al. 2017 (arXiv:1706.04454) §4.1 (LB → SB interpolation)"


def _line_rules(b: float) -> list[Verdict]:
    return [
        Verdict(
            "connected basin: LB → its SB continuation",
            Compare("barrier_lb_continued", "<=", b),
            "the large-batch solution and the small-batch SGD continued from it lie in one "
            "basin: the straight line joining them shows no barrier",
            _S17_LINE,
        ),
        Verdict(
            "LB → continuation line flatter than a random direction",
            Compare("barrier_lb_continued", "<", Ref("random_rise_continued")),
            "the LB → (LB→SB) line is flat compared with a random direction of the same "
            "length from the LB solution (the continuation moved far enough to tell)",
            _S17_LINE,
        ),
        Verdict(
            "straight line SB–LB (same init)",
            Compare("barrier_sb_lb", "<=", b),
            "two solutions trained from the same initialisation with different batch sizes "
            "are joined by a straight line without a barrier",
            "Sagun, Bottou, LeCun 2016 (arXiv:1611.07476), line interpolation (GD vs SGD)",
        ),
        Verdict(
            "SB–LB line flatter than a random direction",
            Compare("barrier_sb_lb", "<", Ref("random_rise")),
            "the loss along the SB–LB line rises less than along a random direction of the "
            "same length (what 'flat' means at that distance)",
            "Sagun, Bottou, LeCun 2016 (arXiv:1611.07476), line interpolation",
        ),
    ]


def _sharpness_rules() -> list[Verdict]:
    matched = Compare("matched", "==", 1)
    return [
        Verdict(
            "large batch sharper at matched loss",
            AllOf(matched, Compare("small.lambda_max", "<", Ref("large.lambda_max"))),
            "at the same training loss, the large-batch solution has a larger top "
            "eigenvalue (larger outliers) than the small-batch one",
            f"{_S17} §4, Figs. 4, 6",
        ),
        Verdict(
            "λ_max increases with batch size at matched loss",
            AllOf(matched, Monotone("lambda_max", along="the batch size")),
            "the top eigenvalue grows with the batch size, at the same training loss",
            f"{_S17} §4, Fig. 4",
        ),
        Verdict(
            "same outlier count (ratio rule)",
            Compare("small.counts.count_ratio", "==", Ref("large.counts.count_ratio")),
            "small and large batches give the same number of outliers",
            f"{_S17} §4, Fig. 4",
        ),
        Verdict(
            "large batch: count = C ± 1 (ratio rule)",
            count_is("large.counts.", "ratio", CLASSES, within=1),
            "the large-batch Hessian has about C = 10 outliers",
            f"{_S17} §4, Fig. 4",
        ),
        Verdict(
            "null: init H count = C ± 1 (ratio rule)",
            count_is("init_counts.", "ratio", CLASSES, within=1),
            "null, expected to fail: the Hessian at initialisation (no training); controls "
            "for a count near C produced by the architecture (10 outputs) alone",
            f"{_S17} §4",
            role="null",
        ),
    ]


def _test_rules() -> list[Verdict]:
    return [
        Verdict(
            "small batch: lower test loss at matched training loss",
            AllOf(
                Compare("matched", "==", 1), Compare("small.test_loss", "<", Ref("large.test_loss"))
            ),
            "at the same training loss the small-batch solution generalises better",
            "Keskar et al. 2017 (arXiv:1609.04836), as discussed in " + _S17 + " §4",
        ),
        Verdict(
            "LB→SB lowers the test loss",
            Compare("continued_test_loss", "<", Ref("large.test_loss")),
            "continuing a large-batch solution with small batches improves test performance",
            "Sagun et al. 2017 (arXiv:1706.04454) §4.1",
        ),
    ]


def _rules(s: dict) -> list[Verdict]:
    return [*_line_rules(s["max_barrier"]), *_sharpness_rules(), *_test_rules()]


_LABELS = {
    "barrier_lb_continued": "the LB–(LB→SB) barrier / the higher endpoint loss",
    "barrier_sb_lb": "the SB–LB barrier / the higher endpoint loss",
    "random_rise": "the relative loss rise along a random direction of the same length",
    "random_rise_continued": "the relative rise along a random direction of length "
    "‖θ_(LB→SB) − θ_LB‖ from θ_LB",
    "sharpness_ratio": "λ_max(large batch) / λ_max(small batch) at matched loss",
    "small.lambda_max": "λ_max at the smallest batch",
    "large.lambda_max": "λ_max at the largest batch",
    "small.test_loss": "the test loss at the smallest batch",
    "large.test_loss": "the test loss at the largest batch",
    "continued_test_loss": "the test loss after LB→SB",
    "continued_train_loss": "the training loss after LB→SB",
    "matched": "whether every batch size reached the target loss",
    "lambda_max": "λ_max for each batch size",
    "distance": "‖θ_LB − θ_SB‖",
    "small.counts.count_ratio": "the ratio-rule count at the smallest batch",
    "large.counts.count_ratio": "the ratio-rule count at the largest batch",
    "init_counts.count_ratio": "the ratio-rule count of H at initialisation",
}


def figure(result, path: Path) -> None:
    """λ_max vs batch size at matched loss (every seed) and the two lines (first seed)."""
    fig, (a, b) = figures.new_figure(2, (9.0, 3.5))
    for m in result.per_seed:
        a.plot(result.settings["batch_sizes"], m["lambda_max"], "o-", color="C0", alpha=0.4)
    a.set(xscale="log", xlabel="batch size", ylabel="λ_max(H) at the target loss")
    first = result.per_seed[0]
    alphas = result.settings["alphas"]
    b.plot(alphas, first["line_lb_continued"], label="LB → (LB→SB)")
    b.plot(alphas, first["line_sb_lb"], label="SB → LB")
    b.set(yscale="log", xlabel="α", ylabel=f"training loss (seed {result.seeds[0]})")
    b.legend(fontsize="x-small")
    fig.suptitle(f"small vs large batch at training loss ≤ {result.settings['target_loss']:g}")
    figures.save(fig, path)


_COMMON = {
    "dataset": "sklearn digits 8x8 (NOT MNIST)",
    "activation": "relu",
    "loss": "cross_entropy",
    "optimizer": "minibatch SGD, constant step",
    "top": 40,
    "min_margin": 1.25,
    "max_barrier": 0.1,
    "alphas": [float(a) for a in np.linspace(-0.5, 1.5, 41)],
}

register(
    Experiment(
        name="small-vs-large-batch",
        paper="Sagun et al. 2017 (arXiv:1706.04454), §4, Figs. 4, 7, 8",
        claim="the large-batch solution and its small-batch continuation lie in one basin; "
        "at matched loss large batches give larger outliers with the same count",
        fast={
            **_COMMON,
            "samples": 200,
            "test_samples": 200,
            "hidden": [10],
            "learning_rate": 0.5,
            "target_loss": 0.01,
            "max_steps": 2000,
            "continue_steps": 300,
            "batch_sizes": [10, 50, 200],
        },
        full={
            **_COMMON,
            "samples": 500,
            "test_samples": 500,
            "hidden": [20],
            "learning_rate": 0.5,
            "target_loss": 0.002,
            "max_steps": 6000,
            "continue_steps": 1000,
            "batch_sizes": [10, 50, 250, 500],
        },
        measure=_measure,
        rules=_rules,
        quantities=_LABELS,
        figure=figure,
        setting_text=lambda s: (
            f"{s['dataset']}, N = {s['samples']} (+ {s['test_samples']} held out), MLP 64-"
            f"{'-'.join(map(str, s['hidden']))}-10 {s['activation']}, {s['loss']}; SGD step "
            f"{s['learning_rate']} from one initialisation, each batch size in "
            f"{s['batch_sizes']} until the full-batch training loss ≤ {s['target_loss']} "
            f"(≤ {s['max_steps']} steps); LB→SB: {s['continue_steps']} steps at batch "
            f"{s['batch_sizes'][0]}; barrier threshold {s['max_barrier']} of the higher "
            "endpoint loss"
        ),
    )
)
