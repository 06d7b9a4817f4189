"""Hessian surgery (arXiv:2605.07790 as the issue reads it): ``hessian-surgery``.

We could not read the paper. Our reading, stated so it can be checked against the paper: a
trained C-class network has C − 1 spike eigenvectors V = [v_1 … v_{C−1}] of H; the
sensitivity matrix S[c, j] = ∂μ_c/∂t (θ + t v_j) at t = 0 of the per-class mean margin μ_c is
exact, S = ∇μ · V (docs/theory.md §21, (21.6)); a constrained step δ = V s with s the
least-squares solution of S s = τ, τ_c = (mean accuracy − accuracy of class c) on the
training set, rescaled to ‖δ‖ = ``step_norm``, should narrow the spread (max − min) of the
per-class accuracies on held-out data. The same construction in C − 1 bulk eigenvectors and
in C − 1 random directions (same norm) are the nulls. The paper's numbers are not reachable
here (we have none); the rates are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref import data
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Compare, Ref, Verdict
from hessref.spectrum import eigenvalues
from hessref.train import train

PAPER = "arXiv:2605.07790 (as the issue reads it)"
SRC = "arXiv:2605.07790 (our reading; the paper was not available to us)"


# ---------------------------------------------------------------------------- margins
def margins(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth margins m_i = f_{i,y_i} − log Σ_{c≠y_i} exp f_{i,c} and ∂m_i/∂f_i.

    Parameters
    ----------
    F : ndarray (N, C), y : int ndarray (N,)

    Returns
    -------
    (m (N,), D (N, C)) with D_i = e_{y_i} − softmax over the classes c ≠ y_i (0 at y_i).
    """
    rows = np.arange(len(y))
    others = F.copy()
    others[rows, y] = -np.inf
    top = others.max(axis=1, keepdims=True)
    w = np.exp(others - top)
    Z = w.sum(axis=1, keepdims=True)
    m = F[rows, y] - (top[:, 0] + np.log(Z[:, 0]))
    D = -w / Z
    D[rows, y] = 1.0
    return m, D


def class_margin_gradients(model: hr.MLP, theta, X, y, classes: int) -> np.ndarray:
    """∇_θ μ_c of the per-class mean margins μ_c = mean_{i: y_i = c} m_i, shape (C, P) (21.6).

    ∇μ_c = (1/N_c) Σ_{i: y_i = c} J_iᵀ D_i, from the per-sample Jacobians J_i (N, C, P).
    """
    J = hr.jacobian(model, theta, X)
    _, D = margins(hr.outputs(model, theta, X), y)
    g = np.einsum("nk,nkp->np", D, J)
    onehot = np.eye(classes)[y]
    return (onehot.T @ g) / onehot.sum(axis=0)[:, None]


def class_accuracies(model: hr.MLP, theta, X, y, classes: int) -> np.ndarray:
    """Accuracy of each class c (fraction of its samples with argmax f = c), shape (C,)."""
    hit = hr.outputs(model, theta, X).argmax(axis=1) == y
    onehot = np.eye(classes)[y]
    return (onehot.T @ hit) / onehot.sum(axis=0)


def constrained_step(S: np.ndarray, V: np.ndarray, target: np.ndarray, norm: float):
    """δ = V s, s = argmin ‖S s − τ‖ (least norm), rescaled to ‖δ‖ = ``norm``; shape (P,)."""
    s = np.linalg.lstsq(S, target, rcond=None)[0]
    delta = V @ s
    return norm * delta / max(np.linalg.norm(delta), 1e-300)


# ---------------------------------------------------------------------------- measurement
@dataclass(frozen=True)
class Surgery:
    """One seed: accuracies before, spreads after each step, S and its finite-difference check."""

    train_loss: float
    accuracy_before: list
    spread_before: float
    spread_change_spike: float
    spread_change_bulk: float
    spread_change_random: float
    spread_change_plain: float
    mean_accuracy_change_spike: float
    spike_eigenvalues: list
    sensitivity: list
    fd_relative_error: float


def _split_data(s: dict, seed: int):
    n = s["train_samples"] + s["test_samples"]
    X, y = data.gaussian_mixture(
        n, s["classes"], s["input_dim"], separation=s["separation"], balance=s["balance"], rng=seed
    )
    cut = s["train_samples"]
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _spread(model, theta, X, y, C) -> float:
    acc = class_accuracies(model, theta, X, y, C)
    return float(acc.max() - acc.min())


