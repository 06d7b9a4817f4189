"""Loss and activation: does "count = C" survive tanh and MSE?

Registered experiment ``loss-and-activation``. Three cells on the same data and
initialisation seed (:data:`hessref.experiments.common.MIXTURE`): ReLU + cross-entropy,
tanh + cross-entropy, and ReLU + MSE on one-hot targets (K = C outputs). For MSE the
Gauss-Newton part is G = (1/N) Σᵢ Jᵢᵀ Jᵢ (the output Hessian is I), whose leading
eigen-directions are spanned by the per-class mean Jacobians of each output, C·K
vectors in all; so for MSE a count near C·K (not C) is the competing claim.
Each cell trains to its loss's target and reports the count by every counting rule
(:mod:`hessref.experiments.counting`); the verdict rows use the primary ratio rule.
"""

from __future__ import annotations

from typing import Any

from hessref.experiments.common import MIXTURE_FAST, MIXTURE_FULL, fit_and_count, mixture_text
from hessref.experiments.counting import count_is, count_labels, count_sensitivity
from hessref.experiments.framework import Experiment, Progress, derive_seeds, register
from hessref.experiments.rules import Verdict
from hessref.experiments.sagun2017_outliers import PRIMARY, counts_of

CELLS = (
    ("relu_ce", "relu", "cross_entropy"),
    ("tanh_ce", "tanh", "cross_entropy"),
    ("relu_mse", "relu", "mse"),
)


def _measure(s: dict, seed: int, progress: Progress) -> dict[str, Any]:
    sd = derive_seeds(seed, "data", "init", "shuffle")
    out: dict[str, Any] = {"counts": {}, "sensitivity": {}}
    for key, act, loss in CELLS:
        target = s["mse_target_loss"] if loss == "mse" else s["target_loss"]
        cs = dict(s, activation=act, loss=loss, target_loss=target)
        r = fit_and_count(cs, sd["data"], sd["init"], progress, shuffle_seed=sd["shuffle"])
        out["counts"][key] = counts_of(r, "", s["classes"], s)
        out["counts"][f"{key} shuffled"] = counts_of(r, "shuffled_", s["classes"], s)
        out["sensitivity"][key] = count_sensitivity(r["top_candidates"], s["classes"], top=s["top"])
        keep = ("final_loss", "reached_target", "steps", "shuffled_final_loss", "lambda_max")
        out.update({f"{key}_{k}": r[k] for k in keep})
    return out


SOURCE = "Sagun et al. 2017 §3.1, Table 1"


def _rules(s: dict) -> list[Verdict]:
    C, m = s["classes"], s["min_margin"]
    return [
        Verdict(
            "relu + CE: count = C",
            count_is("counts.relu_ce.", "ratio", C, margin=m),
            f"ReLU + cross-entropy: H has exactly C outliers ({PRIMARY})",
            SOURCE,
            paper_value="k (text)",
        ),
        Verdict(
            "tanh + CE: count = C",
            count_is("counts.tanh_ce.", "ratio", C, margin=m),
            "tanh + cross-entropy: H has exactly C outliers (the text's claim; Table 1's "
            "tanh rows count far from k)",
            SOURCE,
            paper_value="ratio 3–17 (tanh)",
        ),
        Verdict(
            "relu + MSE: count = C",
            count_is("counts.relu_mse.", "ratio", C, margin=m),
            "ReLU + MSE (one-hot): H has exactly C outliers (the text's claim for a loss the "
            "paper does not use)",
            SOURCE,
        ),
        Verdict(
            "relu + MSE: count = C·K",
            count_is("counts.relu_mse.", "ratio", C * C, margin=m),
            "ReLU + MSE (one-hot, K = C): H has C·K outliers, one per class mean Jacobian "
            "of each output (derived here, not in the paper)",
            "not in paper (derived)",
        ),
        *(
            Verdict(
                f"null {k}: shuffled count = C",
                count_is(f"counts.{k} shuffled.", "ratio", C, margin=m),
                "controls for outliers made by training without class structure: H after "
                f"the same {a} + {loss} training on shuffled labels",
                SOURCE,
                role="null",
            )
            for k, a, loss in CELLS
        ),
    ]


_LABELS: dict[str, str] = {}
for _key, _act, _loss in CELLS:
    _LABELS.update(count_labels(f"counts.{_key}.", f"the trained H ({_act}, {_loss})"))
    _LABELS.update(
        count_labels(f"counts.{_key} shuffled.", f"H, shuffled labels ({_act}, {_loss})")
    )
    _LABELS[f"{_key}_final_loss"] = f"the final loss ({_act}, {_loss})"

register(
    Experiment(
        name="loss-and-activation",
        paper="Sagun et al. 2017 (arXiv:1706.04454), Table 1 (ReLU and tanh rows)",
        claim="the outlier count equals C for ReLU + CE; tanh and MSE change it (C·K for MSE)",
        fast={
            **MIXTURE_FAST,
            "mse_target_loss": 1e-2,
            "max_steps": 600,
            "relative_threshold": 0.25,
        },
        full={**MIXTURE_FULL, "mse_target_loss": 1e-2, "relative_threshold": 0.25},
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
