"""Sagun, Evci, Güney, Dauphin, Bottou 2017 (arXiv:1706.04454): bulk and outliers.

Registered experiments here (each multi-seed, exact dense spectra; the outlier-count
experiments ``init-vs-trained`` and ``outliers-vs-classes`` are in
:mod:`hessref.experiments.sagun2017_outliers`):

- ``bulk-vs-width`` (Fig. 3): top eigenvalues vs width and near-zero share vs P, on
  scikit-learn's 8×8 digits (NOT MNIST).
- ``hessian-split`` (§3): H = G + R; negative curvature can only come from R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import hessref as hr
from hessref import data
from hessref.experiments.common import (
    MIXTURE_FAST,
    MIXTURE_FULL,
    mixture_data,
    mixture_text,
    spectrum_of,
    train_gd,
)
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Compare, Monotone, Ref, Verdict
from hessref.spectrum import eigenvalues
from hessref.spectrum.statistics import spectrum_statistics, zero_tolerance
from hessref.train import train

PAPER = "Sagun et al. 2017 (arXiv:1706.04454)"


# ------------------------------------------------------------------------ bulk vs width
@dataclass(frozen=True)
class BulkVsWidth:
    """One seed of ``bulk-vs-width``: per width (in the order of ``widths``) and spreads.

    The first list field is what the generic figure draws per seed.
    """

    fraction_near_zero: list
    num_params: list
    final_loss: list
    top_eigenvalues: list  # per width, the top ``compare_top`` eigenvalues
    fraction_negative: list
    top_spread: float  # max over i ≤ compare_top of max/min over widths of λ_i
    lambda_max_spread: float
    loss_spread: float


def _measure_bulk(s: dict, seed: int, progress: Progress) -> BulkVsWidth:
    sd = derive_seeds(seed, "data", "init")
    X, y = data.digits(s["samples"], rng=sd["data"])
    k = s["compare_top"]
    tops, near_zero, loss, neg = [], [], [], []
    for h in s["widths"]:
        model = hr.MLP([64, h, 10], s["activation"])
        res = train(
            model,
            model.init(sd["init"]),
            X,
            y,
            loss=s["loss"],
            lr=s["learning_rate"],
            steps=s["steps"],
        )
        ev = spectrum_of(model, res.theta, X, y, s["loss"])
        st = spectrum_statistics(ev, top=k, near_zero=s["near_zero"])
        progress(f"h = {h}: P = {model.num_params}, loss {res.losses[-1]:.3g}")
        tops.append(st["top"])
        near_zero.append(st["fraction_near_zero"])
        neg.append(st["fraction_negative"])
        loss.append(float(res.losses[-1]))
    t = np.array(tops)
    return BulkVsWidth(
        fraction_near_zero=near_zero,
        num_params=[75 * h + 10 for h in s["widths"]],
        final_loss=loss,
        top_eigenvalues=tops,
        fraction_negative=neg,
        top_spread=float((t.max(axis=0) / t.min(axis=0)).max()),
        lambda_max_spread=float(t[:, 0].max() / t[:, 0].min()),
        loss_spread=float(max(loss) / min(loss)),
    )


BULK_SOURCE = "Sagun et al. 2017 Figs. 3, 5"

register(
    Experiment(
        name="bulk-vs-width",
        paper=f"{PAPER}, Fig. 3",
        claim="with the data fixed, wider nets keep the top eigenvalues and add near-zero ones",
        fast={
            "dataset": "sklearn digits 8x8 (NOT MNIST)",
            "samples": 200,
            "widths": [10, 15, 20],
            "activation": "relu",
            "loss": "cross_entropy",
            "learning_rate": 0.1,
            "steps": 300,
            "compare_top": 10,
            "max_top_spread": 2.0,
            "near_zero": 1e-3,
        },
        full={
            "dataset": "sklearn digits 8x8 (NOT MNIST)",
            "samples": 1000,
            "widths": [10, 20, 40],
            "activation": "relu",
            "loss": "cross_entropy",
            "learning_rate": 0.1,
            "steps": 1000,
            "compare_top": 10,
            "max_top_spread": 2.0,
            "near_zero": 1e-3,
        },
        measure=_measure_bulk,
        rules=lambda s: [
            Verdict(
                "top eigenvalues stable across widths",
                Compare("top_spread", "<=", s["max_top_spread"]),
                f"with the data fixed, the top {s['compare_top']} eigenvalues stay in place as "
                "the width grows",
                BULK_SOURCE,
                paper_value="same edge",
            ),
            Verdict(
                "near-zero share grows with P",
                Monotone("fraction_near_zero", along="the width"),
                "with the data fixed, extra parameters add (near-)zero eigenvalues",
                BULK_SOURCE,
            ),
        ],
        quantities={
            "top_spread": "the largest max/min ratio over widths of the i-th top eigenvalue "
            "(i ≤ compare_top)",
            "lambda_max_spread": "the max/min ratio of λ_max over widths",
            "loss_spread": "the max/min ratio of the final loss over widths",
            "fraction_near_zero": "the near-zero share by width",
        },
        setting_text=lambda s: (
            f"{s['dataset']}, N = {s['samples']}, 64-h-10 {s['activation']}, {s['loss']}, "
            f"h in {s['widths']}, {s['steps']} GD steps of {s['learning_rate']}; near-zero "
            f"cutoff {s['near_zero']}·max|λ|"
        ),
    )
)


# ------------------------------------------------------------------------ hessian split
@dataclass(frozen=True)
class SplitChecks:
    """The H = G + R checks of one trained net (τ: the zero tolerance of the spectra)."""

    final_loss: float
    lambda_min_gap: float  # λ_min(H) − λ_min(R) + τ
    elementwise_gap: float  # min_i (λ_i(H) − λ_i(R)) + τ
    neg_H: int
    neg_R: int
    min_G_over_tol: float  # λ_min(G) / τ
    weyl_slack: float  # ‖R‖₂ − max_i |λ_i(H) − λ_i(G)| + τ
    trace_R_rel: float  # |tr R| / Σ|λ(H)|
    norm_R_over_G: float


def _split_checks(model, theta, X, y, s: dict, final_loss: float) -> SplitChecks:
    # H from its own engine mode, never from its parts: the rules compare H with G and R
    H = hr.hessian(model, theta, X, y, loss=s["loss"])
    G, R = hr.gauss_newton(model, theta, X, y, loss=s["loss"])
    ev_h, ev_g, ev_r = eigenvalues(H), eigenvalues(G), eigenvalues(R)
    tol = zero_tolerance(np.concatenate([ev_h, ev_r]))
    sh, sr = spectrum_statistics(ev_h), spectrum_statistics(ev_r)
    return SplitChecks(
        final_loss=final_loss,
        lambda_min_gap=float(ev_h[-1] - ev_r[-1] + tol),
        elementwise_gap=float((ev_h - ev_r).min() + tol),
        neg_H=sh["num_negative"],
        neg_R=sr["num_negative"],
        min_G_over_tol=float(ev_g[-1] / tol),
        weyl_slack=float(np.abs(ev_r).max() - np.abs(ev_h - ev_g).max() + tol),
        trace_R_rel=float(abs(np.trace(R)) / np.abs(ev_h).sum()),
        norm_R_over_G=float(np.abs(ev_r).max() / ev_g[0]),
    )


def _measure_split(s: dict, seed: int, progress: Progress) -> dict[str, SplitChecks]:
    """Per activation (a record keyed by the activation's name), the split checks."""
    sd = derive_seeds(seed, "data", "init")
    X, y = mixture_data(s, sd["data"])
    out = {}
    for act in s["activations"]:
        model = hr.MLP([s["input_dim"], *s["hidden"], s["classes"]], act)
        res = train_gd(model, model.init(sd["init"]), X, y, s, progress, act)
        out[act] = _split_checks(model, res.theta, X, y, s, float(res.losses[-1]))
    return out


def _rules_split(s: dict) -> list[Verdict]:
    src = f"{PAPER.split(' (')[0]} §3 (H = G + R)"
    rules = []
    for a in s["activations"]:
        rules += [
            Verdict(
                f"{a}: λ_i(H) ≥ λ_i(R) for all i",
                Compare(f"{a}.elementwise_gap", ">=", 0.0),
                "G ⪰ 0, so every ordered eigenvalue of H = G + R is ≥ that of R (Weyl)",
                src,
                role="identity",
            ),
            Verdict(
                f"{a}: G ⪰ 0",
                Compare(f"{a}.min_G_over_tol", ">=", -1.0),
                "the Gauss-Newton part G is positive semi-definite",
                src,
                role="identity",
            ),
            Verdict(
                f"{a}: #neg H ≤ #neg R",
                Compare(f"{a}.neg_H", "<=", Ref(f"{a}.neg_R")),
                "negative curvature of H can only come from R",
                src,
                role="identity",
            ),
            Verdict(
                f"{a}: |λ_i(H) − λ_i(G)| ≤ ‖R‖₂ (Weyl)",
                Compare(f"{a}.weyl_slack", ">=", 0.0),
                "each eigenvalue of H is within ‖R‖₂ of that of G (Weyl)",
                src,
                role="identity",
            ),
        ]
    if "relu" in s["activations"]:
        rules.append(
            Verdict(
                "relu: tr R = 0",
                Compare("relu.trace_R_rel", "<=", 1e-10),
                "for ReLU (σ″ = 0 a.e.) R has zero trace",
                src,
                role="identity",
            )
        )
    return rules


def _labels_split(acts: list[str]) -> dict[str, str]:
    out = {}
    for a in acts:
        out.update(
            {
                f"{a}.elementwise_gap": f"min_i (λ_i(H) − λ_i(R)) + τ ({a})",
                f"{a}.min_G_over_tol": f"λ_min(G) / τ ({a})",
                f"{a}.neg_H": f"#negative eigenvalues of H ({a})",
                f"{a}.neg_R": f"#negative eigenvalues of R ({a})",
                f"{a}.weyl_slack": f"‖R‖₂ − max_i |λ_i(H) − λ_i(G)| + τ ({a})",
                f"{a}.trace_R_rel": f"|tr R| / Σ|λ(H)| ({a})",
                f"{a}.norm_R_over_G": f"‖R‖₂ / ‖G‖₂ ({a})",
            }
        )
    return out


_SPLIT_FULL = {**MIXTURE_FULL, "activations": ["relu", "tanh"]}
_SPLIT_FAST = {**MIXTURE_FAST, "activations": ["relu", "tanh"], "target_loss": 1e-2}

register(
    Experiment(
        name="hessian-split",
        paper=f"{PAPER}, §3",
        claim="H = G + R with G ⪰ 0, so all negative curvature comes from R",
        fast=_SPLIT_FAST,
        full=_SPLIT_FULL,
        measure=_measure_split,
        rules=_rules_split,
        quantities=_labels_split(["relu", "tanh"]),
        setting_text=lambda s: (
            mixture_text(s) + f"; activations {s['activations']}; "
            "τ = 1e-10·max|λ| (the zero tolerance of hessref.spectrum.statistics)"
        ),
    )
)
