"""How good is K-FAC? Approximations of G against the exact G (docs/theory.md §19).

Registered experiment ``kfac-quality``: on the Gaussian mixture of
:mod:`hessref.experiments.common`, an MLP d→w→w→C (tanh) is trained by full-batch GD
under MSE (one-hot targets) and cross-entropy; at three points of training (``init``;
``mid``, the first recorded θ_t whose loss is ≤ halfway between L_0 and L_T; ``trained``,
θ_T) and for every width w, each approximation M̃ of :mod:`hessref.approx` is compared
with the exact G by :func:`hessref.approx.quality`:

- ``kfac`` (type-2), ``ekfac`` (type-2), ``block_diagonal`` (exact G blocks), ``diagonal``
  (exact diag G), ``empirical_fisher``, ``mc_fisher`` (``mc_samples`` labels per sample),
  ``fgn`` (cross-entropy only) and the null ``random_psd``: W Wᵀ for a Gaussian P×P W,
  scaled to tr G (same trace, no structure of the network).

Per approximation it records the relative Frobenius error, the largest per-layer error,
the largest principal angle between the top-k eigenvectors of M̃ and of G, and the
quadratic-model error (v₁ᵀM̃v₁ − λ₁)/λ₁ along G's top eigenvector (19.12); for K-FAC also
its relative error against H = G + R.

Rules (thresholds fixed before the first run; per (loss, stage), a seed passes when the
rule holds at EVERY width):

- identities (theorems, any seed must pass): EK-FAC ≤ K-FAC per layer (19.7); the exact
  block diagonal ≤ EK-FAC in total (both zero the cross-layer blocks, the block diagonal
  keeps the exact layer blocks); K-FAC's last layer is exact under MSE (19.10);
  G − FGN ⪰ 0 (19.9).
- claims: K-FAC's top-k eigenspace aligns with G's (largest angle < ``max_angle``);
  K-FAC is closer to G than the diagonal; the empirical Fisher is farther from G than the
  Monte-Carlo Fisher. Null: the random PSD matrix's top-k eigenspace under the same
  angle rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import approx
from hessref.approx.structure import DenseApproximation
from hessref.experiments.common import mixture_data, targets
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Ref, Verdict
from hessref.spectrum import eigenvalues
from hessref.train import train

STAGES = ("init", "mid", "trained")
LOSSES = ("mse", "cross_entropy")
#: approximation name -> legend label (the order of the figure)
APPROXIMATIONS = {
    "kfac": "K-FAC (type-2)",
    "ekfac": "EK-FAC (type-2)",
    "block_diagonal": "block-diagonal G",
    "diagonal": "diagonal G",
    "empirical_fisher": "empirical Fisher",
    "mc_fisher": "MC Fisher",
    "fgn": "FGN (CE only)",
    "random_psd": "null: random PSD, same trace",
}
MG2015 = "Martens & Grosse 2015 (arXiv:1503.05671)"
GEORGE2018 = "George et al. 2018 (arXiv:1806.03884)"
KUNSTNER2019 = "Kunstner, Balles, Hennig 2019 (arXiv:1905.12558)"
IDENTITY_TOL = 1e-10


@dataclass(frozen=True)
class ApproxError:
    """One approximation M̃ against the exact G at one (loss, stage, width).

    relative : ‖M̃ − G‖_F / ‖G‖_F;  layer_max : max_l of the same on layer l's block;
    angle_max : largest principal angle (radians) between the top-k eigenvectors;
    quad_top : (v₁ᵀ M̃ v₁ − λ₁)/λ₁ along G's top eigenvector;  layer_errors : per layer.
    """

    relative: float
    layer_max: float
    angle_max: float
    quad_top: float
    layer_errors: list


@dataclass(frozen=True)
class ConfigQuality:
    """Every approximation at one (loss, stage, width); ``errors[name]`` is an ApproxError."""

    loss_value: float
    num_params: int
    errors: dict
    kfac_vs_H: float
    fgn_psd_gap: float | None


@dataclass(frozen=True)
class ApproxQualitySeed:
    """One seed of ``kfac-quality``.

    ``q[loss][stage]["w<width>"]`` is a ConfigQuality; ``mid_step[loss]["w<width>"]`` the
    GD step taken as ``mid``. The identity quantities are maxima (minimum for the FGN gap)
    over every configuration of the seed.
    """

    q: dict
    mid_step: dict
    ekfac_minus_kfac: float
    bd_minus_ekfac: float
    mse_last_layer_kfac: float
    fgn_min_gap: float


def random_psd(model: hr.MLP, trace: float, rng: np.random.Generator) -> DenseApproximation:
    """The null: W Wᵀ / tr(W Wᵀ) · ``trace`` for a standard Gaussian W (P, P)."""
    W = rng.standard_normal((model.num_params, model.num_params))
    M = W @ W.T
    return DenseApproximation(model, M * (trace / np.trace(M)), "random PSD (same trace)")


def _error(q: approx.Quality) -> ApproxError:
    layers = [float(e) for e in q.layer_errors]
    return ApproxError(
        relative=q.relative_frobenius,
        layer_max=max(layers),
        angle_max=float(np.max(q.subspace_angles)),
        quad_top=float(q.quadratic_errors[0]),
        layer_errors=layers,
    )


def _approximations(model, theta, X, Y, loss, s: dict, rng: np.random.Generator) -> dict:
    """Every approximation of G at θ (config_quality adds the null, drawn after the MC labels)."""
    args = (model, theta, X, Y)
    out = {
        "kfac": approx.kfac(*args, loss=loss),
        "ekfac": approx.ekfac(*args, loss=loss),
        "block_diagonal": approx.block_diagonal(*args, loss=loss),
        "diagonal": approx.diagonal(*args, loss=loss),
        "empirical_fisher": approx.empirical_fisher(*args, loss=loss),
        "mc_fisher": approx.mc_fisher(*args, loss=loss, num_samples=s["mc_samples"], rng=rng),
    }
    if loss == "cross_entropy":
        out["fgn"] = approx.fgn(*args, loss=loss)
    return out


def config_quality(model, theta, X, Y, loss: str, s: dict, rng) -> ConfigQuality:
    """All approximations at one θ against the exact G (and K-FAC against H = G + R)."""
    G, R = hr.gauss_newton(model, theta, X, Y, loss=loss)
    found = _approximations(model, theta, X, Y, loss, s, rng)
    found["random_psd"] = random_psd(model, float(np.trace(G)), rng)
    dense = {name: a.dense() for name, a in found.items()}
    errors = {
        name: _error(approx.quality(M, G, k=s["top_k"], model=model)) for name, M in dense.items()
    }
    H = G + R
    gap = None
    if "fgn" in dense:  # λ_min(G − FGN) relative to λ_max(G): ≥ 0 up to rounding (19.9)
        gap = float(eigenvalues(G - dense["fgn"])[-1] / eigenvalues(G)[0])  # descending
    return ConfigQuality(
        loss_value=float(hr.loss(model, theta, X, Y, loss=loss)),
        num_params=model.num_params,
        errors=errors,
        kfac_vs_H=float(np.linalg.norm(dense["kfac"] - H) / np.linalg.norm(H)),
        fgn_psd_gap=gap,
    )


def train_stages(model, theta0, X, Y, loss: str, s: dict) -> tuple[dict, int]:
    """θ at init, mid (first recorded loss ≤ (L_0 + L_T)/2) and trained; and the mid step."""
    every = max(1, s["steps"] // 20)
    run = train(
        model, theta0, X, Y, loss=loss, lr=s["learning_rate"], steps=s["steps"], record_every=every
    )
    half = (run.losses[0] + run.losses[-1]) / 2
    recorded = run.losses[run.recorded_steps]
    j = int(np.argmax(recorded <= half))  # the first recorded step at or below halfway
    return {
        "init": run.recorded_thetas[0],
        "mid": run.recorded_thetas[j],
        "trained": run.theta,
    }, int(run.recorded_steps[j])


def _identities(q: dict) -> dict[str, float]:
    """The identity quantities: maxima over every (loss, stage, width) of the seed."""
    cfgs = [(loss, c) for loss, st in q.items() for w in st.values() for c in w.values()]
    pairs = [
        (k, e)
        for _, c in cfgs
        for k, e in zip(c.errors["kfac"].layer_errors, c.errors["ekfac"].layer_errors, strict=True)
    ]
    gaps = [c.fgn_psd_gap for _, c in cfgs if c.fgn_psd_gap is not None]
    last = [c.errors["kfac"].layer_errors[-1] for loss, c in cfgs if loss == "mse"]
    return {
        "ekfac_minus_kfac": max(e - k for k, e in pairs),
        "bd_minus_ekfac": max(
            c.errors["block_diagonal"].relative - c.errors["ekfac"].relative for _, c in cfgs
        ),
        "mse_last_layer_kfac": max(last) if last else math.nan,
        "fgn_min_gap": min(gaps) if gaps else math.nan,
    }


def _measure(s: dict, seed: int, progress: Progress) -> ApproxQualitySeed:
    sd = derive_seeds(seed, "data", "init", "mc")
    X, y = mixture_data(s, sd["data"])
    rng = np.random.default_rng(sd["mc"])
    q: dict[str, dict] = {}
    mid: dict[str, dict] = {}
    with threadpool_limits(limits=1, user_api="blas"):
        for loss in s["losses"]:
            q[loss] = {stage: {} for stage in STAGES}
            mid[loss] = {}
            for w in s["widths"]:
                model = hr.MLP([s["input_dim"], w, w, s["classes"]], s["activation"])
                Y = targets(y, loss, s["classes"])
                thetas, mid[loss][f"w{w}"] = train_stages(
                    model, model.init(sd["init"]), X, Y, loss, s
                )
                for stage, theta in thetas.items():
                    q[loss][stage][f"w{w}"] = config_quality(model, theta, X, Y, loss, s, rng)
                progress(f"{loss}, width {w}: P = {model.num_params}")
    return ApproxQualitySeed(q=q, mid_step=mid, **_identities(q))


def _path(loss: str, stage: str, w: int, name: str, field: str) -> str:
    return f"q.{loss}.{stage}.w{w}.errors.{name}.{field}"


def _identity_rules() -> list[Verdict]:
    t = IDENTITY_TOL
    return [
        Verdict(
            "EK-FAC ≤ K-FAC per layer",
            Compare("ekfac_minus_kfac", "<=", t),
            "EK-FAC's layer blocks are at least as close to G's as K-FAC's (a theorem: "
            "the refitted eigenvalues minimise the error in K-FAC's eigenbasis)",
            f"{GEORGE2018} §3; docs/theory.md (19.7)",
            role="identity",
        ),
        Verdict(
            "block diagonal ≤ EK-FAC",
            Compare("bd_minus_ekfac", "<=", t),
            "the exact block diagonal of G is at least as close to G as EK-FAC (both "
            "zero the cross-layer blocks; the block diagonal keeps the exact blocks)",
            "docs/theory.md (19.11)",
            role="identity",
        ),
        Verdict(
            "K-FAC last layer exact (MSE)",
            Compare("mse_last_layer_kfac", "<=", t),
            "under MSE the backpropagated factor of the last layer is I for every "
            "sample, so K-FAC's last block equals G's",
            f"{MG2015}; docs/theory.md (19.10)",
            role="identity",
        ),
        Verdict(
            "G − FGN ⪰ 0 (CE)",
            Compare("fgn_min_gap", ">=", -t),
            "the true-vs-rest FGN is a PSD under-approximation of G",
            "docs/theory.md (19.9), Theorem 1",
            role="identity",
        ),
    ]


def _at_every_width(
    s: dict, loss: str, stage: str, name: str, field: str, op: str, value: Any
) -> AllOf:
    """``name.field <op> value`` at every width; a str ``value`` names another approximation."""

    def rhs(w: int) -> Any:
        return Ref(_path(loss, stage, w, value, field)) if isinstance(value, str) else value

    return AllOf(*(Compare(_path(loss, stage, w, name, field), op, rhs(w)) for w in s["widths"]))


def _claim_rules(s: dict, loss: str, stage: str) -> list[Verdict]:
    a, k, tag = s["max_angle"], s["top_k"], f"{loss}, {stage}"
    every = lambda *args: _at_every_width(s, loss, stage, *args)  # noqa: E731
    return [
        Verdict(
            f"{tag}: K-FAC top-{k} eigenspace aligns with G's",
            every("kfac", "angle_max", "<", a),
            f"K-FAC captures the dominant curvature of G: its top-{k} eigenvectors span "
            f"nearly G's (largest principal angle < {a:g} rad, ours, fixed before the run; "
            "at every width)",
            f"{MG2015} §3 (qualitative: 'coarse structure')",
        ),
        Verdict(
            f"{tag}: K-FAC closer to G than the diagonal",
            every("kfac", "relative", "<", "diagonal"),
            "K-FAC approximates G better than a diagonal approximation (relative Frobenius "
            "error; at every width)",
            f"{MG2015} §1, §3",
        ),
        Verdict(
            f"{tag}: empirical Fisher farther from G than MC Fisher",
            every("empirical_fisher", "relative", ">", "mc_fisher"),
            f"the empirical Fisher is a worse approximation of G than the Monte-Carlo "
            f"Fisher ({s['mc_samples']} label(s) per sample; relative Frobenius error; at "
            "every width)",
            f"{KUNSTNER2019} §3-4",
        ),
        Verdict(
            f"null {tag}: random PSD top-{k} aligns with G's",
            every("random_psd", "angle_max", "<", a),
            "controls for alignment by chance: a random PSD matrix with G's trace and no "
            "network structure, under the same angle rule (expected to fail)",
            f"{MG2015} §3",
            role="null",
        ),
    ]


def _rules(s: dict) -> list[Verdict]:
    claims = [v for loss in s["losses"] for st in STAGES for v in _claim_rules(s, loss, st)]
    return [*_identity_rules(), *claims]


#: the fields the rules read, labelled at every width (statements name them)
_RULE_FIELDS = (
    ("kfac", "angle_max"),
    ("random_psd", "angle_max"),
    ("kfac", "relative"),
    ("diagonal", "relative"),
    ("empirical_fisher", "relative"),
    ("mc_fisher", "relative"),
)


def _quantities(s: dict) -> dict[str, str]:
    out = {
        "ekfac_minus_kfac": "max over layers of EK-FAC − K-FAC layer error",
        "bd_minus_ekfac": "block-diagonal − EK-FAC relative error (max)",
        "mse_last_layer_kfac": "K-FAC's last-layer error under MSE (max)",
        "fgn_min_gap": "λ_min(G − FGN)/λ_max(G) (min)",
    }
    what = {"relative": "relative error", "angle_max": f"largest top-{s['top_k']} angle"}
    for loss in s["losses"]:
        for st in STAGES:
            for w in s["widths"]:
                for name, field in _RULE_FIELDS:
                    out[_path(loss, st, w, name, field)] = (
                        f"{APPROXIMATIONS[name]}: {what[field]} ({loss}, {st}, width {w})"
                    )
            w = max(s["widths"])
            out[_path(loss, st, w, "ekfac", "relative")] = (
                f"{APPROXIMATIONS['ekfac']}: relative error ({loss}, {st}, width {w})"
            )
    return out


FAST: dict[str, Any] = {
    "classes": 3,
    "input_dim": 4,
    "samples": 40,
    "separation": 3.0,
    "spread": 1.0,
    "means": "normal",
    "standardize": True,
    "widths": [4, 8],
    "activation": "tanh",
    "losses": list(LOSSES),
    "learning_rate": 0.5,
    "steps": 200,
    "top_k": 3,
    "mc_samples": 1,
    "max_angle": 0.5,
}
FULL: dict[str, Any] = {
    **FAST,
    "input_dim": 8,
    "samples": 150,
    "widths": [8, 16, 24],
    "steps": 1000,
}


def _setting_text(s: dict) -> str:
    return (
        f"{s['classes']}-class Gaussian mixture, d = {s['input_dim']}, N = {s['samples']}, "
        f"separation {s['separation']}; MLP d-w-w-{s['classes']} {s['activation']}, "
        f"w in {s['widths']}; losses {s['losses']} (MSE on one-hot targets); full-batch GD, "
        f"step {s['learning_rate']}, {s['steps']} steps; stages init, mid (first recorded "
        f"loss ≤ halfway), trained; top-k = {s['top_k']}; MC Fisher with {s['mc_samples']} "
        f"label(s) per sample; angle threshold {s['max_angle']} rad"
    )


# ------------------------------------------------------------------------------ figure
_CLAIM_SERIES = {
    "K-FAC top-k aligns": "{tag}: K-FAC top-{k} eigenspace aligns with G's",
    "K-FAC < diagonal": "{tag}: K-FAC closer to G than the diagonal",
    "EF > MC Fisher": "{tag}: empirical Fisher farther from G than MC Fisher",
    "null: random PSD aligns": "null {tag}: random PSD top-{k} aligns with G's",
}


def _error_panel(ax: Any, result: Any, loss: str) -> None:
    """Median (over seeds) relative Frobenius error vs stage, largest width, log scale."""
    w = max(result.settings["widths"])
    for i, (name, label) in enumerate(APPROXIMATIONS.items()):
        med = []
        for st in STAGES:
            vals = [m["q"][loss][st][f"w{w}"]["errors"].get(name) for m in result.per_seed]
            vals = [v["relative"] for v in vals if v is not None and v["relative"] is not None]
            med.append(float(np.median(vals)) if vals else float("nan"))
        if not all(math.isnan(v) for v in med):
            ax.plot(range(len(STAGES)), med, "o-", ms=4, lw=1, label=label, color=f"C{i}")
    ax.set_xticks(range(len(STAGES)), STAGES)
    ax.set(yscale="log", ylabel="‖M̃ − G‖_F / ‖G‖_F (median over seeds)", title=f"{loss}, width {w}")
    ax.legend(fontsize="xx-small")


def _figure(result: Any, path: Path) -> None:
    """Per loss: errors vs stage, and the claim rates vs stage with Wilson intervals."""
    from hessref.experiments.figures import new_figure, rates_panel, save

    losses = result.settings["losses"]
    fig, axes = new_figure(2 * len(losses), (5.0 * 2 * len(losses), 4.2))
    by_name = {v["name"]: v for v in result.verdicts}
    k = result.settings["top_k"]
    for i, loss in enumerate(losses):
        _error_panel(axes[2 * i], result, loss)
        series = {
            label: [by_name[name.format(tag=f"{loss}, {st}", k=k)] for st in STAGES]
            for label, name in _CLAIM_SERIES.items()
        }
        rates_panel(
            axes[2 * i + 1],
            list(range(len(STAGES))),
            series,
            "stage (0 init, 1 mid, 2 trained)",
            f"claim rates, {loss}",
        )
    fig.suptitle(f"{result.name} ({result.mode}, {len(result.seeds)} seeds)")
    save(fig, path)


register(
    Experiment(
        name="kfac-quality",
        paper=f"{MG2015}; {GEORGE2018}; {KUNSTNER2019}",
        claim="K-FAC approximates G well; EK-FAC is better; the empirical Fisher is worse",
        fast=FAST,
        full=FULL,
        measure=_measure,
        rules=_rules,
        quantities={**_quantities(FAST), **_quantities(FULL)},
        setting_text=_setting_text,
        figure=_figure,
    )
)
