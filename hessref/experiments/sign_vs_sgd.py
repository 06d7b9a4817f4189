"""Experiment ``sign-vs-sgd``: SGD, SignSGD and Muon under sparse and dense gradient noise.

Claim tested: under *sparse* gradient noise, sign descent needs up to a factor of d
fewer iterations than SGD (bounds matched in the ℓ1 norm of the gradient, in which the
ℓ∞-type smoothness Σ_ij |H_ij| replaces d·λ_max); Muon is the analogue for weight
matrices (the spectral-norm geometry).

Two settings, every optimizer run with a constant step chosen as the best of a log grid
``lrs`` (separately for every optimizer, noise type, size and seed), for ``steps``
steps, with noise ξ_t (:class:`hessref.train.GradientNoise`, E ξξᵀ = σ² I) of
sparsity s = 1 ("sparse": one coordinate per step, ±σ√d) or s = d ("dense", ±σ):

1. **Quadratic with a known Hessian.** A linear model x ↦ W x + b (``n`` inputs and
   outputs, d = n² + n parameters) with MSE on the 2n inputs ±√n·c_j q_j (q_j the
   columns of Q) and zero targets: L(θ) = ½ θᵀHθ with, exactly,
   H = blockdiag(I_n ⊗ Q diag(c²) Qᵀ, I_n) (bias block I_n), c_j² log-spaced in
   [c_min², 1]. Q = I ("axis-aligned": H diagonal, Σ|H_ij| = tr H) or a random rotation
   ("rotated": same eigenvalues, Σ|H_ij| larger). The minimum is θ = 0, L* = 0.
2. **A small MLP**: ``mlp_samples`` digits images, 64→h→10 tanh, one-hot MSE,
   full-batch gradient plus the same injected noise.

Measured per optimizer, noise and size (index j): the iterations to reach
L ≤ ``target`` · L(θ_0) (``mlp_target`` for the MLP; best step; ``steps`` + 1 if never,
i.e. censored) and the final relative loss (mean of the last 10% of steps over L(θ_0),
best step); the gap = SGD's final relative loss over SignSGD's (uncensored, so the
verdicts use it), per noise type and as a list over sizes; and the exact curvature at
θ_0 from the dense H: λ_max, tr H, Σ_ij |H_ij| and d·λ_max.
"""

from __future__ import annotations

import numpy as np

from hessref import data, spectrum
from hessref.core.dense import hessian
from hessref.core.mlp import MLP
from hessref.experiments.framework import Experiment, derive_seeds, register
from hessref.experiments.rules import Compare, Monotone, Ref, Verdict
from hessref.train import GradientNoise, TrainingDivergedError, train

OPTIMIZERS = ("sgd", "sign", "muon")
NOISES = ("sparse", "dense")

FAST = {
    "sizes": [3, 6],
    "rotate": False,
    "c_min": 0.3,
    "noise_scale": 0.3,
    "steps": 200,
    "target": 0.05,
    "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0],
    "mlp_target": 0.3,
    "mlp_widths": [4, 8],
    "mlp_samples": 60,
    "mlp_noise_scale": 0.05,
}
FULL = {
    "sizes": [3, 6, 12],
    "rotate": False,
    "c_min": 0.3,
    "noise_scale": 0.3,
    "steps": 400,
    "target": 0.05,
    "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0],
    "mlp_target": 0.3,
    "mlp_widths": [4, 8, 16],
    "mlp_samples": 100,
    "mlp_noise_scale": 0.05,
}


def quadratic_problem(n: int, c_min: float, rotate: bool, seed: int):
    """The linear-model quadratic of the module docstring: (model, X, Y, H exact)."""
    c2 = np.geomspace(c_min**2, 1.0, n)
    Q = np.eye(n)
    if rotate:
        Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    E = np.sqrt(n) * (Q * np.sqrt(c2)).T  # rows √n c_j q_jᵀ
    X = np.vstack([E, -E])
    model = MLP([n, n], activation="identity")
    H = np.zeros((model.num_params, model.num_params))
    H[model.weight_slice(1), model.weight_slice(1)] = np.kron(np.eye(n), (Q * c2) @ Q.T)
    H[model.bias_slice(1), model.bias_slice(1)] = np.eye(n)
    return model, X, np.zeros((2 * n, n)), H