def _fd_error(model, theta, X, y, C, V, S) -> float:
    """Largest relative error of S against central differences of μ_c along each v_j."""
    h = 1e-5

    def mu(t):
        m, _ = margins(hr.outputs(model, t, X), y)
        return (np.eye(C)[y].T @ m) / np.bincount(y, minlength=C)

    fd = np.stack([(mu(theta + h * v) - mu(theta - h * v)) / (2 * h) for v in V.T], axis=1)
    return float(np.abs(fd - S).max() / np.abs(S).max())


def _bases(U: np.ndarray, k: int, gauss: np.ndarray) -> dict[str, np.ndarray]:
    """The C − 1 = k directions of each step: top eigenvectors, middle ones, random ones."""
    mid = U.shape[1] // 2
    return {
        "spike": U[:, ::-1][:, :k],
        "bulk": U[:, mid : mid + k],
        "random": np.linalg.qr(gauss)[0],
    }


def _spread_changes(model, theta, data_, C, grads, target, bases, gauss, norm) -> dict:
    """Held-out spread change after the constrained step in each basis and a blind step."""
    Xt, yt = data_
    before = _spread(model, theta, Xt, yt, C)
    after = {"before": before}
    for name, V in bases.items():
        delta = constrained_step(grads @ V, V, target, norm)
        after[name] = _spread(model, theta + delta, Xt, yt, C) - before
    plain = gauss[:, 0] * norm / np.linalg.norm(gauss[:, 0])  # S not used: a blind step
    after["plain"] = _spread(model, theta + plain, Xt, yt, C) - before
    d_spike = constrained_step(grads @ bases["spike"], bases["spike"], target, norm)
    after["mean"] = float(
        class_accuracies(model, theta + d_spike, Xt, yt, C).mean()
        - class_accuracies(model, theta, Xt, yt, C).mean()
    )
    return after


def _measure(s: dict, seed: int, progress: Progress) -> Surgery:
    sd = derive_seeds(seed, "data", "init", "random")
    X, y, Xt, yt = _split_data(s, sd["data"])
    C, k = s["classes"], s["classes"] - 1
    model = hr.MLP([s["input_dim"], s["hidden"], C], "tanh")
    with threadpool_limits(limits=1, user_api="blas"):
        theta0 = model.init(rng=sd["init"])
        lr, steps = s["learning_rate"], s["steps"]
        res = train(model, theta0, X, y, loss="cross_entropy", lr=lr, steps=steps)
        theta = res.theta
        lam, U = eigenvalues(hr.hessian(model, theta, X, y, loss="cross_entropy"), vectors=True)
        lam, U = lam[::-1], U[:, ::-1]  # ascending, as the bases below read them
        grads = class_margin_gradients(model, theta, X, y, C)
        acc = class_accuracies(model, theta, X, y, C)
        gauss = np.random.default_rng(sd["random"]).normal(size=(len(theta), k))
        bases = _bases(U, k, gauss)
        after = _spread_changes(
            model, theta, (Xt, yt), C, grads, acc.mean() - acc, bases, gauss, s["step_norm"]
        )
        S = grads @ bases["spike"]
        fd = _fd_error(model, theta, X, y, C, bases["spike"], S)
    progress(f"seed {seed}: spread {after['before']:.3f}, change spike {after['spike']:+.3f}")
    return Surgery(
        train_loss=float(res.losses[-1]),
        accuracy_before=acc.tolist(),
        spread_before=after["before"],
        spread_change_spike=after["spike"],
        spread_change_bulk=after["bulk"],
        spread_change_random=after["random"],
        spread_change_plain=after["plain"],
        mean_accuracy_change_spike=after["mean"],
        spike_eigenvalues=lam[::-1][:k].tolist(),
        sensitivity=S.tolist(),
        fd_relative_error=fd,
    )


# -------------------------------------------------------------------------------- rules
def _claim_rules() -> list[Verdict]:
    return [
        Verdict(
            "spike step narrows the held-out accuracy spread",
            Compare("spread_change_spike", "<", 0),
            "the constrained step in the C − 1 spike eigenvectors lowers max − min of the "
            "per-class held-out accuracies",
            SRC,
            paper_value="not available to us",
        ),
        Verdict(
            "spike step beats bulk eigenvectors",
            Compare("spread_change_spike", "<", Ref("spread_change_bulk")),
            "the same construction in C − 1 middle-of-spectrum eigenvectors narrows the "
            "spread less",
            SRC,
        ),
        Verdict(
            "spike step beats random directions",
            Compare("spread_change_spike", "<", Ref("spread_change_random")),
            "the same construction in C − 1 random orthonormal directions narrows the spread less",
            SRC,
        ),
        Verdict(
            "spike step keeps mean accuracy",
            Compare("mean_accuracy_change_spike", ">=", -0.02),
            "the held-out mean accuracy drops by at most 0.02",
            SRC,
        ),
    ]


