"""Experiment ``edge-of-stability``: sharpness under full-batch GD (Cohen et al. 2021).

Cohen, Kaur, Li, Kolter, Talwalkar 2021 (arXiv:2103.00065) report that under full-batch
GD with step η the sharpness λ_max(H) rises during training ("progressive sharpening")
until it reaches about 2/η, then hovers at or slightly above 2/η while the loss keeps
decreasing over long windows — the "edge of stability" — although a quadratic model
with that curvature would diverge.

Setting: ``samples`` images of scikit-learn's 8×8 digits (standardized; NOT MNIST or
CIFAR), one-hot targets, MSE (½‖f − y‖², mean over samples), a 64→h→10 tanh MLP with
PyTorch-default initialization, full-batch GD at each η in ``lrs`` for ``steps`` steps.
λ_max(H(θ_t)) is tracked exactly every ``every`` steps (warm-started Lanczos,
:class:`hessref.train.Tracking`).

Per η (index i) and seed it measures: the initial sharpness; the first crossing, i.e.
the first record with λ_max ≥ 2/η after the sharpness has been below 2/η at some record
after initialization (if it never is, the run "started at the edge" and the crossing is
the first record after step 0; NaN if there is no crossing); the progressive-sharpening
ratio (λ_max at the crossing, or at the end, over the minimum recorded from the first
record below 2/η up to it); the fraction of
records from the crossing on with |λ_max·η/2 − 1| ≤ ``band``; the median and maximum
of λ_max·η/2 after it; the network's loss ratio L(θ_T)/L(θ_cross). The **exact
quadratic comparison**: GD on a quadratic multiplies the error along an eigenvector
with eigenvalue λ by (1 − ηλ) per step (docs/theory.md, section "Gradient descent on a
quadratic", eq. 15.1),
so with the median post-crossing sharpness a quadratic's top mode would change by
|1 − ηλ|^(T − t_cross) (reported as log10, ≥ 0 means no decrease) while the network's
loss decreased; and each seed checks that anchor numerically (GD on ½xᵀAx with
λ_max(A) = 1.02·2/η grows at exactly |1 − ηλ_max| per step).
"""

from __future__ import annotations

import numpy as np

from hessref import data
from hessref.core.mlp import MLP
from hessref.experiments.framework import Experiment, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Verdict
from hessref.train import Tracking, train

FAST = {
    "samples": 150,
    "hidden": 12,
    "lrs": [0.3, 0.5, 0.7],
    "steps": 800,
    "every": 20,
    "band": 0.1,
}
FULL = {
    "samples": 300,
    "hidden": 20,
    "lrs": [0.3, 0.5, 0.7],
    "steps": 3000,
    "every": 20,
    "band": 0.1,
}


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


def _one_rate(model, theta0, X, Y, lr, s: dict, progress) -> dict:
    """Train at one η and measure (see the module docstring)."""
    every, band = s["every"], s["band"]
    res = train(
        model, theta0, X, Y, loss="mse", lr=lr, steps=s["steps"], track=Tracking(every=every)
    )
    tr = res.tracking
    ratio = tr.sharpness * lr / 2.0
    i0, start, crossed = edge_crossing(ratio)
    after = ratio[i0:]
    rest = int(res.num_steps - tr.steps[i0])
    out = {
        "sharpness_init": float(tr.sharpness[0]),
        "crossed": int(crossed),
        "started_at_edge": int(crossed and start == i0),
        "first_cross_step": float(tr.steps[i0]) if crossed else float("nan"),
        "sharpening": float(tr.sharpness[i0] / tr.sharpness[start : i0 + 1].min()),
        "band_fraction": float(np.mean(np.abs(after - 1.0) <= band)) if crossed else 0.0,
        "ratio_median_after": float(np.median(after)) if crossed else float("nan"),
        "ratio_max_after": float(np.max(after)) if crossed else float("nan"),
        "network_loss_ratio": float(res.losses[-1] / res.losses[tr.steps[i0]])
        if crossed
        else float("nan"),
        # GD on a quadratic with the median post-crossing sharpness: exact amplitude
        # change of the top mode over the same steps, |1 − ηλ|^rest (log10)
        "quadratic_top_log10_growth": float(
            rest * np.log10(abs(1.0 - lr * np.median(tr.sharpness[i0:])))
        )
        if crossed
        else float("nan"),
        "steps": tr.steps.tolist(),
        "sharpness": tr.sharpness.tolist(),
        "loss": res.losses[tr.steps].tolist(),
        "final_loss": float(res.losses[-1]),
        "matvecs_per_record": float(tr.matvecs.mean()),
    }
    progress(
        f"lr {lr}: sharpness {out['sharpness_init']:.3g} -> {tr.sharpness[-1]:.3g}, "
        f"2/lr = {2 / lr:.3g}"
    )
    return out