def curvature(H: np.ndarray) -> dict:
    """λ_max, tr H, Σ|H_ij| and d·λ_max of a dense symmetric H."""
    lam = float(spectrum.eigenvalues(H)[0])
    return {
        "lambda_max": lam,
        "trace": float(np.trace(H)),
        "l1_smoothness": float(np.abs(H).sum()),
        "d_lambda_max": H.shape[0] * lam,
    }


def best_run(
    model, theta0, X, Y, optimizer, noise, s: dict, seed: int, target: float
) -> tuple[int, float]:
    """(iterations to target, final relative loss), each minimized over the step grid."""
    steps, best_iters, best_final = s["steps"], s["steps"] + 1, np.inf
    for lr in s["lrs"]:
        try:
            res = train(
                model,
                theta0,
                X,
                Y,
                loss="mse",
                lr=lr,
                steps=steps,
                optimizer=optimizer,
                noise=noise,
                rng=seed,
            )
        except TrainingDivergedError:
            continue
        rel = res.losses / res.losses[0]
        hit = np.flatnonzero(rel <= target)
        best_iters = min(best_iters, int(hit[0]) if hit.size else steps + 1)
        best_final = min(best_final, float(rel[-max(1, steps // 10) :].mean()))
    return best_iters, best_final


def _compare(model, theta0, X, Y, scale: float, s: dict, seed: int, target: float) -> dict:
    """Best-step iterations and final losses of every optimizer under both noises."""
    out = {}
    for noise_name in NOISES:
        noise = GradientNoise(scale, 1 if noise_name == "sparse" else None)
        for opt in OPTIMIZERS:
            iters, final = best_run(model, theta0, X, Y, opt, noise, s, seed, target)
            out[f"iters_{opt}_{noise_name}"] = iters
            out[f"final_{opt}_{noise_name}"] = final
        out[f"gap_{noise_name}"] = out[f"final_sgd_{noise_name}"] / out[f"final_sign_{noise_name}"]
    return out


def _problems(settings: dict, seeds: dict):
    """Yield (kind, j, model, X, Y, exact H at θ_0, θ_0, noise scale, target) per size."""
    for j, n in enumerate(settings["sizes"]):
        model, X, Y, H = quadratic_problem(
            n, settings["c_min"], settings["rotate"], seeds["rotation"]
        )
        theta0 = model.init(seeds["init"])
        yield "q", j, model, X, Y, H, theta0, settings["noise_scale"], settings["target"]
    X, y = data.digits(settings["mlp_samples"], rng=seeds["data"])
    Y = np.eye(10)[y]
    for j, h in enumerate(settings["mlp_widths"]):
        model = MLP([64, h, 10], activation="tanh")
        theta0 = model.init(seeds["init"])
        H = hessian(model, theta0, X, Y)
        yield "mlp", j, model, X, Y, H, theta0, settings["mlp_noise_scale"], settings["mlp_target"]


def measure(settings: dict, seed: int, progress) -> dict:
    """One seed: the quadratic at every size, then the MLP at every width."""
    seeds = derive_seeds(seed, "rotation", "init", "noise", "data")
    out: dict = {}
    for kind, j, model, X, Y, H, theta0, scale, target in _problems(settings, seeds):
        row = {"d": model.num_params, **curvature(H)}
        row.update(_compare(model, theta0, X, Y, scale, settings, seeds["noise"], target))
        out.update({f"{kind}_{k}_{j}": v for k, v in row.items()})
        progress(
            f"{kind} d = {model.num_params}: gap sparse {row['gap_sparse']:.3g}, "
            f"dense {row['gap_dense']:.3g}"
        )
    for kind, sizes in (("q", settings["sizes"]), ("mlp", settings["mlp_widths"])):
        for noise in NOISES:
            out[f"{kind}_gap_{noise}_by_d"] = [
                out[f"{kind}_gap_{noise}_{j}"] for j in range(len(sizes))
            ]
    return out


def rules(settings: dict) -> list[Verdict]:
    """Per size: sign beats SGD (≥ 2× lower final loss) under sparse noise, more than under
    dense noise; and the sparse-noise gap grows with d.
    """
    out = []
    for kind, sizes in (("q", settings["sizes"]), ("mlp", settings["mlp_widths"])):
        for j in range(len(sizes)):
            out.append(
                Verdict(
                    f"{kind} sparse gap j={j}",
                    Compare(f"{kind}_gap_sparse_{j}", ">=", 2.0),
                    "under sparse noise sign descent needs far fewer iterations than SGD",
                )
            )
            out.append(
                Verdict(
                    f"{kind} sparse vs dense j={j}",
                    Compare(f"{kind}_gap_sparse_{j}", ">", Ref(f"{kind}_gap_dense_{j}")),
                    "the advantage comes from the noise being sparse",
                )
            )
        out.append(
            Verdict(
                f"{kind} sparse gap grows with d",
                Monotone(f"{kind}_gap_sparse_by_d", increasing=True, along="d"),
                "the sign-vs-SGD gap grows with the dimension d (the factor-d statement)",
            )
        )
    return out


def _quantities(settings: dict) -> dict[str, str]:
    q = {
        "q_gap_sparse_by_d": "the quadratic's sparse-noise gap",
        "mlp_gap_sparse_by_d": "the MLP's sparse-noise gap",
    }
    for kind, sizes, what in (
        ("q", settings["sizes"], "quadratic"),
        ("mlp", settings["mlp_widths"], "MLP"),
    ):
        for j in range(len(sizes)):
            q[f"{kind}_d_{j}"] = f"d ({what} {j})"
            for noise in NOISES:
                q[f"{kind}_gap_{noise}_{j}"] = (
                    f"SGD/SignSGD final-loss ratio, {noise} noise ({what} {j})"
                )
                for opt in OPTIMIZERS:
                    q[f"{kind}_iters_{opt}_{noise}_{j}"] = f"{opt} iterations, {noise} ({what} {j})"
                    q[f"{kind}_final_{opt}_{noise}_{j}"] = f"{opt} final loss, {noise} ({what} {j})"
            for c in ("lambda_max", "trace", "l1_smoothness", "d_lambda_max"):
                q[f"{kind}_{c}_{j}"] = f"{c} ({what} {j})"
    return q


def _setting_text(s: dict) -> str:
    return (
        f"quadratic = linear model with MSE, n ∈ {s['sizes']} (d = n² + n), eigenvalues "
        f"c² in [{s['c_min'] ** 2:g}, 1], {'rotated' if s['rotate'] else 'axis-aligned'}, "
        f"noise σ = {s['noise_scale']:g}; MLP 64→h→10 tanh on {s['mlp_samples']} digits, "
        f"h ∈ {s['mlp_widths']}, σ = {s['mlp_noise_scale']:g}; {s['steps']} steps, best "
        f"constant step of {s['lrs']} per optimizer; target L ≤ {s['target']:g}·L(θ_0)"
    )


EXPERIMENT = register(
    Experiment(
        name="sign-vs-sgd",
        paper="sign descent vs SGD under sparse noise (ℓ1-norm bounds); Muon for matrices",
        claim="under sparse gradient noise SignSGD beats SGD by up to a factor of d",
        fast=FAST,
        full=FULL,
        measure=measure,
        rules=rules,
        quantities=_quantities(FULL),
        setting_text=_setting_text,
    )
)
