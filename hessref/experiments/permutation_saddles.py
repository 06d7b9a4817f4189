"""Permutation saddles (Brea et al. 2019, arXiv:1907.02911, as we derive it).

A trained MLP with h units in hidden layer l is embedded into h + 1 units by duplicating
unit j (same incoming weights and bias) and splitting its outgoing column v_j into
α v_j and (1 − α) v_j. The network function is unchanged for every α, so (docs/theory.md
§21, the section "Permutation saddles and Hessian surgery"):

- the embedded gradient is the original's, with unit j's incoming part split α / (1 − α)
  (21.2): a critical point embeds to a critical point;
- the loss is constant along the valley α ↦ θ(α) (21.1);
- H θ-directions (u on column j, −u on column h+1) with u in ker M are exact null vectors
  (21.3), M = Σ_i s σ′(z_ij) ā_i r_iᵀ; v_j ∈ ker M at a critical point;
- along the split of the incoming weights, the curvature is α(1 − α) ξᵀ B ξ with
  B = Σ_i s σ″(z_ij)(v_jᵀ r_i) ā_i ā_iᵀ (21.4): negative somewhere ⇒ strict saddle; at
  α ∈ {0, 1} the point is a strict saddle whenever M ≠ 0 (21.5).

The experiment measures, per seed and α, whether the embedded point is a strict saddle
(λ_min(H) < −tol·λ_max(H)) and whether the theorem's sufficient condition predicted it.
The paper gives no number we can reach at this scale; the rates are ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import hessref as hr
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Compare, Ref, Verdict
from hessref.spectrum import eigenvalues
from hessref.train import train

PAPER = "Brea et al. 2019 (arXiv:1907.02911)"
SRC = "Brea et al. 2019 (read by us; theorems derived in docs/theory.md §21)"


def ascending(A) -> np.ndarray:
    """All eigenvalues of the symmetric ``A``, ascending (hessref.spectrum.eigenvalues reversed)."""
    return eigenvalues(A)[::-1]


# ------------------------------------------------------------------------------ embedding
def embed(model: hr.MLP, theta: np.ndarray, layer: int, unit: int, alpha: float):
    """Duplicate ``unit`` of hidden ``layer`` (1-based) and split its outgoing weights α / 1 − α.

    Parameters
    ----------
    model : MLP with sizes [..., h, ...] at index ``layer``
    theta : ndarray (P,)
    layer : int, 1 ≤ layer ≤ L − 1 (a hidden layer)
    unit : int, 0 ≤ unit < h
    alpha : float

    Returns
    -------
    (MLP, ndarray (P + d_{l−1} + 1 + d_{l+1},))
        The wider model (the copy is the last unit of the layer) and θ(α) (docs/theory.md (21.1)).
    """
    if not 1 <= layer < model.num_layers:
        raise ValueError(
            f"layer: expected a hidden layer in [1, {model.num_layers - 1}], got {layer}"
        )
    h = model.sizes[layer]
    if not 0 <= unit < h:
        raise ValueError(f"unit: expected 0 ≤ unit < {h}, got {unit}")
    params = [(W.copy(), b.copy()) for W, b in model.unflatten(theta)]
    W, b = params[layer - 1]
    params[layer - 1] = (np.vstack([W, W[unit]]), np.append(b, b[unit]))
    V, c = params[layer]
    v = V[:, unit].copy()
    V = np.hstack([V, (1.0 - alpha) * v[:, None]])
    V[:, unit] = alpha * v
    params[layer] = (V, c)
    sizes = list(model.sizes)
    sizes[layer] += 1
    wide = hr.MLP(sizes, model.activation.name)
    return wide, wide.flatten(params)


def valley_direction(wide: hr.MLP, theta_wide: np.ndarray, layer: int, unit: int, u=None):
    """The direction (u on outgoing column ``unit``, −u on the copy's column), shape (P',).

    ``u=None`` takes u = v_j = column ``unit`` + the copy's column: the tangent d θ(α)/dα.
    """
    (V, _c) = wide.unflatten(theta_wide)[layer]
    if u is None:
        u = V[:, unit] + V[:, -1]
    D = np.zeros_like(V)
    D[:, unit], D[:, -1] = u, -np.asarray(u, dtype=float)
    out = np.zeros_like(theta_wide)
    out[wide.weight_slice(layer + 1)] = D.ravel()
    return out


def split_matrices(model: hr.MLP, theta: np.ndarray, X, Y, layer: int, unit: int):
    """(M, B) of docs/theory.md (21.3)–(21.4) for the MSE mean loss, at the original θ.

    M = Σ_i s σ′(z_ij) ā_i r_iᵀ, shape (d_{l−1} + 1, d_L) (row ā = [a_{l−1}; 1]);
    B = Σ_i s σ″(z_ij) (v_jᵀ r_i) ā_i ā_iᵀ, shape (d_{l−1} + 1, d_{l−1} + 1).
    The residual r_i = ∂ℓ_i/∂f_i = f_i − y_i (ℓ = ½‖f − y‖²), s = 1/N.
    """
    if layer != model.num_layers - 1:  # r_i is the output residual only below the output layer
        raise ValueError(
            f"layer: split_matrices needs the last hidden layer {model.num_layers - 1}, got {layer}"
        )
    params = model.unflatten(theta)
    a = np.asarray(X, dtype=float)
    for W, b in params[: layer - 1]:
        a = model.activation.f(a @ W.T + b)
    z = a @ params[layer - 1][0][unit] + params[layer - 1][1][unit]
    abar = np.hstack([a, np.ones((a.shape[0], 1))])
    r = (hr.outputs(model, theta, X) - Y) / X.shape[0]  # s r_i
    v = params[layer][0][:, unit]
    d1 = model.activation.df(z)
    d2 = model.activation.d2f(z)
    M = (abar * d1[:, None]).T @ r
    B = (abar * (d2 * (r @ v))[:, None]).T @ abar
    return M, B


# ------------------------------------------------------------------------ critical point
def regression_data(s: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y): a random tanh teacher d→teacher_hidden→K plus Gaussian noise (nonzero residuals)."""
    gen = np.random.default_rng(seed)
    X = gen.normal(size=(s["samples"], s["input_dim"]))
    teacher = hr.MLP([s["input_dim"], s["teacher_hidden"], s["outputs"]], "tanh")
    Y = hr.outputs(teacher, 2.0 * teacher.init(rng=gen), X)
    return X, Y + s["noise"] * gen.normal(size=Y.shape)