def _control_rules() -> list[Verdict]:
    """The nulls and the exact check of S."""
    return [
        Verdict(
            "null: bulk step narrows the spread",
            Compare("spread_change_bulk", "<", 0),
            "controls for narrowing by any step of this norm built from S: bulk "
            "eigenvectors (expected to fail)",
            SRC,
            role="null",
        ),
        Verdict(
            "null: random-subspace step narrows the spread",
            Compare("spread_change_random", "<", 0),
            "controls for narrowing by the S-constrained step in any 2-dimensional subspace: "
            "random orthonormal directions (expected to fail)",
            SRC,
            role="null",
        ),
        Verdict(
            "null: a blind random step narrows the spread",
            Compare("spread_change_plain", "<", 0),
            "controls for narrowing by any perturbation of this norm: one Gaussian "
            "direction, S not used (expected to fail)",
            SRC,
            role="null",
        ),
        Verdict(
            "S matches finite differences",
            Compare("fd_relative_error", "<=", 1e-8),
            "exact check: S = ∇μ·V against central differences of μ_c along each v_j",
            "docs/theory.md (21.6)",
            role="identity",
        ),
    ]


def _rules(s: dict) -> list[Verdict]:
    return _claim_rules() + _control_rules()


_FULL: dict[str, Any] = {
    "classes": 3,
    "input_dim": 4,
    "separation": 1.0,
    "balance": [0.6, 0.3, 0.1],
    "train_samples": 300,
    "test_samples": 3000,
    "hidden": 8,
    "learning_rate": 0.5,
    "steps": 1500,
    "step_norm": 0.5,
}
_FAST = {**_FULL, "train_samples": 200, "test_samples": 1000, "steps": 800}

_LABELS = {
    "spread_change_spike": "the held-out spread change of the spike step",
    "spread_change_bulk": "the held-out spread change of the bulk step",
    "spread_change_random": "the held-out spread change of the random-subspace step",
    "spread_change_plain": "the held-out spread change of a blind random step",
    "mean_accuracy_change_spike": "the held-out mean accuracy change of the spike step",
    "fd_relative_error": "max relative error of S vs finite differences",
    "spread_before": "the held-out spread before the step",
    "train_loss": "the final training loss",
}


def _setting_text(s: dict) -> str:
    return (
        f"{s['classes']}-class Gaussian mixture, d = {s['input_dim']}, separation "
        f"{s['separation']}, class shares {s['balance']}, N = {s['train_samples']} train / "
        f"{s['test_samples']} held out; tanh MLP {s['input_dim']}-{s['hidden']}-C, CE, GD "
        f"{s['steps']} steps at {s['learning_rate']}; steps of norm {s['step_norm']} in C − 1 "
        "spike / bulk / random directions"
    )


def _figure(result: Any, path: Path) -> None:
    from hessref.experiments.figures import new_figure, save

    fig, (ax,) = new_figure(1, (6.0, 3.5))
    keys = ("spread_change_spike", "spread_change_bulk", "spread_change_random")
    vals = [[p[k] for p in result.per_seed] for k in keys]
    ax.boxplot(vals)
    ax.set_xticks([1, 2, 3], ["spike", "bulk", "random"])
    ax.axhline(0, color="0.6", lw=0.8, ls=":")
    ax.set(ylabel="held-out spread change (max − min class accuracy)", title="step direction")
    fig.suptitle(f"{result.name} ({result.mode}, {len(result.seeds)} seeds)")
    save(fig, path)


register(
    Experiment(
        name="hessian-surgery",
        paper=PAPER,
        claim="a constrained step along the C − 1 spike eigenvectors of H rebalances per-class "
        "accuracy better than bulk or random directions of the same norm",
        fast=_FAST,
        full=_FULL,
        measure=_measure,
        rules=_rules,
        quantities=_LABELS,
        setting_text=_setting_text,
        figure=_figure,
    )
)
