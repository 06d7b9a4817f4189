"""Random-matrix theory behind "bulk + outliers" (Sagun et al. 2017, arXiv:1706.04454, App. B).

The facts used here are summarised in docs/theory.md, section "Random-matrix facts".

For a linear model f(x) = W x + b (K outputs) with mean MSE on N samples, the Hessian does
not depend on θ or the targets. In hessref's layout θ = [W.ravel() (row-major, K×M), b]::

    H = [[ I_K ⊗ XᵀX/N ,  I_K ⊗ x̄ ],
         [ I_K ⊗ x̄ᵀ    ,  I_K     ]]      (x̄ = Xᵀ1/N, shape (M, 1))

i.e. I_K ⊗ (XᵀX/N) on the weights (the identity factor comes *first*: weight W[k, j]
sits at index k·M + j). Equivalently, after reordering θ output by output, H = I_K ⊗ S̃
with S̃ = X̃ᵀX̃/N and X̃ = [X, 1]. For i.i.d. standard Gaussian inputs E[x̃x̃ᵀ] = I_{M+1},
so each copy of S̃ is a sample second-moment matrix with identity population and
α = (M+1)/N; its spectrum follows Marchenko–Pastur (MP):

    density  ρ_α(x) = √((b − x)(x − a)) / (2π α x)   on [a, b] = [(1 − √α)², (1 + √α)²],
    plus an atom of mass 1 − 1/α at 0 when α > 1.

The constant feature 1 is not Gaussian, but it changes S̃ by a rank-one term relative to
a fully Gaussian design, which moves the empirical CDF by at most 1/(M+1) (interlacing).

**MP CDF, closed form** (our derivation, checked against numerical quadrature in
tests/test_random_matrix.py): with r(x) = √((b − x)(x − a)),

    ∫ r(x)/x dx = r(x) + (a+b)/2 · arcsin((2x − a − b)/(b − a))
                  − √(ab) · arcsin(((a + b)x − 2ab)/(x(b − a))),

so F(x) = (1 − 1/α)₊ + [A(x) − A(a)] / (2πα) for a ≤ x ≤ b, where A is the
antiderivative above (A(b) − A(a) = π((a+b)/2 − √(ab)) gives the bulk mass min(1, 1/α));
:func:`mp_cdf` evaluates A(x) − A(a) in a cancellation-free form.

**Spiked model (BBP)**: population covariance I + (ℓ − 1)uuᵀ. If ℓ > 1 + √α the top sample
eigenvalue converges to ℓ(1 + α/(ℓ − 1)), outside the bulk; otherwise to the edge (1+√α)²
(Baik, Ben Arous, Péché 2005, arXiv:math/0403022; Baik & Silverstein 2006,
arXiv:math/0408165). Above the threshold its fluctuations are Gaussian, √N(λ − ρ(ℓ)) →
N(0, 2ℓ²(1 − α/(ℓ−1)²)) (Paul 2007); at the edge they are Tracy–Widom on the scale of
Johnstone (2001) given by :func:`edge_scale`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hessref import spectrum
from hessref.experiments.baselines import MIN_MARGIN
from hessref.experiments.framework import Experiment, derive_seeds, register
from hessref.experiments.rules import AllOf, Compare, Verdict

Array = NDArray[np.float64]


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha: expected a finite ratio M/N > 0, got {alpha}")
    return alpha


def mp_edges(alpha: float) -> tuple[float, float]:
    """Support [a, b] = [(1 − √α)², (1 + √α)²] of the MP bulk (unit variance)."""
    s = np.sqrt(_check_alpha(alpha))
    return float((1 - s) ** 2), float((1 + s) ** 2)


def mp_density(x: ArrayLike, alpha: float) -> Array:
    """Continuous part of the MP law, ρ_α(x) = √((b − x)(x − a)) / (2π α x) on [a, b].

    Integrates to min(1, 1/α); the atom (1 − 1/α)₊ at 0 is not included.
    """
    a, b = mp_edges(alpha)
    x = np.asarray(x, dtype=float)
    inside = (x > a) & (x < b)
    xi = np.where(inside, x, 0.5 * (a + b))
    return np.where(inside, np.sqrt((b - xi) * (xi - a)) / (2 * np.pi * alpha * xi), 0.0)


def _asin_sqrt(s: Array, one_minus_s: Array) -> Array:
    """arcsin(√s) from s and an exactly computed 1 − s: accurate at both ends (s → 0, 1)."""
    s, t = np.clip(s, 0, 1), np.clip(one_minus_s, 0, 1)
    return np.where(s <= 0.5, np.arcsin(np.sqrt(s)), 0.5 * np.pi - np.arcsin(np.sqrt(t)))


def _bulk_integral(x: Array, a: float, b: float) -> Array:
    """A(x) − A(a) for a ≤ x ≤ b, x > 0 (module docstring), without cancellation.

    With arcsin(t) + π/2 = 2 arcsin(√((1 + t)/2)), the exact (1 + t₁)/2 = (x − a)/(b − a),
    (1 + t₂)/2 = b(x − a)/(x(b − a)) and their complements (b − x)/(b − a),
    a(b − x)/(x(b − a)), no term loses digits as x → a or x → b (where each arcsin
    alone has an infinite slope).
    """
    r = np.sqrt(np.clip((b - x) * (x - a), 0, None))
    w = x * (b - a)
    t1 = _asin_sqrt((x - a) / (b - a), (b - x) / (b - a))
    t2 = _asin_sqrt(b * (x - a) / w, a * (b - x) / w)
    return r + (a + b) * t1 - 2 * np.sqrt(a * b) * t2


def mp_cdf(x: ArrayLike, alpha: float) -> Array:
    """MP cumulative distribution F_α(x), atom at 0 included, closed form (module docstring)."""
    alpha = _check_alpha(alpha)
    a, b = mp_edges(alpha)
    x = np.asarray(x, dtype=float)
    atom = max(0.0, 1 - 1 / alpha)
    xi = np.clip(x, max(a, 1e-300), b)
    bulk = np.where(x <= a, 0.0, _bulk_integral(xi, a, b) / (2 * np.pi * alpha))
    bulk = np.where(x >= b, min(1.0, 1 / alpha), np.minimum(bulk, min(1.0, 1 / alpha)))
    return np.where(x >= 0, atom, 0.0) + bulk


def kolmogorov_distance(eigenvalues: ArrayLike, alpha: float) -> float:
    """sup_x |F_emp(x) − F_α(x)| for the empirical CDF of ``eigenvalues``.

    The sup is attained at a jump of either CDF: compare F_α(λ) with F_emp(λ) and the left
    limits F_α(λ⁻) with F_emp(λ⁻) (they differ only at the atom 0). Eigenvalues within
    1e-9·max|λ| of 0 are set to exactly 0, the atom.
    """
    ev = np.sort(np.asarray(eigenvalues, dtype=float))
    ev = np.where(np.abs(ev) <= 1e-9 * np.abs(ev).max(), 0.0, ev)
    n = ev.size
    F = mp_cdf(ev, alpha)
    # at a tie (the atom) the empirical CDF jumps once: use the last index of each value
    hi = np.searchsorted(ev, ev, side="right") / n
    lo = np.searchsorted(ev, ev, side="left") / n
    F_left = F - np.where(ev == 0, max(0.0, 1 - 1 / alpha), 0.0)
    return float(max(np.max(np.abs(hi - F)), np.max(np.abs(F_left - lo))))


def bbp_threshold(alpha: float) -> float:
    """Critical population spike ℓ_c = 1 + √α."""
    return 1 + np.sqrt(_check_alpha(alpha))


def spike_location(spike: float, alpha: float) -> float:
    """Limit of the top sample eigenvalue: ℓ(1 + α/(ℓ − 1)) above ℓ_c, the edge (1+√α)² below."""
    if spike <= bbp_threshold(alpha):
        return mp_edges(alpha)[1]
    return float(spike * (1 + alpha / (spike - 1)))


def spike_std(spike: float, alpha: float, num_samples: int) -> float:
    """Asymptotic std of the outlier above ℓ_c: ℓ √(2(1 − α/(ℓ−1)²)/N) (Paul 2007)."""
    return float(spike * np.sqrt(2 * (1 - alpha / (spike - 1) ** 2) / num_samples))


def edge_scale(dim: int, num_samples: int) -> float:
    """Tracy–Widom scale of λ_max(XᵀX/N) at the edge (Johnstone 2001), X (N, M):
    (√N + √M)(1/√N + 1/√M)^{1/3} / N.
    """
    n, m = float(num_samples), float(dim)
    return float((np.sqrt(n) + np.sqrt(m)) * (1 / np.sqrt(n) + 1 / np.sqrt(m)) ** (1 / 3) / n)


def spiked_inputs(num_samples: int, dim: int, spike: float = 1.0, rng=None) -> Array:
    """X (N, M), rows i.i.d. N(0, I + (ℓ − 1) u uᵀ) with u a uniformly random unit vector."""
    if spike <= 0:
        raise ValueError(f"spike: expected a population variance ℓ > 0, got {spike}")
    gen = np.random.default_rng(rng)
    Z = gen.standard_normal((num_samples, dim))
    u = gen.standard_normal(dim)
    u /= np.linalg.norm(u)
    return Z + (np.sqrt(spike) - 1) * np.outer(Z @ u, u)


def linear_mse_hessian(X: ArrayLike, num_outputs: int) -> Array:
    """Closed-form H of mean MSE for ``MLP([M, K], "identity")`` in hessref's layout.

    H = [[I_K ⊗ XᵀX/N, I_K ⊗ x̄], [I_K ⊗ x̄ᵀ, I_K]], shape (K(M+1), K(M+1)).
    """
    X = np.asarray(X, dtype=float)
    N, _ = X.shape
    eye = np.eye(num_outputs)
    xbar = X.mean(axis=0)[:, None]
    top = np.hstack([np.kron(eye, X.T @ X / N), np.kron(eye, xbar)])
    bottom = np.hstack([np.kron(eye, xbar.T), eye])
    return np.vstack([top, bottom])


# ----------------------------------------------------------------------------------------
# Experiment "random-matrix", one seed (Sagun et al. 2017, App. B)
# ----------------------------------------------------------------------------------------
def _linear_eigenvalues(X: Array, y=None, loss: str = "mse", theta=None) -> Array:
    """Ascending eigenvalues of the engine's H for the linear model on X."""
    from hessref.core.dense import hessian
    from hessref.core.mlp import MLP

    N, M = X.shape
    K = 1 if loss == "mse" else 2
    model = MLP([M, K], activation="identity")
    theta = np.zeros(model.num_params) if theta is None else theta
    y = np.zeros((N, 1)) if y is None else y
    return spectrum.eigenvalues(hessian(model, theta, X, y, loss=loss))[::-1]