def critical_point(model: hr.MLP, theta0, X, Y, s: dict) -> np.ndarray:
    """GD, then Levenberg-Marquardt-damped Newton steps on the exact H.

    Each step solves (H + μ I) δ = ∇L with μ ≥ 1e-8 − λ_min(H) (positive definite); a step is
    kept only if L decreases (then μ /= 10, else μ *= 10), so the polish does not run off to
    a saddle, and near a strict minimum μ → 0 and the convergence is quadratic.
    """
    theta = train(model, theta0, X, Y, loss="mse", lr=s["learning_rate"], steps=s["gd_steps"]).theta
    mu = 1e-3
    for _ in range(s["newton_steps"]):
        g = hr.gradient(model, theta, X, Y, loss="mse")
        H = hr.hessian(model, theta, X, Y, loss="mse")
        shift = max(mu, 1e-8 - ascending(H)[0], 0.0)
        trial = theta - np.linalg.solve(H + shift * np.eye(len(g)), g)
        if hr.loss(model, trial, X, Y, loss="mse") <= hr.loss(model, theta, X, Y, loss="mse"):
            theta, mu = trial, mu / 10
        else:
            mu *= 10
    return theta


# ---------------------------------------------------------------------------- measurement
@dataclass(frozen=True)
class PermutationSaddle:
    """One seed: the original critical point and, per α (index ``str(i)``), the embedded one."""

    grad_norm: float
    lambda_min: float
    lambda_max: float
    original_saddle: int
    kernel_M: int
    B_indefinite: int
    outputs: int
    lambda_min_emb: dict
    zeros: dict
    zeros_ge_bound: dict
    zeros_ge_outputs: dict
    saddle: dict
    predicted: dict
    prediction_holds: dict
    loss_change: dict


