"""Papyan's class/cross-class hierarchy in the Hessian of a small MLP, per seed.

Papyan 2019 (arXiv:1901.08244) and 2020 (arXiv:2008.11865) measured, on VGG/ResNet with
CIFAR/ImageNet, that the top-C outliers of the Gauss-Newton matrix G (and of H) sit at the
eigenvalues of G₁ (the class means δ_c, see :mod:`hessref.papyan`), that their eigenvectors
span the class means, and that the cross-class part G₂ forms a second, smaller group of
about C(C−2) eigenvalues. Here: a small tanh MLP trained by GD on balanced C-class Gaussian
blobs with cross-entropy, every matrix dense and exact.

:func:`measure` measures one seed at three points, each analysed identically:
``trained`` (θ after GD), ``init`` (θ₀, same data) and ``shuffled`` (GD on the same inputs
with permuted labels); the last two are the null baselines. :func:`rules` declares the
verdict rules, applied to all three points. Registered as ``papyan-hierarchy``.

Papyan's claims are about the terminal phase of training (training error 0, loss → 0), so
GD runs until the training loss ≤ ``stop_loss`` (1e-4 in the full setting; 1e-3 in the
fast one, for CI time) within ``max_steps``; the steps taken and the loss reached are
recorded for every trained point, including the shuffled-label null (which may not reach
the target within the budget: its ``shuffled_reached`` says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.linalg import subspace_angles

import hessref as hr
from hessref import data, spectrum
from hessref.experiments.baselines import MIN_MARGIN, outlier_count, shuffled_labels
from hessref.experiments.framework import Experiment, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Verdict
from hessref.papyan import class_decomposition
from hessref.train import train


def _spectra(model, theta, X, y) -> dict[str, Any]:
    """Dense H, G, the decomposition and the eigendecompositions needed by the rules."""
    dec = class_decomposition(model, theta, X, y)
    H = hr.hessian(model, theta, X, y, loss="cross_entropy")
    lG, VG = spectrum.eigenvalues(dec.G, vectors=True)
    lH, VH = spectrum.eigenvalues(H, vectors=True)
    return {"dec": dec, "lG": lG, "VG": VG, "lH": lH, "VH": VH}


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
    return {
        "rise_plus": plus.tolist(),
        "rise_minus": minus.tolist(),
        "top_class_share": share.tolist(),
    }


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
        "all_H": lH,
    }


def flat(point: dict[str, Any], C: int) -> dict[str, Any]:
    """The scalar quantities the rules read, from one analysed point."""
    sg = point["second_group"]
    count = outlier_count(point["all_H"], top=_COUNT_TOP * C)
    return {
        "loss": point["loss"],
        "max_ratio_G_G1": max(point["ratio_G_to_G1"]),
        "max_dev_H_G1": max(abs(r - 1) for r in point["ratio_H_to_G1"]),
        "max_angle_G_deg": max(point["angles_G_deg"]),
        "max_angle_H_deg": max(point["angles_H_deg"]),
        "second_group_position": sg["position"],
        "second_group_margin": sg["ratio"] / sg["runner_up"] if sg["position"] else float("nan"),
        "H_count": count["count"],
        "H_count_margin": count["margin"],
        "mean_top_class_share": float(np.mean(point["moves"]["top_class_share"])),
        "rank_G2": point["rank_G2"],
    }


#: The ratio-rule count of H looks at the top _COUNT_TOP·C eigenvalues.
_COUNT_TOP = 4


def measure(settings: dict, seed: int, progress) -> dict[str, Any]:
    """One seed: data, θ₀, GD (true and shuffled labels), three analysed points.

    Returns the scalar quantities of the trained point (keys of :func:`flat`), the same
    with prefixes ``init_`` and ``shuffled_`` (null baselines), ``ratio_G_to_G1`` (the
    list λ_j(G)/λ_j(G₁), j ≤ C, trained) and ``details`` (spectra, ratios, angles,
    per-class loss changes of each point).
    """
    C = settings["num_classes"]
    s = derive_seeds(seed, "data", "init", "shuffle")
    X, y = data.gaussian_mixture(
        settings["num_samples"],
        C,
        settings["dim"],
        separation=settings["separation"],
        rng=s["data"],
    )
    model = hr.MLP([settings["dim"], *settings["hidden"], C], activation=settings["activation"])
    theta0 = model.init(rng=s["init"])
    points = {
        "trained": (y, True),
        "init": (y, False),
        "shuffled": (shuffled_labels(y, s["shuffle"]), True),
    }
    out: dict[str, Any] = {}  # the first list is what the generic figure draws
    for name, (labels, do_train) in points.items():
        theta, steps = theta0, 0
        if do_train:
            res = train(
                model,
                theta0,
                X,
                labels,
                loss="cross_entropy",
                lr=settings["lr"],
                steps=settings["max_steps"],
                stop_loss=settings["stop_loss"],
            )
            theta, steps = res.theta, len(res.losses) - 1
        progress(f"{name}: {steps} GD steps, analysing")
        point = analyse_point(model, theta, X, labels, settings)
        point["steps"] = steps
        prefix = "" if name == "trained" else f"{name}_"
        out.update({prefix + k: v for k, v in flat(point, C).items()})
        out[prefix + "steps"] = steps
        out[prefix + "reached"] = bool(do_train and point["loss"] <= settings["stop_loss"])
        del point["all_H"]
        if name == "trained":
            out["ratio_G_to_G1"] = point["ratio_G_to_G1"]
        out.setdefault("details", {})[name] = point
    return out


def _claims(prefix: str, C: int, expected: int) -> dict[str, tuple]:
    """The rules of one analysed point (``prefix``), each with the claim it tests."""
    return {
        "outliers-at-class-means": (
            Compare(prefix + "max_ratio_G_G1", "<=", 1.5),
            "the top-C eigenvalues of G lie within 1.5× of the class-mean eigenvalues eig(G1)",
        ),
        "H-outliers-at-class-means": (
            Compare(prefix + "max_dev_H_G1", "<=", 0.5),
            "the top-C eigenvalues of H lie within ±50% of eig(G1)",
        ),
        "outlier-subspace-is-class-means": (
            Compare(prefix + "max_angle_G_deg", "<=", 30.0),
            "the top-C eigenvectors of G span the class means (angles ≤ 30°)",
        ),
        "second-group-C(C-2)": (
            AllOf(
                Compare(prefix + "second_group_position", "==", expected),
                Compare(prefix + "second_group_margin", ">=", MIN_MARGIN),
            ),
            "a second group of C(C−2) eigenvalues (G2) separates below the top C",
        ),
        "H-count-equals-C": (
            AllOf(
                Compare(prefix + "H_count", "==", C),
                Compare(prefix + "H_count_margin", ">=", MIN_MARGIN),
            ),
            "H has C outliers (ratio rule with margin)",
        ),
    }


def rules(settings: dict) -> list[Verdict]:
    """The declared verdict rules, for the trained point and both null baselines."""
    C = settings["num_classes"]
    expected = C + C * (C - 2)
    out = []
    nulls = {
        "": ("", "claim", ""),
        "init_": (" [null: init]", "null", _NULL_INIT),
        "shuffled_": (" [null: shuffled]", "null", _NULL_SHUFFLED),
    }
    for prefix, (tag, role, why) in nulls.items():
        claims = _claims(prefix, C, expected)
        for name, (rule, claim) in claims.items():
            text = claim if role == "claim" else f"{why} Rule: {claim}."
            out.append(Verdict(name + tag, rule, text, _SOURCE, role=role))
    out.append(
        Verdict(
            "trained into the terminal phase",
            Compare("reached", "==", 1),
            f"design check: the trained net reached training loss ≤ {settings['stop_loss']:g} "
            "(Papyan's claims are about the terminal phase of training)",
            _SOURCE,
            role="identity",
        )
    )
    return out


_SOURCE = "Papyan 2019 (arXiv:1901.08244) §2–4; Papyan 2020 (arXiv:2008.11865)"
_NULL_INIT = (
    "Null, expected to fail: the same rule at initialisation (no training). The inputs are "
    "clustered, so this null still carries class signal through the data; it controls for "
    "structure that needs no training."
)
_NULL_SHUFFLED = (
    "Null, expected to fail: the same rule after GD on shuffled labels (inputs keep their "
    "clusters, labels carry no class signal; trained with the same step budget, its loss "
    "reached is reported as shuffled_loss)."
)


def _labels() -> dict[str, str]:
    base = {
        "max_ratio_G_G1": "max_j≤C λ_j(G)/λ_j(G₁)",
        "max_dev_H_G1": "max_j≤C |λ_j(H)/λ_j(G₁) − 1|",
        "max_angle_G_deg": (
            "the largest principal angle (degrees) between top-C eigenvectors of G and span{δ_c}"
        ),
        "second_group_position": (
            "the position j of the largest ratio λ_j/λ_{j+1} of G among j ∈ (C, C+2C(C−2)]"
        ),
        "second_group_margin": "that ratio over the runner-up",
        "H_count": f"the ratio-rule outlier count of H (top {_COUNT_TOP}C)",
        "H_count_margin": "its margin (winning ratio / runner-up)",
        "mean_top_class_share": (
            "the mean share of the most affected class in the loss rise along each top-C "
            "eigenvector of H"
        ),
        "loss": "the training loss",
        "steps": "the GD steps taken",
        "reached": "whether the training loss reached stop_loss",
    }
    out = dict(base)
    for prefix, tag in (("init_", "at initialisation: "), ("shuffled_", "with shuffled labels: ")):
        out.update({prefix + k: tag + v for k, v in base.items() if k != "mean_top_class_share"})
    return out


def _setting_text(s: dict) -> str:
    return (
        f"MLP {[s['dim'], *s['hidden'], s['num_classes']]} ({s['activation']}), cross-entropy, "
        f"GD lr {s['lr']} to loss {s['stop_loss']} (at most {s['max_steps']} steps), on "
        f"{s['num_samples']} samples of {s['num_classes']} balanced Gaussian classes in "
        f"ℝ^{s['dim']} (separation {s['separation']}); H, G and G₀..G₃ dense and exact"
    )


register(
    Experiment(
        name="papyan-hierarchy",
        paper="Papyan 2019 (arXiv:1901.08244); Papyan 2020 (arXiv:2008.11865)",
        claim=(
            "the top-C outliers of G and H sit at the class-mean eigenvalues eig(G1) and "
            "their eigenvectors span the class means; G2 forms a second group of about C(C-2)"
        ),
        fast={
            "num_classes": 4,
            "num_samples": 120,
            "dim": 8,
            "hidden": [12],
            "activation": "tanh",
            "separation": 3.0,
            "lr": 0.5,
            "max_steps": 6000,
            "stop_loss": 1e-3,
            "step_fraction": 0.1,
        },
        full={
            "num_classes": 6,
            "num_samples": 600,
            "dim": 16,
            "hidden": [32],
            "activation": "tanh",
            "separation": 3.0,
            "lr": 0.5,
            "max_steps": 10000,
            "stop_loss": 1e-4,
            "step_fraction": 0.1,
        },
        measure=measure,
        rules=rules,
        quantities=_labels(),
        setting_text=_setting_text,
    )
)