def _mp_part(cfg: dict, gen: np.random.Generator) -> list[dict]:
    out = []
    M = cfg["dim"]
    for alpha in cfg["mp_alphas"]:
        N = max(2, round((M + 1) / alpha))
        n, a_eff = M + 1, (M + 1) / N
        X = gen.standard_normal((N, M))
        D = kolmogorov_distance(_linear_eigenvalues(X), a_eff)
        out.append(
            {"alpha": a_eff, "M": M, "N": N, "D": D, "nD": n * D, "tol": (2 + np.log(n)) / n}
        )
    return out


#: Subcritical spikes with (ℓ − 1)/(ℓ_c − 1) at most this are "clearly subcritical".
CLEAR_SUB = 0.6
#: Supercritical spikes whose detection power is at least this are "clearly supercritical".
CLEAR_POWER = 0.99
#: The detector: an outlier when λ_max > edge + DETECT_TW · (Tracy–Widom scale).
DETECT_TW = 8.0


def detection_power(spike: float, alpha: float, dim: int, num_samples: int) -> float:
    """P(λ_max > edge + 8·s_TW) predicted for a population spike ℓ (the detector's power).

    Supercritical (ℓ > 1 + √α): the Gaussian limit N(ℓ(1 + α/(ℓ−1)), spike_std²) (Paul
    2007). Subcritical: 0 — the top eigenvalue sticks to the edge with Tracy–Widom
    fluctuations, and P(TW₁ > 8) < 1e-6, so the detector fires with negligible probability.
    """
    from scipy.special import ndtr

    if spike <= bbp_threshold(alpha):
        return 0.0
    cut = mp_edges(alpha)[1] + DETECT_TW * edge_scale(dim, num_samples)
    z = (spike_location(spike, alpha) - cut) / spike_std(spike, alpha, num_samples)
    return float(ndtr(z))