def _embedded_row(model, theta, X, Y, s: dict, alpha: float, B_min: float) -> dict:
    wide, tw = embed(model, theta, s["layer"], s["unit"], alpha)
    ev = ascending(hr.hessian(wide, tw, X, Y, loss="mse"))
    tol = s["saddle_tol"] * ev[-1]
    # (21.4): the split direction's Rayleigh quotient, an upper bound on λ_min
    split = alpha * (1 - alpha) * B_min / (alpha**2 + (1 - alpha) ** 2)
    dL = hr.loss(wide, tw, X, Y, loss="mse") - hr.loss(model, theta, X, Y, loss="mse")
    return {
        "lambda_min_emb": float(ev[0]),
        "zeros": int(np.sum(np.abs(ev) <= s["zero_tol"] * ev[-1])),
        "saddle": int(ev[0] < -tol),
        "predicted": int(split < -tol),
        "loss_change": float(dL),
    }


def _measure(s: dict, seed: int, progress: Progress) -> PermutationSaddle:
    sd = derive_seeds(seed, "data", "init")
    X, Y = regression_data(s, sd["data"])
    model = hr.MLP([s["input_dim"], s["hidden"], s["outputs"]], "tanh")
    with threadpool_limits(limits=1, user_api="blas"):
        theta = critical_point(model, model.init(rng=sd["init"]), X, Y, s)
        ev = ascending(hr.hessian(model, theta, X, Y, loss="mse"))
        M, B = split_matrices(model, theta, X, Y, s["layer"], s["unit"])
        sv = np.linalg.svd(M, compute_uv=False)
        kernel = int(M.shape[1] - np.sum(sv > s["rank_tol"] * max(sv[0], 1e-300)))
        B_min, B_max = ascending(B)[[0, -1]]
        rows = {
            str(i): _embedded_row(model, theta, X, Y, s, a, B_min if a * (1 - a) > 0 else B_max)
            for i, a in enumerate(s["alphas"])
        }
    progress(f"seed {seed}: |g| {np.linalg.norm(hr.gradient(model, theta, X, Y, loss='mse')):.2g}")
    per = {k: {i: r[k] for i, r in rows.items()} for k in next(iter(rows.values()))}
    return PermutationSaddle(
        grad_norm=float(np.linalg.norm(hr.gradient(model, theta, X, Y, loss="mse"))),
        lambda_min=float(ev[0]),
        lambda_max=float(ev[-1]),
        original_saddle=int(ev[0] < -s["saddle_tol"] * ev[-1]),
        kernel_M=kernel,
        B_indefinite=int(B_min < 0 < B_max),
        outputs=s["outputs"],
        **per,
        zeros_ge_bound={i: int(z >= kernel) for i, z in per["zeros"].items()},
        zeros_ge_outputs={i: int(z >= s["outputs"]) for i, z in per["zeros"].items()},
        prediction_holds={i: int(per["saddle"][i] >= p) for i, p in per["predicted"].items()},
    )


# -------------------------------------------------------------------------------- rules
def _rules_one_alpha(i: int, a: float) -> list[Verdict]:
    k = str(i)
    return [
        Verdict(
            f"α = {a}: embedded point is a strict saddle",
            Compare(f"saddle.{k}", "==", 1),
            f"the embedded point θ({a}) of a critical point has λ_min(H) < −tol·λ_max(H)",
            SRC,
            paper_value="not given",
        ),
        Verdict(
            f"α = {a}: (21.4) prediction ⇒ saddle",
            Compare(f"prediction_holds.{k}", "==", 1),
            "exact check: where α(1−α)·λ(B) gives split curvature < −tol·λ_max, λ_min is "
            "below it (λ_min ≤ Rayleigh quotient)",
            "docs/theory.md (21.4)",
            role="identity",
        ),
        Verdict(
            f"α = {a}: zeros ≥ dim ker M",
            Compare(f"zeros_ge_bound.{k}", "==", 1),
            "exact check: H has at least dim ker M eigenvalues |λ| ≤ zero_tol·λ_max",
            "docs/theory.md (21.3)",
            role="identity",
        ),
        Verdict(
            f"α = {a}: zeros ≥ K (one per outgoing weight)",
            Compare(f"zeros_ge_outputs.{k}", "==", 1),
            "H has one zero eigenvalue per outgoing weight of the split unit (the issue's "
            "reading of the paper's count; (21.3) proves it only where M = 0)",
            SRC,
            paper_value="K (as the issue reads it)",
        ),
    ]