def measure(settings: dict, seed: int, progress) -> dict:
    """One seed: train at every η and measure (see the module docstring)."""
    seeds = derive_seeds(seed, "data", "init")
    X, y = data.digits(settings["samples"], rng=seeds["data"])
    Y = np.eye(10)[y]
    model = MLP([64, settings["hidden"], 10], activation="tanh")
    theta0 = model.init(seeds["init"])
    out: dict = {"num_params": model.num_params}
    for i, lr in enumerate(settings["lrs"]):
        for key, value in _one_rate(model, theta0, X, Y, lr, settings, progress).items():
            out[f"{key}_{i}"] = value
    out.update(_quadratic_anchor(settings["lrs"], seeds["init"]))
    return out


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


def rules(settings: dict) -> list[Verdict]:
    """Per η: EoS (crossing and staying in the band), sharpening, and the quadratic contrast."""
    out = [
        Verdict(
            "quadratic-anchor",
            Compare("quadratic_growth_rel_error", "<=", 1e-9),
            "GD on a quadratic diverges iff λ_max > 2/η, at rate |1 − ηλ_max|",
        )
    ]
    for i, lr in enumerate(settings["lrs"]):
        out.append(
            Verdict(
                f"edge-of-stability lr={lr:g}",
                AllOf(Compare(f"crossed_{i}", "==", 1), Compare(f"band_fraction_{i}", ">=", 0.8)),
                "the sharpness rises to 2/η and then hovers around it",
            )
        )
        out.append(
            Verdict(
                f"sharpening lr={lr:g}",
                Compare(f"sharpening_{i}", ">=", 1.2),
                "the sharpness rises during training (progressive sharpening)",
            )
        )
        out.append(
            Verdict(
                f"loss decreases at the edge lr={lr:g}",
                AllOf(
                    Compare(f"crossed_{i}", "==", 1),
                    Compare(f"network_loss_ratio_{i}", "<", 1.0),
                ),
                "past 2/η the loss still decreases, which GD on a quadratic with "
                "λ_max ≥ 2/η cannot do along its top mode",
            )
        )
    return out


def _quantities(settings: dict) -> dict[str, str]:
    q = {"quadratic_growth_rel_error": "the quadratic growth-rate error"}
    for i, lr in enumerate(settings["lrs"]):
        q.update(
            {
                f"sharpness_init_{i}": f"λ_max at init (η={lr:g})",
                f"first_cross_step_{i}": f"the first step with λ_max ≥ 2/η (η={lr:g})",
                f"crossed_{i}": f"whether λ_max reached 2/η (η={lr:g})",
                f"started_at_edge_{i}": f"whether λ_max was ≥ 2/η at every record (η={lr:g})",
                f"sharpening_{i}": f"the sharpening ratio (η={lr:g})",
                f"band_fraction_{i}": f"the fraction of records within the band after (η={lr:g})",
                f"ratio_median_after_{i}": f"the median λ_max·η/2 after crossing (η={lr:g})",
                f"network_loss_ratio_{i}": f"L(T)/L(t_cross) of the network (η={lr:g})",
                f"quadratic_top_log10_growth_{i}": "log10 of the top-mode growth of GD on "
                f"the quadratic with that λ_max (η={lr:g})",
            }
        )
    return q


def _setting_text(s: dict) -> str:
    return (
        f"scikit-learn digits (8×8, not MNIST), N = {s['samples']}, one-hot MSE, "
        f"64→{s['hidden']}→10 tanh, full-batch GD at η ∈ {s['lrs']} for {s['steps']} steps, "
        f"exact λ_max every {s['every']} steps, band ±{s['band']:g} around 2/η"
    )


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
    )
)