def _bbp_part(cfg: dict, gen: np.random.Generator) -> list[dict]:
    """Spikes placed relative to the threshold: ℓ = 1 + r·(ℓ_c − 1) for r in ``spike_ratios``.

    Each spike is "clear" when r ≤ CLEAR_SUB (clearly subcritical) or its detection power
    is ≥ CLEAR_POWER (clearly supercritical); only clear spikes enter the transition rule,
    the others are reported with their power.
    """
    out = []
    M = cfg["dim"]
    N = max(2, round((M + 1) / cfg["bbp_alpha"]))
    a_eff = (M + 1) / N
    edge, tw = mp_edges(a_eff)[1], edge_scale(M + 1, N)
    for r in cfg["spike_ratios"]:
        spike = 1 + r * (bbp_threshold(a_eff) - 1)
        ev = _linear_eigenvalues(spiked_inputs(N, M, spike, rng=gen))
        pred = spike_location(spike, a_eff)
        supercritical = spike > bbp_threshold(a_eff)
        sd = spike_std(spike, a_eff, N) if supercritical else tw
        power = detection_power(spike, a_eff, M + 1, N)
        out.append(
            {
                "ratio": r,
                "spike": spike,
                "alpha": a_eff,
                "threshold": bbp_threshold(a_eff),
                "supercritical": bool(supercritical),
                "lambda_max": float(ev[-1]),
                "predicted": pred,
                "relative_error": float(ev[-1] / pred - 1),
                "z": float((ev[-1] - pred) / sd),
                "edge": edge,
                "tw_scale": tw,
                "outlier": bool(ev[-1] > edge + DETECT_TW * tw),
                "power": power,
                "clear": bool(r <= CLEAR_SUB or power >= CLEAR_POWER),
            }
        )
    return out


