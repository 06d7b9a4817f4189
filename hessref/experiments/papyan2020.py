"""Papyan's class/cross-class hierarchy in the Hessian of a small MLP, per seed.

Papyan 2019 (arXiv:1901.08244) and 2020 (arXiv:2008.11865) measured, on VGG/ResNet with
CIFAR/ImageNet, that the top-C outliers of the Gauss-Newton matrix G (and of H) sit at the
eigenvalues of G₁ (the class means δ_c, see :mod:`hessref.papyan`), that their eigenvectors
span the class means, and that the cross-class part G₂ forms a second, smaller group of
about C(C−2) eigenvalues. Here: a small tanh MLP trained by GD on balanced C-class Gaussian
blobs with cross-entropy, every matrix dense and exact.

:func:`hierarchy_seed` measures one seed at three points, each analysed identically:
``trained`` (θ after GD), ``init`` (θ₀, same data) and ``shuffled`` (GD on the same inputs
with permuted labels); the last two are the null baselines. The verdict rules
(:data:`RULES`) are evaluated per seed and point by :func:`verdicts`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import subspace_angles

import hessref as hr
from hessref import data
from hessref.papyan import class_decomposition
from hessref.train import train

#: Fast (CI) and paper configurations: data, architecture, training.
CONFIGS: dict[str, dict[str, Any]] = {
    "fast": {
        "num_classes": 4,
        "num_samples": 120,
        "dim": 8,
        "hidden": [12],
        "activation": "tanh",
        "separation": 3.0,
        "lr": 0.5,
        "max_steps": 400,
        "stop_loss": 0.05,
        "step_fraction": 0.1,
    },
    "paper": {
        "num_classes": 6,
        "num_samples": 600,
        "dim": 16,
        "hidden": [32],
        "activation": "tanh",
        "separation": 3.0,
        "lr": 0.5,
        "max_steps": 3000,
        "stop_loss": 0.02,
        "step_fraction": 0.1,
    },
}

#: Declared verdict rules (per seed and point); thresholds are fixed here, not tuned.
RULES: dict[str, str] = {
    "outliers_at_class_means": (
        "max_j≤C λ_j(G)/λ_j(G₁) ≤ 1.5 (the top-C eigenvalues of G are within 50% above the "
        "class-mean eigenvalues; ≥ 1 always holds exactly)"
    ),
    "H_outliers_at_class_means": "max_j≤C |λ_j(H)/λ_j(G₁) − 1| ≤ 0.5",
    "subspace_is_class_means": (
        "largest principal angle between the top-C eigenvectors of G and span{δ_c} ≤ 30°"
    ),
    "second_group_separates": (
        "among λ_{C+1..C+2C(C−2)}(G), the largest ratio λ_j/λ_{j+1} sits at "
        "j = C + C(C−2) and exceeds the runner-up ratio by ≥ 1.25×"
    ),
}


def _spectra(model, theta, X, y) -> dict[str, Any]:
    """Dense H, G, the decomposition and the eigendecompositions needed by the rules."""
    dec = class_decomposition(model, theta, X, y)
    H = hr.hessian(model, theta, X, y, loss="cross_entropy")
    lG, VG = np.linalg.eigh(dec.G)
    lH, VH = np.linalg.eigh(H)
    return {"dec": dec, "lG": lG[::-1], "VG": VG[:, ::-1], "lH": lH[::-1], "VH": VH[:, ::-1]}


def _second_group(lG: np.ndarray, C: int) -> dict[str, Any]:
    """Position and margin of the largest gap ratio among λ_{C+1..C+2C(C−2)} (1-based)."""
    m = max(2, 2 * C * (C - 2))
    cand = lG[C : C + m + 1]
    cand = cand[cand > 0]
    if cand.size < 3:
        return {"position": None, "ratio": float("nan"), "runner_up": float("nan")}
    ratios = cand[:-1] / cand[1:]
    order = np.argsort(-ratios, kind="stable")
    return {
        "position": int(C + order[0] + 1),  # λ_position / λ_{position+1} is the largest ratio
        "ratio": float(ratios[order[0]]),
        "runner_up": float(ratios[order[1]]),
        "expected": int(C + C * (C - 2)),
    }


def _class_losses(model, theta, X, y, C: int) -> np.ndarray:
    """Mean cross-entropy of each class, shape (C,)."""
    F = hr.outputs(model, theta, X)
    F = F - F.max(axis=1, keepdims=True)
    nll = np.log(np.exp(F).sum(axis=1)) - F[np.arange(len(y)), y]
    return np.array([nll[y == c].mean() for c in range(C)])


def _moves(model, theta, X, y, V: np.ndarray, lam: np.ndarray, frac: float) -> dict[str, Any]:
    """Per-class loss change when θ moves ± t v_j along each outlier eigenvector v_j of H.

    t_j = √(2·frac·L/λ_j): the quadratic model predicts a total-loss rise of frac·L.
    Returns the rises ΔL_c(±t_j) (C_vec × C) and the share of the symmetric rise carried
    by the most affected class.
    """
    C = V.shape[1]
    base = _class_losses(model, theta, X, y, C)
    L = float(hr.loss(model, theta, X, y, loss="cross_entropy"))
    plus, minus = np.empty((C, C)), np.empty((C, C))
    for j in range(C):
        t = np.sqrt(2 * frac * L / max(lam[j], 1e-300))
        plus[j] = _class_losses(model, theta + t * V[:, j], X, y, C) - base
        minus[j] = _class_losses(model, theta - t * V[:, j], X, y, C) - base
    sym = np.clip(0.5 * (plus + minus), 0, None)
    share = sym.max(axis=1) / np.maximum(sym.sum(axis=1), 1e-300)
    return {"rise_plus": plus.tolist(), "rise_minus": minus.tolist(), "top_class_share": share.tolist()}


def analyse_point(model, theta, X, y, cfg: dict) -> dict[str, Any]:
    """Every measured quantity of one (θ, data) point; JSON-ready."""
    C = cfg["num_classes"]
    s = _spectra(model, theta, X, y)
    dec, lG, lH = s["dec"], s["lG"], s["lH"]
    g1 = dec.gram_eigenvalues["G1"][:C]
    means = dec.class_means.T  # (P, C)
    angles = np.degrees(subspace_angles(s["VG"][:, :C], means))
    angles_H = np.degrees(subspace_angles(s["VH"][:, :C], means))
    return {
        "loss": float(hr.loss(model, theta, X, y, loss="cross_entropy")),
        "top_G": lG[: 2 * C].tolist(),
        "top_H": lH[: 2 * C].tolist(),
        "eig_G1": g1.tolist(),
        "eig_G012": dec.gram_eigenvalues["G012"].tolist(),
        "ratio_G_to_G1": (lG[:C] / g1).tolist(),
        "ratio_H_to_G1": (lH[:C] / g1).tolist(),
        "angles_G_deg": angles.tolist(),
        "angles_H_deg": angles_H.tolist(),
        "second_group": _second_group(lG, C),
        "rank_G2": int(np.sum(dec.gram_eigenvalues["G2"] > 1e-10 * lG[0])),
        "moves": _moves(model, theta, X, y, s["VH"][:, :C], lH, cfg["step_fraction"]),
    }


def verdicts(point: dict[str, Any], C: int) -> dict[str, bool]:
    """Evaluate :data:`RULES` on one analysed point."""
    sg = point["second_group"]
    second = (
        sg["position"] == C + C * (C - 2) and sg["ratio"] >= 1.25 * sg["runner_up"]
        if sg["position"] is not None
        else False
    )
    return {
        "outliers_at_class_means": max(point["ratio_G_to_G1"]) <= 1.5,
        "H_outliers_at_class_means": max(abs(r - 1) for r in point["ratio_H_to_G1"]) <= 0.5,
        "subspace_is_class_means": max(point["angles_G_deg"]) <= 30.0,
        "second_group_separates": bool(second),
    }


def hierarchy_seed(cfg: dict, seed: int) -> dict[str, Any]:
    """One seed: data, θ₀, GD to the loss target (true and shuffled labels), three analyses."""
    C = cfg["num_classes"]
    ss = np.random.SeedSequence(seed).spawn(3)
    X, y = data.gaussian_mixture(
        cfg["num_samples"], C, cfg["dim"], separation=cfg["separation"], rng=ss[0]
    )
    model = hr.MLP([cfg["dim"], *cfg["hidden"], C], activation=cfg["activation"])
    theta0 = model.init(rng=ss[1])
    y_shuffled = np.random.default_rng(ss[2]).permutation(y)
    out: dict[str, Any] = {}
    for name, labels, do_train in (("trained", y, True), ("init", y, False), ("shuffled", y_shuffled, True)):
        theta, steps = theta0, 0
        if do_train:
            res = train(
                model, theta0, X, labels, loss="cross_entropy", lr=cfg["lr"],
                steps=cfg["max_steps"], stop_loss=cfg["stop_loss"],
            )
            theta, steps = res.theta, len(res.losses) - 1
        point = analyse_point(model, theta, X, labels, cfg)
        point["steps"] = steps
        point["verdicts"] = verdicts(point, C)
        out[name] = point
    return out
