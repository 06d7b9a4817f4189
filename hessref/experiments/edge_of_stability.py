"""Experiment ``edge-of-stability``: sharpness under full-batch GD (Cohen et al. 2021).

Cohen, Kaur, Li, Kolter, Talwalkar 2021 (arXiv:2103.00065, §3) report that under
full-batch GD with step η the sharpness λ_max(H) rises while it is below 2/η
("progressive sharpening") until it reaches 2/η, then hovers at or slightly above 2/η
while the loss keeps decreasing over long windows — although GD on a quadratic with that
curvature would diverge along its top eigenvector (docs/theory.md, "Gradient descent on
a quadratic": the error along an eigenvector with eigenvalue λ is multiplied by 1 − ηλ
per step).

Design: the steps are chosen PER SEED from the sharpness at initialisation,
η = c · 2/λ_max(θ₀) for each fraction c < 1 of ``fractions``, so λ_max(θ₀) = c·2/η is
below 2/η at every η by construction and progressive sharpening is tested from below
(the sharpness must grow by 1/c to reach the edge). Each (η, λ_max(θ₀)) pair is
recorded per seed (:class:`RateRecord` fields ``eta`` and ``sharpness_init``). The
initialisation is PyTorch's default scaled by ``init_scale`` = 0.5: at the default scale
the sharpness of this setting FALLS from its initial value under GD (pilot, fast setting,
seed 0, 4000 steps: 4.89 → 3.7–3.9 at c = 0.5, 0.7, 0.9), so sharpening from below
cannot be tested there; at half the scale it starts at ≈ 1.9 and rises.

Setting: ``samples`` images of scikit-learn's 8×8 digits (standardized; NOT MNIST or
CIFAR), one-hot targets, MSE (½‖f − y‖², mean over samples), a 64→h→10 tanh MLP with
PyTorch-default initialization, full-batch GD for ``steps`` steps; λ_max(H(θ_t)) is
tracked exactly every ``every`` steps (warm-started Lanczos, :class:`~hessref.train.Tracking`).

Per η: the first crossing (:func:`edge_crossing`); the sharpening ratio (λ_max at the
crossing, or at the end, over the minimum recorded before it); the fraction of records
from the crossing on with |λ_max·η/2 − 1| ≤ ``band``; and the **quadratic-model
comparison**: at the crossing θ_c the second-order Taylor model
m(θ_c + δ) = L_c + gᵀδ + ½δᵀHδ (exact g and H) is run under the same GD for ``horizon``
steps, in closed form per eigenvector (:func:`quadratic_model_gd`); the prediction
along the top eigenvector, (L_c + its mode's term)/L_c, is compared with the network's
measured L(θ_{c+k})/L_c. The full model's ratio m(δ_k)/L_c is reported too, but it is
unbounded below wherever H has negative eigenvalues, so no rule reads it.

**Sharpness dimension** (a measurement, no rule; our definition, docs/theory.md (20.5):
issue 23 points to arXiv:2604.19740, which we have not read). At the crossing θ_c the
GD map θ ↦ θ − η∇L(θ) has the linearisation I − ηH, whose per-step log growth rates are
μ_i = log|1 − ηλ_i|. :func:`ky_dimension` is their Kaplan–Yorke dimension, and
``unstable_at_cross`` counts the μ_i > 0 (directions the linearised map expands).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from hessref import data, spectrum
from hessref.core.dense import hessian
from hessref.core.derivatives import gradient, loss
from hessref.core.mlp import MLP
from hessref.experiments import figures
from hessref.experiments.framework import Experiment, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Ref, Verdict
from hessref.train import Tracking, train

FAST = {
    "samples": 150,
    "hidden": 12,
    "fractions": [0.5, 0.7, 0.9],
    "steps": 800,
    "every": 20,
    "band": 0.1,
    "horizon": 100,
    "init_scale": 0.5,
}
FULL = {**FAST, "samples": 300, "hidden": 20, "steps": 3000, "horizon": 300}


def fraction_key(c: float) -> str:
    """The key of fraction ``c`` in :attr:`EdgeSeed.rates` (``0.7 -> "c70"``)."""
    return f"c{round(100 * c)}"


@dataclass(frozen=True)
class RateRecord:
    """One step size of one seed. ``eta`` = fraction · 2 / ``sharpness_init``."""

    fraction: float
    eta: float
    sharpness_init: float
    crossed: bool
    first_cross_step: int | None
    sharpening: float
    band_fraction: float
    ratio_median_after: float | None
    network_ratio: float | None
    quadratic_ratio: float | None
    top_mode_ratio: float | None
    sharpness_at_cross: float | None
    ky_dimension_at_cross: float | None
    unstable_at_cross: int | None
    steps: list[int]
    sharpness: list[float]
    loss: list[float]
    final_loss: float


@dataclass(frozen=True)
class EdgeSeed:
    """One seed: λ_max(θ₀), a :class:`RateRecord` per fraction, the quadratic anchor."""

    num_params: int
    sharpness_init: float
    rates: dict[str, RateRecord]
    below_edge_at_init: bool
    quadratic_growth_rel_error: float


def quadratic_model_gd(g: np.ndarray, H: np.ndarray, eta: float, k: int) -> tuple[float, float]:
    """Change of the quadratic model after k GD steps from δ = 0, total and top mode.

    m(δ) = gᵀδ + ½δᵀHδ with H = Σ λ_i u_i u_iᵀ. GD δ ← δ − η(g + Hδ) gives, per mode
    (g_i = u_iᵀg, r_i = 1 − ηλ_i), δ_i(k) = −η g_i Σ_{j<k} r_i^j, so the model change is
    Σ_i g_i δ_i + ½λ_i δ_i² exactly (no iteration). Returns (total, the top-λ mode's term).
    """
    lam, V = spectrum.eigenvalues(H, vectors=True)  # λ_1 ≥ … ≥ λ_P
    gi = V.T @ g
    r = 1.0 - eta * lam
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = np.where(np.abs(1.0 - r) > 1e-14, (1.0 - r**k) / (1.0 - r), float(k))
    delta = -eta * gi * geometric
    terms = gi * delta + 0.5 * lam * delta**2
    return float(terms.sum()), float(terms[0])


def ky_dimension(mu: np.ndarray) -> float:
    """Kaplan–Yorke dimension of growth rates μ (docs/theory.md (20.5)).

    With μ_(1) ≥ … ≥ μ_(P) sorted, S_j = Σ_{i≤j} μ_(i) (S_0 = 0) and j the largest index
    with S_j ≥ 0: D = P if j = P, else D = j + S_j / |μ_(j+1)| (0 if μ_(j+1) = −∞).

    Examples
    --------
    >>> round(ky_dimension(np.log([3.0, 0.5, 0.25])), 6)  # 2 + log(3/2)/log 4
    2.292481
    >>> ky_dimension(np.array([-0.1, -0.2])), ky_dimension(np.array([0.5, 0.0]))
    (0.0, 2.0)
    """
    mu = np.sort(np.asarray(mu, dtype=np.float64))[::-1]
    with np.errstate(invalid="ignore"):
        S = np.concatenate([[0.0], np.cumsum(mu)])
    j = int(np.flatnonzero(S >= 0.0)[-1])
    if j == mu.size:
        return float(j)
    return float(j + S[j] / abs(mu[j])) if np.isfinite(mu[j]) else float(j)


def sharpness_dimension(lam: np.ndarray, eta: float) -> tuple[float, int]:
    """(Kaplan–Yorke dimension of μ_i = log|1 − ηλ_i|, #{μ_i > 0}) for eigenvalues λ of H."""
    with np.errstate(divide="ignore"):
        mu = np.log(np.abs(1.0 - eta * np.asarray(lam, dtype=np.float64)))
    return ky_dimension(mu), int(np.sum(mu > 0))


def _model_ratio(model, theta_c, X, Y, eta: float, k: int) -> tuple[float, float, tuple]:
    """(m(δ_k)/L_c, (L_c + top-mode term)/L_c, sharpness dimension) of the model at θ_c."""
    with threadpool_limits(limits=1, user_api="blas"):
        H = hessian(model, theta_c, X, Y, loss="mse")
    L_c = float(loss(model, theta_c, X, Y, loss="mse"))
    total, top = quadratic_model_gd(gradient(model, theta_c, X, Y, loss="mse"), H, eta, k)
    dim = sharpness_dimension(spectrum.eigenvalues(H), eta)
    return (L_c + total) / L_c, (L_c + top) / L_c, dim


def edge_crossing(ratio: np.ndarray) -> tuple[int, int, bool]:
    """Locate the first rise of λ_max·η/2 (``ratio``, one entry per record) to 1.

    Record 0 (initialization) is skipped. If a later record is below 1, the crossing is
    the first record at or above 1 after the first one below (``start``); otherwise the
    run starts at the edge and the crossing is record 1. Returns (index of the crossing,
    or the last record if none; ``start``, where the sharpening ratio's minimum is taken
    from; whether a crossing happened).
    """
    below = np.flatnonzero(ratio[1:] < 1.0) + 1
    if below.size == 0:
        return 1, 1, True
    start = int(below[0])
    above = np.flatnonzero(ratio[start:] >= 1.0) + start
    if above.size == 0:
        return len(ratio) - 1, start, False
    return int(above[0]), start, True


def _quadratic_anchor(lrs: list, seed: int) -> dict:
    """GD on ½xᵀAx with λ_max(A) = 1.02·2/η.

    Returns the relative error of the measured per-step growth of the error along the
    top eigenvector vs the exact |1 − ηλ_max| (max over η).
    """
    gen = np.random.default_rng(seed)
    worst = 0.0
    for lr in lrs:
        lam = np.concatenate([[1.02 * 2.0 / lr], gen.uniform(0.1, 1.0, 9) / lr])
        Q, _ = np.linalg.qr(gen.standard_normal((10, 10)))
        A = (Q * lam) @ Q.T
        x = gen.standard_normal(10)
        for _ in range(60):
            x = x - lr * (A @ x)
        growth = abs(Q[:, 0] @ (x - lr * (A @ x))) / abs(Q[:, 0] @ x)
        worst = max(worst, abs(growth - abs(1.0 - lr * lam[0])) / abs(1.0 - lr * lam[0]))
    return {"quadratic_growth_rel_error": worst}


def _after(crossed: bool, value) -> float | None:
    return float(value) if crossed else None


def _one_rate(model, theta0, X, Y, c: float, lam0: float, s: dict, progress) -> RateRecord:
    """Train at η = c·2/λ_max(θ₀) and measure (see the module docstring)."""
    eta = c * 2.0 / lam0
    res = train(
        model,
        theta0,
        X,
        Y,
        loss="mse",
        lr=eta,
        steps=s["steps"],
        track=Tracking(every=s["every"]),
        record_every=s["every"],
    )
    tr = res.tracking
    ratio = tr.sharpness * eta / 2.0
    i0, start, crossed = edge_crossing(ratio)
    t_c = int(tr.steps[i0])
    k = s["horizon"]
    window = crossed and t_c + k <= res.num_steps
    quad = top = net = None
    dim = (None, None)
    if window:  # θ at the crossing is a recorded step (record_every = every)
        theta_c = res.recorded_thetas[int(np.flatnonzero(res.recorded_steps == t_c)[0])]
        quad, top, dim = _model_ratio(model, theta_c, X, Y, eta, k)
        net = float(res.losses[t_c + k] / res.losses[t_c])
    after = ratio[i0:]
    progress(
        f"c = {c}: η = {eta:.3g}, λ_max {lam0:.3g} -> {tr.sharpness[-1]:.3g}, 2/η = {2 / eta:.3g}"
    )
    return RateRecord(
        fraction=float(c),
        eta=float(eta),
        sharpness_init=float(lam0),
        crossed=bool(crossed),
        first_cross_step=t_c if crossed else None,
        sharpening=float(tr.sharpness[i0] / tr.sharpness[start : i0 + 1].min()),
        band_fraction=float(np.mean(np.abs(after - 1.0) <= s["band"])) if crossed else 0.0,
        ratio_median_after=_after(crossed, np.median(after)),
        network_ratio=net,
        quadratic_ratio=quad,
        top_mode_ratio=top,
        sharpness_at_cross=_after(crossed, tr.sharpness[i0]),
        ky_dimension_at_cross=dim[0],
        unstable_at_cross=dim[1],
        steps=tr.steps.tolist(),
        sharpness=tr.sharpness.tolist(),
        loss=res.losses[tr.steps].tolist(),
        final_loss=float(res.losses[-1]),
    )


def measure(settings: dict, seed: int, progress) -> EdgeSeed:
    """One seed: λ_max(θ₀), then train at every η = c·2/λ_max(θ₀) and measure."""
    seeds = derive_seeds(seed, "data", "init")
    X, y = data.digits(settings["samples"], rng=seeds["data"])
    Y = np.eye(10)[y]
    model = MLP([64, settings["hidden"], 10], activation="tanh")
    theta0 = settings["init_scale"] * model.init(seeds["init"])
    with threadpool_limits(limits=1, user_api="blas"):
        lam0 = float(spectrum.eigenvalues(hessian(model, theta0, X, Y, loss="mse"))[0])
    rates = {
        fraction_key(c): _one_rate(model, theta0, X, Y, c, lam0, settings, progress)
        for c in settings["fractions"]
    }
    return EdgeSeed(
        num_params=model.num_params,
        sharpness_init=lam0,
        rates=rates,
        below_edge_at_init=all(r.sharpness_init < 2.0 / r.eta for r in rates.values()),
        **_quadratic_anchor([r.eta for r in rates.values()], seeds["init"]),
    )


_SOURCE = "Cohen et al. 2021 (arXiv:2103.00065), §3"


def _rate_rules(c: float) -> list[Verdict]:
    k = fraction_key(c)
    crossed = Compare(f"rates.{k}.crossed", "==", 1)
    return [
        Verdict(
            f"sharpening to 2/η (c={c:g})",
            crossed,
            f"starting below the edge (λ_max(θ₀) = {c:g}·2/η), the sharpness rises under GD "
            "until it reaches 2/η (progressive sharpening)",
            _SOURCE,
        ),
        Verdict(
            f"hovers at 2/η (c={c:g})",
            AllOf(crossed, Compare(f"rates.{k}.band_fraction", ">=", 0.8)),
            "after reaching 2/η the sharpness stays at or slightly above 2/η",
            _SOURCE,
        ),
        Verdict(
            f"loss decreases past 2/η, unlike its quadratic model (c={c:g})",
            AllOf(
                Compare(f"rates.{k}.network_ratio", "<", 1.0),
                Compare(f"rates.{k}.network_ratio", "<", Ref(f"rates.{k}.top_mode_ratio")),
            ),
            "past the crossing the network's loss decreases over the window, below what GD "
            "on the quadratic model along the top eigenvector at the crossing predicts (that "
            "model grows as |1 − ηλ_max|^2k once λ_max > 2/η)",
            _SOURCE + "; the quadratic model of docs/theory.md (GD on a quadratic)",
        ),
    ]


def rules(settings: dict) -> list[Verdict]:
    """Design checks (identities), then per fraction: sharpening, hovering, the loss."""
    out = [
        Verdict(
            "quadratic-anchor",
            Compare("quadratic_growth_rel_error", "<=", 1e-9),
            "GD on a quadratic with λ_max > 2/η diverges at the rate |1 − ηλ_max| per step",
            "docs/theory.md, gradient descent on a quadratic",
            role="identity",
        ),
        Verdict(
            "below 2/η at init",
            Compare("below_edge_at_init", "==", 1),
            "design check: every η starts with λ_max(θ₀) < 2/η, so sharpening is tested from below",
            "issue 21 design",
            role="identity",
        ),
    ]
    for c in settings["fractions"]:
        out += _rate_rules(c)
    return out


def _quantities(settings: dict) -> dict[str, str]:
    q = {"sharpness_init": "λ_max(H) at initialisation"}
    for c in settings["fractions"]:
        k, at = fraction_key(c), f"(η = {c:g}·2/λ_max(θ₀))"
        q.update(
            {
                f"rates.{k}.crossed": f"whether λ_max rose from below to 2/η {at}",
                f"rates.{k}.band_fraction": f"the share of records within the band after {at}",
                f"rates.{k}.network_ratio": f"L(θ_c+k)/L(θ_c) of the network {at}",
                f"rates.{k}.top_mode_ratio": f"the top-eigenvector quadratic model's ratio {at}",
                f"rates.{k}.ky_dimension_at_cross": f"the sharpness dimension at the crossing {at}",
                f"rates.{k}.unstable_at_cross": f"#{{|1 − ηλ_i| > 1}} at the crossing {at}",
            }
        )
    return q


def _setting_text(s: dict) -> str:
    return (
        f"scikit-learn digits (8×8, not MNIST), N = {s['samples']}, one-hot MSE, "
        f"64→{s['hidden']}→10 tanh (init ×{s['init_scale']:g}), full-batch GD at "
        f"η = c·2/λ_max(θ₀), c ∈ {s['fractions']}, "
        f"for {s['steps']} steps, exact λ_max every {s['every']} steps, band ±{s['band']:g} "
        f"around 2/η, quadratic-model window {s['horizon']} steps"
    )


def draw(result, axes) -> None:
    """λ_max·η/2 vs step (every seed and fraction; 1 = the edge) and the loss (first seed)."""
    for m in result.per_seed:
        for i, r in enumerate(m["rates"].values()):
            ratio = np.asarray(r["sharpness"]) * r["eta"] / 2.0
            axes[0].plot(
                r["steps"],
                ratio,
                color=f"C{i}",
                alpha=0.4,
                lw=1,
                label=f"c = {r['fraction']:g}" if m is result.per_seed[0] else None,
            )
    for i, r in enumerate(result.per_seed[0]["rates"].values()):
        axes[1].plot(r["steps"], r["loss"], color=f"C{i}", label=f"c = {r['fraction']:g}")
    axes[0].axhline(1.0, ls="--", color="k", lw=1)
    axes[0].set(xlabel="step t", ylabel="λ_max · η / 2")
    axes[1].set(xlabel="step t", ylabel=f"training loss (seed {result.seeds[0]})", yscale="log")
    for ax in axes:
        ax.legend(fontsize="x-small")


def figure(result, path: Path) -> None:
    """The experiment's figure (:func:`draw`) written to ``path``."""
    fig, axes = figures.new_figure(2, (9.0, 3.5))
    draw(result, axes)
    fig.suptitle(f"edge of stability, η = c·2/λ_max(θ₀), {len(result.seeds)} seeds")
    figures.save(fig, path)


EXPERIMENT = register(
    Experiment(
        name="edge-of-stability",
        paper="Cohen, Kaur, Li, Kolter, Talwalkar 2021 (arXiv:2103.00065)",
        claim="under full-batch GD the sharpness rises to about 2/η and hovers there while the "
        "loss keeps decreasing",
        fast=FAST,
        full=FULL,
        measure=measure,
        rules=rules,
        quantities=_quantities(FULL),
        setting_text=_setting_text,
        figure=figure,
    )
)