#: Candidates for the ratio rule on the blob spectra: the top 10 positive eigenvalues
#: (at α ≈ 1 the MP bulk reaches 0, so the smallest eigenvalues must not be candidates).
_BLOB_TOP = 10


def _blob_count(ev: Array) -> dict:
    from hessref.spectrum import count_outliers

    pos = np.sort(ev)[::-1]
    pos = pos[pos > 1e-12 * pos[0]]
    c = count_outliers(pos, rule="ratio", top=min(_BLOB_TOP, pos.size))
    return {
        "count": c.count,
        "ratio": c.details["score"],
        "runner_up": c.details["runner_up_score"],
        "lambda_1": float(pos[0]),
        "lambda_2": float(pos[1]),
    }


def _blobs_part(cfg: dict, gen: np.random.Generator) -> list[dict]:
    """Linear softmax (K = 2, cross-entropy) on ±μ + N(0, I) blobs, ‖μ‖ = separation.

    At θ = 0, p = 1/2 and H = ¼ [[1, −1], [−1, 1]] ⊗ X̃ᵀX̃/N (outputwise order), whose
    nonzero eigenvalues are half those of X̃ᵀX̃/N: population I + μμᵀ, a spike
    ℓ = 1 + ‖μ‖², so BBP predicts the outlier at ρ(ℓ)/2.
    """
    from hessref.core.derivatives import loss as loss_fn
    from hessref.core.mlp import MLP
    from hessref.train import train

    out = []
    M, sep = cfg["blob_dim"], cfg["blob_separation"]
    for alpha in cfg["blob_alphas"]:
        N = max(4, round((M + 1) / alpha))
        a_eff = (M + 1) / N
        mu = gen.standard_normal(M)
        mu *= sep / np.linalg.norm(mu)
        y = gen.permutation(np.arange(N) % 2)
        X = (2 * y - 1)[:, None] * mu + gen.standard_normal((N, M))
        ev0 = _linear_eigenvalues(X, y, "cross_entropy")
        model = MLP([M, 2], activation="identity")
        res = train(
            model,
            np.zeros(model.num_params),
            X,
            y,
            loss="cross_entropy",
            lr=cfg["blob_lr"],
            steps=cfg["blob_steps"],
        )
        ev1 = _linear_eigenvalues(X, y, "cross_entropy", res.theta)
        spike = 1 + sep**2
        out.append(
            {
                "alpha": a_eff,
                "M": M,
                "N": N,
                "init": _blob_count(ev0),
                "trained": _blob_count(ev1),
                "predicted_init": spike_location(spike, a_eff) / 2,
                "predicted_init_std": spike_std(spike, a_eff, N) / 2,
                "trained_loss": float(loss_fn(model, res.theta, X, y, loss="cross_entropy")),
            }
        )
    return out


