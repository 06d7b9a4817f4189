"""Loss and activation: does "count = C" survive tanh and MSE?

Registered experiment ``loss-and-activation``. Three cells on the same data and
initialisation seed (:data:`hessref.experiments.common.MIXTURE`): ReLU + cross-entropy,
tanh + cross-entropy, and ReLU + MSE on one-hot targets (K = C outputs). For MSE the
Gauss-Newton part is G = (1/N) Σᵢ Jᵢᵀ Jᵢ (the output Hessian is I), whose leading
eigen-directions are spanned by the per-class mean Jacobians of each output, C·K
vectors in all; so for MSE a count near C·K (not C) is the competing claim.
Each cell trains to its loss's target and reports the count with its margin.
"""

from __future__ import annotations

from typing import Any

from hessref.experiments.baselines import count_labels, count_rule
from hessref.experiments.common import MIXTURE_FAST, MIXTURE_FULL, fit_and_count, mixture_text
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Verdict

CELLS = (("relu_ce", "relu", "cross_entropy"), ("tanh_ce", "tanh", "cross_entropy"),
         ("relu_mse", "relu", "mse"))  # fmt: skip


def _measure(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init", "shuffle")
    out: dict[str, Any] = {}
    for key, act, loss in CELLS:
        target = s["mse_target_loss"] if loss == "mse" else s["target_loss"]
        cs = dict(s, activation=act, loss=loss, target_loss=target)
        r = fit_and_count(cs, sd["data"], sd["init"], progress, shuffle_seed=sd["shuffle"])
        r.pop("top_eigenvalues")
        out.update({f"{key}_{k}": v for k, v in r.items()})
    return out


def _rules(s: dict) -> list[Verdict]:
    C, m = s["classes"], s["min_margin"]
    return [
        Verdict("relu + CE: count = C", count_rule("relu_ce_", C, m)),
        Verdict("tanh + CE: count = C", count_rule("tanh_ce_", C, m)),
        Verdict("relu + MSE: count = C", count_rule("relu_mse_", C, m)),
        Verdict("relu + MSE: count = C·K", count_rule("relu_mse_", C * C, m),
                "with MSE the outliers number C·K"),
        *(Verdict(f"null {k}: shuffled count = C", count_rule(f"{k}_shuffled_", C, m))
          for k, _, _ in CELLS),
    ]  # fmt: skip


_LABELS: dict[str, str] = {}
for _key, _act, _loss in CELLS:
    _LABELS.update(count_labels(f"{_key}_", f"the trained H ({_act}, {_loss})"))
    _LABELS.update(count_labels(f"{_key}_shuffled_", f"H on shuffled labels ({_act}, {_loss})"))
    _LABELS[f"{_key}_final_loss"] = f"the final loss ({_act}, {_loss})"

register(
    Experiment(
        name="loss-and-activation",
        paper="Sagun et al. 2017 (arXiv:1706.04454), Table 1 (ReLU and tanh rows)",
        claim="the outlier count equals C for ReLU + CE; tanh and MSE change it (C·K for MSE)",
        fast={**MIXTURE_FAST, "mse_target_loss": 1e-2, "max_steps": 600},
        full={**MIXTURE_FULL, "mse_target_loss": 1e-2},
        measure=_measure,
        rules=_rules,
        quantities=_LABELS,
        setting_text=lambda s: (
            mixture_text(s)
            + "; cells relu + CE, tanh + CE, relu + MSE "
            + f"(one-hot, to loss ≤ {s['mse_target_loss']})"
        ),
    )
)