def _rules(s: dict) -> list[Verdict]:
    out = [v for i, a in enumerate(s["alphas"]) for v in _rules_one_alpha(i, a)]
    out.append(
        Verdict(
            "null: the original critical point is a strict saddle",
            Compare("original_saddle", "==", 1),
            "controls for saddles made by the training/polishing, not by the "
            "embedding: the un-embedded point (expected to fail)",
            SRC,
            role="null",
        )
    )
    out.append(
        Verdict(
            "B is indefinite",
            Compare("B_indefinite", "==", 1),
            "B of (21.4) has eigenvalues of both signs, so the embedded point is a strict "
            "saddle at every α ∉ {0, 1} (no α-window of minima)",
            "docs/theory.md (21.4)",
        )
    )
    out.append(
        Verdict(
            "polished to a critical point",
            Compare("grad_norm", "<=", Ref("lambda_max", 1e-9)),
            "the GD + damped-Newton polish reaches ‖∇L‖ ≤ 1e-9·λ_max (a precondition of the "
            "rows above, not an identity: some seeds sit on a degenerate valley where it stalls)",
            "not in paper (precondition)",
        )
    )
    return out


_FULL: dict[str, Any] = {
    "samples": 100,
    "input_dim": 2,
    "teacher_hidden": 4,
    "outputs": 2,
    "noise": 0.3,
    "hidden": 3,
    "layer": 1,
    "unit": 0,
    "learning_rate": 0.3,
    "gd_steps": 20000,
    "newton_steps": 400,
    "alphas": [-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
    "saddle_tol": 1e-6,
    "zero_tol": 1e-9,
    "rank_tol": 1e-6,
}
_FAST = {
    **_FULL,
    "samples": 60,
    "gd_steps": 3000,
    "alphas": [-0.5, 0.0, 0.5, 1.5],
}

_LABELS = {
    "grad_norm": "‖∇L‖ at the polished point",
    "lambda_max": "λ_max of the original H",
    "original_saddle": "the original point is a strict saddle (1/0)",
    **{
        f"{k}.{i}": f"{k} at α index {i}"
        for k in ("saddle", "prediction_holds", "zeros_ge_bound", "zeros_ge_outputs")
        for i in range(9)
    },
}


def _setting_text(s: dict) -> str:
    return (
        f"tanh MLP {s['input_dim']}-{s['hidden']}-{s['outputs']}, MSE on a noisy tanh teacher "
        f"(N = {s['samples']}, noise {s['noise']}); GD {s['gd_steps']} steps then "
        f"{s['newton_steps']} Newton steps; unit {s['unit']} of layer {s['layer']} duplicated, "
        f"α in {s['alphas']}; saddle: λ_min < −{s['saddle_tol']}·λ_max; zero: |λ| ≤ "
        f"{s['zero_tol']}·λ_max"
    )


def _figure(result: Any, path: Path) -> None:
    from hessref.experiments.figures import new_figure, rates_panel, save

    by_name = {v["name"]: v for v in result.verdicts}
    alphas = result.settings["alphas"]
    series = {
        label: [by_name[f"α = {a}: {suffix}"] for a in alphas]
        for label, suffix in (
            ("strict saddle", "embedded point is a strict saddle"),
            ("zeros ≥ K", "zeros ≥ K (one per outgoing weight)"),
        )
    }
    fig, (ax,) = new_figure(1, (7.0, 3.5))
    rates_panel(ax, alphas, series, "split α", "embedded critical point vs α")
    fig.suptitle(f"{result.name} ({result.mode}, {len(result.seeds)} seeds)")
    save(fig, path)


register(
    Experiment(
        name="permutation-saddles",
        paper=PAPER,
        claim="duplicating a unit of a critical point gives a critical point on an equal-loss "
        "valley whose Hessian has null directions and, for some α, negative curvature",
        fast=_FAST,
        full=_FULL,
        measure=_measure,
        rules=_rules,
        quantities=_LABELS,
        setting_text=_setting_text,
        figure=_figure,
    )
)