def measure(settings: dict, seed: int, progress) -> dict:
    """One seed: MP fit, BBP spikes, softmax on two blobs.

    Returns the scalar quantities of :func:`rules`, ``spike_top_over_prediction`` (λ_max
    over its prediction, per spike: the generic figure draws it) and ``details``.
    """
    s = derive_seeds(seed, "mp", "bbp", "blobs")
    mp = _mp_part(settings, np.random.default_rng(s["mp"]))
    progress("Marchenko–Pastur done")
    bbp = _bbp_part(settings, np.random.default_rng(s["bbp"]))
    progress("spikes done")
    blobs = _blobs_part(settings, np.random.default_rng(s["blobs"]))
    sup = [b for b in bbp if b["supercritical"] and b["clear"]]
    unclear = [b for b in bbp if not b["clear"]]

    def blob_fails(key: str) -> int:
        return sum(
            not (b[key]["count"] == 1 and b[key]["ratio"] >= MIN_MARGIN * b[key]["runner_up"])
            for b in blobs
        )

    return {
        "spike_top_over_prediction": [b["lambda_max"] / b["predicted"] for b in bbp],
        "mp_worst_D_over_tol": max(m["D"] / m["tol"] for m in mp),
        "mp_max_nD": max(m["nD"] for m in mp),
        "bbp_mismatches": sum(b["outlier"] != b["supercritical"] for b in bbp if b["clear"]),
        "bbp_clear_spikes": sum(b["clear"] for b in bbp),
        "bbp_unclear_power": [b["power"] for b in unclear],
        "bbp_unclear_detected": sum(b["outlier"] for b in unclear),
        "bbp_max_abs_z": max((abs(b["z"]) for b in sup), default=float("nan")),
        "bbp_max_rel_error": max((abs(b["relative_error"]) for b in sup), default=float("nan")),
        "blob_init_fails": blob_fails("init"),
        "blob_trained_fails": blob_fails("trained"),
        "blob_init_max_abs_z": max(
            abs(b["init"]["lambda_1"] - b["predicted_init"]) / b["predicted_init_std"]
            for b in blobs
        ),
        "blob_trained_min_margin": min(
            b["trained"]["ratio"] / b["trained"]["runner_up"] for b in blobs
        ),
        "details": {"mp": mp, "bbp": bbp, "blobs": blobs},
    }


def rules(settings: dict) -> list[Verdict]:
    """The declared verdict rules (per seed)."""
    return [
        Verdict(
            "marchenko-pastur",
            Compare("mp_worst_D_over_tol", "<=", 1.0),
            claim="the linear-MSE Hessian spectrum follows the Marchenko–Pastur law",
            source="Sagun et al. 2017 (arXiv:1706.04454), App. B",
        ),
        Verdict(
            "bbp-transition",
            AllOf(Compare("bbp_mismatches", "==", 0), Compare("bbp_clear_spikes", ">=", 2)),
            claim="a spike makes an outlier when ℓ > 1 + √α and none below (tested on spikes "
            f"clearly on either side: (ℓ−1)/(ℓ_c−1) ≤ {CLEAR_SUB:g}, or detection power ≥ "
            f"{CLEAR_POWER:g}; the power of the others is reported, not tested)",
            source="Baik, Ben Arous, Péché 2005; Sagun et al. 2017 App. B",
        ),
        Verdict(
            "bbp-location",
            Compare("bbp_max_abs_z", "<=", 5.0),
            claim="a clearly supercritical outlier sits at ℓ(1 + α/(ℓ − 1)) within 5 standard "
            "deviations of its Gaussian fluctuations",
            source="Baik & Silverstein 2006; Paul 2007",
        ),
        Verdict(
            "blobs-one-outlier-at-init",
            AllOf(Compare("blob_init_fails", "==", 0), Compare("blob_init_max_abs_z", "<=", 5.0)),
            claim="at θ = 0, softmax on two blobs gives one large outlier, at the BBP location",
            source="Sagun et al. 2017 (arXiv:1706.04454), App. B",
        ),
        Verdict(
            "blobs-one-outlier-trained",
            Compare("blob_trained_fails", "==", 0),
            claim="after training, softmax on two blobs gives one large outlier",
            source="Sagun et al. 2017 (arXiv:1706.04454), App. B",
        ),
    ]


_QUANTITIES = {
    "mp_worst_D_over_tol": "max over α of the Kolmogorov distance to MP over (2 + log n)/n",
    "mp_max_nD": "max over α of n × the Kolmogorov distance",
    "bbp_mismatches": "the number of clear spikes whose outlier/no-outlier disagrees with "
    "ℓ vs 1 + √α",
    "bbp_clear_spikes": "the number of spikes clearly sub- or supercritical",
    "bbp_unclear_detected": "the number of near-threshold spikes the detector flagged",
    "bbp_max_abs_z": "max |λ_max − ℓ(1 + α/(ℓ−1))| / std over clearly supercritical spikes",
    "bbp_max_rel_error": "max relative error of the supercritical outliers",
    "blob_init_fails": (
        "the number of α where the ratio rule (top 10) at θ = 0 does not give 1 outlier "
        "with margin ≥ 1.25"
    ),
    "blob_init_max_abs_z": "max |λ_1 − BBP prediction| / std at θ = 0 (two blobs)",
    "blob_trained_fails": "the same count after GD",
    "blob_trained_min_margin": "min over α of the trained ratio-rule margin",
}


def _setting_text(s: dict) -> str:
    return (
        f"linear model, mean MSE, N(0, I) inputs in ℝ^{s['dim']} (α = (M+1)/N ∈ "
        f"{s['mp_alphas']}); spikes ℓ = 1 + r(ℓ_c − 1), r ∈ {s['spike_ratios']}, at α ≈ "
        f"{s['bbp_alpha']} (ℓ_c = 1 + √α); linear softmax on "
        f"two blobs ±μ + N(0, I) in ℝ^{s['blob_dim']}, ‖μ‖ = {s['blob_separation']}, "
        f"α ∈ {s['blob_alphas']}, GD lr {s['blob_lr']} for {s['blob_steps']} steps"
    )


register(
    Experiment(
        name="random-matrix",
        paper="Sagun et al. 2017 (arXiv:1706.04454), Appendix B",
        claim=(
            "linear-model Hessians follow Marchenko–Pastur; a spike beyond 1 + √α gives an "
            "outlier at ℓ(1 + α/(ℓ−1)); softmax on two blobs gives one large outlier"
        ),
        fast={
            "dim": 100,
            "mp_alphas": [0.25, 1.0, 2.0],
            "bbp_alpha": 0.5,
            "spike_ratios": [0.5, 1.3, 4.0, 8.0],
            "blob_alphas": [0.5, 1.0, 2.0],
            "blob_dim": 40,
            "blob_separation": 3.0,
            "blob_lr": 0.5,
            "blob_steps": 100,
        },
        full={
            "dim": 500,
            "mp_alphas": [0.1, 0.25, 0.5, 1.0, 2.0, 4.0],
            "bbp_alpha": 0.5,
            "spike_ratios": [0.3, 0.6, 1.2, 2.0, 4.0, 8.0],
            "blob_alphas": [0.02, 0.5, 1.0, 2.0],
            "blob_dim": 100,
            "blob_separation": 3.0,
            "blob_lr": 0.5,
            "blob_steps": 300,
        },
        measure=measure,
        rules=rules,
        quantities=_QUANTITIES,
        setting_text=_setting_text,
    )
)
